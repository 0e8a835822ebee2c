"""Shared machinery of the op oracle suites (``test_ops_math``, ``test_ops_activations``, ``test_ops_losses``).

A *case* is ``(fn, args)``: ``fn(lib, *tensors)`` runs in torch and in symgrad on
the same float64 inputs, sampled from each :class:`Arg`'s domain.  Every
expected value comes from torch (or from finite differences of symgrad's
own forward, for the checks that need no torch).
"""

from __future__ import annotations

import warnings

import numpy as np

# one input model and tolerance for every oracle suite
from ops_oracle import ATOL, NZ, RTOL, Arg, P, R, U, Y, rng_for, text  # noqa: E402, F401 - re-exported

import symgrad


def inputs_for(name: str, args) -> list[np.ndarray]:
    rng = rng_for(name)
    return [np.asarray(arg.sample(rng), dtype=np.float64) for arg in args]  # 0-d samples as writable arrays


def leaves(lib, arrays, args):
    return [lib.tensor(a, dtype=lib.float64, requires_grad=arg.grad) for a, arg in zip(arrays, args)]


def grads_of(tensors):
    return [None if t.grad is None else t.grad.numpy().copy() for t in tensors]


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, what=""):
    if expected is None or actual is None:
        assert actual is None and expected is None, f"{what}: {actual!r} vs {expected!r}"
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} vs {expected.dtype}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def seed_like(name: str, out) -> np.ndarray:
    return rng_for(name + "/seed").normal(size=tuple(out.shape))


def run_case(lib, name, fn, args):
    """Forward, then backward (with a random seed for non-scalar outputs): (output, its grad_fn name, grads)."""
    tensors = leaves(lib, inputs_for(name, args), args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # size warnings are checked by their own tests
        out = fn(lib, *tensors)
    if out.ndim == 0:
        out.backward()
    else:
        out.backward(lib.tensor(seed_like(name, out), dtype=lib.float64))
    return out, out.grad_fn.name(), grads_of(tensors)


def check_against_torch(torch, name, fn, args, rtol=RTOL):
    """Forward value, dtype, shape, grad_fn name and every leaf's gradient, as torch computes them."""
    out_t, name_t, grads_t = run_case(torch, name, fn, args)
    out_s, name_s, grads_s = run_case(symgrad, name, fn, args)
    assert text(out_s.dtype) == text(out_t.dtype)
    assert tuple(out_s.shape) == tuple(out_t.shape)
    assert_close(out_s.detach().numpy(), out_t.detach().numpy(), rtol=rtol, what="forward")
    assert name_s == name_t
    assert out_s.requires_grad and not out_s.is_leaf
    for i, (gs, gt) in enumerate(zip(grads_s, grads_t)):
        assert_close(gs, gt, rtol=rtol, what=f"grad of input {i}")


def numerical_gradient(fn, arrays, index, projection, eps=1e-6):
    """Central differences of sum(fn(arrays) * projection) with respect to ``arrays[index]``."""

    def objective(values):
        tensors = [symgrad.tensor(v, dtype=symgrad.float64) for v in values]
        with symgrad.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(symgrad, *tensors)
        return float(np.sum(out.numpy() * projection))

    grad = np.zeros_like(arrays[index])
    for idx in np.ndindex(arrays[index].shape):
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[index][idx] += eps
        minus[index][idx] -= eps
        grad[idx] = (objective(plus) - objective(minus)) / (2 * eps)
    return grad


def check_finite_differences(name, fn, args):
    """symgrad's gradient of every input that requires grad against central differences (no torch)."""
    arrays = inputs_for(name, args)
    tensors = leaves(symgrad, arrays, args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(symgrad, *tensors)
    projection = rng_for(name + "/projection").normal(size=tuple(out.shape))
    out.backward(symgrad.tensor(projection, dtype=symgrad.float64))
    checked = 0
    for i, (t, arg) in enumerate(zip(tensors, args)):
        if not arg.grad:
            assert t.grad is None
            continue
        expected = numerical_gradient(fn, arrays, i, projection)
        # eps=1e-6: truncation ~1e-12, rounding ~1e-10 relative to |f|
        np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-6, atol=1e-6, err_msg=f"input {i}")
        checked += t.numel()
    assert checked > 0


def second_order(lib, name, fn, args):
    """The gradient with create_graph=True, then the Hessian-vector product through it."""
    tensors = leaves(lib, inputs_for(name, args), args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(lib, *tensors)
    wrt = [t for t in tensors if t.requires_grad]
    seed = lib.tensor(seed_like(name, out), dtype=lib.float64)
    grads = lib.autograd.grad(out, wrt, grad_outputs=seed, create_graph=True)
    rng = rng_for(name + "/direction")
    terms = [(g * lib.tensor(rng.normal(size=tuple(g.shape)), dtype=lib.float64)).sum()
             for g in grads if g.requires_grad]
    assert terms, "the gradient does not depend on the inputs: no second derivative to compare"
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    hv = lib.autograd.grad(total, wrt, materialize_grads=True)
    return [g.detach().numpy().copy() for g in grads], [h.numpy().copy() for h in hv]


def check_second_order(torch, name, fn, args, rtol=RTOL):
    first_t, second_t = second_order(torch, name, fn, args)
    first_s, second_s = second_order(symgrad, name, fn, args)
    for i, (s, t) in enumerate(zip(first_s, first_t)):
        assert_close(s, t, rtol=rtol, what=f"create_graph gradient {i}")
    for i, (s, t) in enumerate(zip(second_s, second_t)):
        assert_close(s, t, rtol=rtol, what=f"Hessian-vector product {i}")


def check_values_against_torch(torch, fn, *values, rtol=RTOL, atol=ATOL):
    """``fn(lib, *leaves)`` on the given float64 values (kinks, extremes): value and gradients of its sum."""
    results = {}
    for lib in (torch, symgrad):
        tensors = [lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in values]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(lib, *tensors)
            out.sum().backward()
        results[lib.__name__] = (out.detach().numpy().copy(), grads_of(tensors))
    (value_s, grads_s), (value_t, grads_t) = results["symgrad"], results["torch"]
    assert_close(value_s, value_t, rtol=rtol, atol=atol, what="forward")
    for i, (gs, gt) in enumerate(zip(grads_s, grads_t)):
        if gt is None:  # torch's graph did not reach this input; ours may have, with a zero gradient
            assert gs is None or not np.any(gs), f"grad of input {i}: {gs} where torch has none"
            continue
        assert_close(gs, gt, rtol=rtol, atol=atol, what=f"grad of input {i}")
        assert (np.isfinite(gs) == np.isfinite(gt)).all()
    return results


def raised(action):
    """(exception type name, message) of ``action()``, which must raise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            action()
    except Exception as error:  # noqa: BLE001 - the type is the point
        return type(error).__name__, text(error).split(" Hint:")[0]
    raise AssertionError("no exception raised")


def check_error_matches_torch(torch, make_action):
    """``make_action(lib)`` returns a callable that raises: same type and message in both libraries."""
    assert raised(make_action(symgrad)) == raised(make_action(torch))


def warnings_of(action) -> list[tuple[str, str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [(w.category.__name__, text(w.message)) for w in caught]
