"""Shared machinery of the op oracle suites (``tests/test_ops_*.py``).

A :class:`Case` is a function ``fn(lib, *tensors)`` written once for both
libraries (``lib`` is ``torch`` or ``symgrad``) and the inputs it takes.  The
checks run it on identical float64 NumPy inputs in both and compare:

* :func:`check_against_torch`: forward values, dtype and shape, the whole
  ``grad_fn`` graph (names of every node down to the leaves), and every
  leaf's ``.grad`` after ``backward`` with a random seed gradient;
* :func:`check_finite_differences`: symgrad's gradient against central
  differences of its own eager forward (no torch needed);
* :func:`check_second_derivatives`: ``autograd.grad(..., create_graph=True)``
  then a second ``autograd.grad`` of a random projection, against torch;
* :func:`check_same_error`: the exception type and message torch raises.

Expected values always come from torch or from finite differences, never
from symgrad.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import symgrad

RTOL = 1e-10
# Entries that cancel to ~1e-16 differ in their last bits between equally valid
# orders of floating-point operations; far below any real error.
ATOL = 1e-13


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def text(x) -> str:
    """A message or repr with PyTorch's module name replaced by ours."""
    return str(x).replace("torch.", "symgrad.")


# the value intervals inputs are drawn from (one uniform draw per input)
DOMAINS = {"real": (-2.0, 2.0), "pos": (0.5, 2.0), "unit": (-0.9, 0.9), "prob": (0.05, 0.95),
           "small": (-0.3, 0.3), "wide": (-6.0, 6.0)}


@dataclass(frozen=True)
class Arg:
    """One input: shape, value domain (or fixed ``values``), and whether it is a leaf requiring grad.

    The oracle suites (this module, ``_op_oracle.py``, ``test_autograd.py``) all draw through it.
    """

    shape: tuple = ()
    domain: str = "real"
    grad: bool = True
    values: tuple | None = None

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        shape = self.shape
        if self.values is not None:
            return np.array(self.values, dtype=np.float64).reshape(shape)
        if self.domain in DOMAINS:
            return rng.uniform(*DOMAINS[self.domain], shape)
        if self.domain == "nonzero":
            return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        if self.domain == "logprob":
            return np.array(np.log(rng.uniform(0.05, 0.95, shape)))
        if self.domain == "binary":
            return rng.integers(0, 2, shape).astype(float)
        if self.domain == "logit":
            return rng.normal(0.0, 3.0, shape)
        raise ValueError(self.domain)


def R(*shape, grad=True):
    return Arg(shape, "real", grad)


def P(*shape, grad=True):
    return Arg(shape, "pos", grad)


def U(*shape, grad=True):
    return Arg(shape, "unit", grad)


def NZ(*shape, grad=True):
    return Arg(shape, "nonzero", grad)


def Y(*shape, grad=False):
    return Arg(shape, "prob", grad)


def V(values, shape=None, grad=True):
    """Fixed values (ties, zeros, extremes)."""
    values = np.asarray(values, dtype=np.float64)
    return Arg(tuple(values.shape) if shape is None else shape, "fixed", grad, tuple(values.ravel().tolist()))


@dataclass(frozen=True)
class Case:
    """``fn(lib, *tensors)`` on ``args``.  ``fd``: check finite differences (not at kinks or ties);
    ``second``: check second derivatives against torch (ops that are not piecewise linear)."""

    fn: Callable
    args: list = field(default_factory=list)
    fd: bool = True
    second: bool = False
    rtol: float = RTOL
    atol: float = ATOL


def inputs_for(name: str, case: Case) -> list[np.ndarray]:
    rng = rng_for(name)
    return [np.asarray(arg.sample(rng), dtype=np.float64) for arg in case.args]


def make_leaves(lib, arrays, case: Case):
    return [lib.tensor(a, dtype=lib.float64, requires_grad=arg.grad) for a, arg in zip(arrays, case.args)]


def run(lib, name: str, case: Case, arrays=None):
    leaves = make_leaves(lib, inputs_for(name, case) if arrays is None else arrays, case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # degrees of freedom <= 0 and friends, checked elsewhere
        return case.fn(lib, *leaves), leaves


def graph_names(fn, depth: int = 8):
    """The ``grad_fn`` graph as nested ``(name, children)``; ``None`` for a constant operand."""
    if fn is None:
        return None
    children = tuple(graph_names(f, depth - 1) for f, _ in fn.next_functions) if depth else ()
    return fn.name(), children


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, what=""):
    if expected is None or actual is None:
        assert actual is None and expected is None, f"{what}: {actual!r} vs {expected!r}"
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def _seed(name: str, shape) -> np.ndarray:
    return rng_for(name + "/seed").normal(size=tuple(shape))


def _grads(leaves):
    return [None if t.grad is None else t.grad.numpy().copy() for t in leaves]


