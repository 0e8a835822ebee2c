"""``nn.functional`` activations against the PyTorch oracle: values, gradients, grad_fn names, kinks, extremes.

``leaky_relu``, ``elu``, ``gelu`` (both approximations), ``silu``, ``softplus``
(beta, threshold) and ``hardtanh``, plus the ``relu``/``sigmoid``/``tanh`` that
were already there, on several shapes in float64 (rtol 1e-10), against central
differences, with second derivatives through ``create_graph``; kinks, extreme
inputs and bad input decided by torch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _op_oracle import (
    Arg,
    R,
    check_against_torch,
    check_error_matches_torch,
    check_finite_differences,
    check_second_order,
    check_values_against_torch,
    text,
)
from ops_oracle import check_error_changes_nothing

import symgrad

torch = pytest.importorskip("torch")


def F(lib):
    return lib.nn.functional


ACTIVATIONS = {  # name: a call with non-default hyper-parameters
    "relu": lambda lib, a: F(lib).relu(a),
    "relu_inplace_false": lambda lib, a: F(lib).relu(a, inplace=False),
    "sigmoid": lambda lib, a: F(lib).sigmoid(a),
    "tanh": lambda lib, a: F(lib).tanh(a),
    "leaky_relu": lambda lib, a: F(lib).leaky_relu(a),
    "leaky_relu_slope": lambda lib, a: F(lib).leaky_relu(a, 0.2),
    "leaky_relu_negative_slope": lambda lib, a: F(lib).leaky_relu(a, negative_slope=-0.5),
    "elu": lambda lib, a: F(lib).elu(a),
    "elu_alpha": lambda lib, a: F(lib).elu(a, alpha=0.5),
    "gelu": lambda lib, a: F(lib).gelu(a),
    "gelu_tanh": lambda lib, a: F(lib).gelu(a, approximate="tanh"),
    "silu": lambda lib, a: F(lib).silu(a),
    "softplus": lambda lib, a: F(lib).softplus(a),
    "softplus_beta": lambda lib, a: F(lib).softplus(a, beta=2.0),
    "softplus_threshold": lambda lib, a: F(lib).softplus(a, beta=3.0, threshold=1.5),  # both branches hit
    "softplus_int_beta": lambda lib, a: F(lib).softplus(a, 2, 4),
    "hardtanh": lambda lib, a: F(lib).hardtanh(a),
    "hardtanh_bounds": lambda lib, a: F(lib).hardtanh(a, -0.5, 1.5),
    "hardtanh_keywords": lambda lib, a: F(lib).hardtanh(a, min_val=0.0, max_val=0.25),
}

SHAPES = {"2d": (3, 4), "0d": (), "empty": (0, 3), "3d": (2, 1, 3)}

OPS = {f"{name}_{label}": (fn, [Arg(shape, "wide")]) for name, fn in ACTIVATIONS.items()
       for label, shape in SHAPES.items()}
# inside composites: the activation's input and output are graph nodes, and broadcasting meets them
OPS["gelu_in_chain"] = (lambda lib, a, b: F(lib).gelu(a * b).sum(0), [R(3, 1), R(4)])
OPS["silu_of_softplus"] = (lambda lib, a: F(lib).silu(F(lib).softplus(a, beta=0.5)) * a, [R(2, 3)])
OPS["elu_then_leaky"] = (lambda lib, a, b: F(lib).leaky_relu(F(lib).elu(a) - b, 0.3), [R(2, 3), R(3)])

SMOOTH = ["sigmoid", "tanh", "elu", "elu_alpha", "gelu", "gelu_tanh", "silu", "softplus", "softplus_beta",
          "softplus_threshold"]


@pytest.mark.parametrize("name", OPS)
def test_activation_matches_torch(name):
    fn, args = OPS[name]
    check_against_torch(torch, name, fn, args)


@pytest.mark.parametrize("name", [n for n in OPS if not n.endswith(("_0d", "_empty", "_3d"))])
def test_activation_gradient_matches_finite_differences(name):
    fn, args = OPS[name]
    check_finite_differences(name, fn, args)


@pytest.mark.parametrize("name", [f"{n}_2d" for n in SMOOTH] + ["gelu_in_chain", "silu_of_softplus"])
def test_second_derivatives_match_torch(name):
    fn, args = OPS[name]
    check_second_order(torch, name, fn, args)


def test_methods_and_top_level_names_are_where_torch_has_them():
    for name in ("leaky_relu", "elu", "gelu", "silu", "softplus", "hardtanh", "relu", "sigmoid", "tanh"):
        assert hasattr(symgrad.nn.functional, name)
        assert hasattr(symgrad, name) == hasattr(torch, name)
        assert hasattr(symgrad.Tensor, name) == hasattr(torch.Tensor, name)


# ============================================================================ kinks and extremes

KINKS = {
    "relu_at_0": (lambda lib, a: F(lib).relu(a), [0.0, -0.0, 1.0]),
    "leaky_relu_at_0": (lambda lib, a: F(lib).leaky_relu(a, 0.1), [0.0, -0.0, -1.0, 1.0]),
    "leaky_relu_nan": (lambda lib, a: F(lib).leaky_relu(a), [math.nan]),
    "elu_at_0": (lambda lib, a: F(lib).elu(a, alpha=2.0), [0.0, -0.0, -1.0, 1.0]),
    "hardtanh_at_bounds": (lambda lib, a: F(lib).hardtanh(a), [-1.0, 1.0, 0.0, 2.0, -2.0]),
    "hardtanh_nan": (lambda lib, a: F(lib).hardtanh(a), [math.nan]),
    "hardtanh_equal_bounds": (lambda lib, a: F(lib).hardtanh(a, 0.5, 0.5), [0.5, 0.0, 1.0]),
    "softplus_at_threshold": (lambda lib, a: F(lib).softplus(a, beta=2.0, threshold=4.0),
                              [2.0, 2.0000001, 1.9999999, -2.0]),
    "gelu_at_0": (lambda lib, a: F(lib).gelu(a), [0.0, -0.0]),
    "silu_at_0": (lambda lib, a: F(lib).silu(a), [0.0, -0.0]),
    # hardtanh's mask selects the gradient (an infinite one where it is 0 gives 0, as PyTorch's)
    "hardtanh_masks_infinite_gradient": (lambda lib, a: F(lib).hardtanh(a, 0.0, 2.0).sqrt(), [1.0, -1.0, 3.0, 0.0]),
    "leaky_relu_scales_infinite_gradient": (lambda lib, a: F(lib).leaky_relu(a, 0.5).abs().sqrt(), [1.0, 0.0]),
}


@pytest.mark.parametrize("name", KINKS)
def test_kinks_follow_torch(name):
    fn, values = KINKS[name]
    check_values_against_torch(torch, fn, values)


EXTREME = [-1e4, -1000.0, -40.0, -30.0, -1e-20, 0.0, 1e-20, 30.0, 40.0, 1000.0, 1e4]

EXTREME_OPS = {
    "sigmoid": lambda lib, z: F(lib).sigmoid(z),
    "softplus": lambda lib, z: F(lib).softplus(z),
    "softplus_beta": lambda lib, z: F(lib).softplus(z, beta=0.01, threshold=1e6),
    "silu": lambda lib, z: F(lib).silu(z),
    "elu": lambda lib, z: F(lib).elu(z),
    "gelu": lambda lib, z: F(lib).gelu(z),
    "gelu_tanh": lambda lib, z: F(lib).gelu(z, approximate="tanh"),
    "tanh": lambda lib, z: F(lib).tanh(z),
    "leaky_relu": lambda lib, z: F(lib).leaky_relu(z),
}


@pytest.mark.parametrize("name", EXTREME_OPS)
def test_extreme_values_match_torch(name):
    """Finite wherever torch is finite and equal within float64 rounding, from -1e4 to 1e4."""
    check_values_against_torch(torch, EXTREME_OPS[name], EXTREME)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softplus_beta", "silu", "elu", "gelu"])
def test_stable_activations_are_finite(name):
    """No overflow anywhere (the values are finite; torch agrees by the test above)."""
    z = symgrad.tensor(EXTREME, dtype=symgrad.float64, requires_grad=True)
    out = EXTREME_OPS[name](symgrad, z)
    out.sum().backward()
    assert np.isfinite(out.detach().numpy()).all() and np.isfinite(z.grad.numpy()).all()


def test_gelu_tails_agree_to_rounding():
    """gelu(x) = x*(1 + erf(x/√2))/2 for x << 0: torch and symgrad both cancel in ``1 + erf``.

    The values agree to the last bit (the same operations on the same erf),
    the gradients only absolutely (~1e-16: ill-conditioned, the two terms of
    gelu' cancel to ~4e-14 at x = -8, and the two libraries sum them in
    different orders).
    """
    results = check_values_against_torch(torch, lambda lib, z: F(lib).gelu(z), [-8.0, -5.0, -3.0],
                                         rtol=1e-9, atol=1e-15)
    assert (results["symgrad"][0] < 0).all()


# ============================================================================ dtypes and bad input

def test_float32_stays_float32_like_torch():
    """float32 in, float32 out, as torch (atol 1e-6: torch's float32 gelu evaluates erf in single precision,
    1e-4 relative off at x = -3, where symgrad's erf is evaluated in double and rounded once)."""
    values = [-3.0, -0.5, 0.0, 0.7, 25.0]
    for name, fn in ACTIVATIONS.items():
        outs = {}
        for lib in (torch, symgrad):
            x = lib.tensor(values, requires_grad=True)
            out = fn(lib, x)
            out.sum().backward()
            outs[lib.__name__] = (out, x.grad)
        (out_s, grad_s), (out_t, grad_t) = outs["symgrad"], outs["torch"]
        assert out_s.dtype is symgrad.float32 and grad_s.dtype is symgrad.float32, name
        np.testing.assert_allclose(out_s.detach().numpy(), out_t.detach().numpy(), rtol=1e-6, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(grad_s.numpy(), grad_t.numpy(), rtol=1e-6, atol=1e-6, err_msg=name)


def test_hardtanh_and_relu_keep_integers_like_torch():
    for fn in (lambda lib, a: F(lib).hardtanh(a), lambda lib, a: F(lib).hardtanh(a, -0.5, 0.5),
               lambda lib, a: F(lib).relu(a)):
        out_s, out_t = fn(symgrad, symgrad.tensor([3, -2, 0])), fn(torch, torch.tensor([3, -2, 0]))
        assert out_s.dtype is symgrad.int64 and out_t.dtype == torch.int64
        np.testing.assert_array_equal(out_s.numpy(), out_t.numpy())


ERRORS = {
    "leaky_relu_int": lambda lib: lambda: F(lib).leaky_relu(lib.tensor([1, 2])),
    "leaky_relu_bool": lambda lib: lambda: F(lib).leaky_relu(lib.tensor([True])),
    "elu_int": lambda lib: lambda: F(lib).elu(lib.tensor([1, 2])),
    "gelu_int": lambda lib: lambda: F(lib).gelu(lib.tensor([1, 2])),
    "gelu_bad_approximate": lambda lib: lambda: F(lib).gelu(lib.ones(2), approximate="erf"),
    "silu_int": lambda lib: lambda: F(lib).silu(lib.tensor([1, 2])),
    "softplus_int": lambda lib: lambda: F(lib).softplus(lib.tensor([1, 2])),
    "hardtanh_bounds_swapped": lambda lib: lambda: F(lib).hardtanh(lib.ones(2), 1.0, -1.0),
    "requires_grad_int": lambda lib: lambda: F(lib).hardtanh(lib.tensor([1, 2])).requires_grad_(),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors_match_torch(name):
    check_error_matches_torch(torch, ERRORS[name])


# ------------------------------------------------------------------ inplace=True

INPLACE = {  # name: the in-place call; recorded on a non-leaf, PyTorch names ...Backward1 where it saves the result
    "relu": lambda lib, x: F(lib).relu(x, inplace=True),
    "leaky_relu": lambda lib, x: F(lib).leaky_relu(x, inplace=True),
    "leaky_relu_slope": lambda lib, x: F(lib).leaky_relu(x, 0.2, True),
    "leaky_relu_zero_slope": lambda lib, x: F(lib).leaky_relu(x, negative_slope=0.0, inplace=True),
    "elu": lambda lib, x: F(lib).elu(x, inplace=True),
    "elu_alpha": lambda lib, x: F(lib).elu(x, 0.5, True),
    "elu_zero_alpha": lambda lib, x: F(lib).elu(x, alpha=0.0, inplace=True),
    "silu": lambda lib, x: F(lib).silu(x, inplace=True),
    "hardtanh": lambda lib, x: F(lib).hardtanh(x, inplace=True),
    "hardtanh_bounds": lambda lib, x: F(lib).hardtanh(x, -0.5, 1.5, True),
}
NEGATIVE_SLOPES = {  # allowed without autograd; PyTorch refuses to differentiate them in place
    "leaky_relu_negative_slope": lambda lib, x: F(lib).leaky_relu(x, -0.5, inplace=True),
    "elu_negative_alpha": lambda lib, x: F(lib).elu(x, alpha=-0.5, inplace=True),
}
INPLACE_SHAPES = {"2d": (3, 4), "0d": (), "empty": (0, 3)}


def _version(t) -> int:
    return t._version if hasattr(t, "_version") else t._version_counter.value


@pytest.mark.parametrize("shape", INPLACE_SHAPES.values(), ids=INPLACE_SHAPES)
@pytest.mark.parametrize("name", {**INPLACE, **NEGATIVE_SLOPES})
def test_inplace_without_autograd_overwrites_the_input_like_torch(name, shape):
    fn = {**INPLACE, **NEGATIVE_SLOPES}[name]
    values = np.random.default_rng(7).uniform(-2.0, 2.0, shape)
    results = []
    for lib in (torch, symgrad):
        for dtype in (lib.float64, lib.float32):
            x = lib.tensor(values, dtype=dtype)
            out = fn(lib, x)
            assert out is x
            results.append((x.numpy().copy(), text(x.dtype), _version(x), x.requires_grad))
    for actual, expected, rtol in zip(results[2:], results[:2], (1e-12, 1e-6)):  # float32: PyTorch's own expm1
        assert actual[1:] == expected[1:]
        np.testing.assert_allclose(actual[0], expected[0], rtol=rtol)


@pytest.mark.parametrize("name", {**INPLACE, **NEGATIVE_SLOPES})
def test_inplace_on_a_view_without_autograd_writes_through_to_the_base(name):
    fn = {**INPLACE, **NEGATIVE_SLOPES}[name]
    results = []
    for lib in (torch, symgrad):
        base = lib.tensor(np.linspace(-2.0, 2.0, 6).reshape(2, 3))
        fn(lib, base[:, 1:])
        results.append((base.numpy().copy(), _version(base)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    assert results[1][1] == results[0][1]


@pytest.mark.parametrize("name", {**INPLACE, **NEGATIVE_SLOPES})
def test_inplace_on_a_leaf_requiring_grad_raises_torchs_error_and_changes_nothing(name):
    fn = {**INPLACE, **NEGATIVE_SLOPES}[name]

    def attempt(lib):
        def action():
            leaf = lib.tensor([-1.5, 0.0, 2.0], dtype=lib.float64, requires_grad=True)
            try:
                fn(lib, leaf)
            finally:
                assert leaf.tolist() == [-1.5, 0.0, 2.0] and _version(leaf) == 0 and leaf.grad_fn is None
        return action
    check_error_matches_torch(torch, attempt)


@pytest.mark.parametrize("name", {**INPLACE, **NEGATIVE_SLOPES})
def test_inplace_on_a_leaf_under_no_grad_is_allowed_like_torch(name):
    fn = {**INPLACE, **NEGATIVE_SLOPES}[name]
    results = []
    for lib in (torch, symgrad):
        leaf = lib.tensor([-1.5, 0.0, 2.0], dtype=lib.float64, requires_grad=True)
        with lib.no_grad():
            out = fn(lib, leaf)
        assert out is leaf and leaf.is_leaf and leaf.requires_grad
        results.append((leaf.detach().numpy().copy(), _version(leaf)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    assert results[1][1] == results[0][1]


def _recorded(fn):
    """The in-place activation of a non-leaf (``a * 1.5``), then math on it: the input's gradient flows back."""
    return lambda lib, a: fn(lib, a * 1.5) * a


INPLACE_OPS = {f"{name}_{label}": (_recorded(fn), [Arg(shape, "wide")]) for name, fn in INPLACE.items()
               for label, shape in INPLACE_SHAPES.items()}


@pytest.mark.parametrize("name", INPLACE_OPS)
def test_recorded_inplace_matches_torch(name):
    fn, args = INPLACE_OPS[name]
    check_against_torch(torch, name, fn, args)


@pytest.mark.parametrize("name", [n for n in INPLACE_OPS if n.endswith("_2d")])
def test_recorded_inplace_gradient_matches_finite_differences(name):
    fn, args = INPLACE_OPS[name]
    check_finite_differences(name, fn, args)


@pytest.mark.parametrize("name", INPLACE)
def test_recorded_inplace_returns_the_input_with_torchs_node(name):
    results = []
    for lib in (torch, symgrad):
        a = lib.tensor([-1.5, 0.0, 0.5, 2.0], dtype=lib.float64, requires_grad=True)
        h = a * 2
        out = INPLACE[name](lib, h)
        assert out is h and not h.is_leaf
        results.append((h.grad_fn.name(), [f.name() for f, _ in h.grad_fn.next_functions], _version(h)))
    assert results[1] == results[0]


@pytest.mark.parametrize("name", [n for n in INPLACE if n != "silu"])  # silu: the next test
def test_modifying_the_result_again_fails_backward_as_in_torch(name):
    """relu, leaky_relu and elu save their in-place result (modifying it breaks backward); hardtanh its input."""
    outcomes = []
    for lib in (torch, symgrad):
        a = lib.tensor([-1.5, 0.0, 0.5, 2.0], dtype=lib.float64, requires_grad=True)
        out = INPLACE[name](lib, a * 2)
        out.mul_(3)
        try:
            out.sum().backward()
            outcomes.append(a.grad.tolist())
        except RuntimeError as error:
            outcomes.append(text(error).split(" Hint:")[0])
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("inplace", [False, True])
def test_modifying_silus_result_fails_backward_where_torch_succeeds(inplace):
    """A deliberate difference: symgrad's silu derivative reuses its result, PyTorch's recomputes from the input.
    Modifying the result refuses backward with PyTorch's version-counter error rather than a wrong gradient."""
    a = symgrad.tensor([-1.5, 0.0, 0.5, 2.0], dtype=symgrad.float64, requires_grad=True)
    out = F(symgrad).silu(a * 2, inplace=inplace)
    out.mul_(3)
    with pytest.raises(RuntimeError, match="which is output 0 of Silu, is at version 2; expected version 1"
                       if inplace else "which is output 0 of Silu, is at version 1; expected version 0"):
        out.sum().backward()
    assert a.grad is None


@pytest.mark.parametrize("name", NEGATIVE_SLOPES)
def test_recorded_inplace_with_a_negative_slope_raises_torchs_error(name):
    """PyTorch raises when backward reads the result; symgrad when the op is called, before anything changes."""
    fn = NEGATIVE_SLOPES[name]
    a = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError) as expected:
        fn(torch, a * 2).sum().backward()
    x = symgrad.tensor([-1.5, 2.0], dtype=symgrad.float64, requires_grad=True)
    h = x * 2
    with pytest.raises(RuntimeError) as actual:
        fn(symgrad, h)
    assert text(actual.value) == text(expected.value)
    assert h.tolist() == [-3.0, 4.0] and _version(h) == 0 and h.grad_fn.name() == "MulBackward0"
    h.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_inplace_on_integers_like_torch():
    """relu and hardtanh keep integers; the others refuse them with PyTorch's error, changing nothing."""
    for fn in (INPLACE["relu"], INPLACE["hardtanh_bounds"]):
        results = []
        for lib in (torch, symgrad):
            x = lib.tensor([3, -2, 0, 1])
            assert fn(lib, x) is x
            results.append((x.tolist(), text(x.dtype), _version(x)))
        assert results[1] == results[0]
    for name in ("leaky_relu", "elu", "silu"):
        def attempt(lib, fn=INPLACE[name]):
            def action():
                x = lib.tensor([3, -2])
                try:
                    fn(lib, x)
                finally:
                    assert x.tolist() == [3, -2] and _version(x) == 0
            return action
        check_error_matches_torch(torch, attempt)


def test_inplace_on_a_view_of_a_non_leaf_is_refused_clearly():
    """PyTorch rewrites the base's history (CopySlices); symgrad refuses instead of a wrong gradient."""
    for fn in INPLACE.values():
        x = symgrad.tensor([-1.5, 0.0, 2.0], dtype=symgrad.float64, requires_grad=True)
        h = x * 2
        with pytest.raises(NotImplementedError, match="in-place operations on a view"):
            fn(symgrad, h[1:])
        assert h.tolist() == [-3.0, 0.0, 4.0] and _version(h) == 0


def test_hyperparameters_do_not_leak_between_calls():
    """Each (slope, alpha, beta …) is its own compiled kernel; a training loop with fixed ones compiles once."""
    x = symgrad.tensor([-1.0, 2.0], dtype=symgrad.float64, requires_grad=True)
    before = symgrad.autograd.BACKWARD_CACHE.info().misses
    for slope in (0.1, 0.2, 0.1, 0.2):
        x.grad = None
        symgrad.nn.functional.leaky_relu(x, slope).sum().backward()
        assert x.grad.tolist() == [slope, 1.0]
    assert symgrad.autograd.BACKWARD_CACHE.info().misses - before <= 2


BAD_CALLS = {
    "gelu_bad_approximate": lambda lib, a: F(lib).gelu(a, approximate="erf"),
    "hardtanh_bounds_swapped": lambda lib, a: F(lib).hardtanh(a, 1.0, -1.0),
    "softmax_dim_out_of_range": lambda lib, a: F(lib).softmax(a, 2),
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_bad_input_changes_nothing(name):
    check_error_changes_nothing(torch, BAD_CALLS[name], np.linspace(-1.0, 1.0, 6).reshape(2, 3))