def check_against_torch(torch, name: str, case: Case) -> None:
    """Forward, dtype, shape, the grad_fn graph and every leaf's gradient, as torch computes them."""
    out_t, leaves_t = run(torch, name, case)
    out_s, leaves_s = run(symgrad, name, case)
    assert text(out_s.dtype) == text(out_t.dtype)
    assert tuple(out_s.shape) == tuple(out_t.shape)
    assert_close(out_s.detach().numpy(), out_t.detach().numpy(), case.rtol, case.atol, what="forward")
    assert graph_names(out_s.grad_fn) == graph_names(out_t.grad_fn)
    seed = _seed(name, out_t.shape)
    out_t.backward(torch.tensor(seed))
    out_s.backward(symgrad.tensor(seed))
    checked = 0
    for i, (gs, gt) in enumerate(zip(_grads(leaves_s), _grads(leaves_t))):
        assert_close(gs, gt, case.rtol, case.atol, what=f"grad of input {i}")
        checked += gt is not None
    assert checked, "no input received a gradient"


def _objective(case: Case, arrays, projection) -> float:
    tensors = [symgrad.tensor(v, dtype=symgrad.float64) for v in arrays]
    with symgrad.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = case.fn(symgrad, *tensors)
    return float(np.sum(out.numpy() * projection))


def check_finite_differences(name: str, case: Case, eps: float = 1e-6) -> None:
    """symgrad's gradient against central differences of its own eager forward."""
    arrays = inputs_for(name, case)
    out, leaves = run(symgrad, name, case, arrays)
    projection = rng_for(name + "/projection").normal(size=tuple(out.shape))
    out.backward(symgrad.tensor(projection))
    checked = 0
    for i, (leaf, arg) in enumerate(zip(leaves, case.args)):
        if not arg.grad:
            continue
        numeric = np.zeros_like(arrays[i])
        for idx in np.ndindex(arrays[i].shape):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            numeric[idx] = (_objective(case, plus, projection) - _objective(case, minus, projection)) / (2 * eps)
        # truncation ~eps**2, rounding ~1e-16/eps relative to the objective
        np.testing.assert_allclose(leaf.grad.numpy(), numeric, rtol=1e-6, atol=1e-6, err_msg=f"input {i}")
        checked += 1
    assert checked


def _second(lib, name: str, case: Case):
    out, leaves = run(lib, name, case)
    wrt = [t for t, arg in zip(leaves, case.args) if arg.grad]
    first = lib.autograd.grad((out * lib.tensor(_seed(name, out.shape))).sum(), wrt, create_graph=True)
    rng = rng_for(name + "/second")
    projected = sum((g * lib.tensor(rng.normal(size=tuple(g.shape)))).sum() for g in first)
    second = lib.autograd.grad(projected, wrt, allow_unused=True)
    return [g.detach().numpy().copy() for g in first], [None if h is None else h.numpy().copy() for h in second]


def check_second_derivatives(torch, name: str, case: Case) -> None:
    """First derivatives with ``create_graph=True``, then the gradient of a random projection of them."""
    first_t, second_t = _second(torch, name, case)
    first_s, second_s = _second(symgrad, name, case)
    for i, (a, b) in enumerate(zip(first_s, first_t)):
        assert_close(a, b, case.rtol, case.atol, what=f"first derivative {i}")
    for i, (a, b, g) in enumerate(zip(second_s, second_t, first_t)):
        # an unused input: torch returns None, symgrad may return zeros (or the other way round)
        a = np.zeros_like(g) if a is None else a
        b = np.zeros_like(g) if b is None else b
        assert_close(a, b, 1e-9, 1e-12, what=f"second derivative {i}")


def check_same_error(torch, fn: Callable) -> None:
    """``fn(lib)`` raises the same exception type with the same message in both libraries."""
    raised = []
    for lib in (torch, symgrad):
        with pytest.raises(Exception) as info:
            fn(lib)
        raised.append(info.value)
    expected, actual = raised
    assert type(actual) is type(expected), f"{type(actual).__name__}: {actual} vs {type(expected).__name__}"
    assert text(actual) == text(expected).split(" (Triggered internally")[0]


def _version(t) -> int:
    return t._version if hasattr(t, "_version") else t._version_counter.value


def check_error_changes_nothing(torch, fn: Callable, *arrays) -> None:
    """``fn(lib, *leaves)`` raises torch's exception type, and its float64 leaves (requiring grad) are left as
    they were: same values, no gradient, no version bump, and a graph built before still backpropagates."""
    raised = []
    for lib in (torch, symgrad):
        leaves = [lib.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
        earlier = sum((t * 2).sum() for t in leaves)
        versions = [_version(t) for t in leaves]
        with pytest.raises(Exception) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fn(lib, *leaves)
        raised.append(type(info.value))
        for t, a, version in zip(leaves, arrays, versions):
            np.testing.assert_array_equal(t.detach().numpy(), np.asarray(a, dtype=np.float64))
            assert t.grad is None and _version(t) == version
        earlier.backward()
        for t in leaves:
            np.testing.assert_array_equal(t.grad.numpy(), np.full(tuple(t.shape), 2.0))
    assert raised[1] is raised[0], f"{raised[1].__name__} vs {raised[0].__name__}"
