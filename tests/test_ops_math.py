"""Elementwise math against the PyTorch oracle: values, gradients, grad_fn names, kinks, dtypes, errors.

Every op of issue 3's arithmetic/math list runs in float64 on the same inputs
in torch and symgrad (several shapes: 2-D, broadcasting, 0-d, empty); forward
values, gradients (rtol 1e-10) and ``grad_fn`` names must agree.  Gradients
are also checked against central differences (no torch needed), second
derivatives of the smooth ops through ``autograd.grad(create_graph=True)``,
and the kinks and special values against torch.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from _op_oracle import (
    ATOL,
    NZ,
    Arg,
    R,
    assert_close,
    check_against_torch,
    check_error_matches_torch,
    check_finite_differences,
    check_second_order,
    check_values_against_torch,
    text,
)

import symgrad

torch = pytest.importorskip("torch")

# ============================================================================ the cases

UNARY = {  # op: the domain its inputs come from
    "abs": "real", "sign": "real", "square": "real", "sqrt": "pos", "rsqrt": "pos", "expm1": "real",
    "log1p": "pos", "log2": "pos", "log10": "pos", "sin": "real", "cos": "real", "tan": "unit",
    "asin": "unit", "acos": "unit", "atan": "real", "sinh": "real", "cosh": "real", "erf": "real",
}
ALIASES = {"absolute": "real", "arcsin": "unit", "arccos": "unit", "arctan": "real"}

OPS: dict[str, tuple] = {}
for _op, _domain in UNARY.items():
    OPS[f"{_op}_2d"] = (lambda lib, a, op=_op: getattr(lib, op)(a), [Arg((2, 3), _domain)])
    OPS[f"{_op}_method_0d"] = (lambda lib, a, op=_op: getattr(a, op)(), [Arg((), _domain)])
    OPS[f"{_op}_empty"] = (lambda lib, a, op=_op: getattr(lib, op)(a), [Arg((0, 3), _domain)])
for _op, _domain in ALIASES.items():
    OPS[f"{_op}_alias"] = (lambda lib, a, op=_op: getattr(a, op)(), [Arg((4,), _domain)])

for _op in ("atan2", "maximum", "minimum"):
    OPS[f"{_op}_same_shape"] = (lambda lib, a, b, op=_op: getattr(lib, op)(a, b), [R(2, 3), R(2, 3)])
    OPS[f"{_op}_broadcast"] = (lambda lib, a, b, op=_op: getattr(lib, op)(a, b), [R(3, 1), R(4)])
    OPS[f"{_op}_0d_other"] = (lambda lib, a, b, op=_op: getattr(a, op)(b), [R(2, 3), R()])
    OPS[f"{_op}_constant_other"] = (lambda lib, a, b, op=_op: getattr(lib, op)(a, b), [R(3), R(3, grad=False)])
    OPS[f"{_op}_empty"] = (lambda lib, a, b, op=_op: getattr(lib, op)(a, b), [R(0, 3), R(3)])
OPS["arctan2_alias"] = (lambda lib, a, b: lib.arctan2(a, b), [R(3), R(3)])

OPS.update({
    # clamp: number bounds (ClampBackward1) and tensor bounds (ClampBackward0)
    "clamp_both": (lambda lib, a: lib.clamp(a, -0.5, 0.7), [R(3, 4)]),
    "clamp_min": (lambda lib, a: lib.clamp(a, min=0.2), [R(3, 4)]),
    "clamp_max": (lambda lib, a: a.clamp(max=-0.1), [R(3, 4)]),
    "clamp_int_bounds": (lambda lib, a: lib.clamp(a, -1, 1), [R(5)]),
    "clamp_min_above_max": (lambda lib, a: lib.clamp(a, 1.0, -1.0), [R(5)]),
    "clamp_0d": (lambda lib, a: a.clamp(0.0, 1.0), [R()]),
    "clamp_empty": (lambda lib, a: lib.clamp(a, 0.0, 1.0), [R(0, 2)]),
    "clip_alias": (lambda lib, a: lib.clip(a, -1.0, 0.5), [R(2, 3)]),
    "clip_method": (lambda lib, a: a.clip(min=0.0), [R(2, 3)]),
    "clamp_tensors": (lambda lib, a, lo, hi: lib.clamp(a, lo, hi), [R(3, 4), R(4), R(3, 1)]),
    "clamp_tensor_min": (lambda lib, a, lo: lib.clamp(a, min=lo), [R(3, 4), R(3, 4)]),
    "clamp_tensor_max": (lambda lib, a, hi: a.clamp(max=hi), [R(3, 4), R(1, 4)]),
    "clamp_tensor_bounds_cross": (lambda lib, a, lo, hi: lib.clamp(a, lo, hi), [R(6), R(6), R(6)]),
    "clamp_constant_bounds": (lambda lib, a, lo, hi: lib.clamp(a, lo, hi), [R(2, 3), R(3, grad=False),
                                                                            R(2, 1, grad=False)]),
    "clamp_tensor_bound_only_grad": (lambda lib, a, lo: lib.clamp(a, min=lo), [R(5, grad=False), R(5)]),
    "clamp_0d_tensor_bound": (lambda lib, a, lo: lib.clamp(a, lo), [R(2, 3), R()]),
    # where
    "where_tensors": (lambda lib, a, b: lib.where(a > 0, a, b), [R(3, 4), R(3, 4)]),
    "where_broadcast": (lambda lib, c, a, b: lib.where(c > 0, a, b), [R(3, 1, grad=False), R(4), R(3, 4)]),
    "where_scalar_other": (lambda lib, a: lib.where(a > 0, a, 0.0), [R(2, 3)]),
    "where_scalar_input": (lambda lib, a: lib.where(a > 0, 2.5, a), [R(2, 3)]),
    "where_method": (lambda lib, a, b: a.where(b < 0, b), [R(2, 3), R(3)]),
    "where_same_tensor": (lambda lib, a: lib.where(a > 0, a, a), [R(4)]),
    "where_0d": (lambda lib, a, b: lib.where(a > 0, a, b), [R(), R()]),
    "where_empty": (lambda lib, a, b: lib.where(a > 0, a, b), [R(0, 2), R(2)]),
    # lerp: a number weight (LerpBackward0) or a tensor one (LerpBackward1)
    "lerp_small_weight": (lambda lib, a, b: lib.lerp(a, b, 0.3), [R(2, 3), R(2, 3)]),
    "lerp_large_weight": (lambda lib, a, b: lib.lerp(a, b, 0.8), [R(2, 3), R(3)]),
    "lerp_negative_weight": (lambda lib, a, b: a.lerp(b, -0.7), [R(2, 3), R(2, 3)]),
    "lerp_tensor_weight": (lambda lib, a, b, w: lib.lerp(a, b, w), [R(2, 3), R(2, 3), R(2, 3)]),
    "lerp_tensor_weight_broadcast": (lambda lib, a, b, w: a.lerp(b, w), [R(3, 1), R(4), R(3, 4)]),
    "lerp_constant_end": (lambda lib, a, b: lib.lerp(a, b, 0.25), [R(4), R(4, grad=False)]),
    "lerp_0d": (lambda lib, a, b, w: lib.lerp(a, b, w), [R(), R(), R()]),
    # div with a rounding mode: zero gradients, DivBackward2
    "div_floor": (lambda lib, a, b: lib.div(a, b, rounding_mode="floor"), [R(2, 3), NZ(3)]),
    "div_trunc": (lambda lib, a, b: lib.div(a, b, rounding_mode="trunc"), [R(2, 3), NZ(2, 3)]),
    "div_floor_scalar": (lambda lib, a: a.div(0.3, rounding_mode="floor"), [R(4)]),
    "divide_trunc_method": (lambda lib, a, b: a.divide(b, rounding_mode="trunc"), [R(4), NZ(4)]),
    "div_true_alias": (lambda lib, a, b: lib.divide(a, b), [R(2, 3), NZ(3)]),
    # square is pow(x, 2)
    "square_broadcast_chain": (lambda lib, a, b: (a - b).square(), [R(3, 1), R(4)]),
    # masks inside smooth programs (second derivatives pass through the selected branch)
    "where_of_smooth": (lambda lib, a: lib.where(a > 0, a.square(), a.sin()), [R(2, 3)]),
    "clamp_of_smooth": (lambda lib, a: lib.clamp(a.sin() * 3, -1.0, 1.0) * a, [R(2, 3)]),
    "maximum_of_smooth": (lambda lib, a, b: lib.maximum(a.square(), b.exp()) * a, [R(2, 3), R(2, 3)]),
})

# the core arithmetic (tests/test_autograd.py covers it on 1-D to 3-D shapes) on 0-d and empty tensors
_BINARY_CORE = {"add": (lambda lib, a, b: a + b, "real"), "sub": (lambda lib, a, b: lib.sub(a, b, alpha=2), "real"),
                "mul": (lambda lib, a, b: a * b, "real"), "div": (lambda lib, a, b: a / b, "nonzero"),
                "pow_tensor": (lambda lib, a, b: b.abs() ** a, "nonzero")}
for _op, (_fn, _domain) in _BINARY_CORE.items():
    OPS[f"{_op}_0d"] = (_fn, [R(), Arg((), _domain)])
    OPS[f"{_op}_0d_other"] = (_fn, [R(2, 3), Arg((), _domain)])
    OPS[f"{_op}_0d_self"] = (_fn, [R(), Arg((2, 3), _domain)])
    OPS[f"{_op}_empty"] = (_fn, [R(0, 3), Arg((3,), _domain)])
_UNARY_CORE = {"neg": (lambda lib, a: -a, "real"), "reciprocal": (lambda lib, a: a.reciprocal(), "nonzero"),
               "exp": (lambda lib, a: lib.exp(a), "real"), "log": (lambda lib, a: a.log(), "pos"),
               "rsub": (lambda lib, a: 1.5 - a, "real"), "rdiv": (lambda lib, a: 2 / a, "nonzero"),
               "rpow": (lambda lib, a: 2.5 ** a, "real"), "pow_number": (lambda lib, a: a ** 2.5, "pos")}
for _op, (_fn, _domain) in _UNARY_CORE.items():
    OPS[f"{_op}_0d"] = (_fn, [Arg((), _domain)])
    OPS[f"{_op}_empty"] = (_fn, [Arg((2, 0), _domain)])
OPS.update({
    "lerp_empty": (lambda lib, a, b: lib.lerp(a, b, 0.3), [R(0, 3), R(3)]),
    "lerp_tensor_weight_empty": (lambda lib, a, b, w: a.lerp(b, w), [R(0, 3), R(3), R(1, 3)]),
    "clamp_tensors_empty": (lambda lib, a, lo, hi: lib.clamp(a, lo, hi), [R(0, 3), R(3), R(1, 3)]),
})

NOT_FOR_FINITE_DIFFERENCES = {name for name in OPS if name.endswith("empty")}

# smooth ops: second derivatives through create_graph, one shape each
SECOND_ORDER = [f"{op}_2d" for op in UNARY if op not in ("abs", "sign")] + [
    "atan2_same_shape", "lerp_tensor_weight", "square_broadcast_chain", "where_of_smooth", "clamp_of_smooth",
    "maximum_of_smooth"] + [f"{op}_0d_other" for op in ("mul", "div", "pow_tensor")] + [
    f"{op}_0d" for op in ("reciprocal", "exp", "log", "rdiv", "rpow", "pow_number")]


@pytest.mark.parametrize("name", OPS)
def test_op_matches_torch(name):
    fn, args = OPS[name]
    check_against_torch(torch, name, fn, args)


@pytest.mark.parametrize("name", [n for n in OPS if n not in NOT_FOR_FINITE_DIFFERENCES])
def test_op_gradient_matches_finite_differences(name):
    fn, args = OPS[name]
    check_finite_differences(name, fn, args)


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivatives_match_torch(name):
    fn, args = OPS[name]
    check_second_order(torch, name, fn, args)


# ============================================================================ kinks and special values

INF, NAN = math.inf, math.nan

KINKS = {
    "abs_at_0": (lambda lib, a: a.abs(), [-1.0, 0.0, -0.0, 2.0]),
    "abs_at_nan": (lambda lib, a: a.abs(), [NAN, 1.0]),
    "sign_at_0_and_nan": (lambda lib, a: a.sign(), [-1.0, 0.0, NAN, 2.0, -INF]),
    "sqrt_at_0": (lambda lib, a: a.sqrt(), [0.0, -1.0, 4.0]),
    "rsqrt_at_0": (lambda lib, a: a.rsqrt(), [0.0, -1.0, 4.0]),
    "log1p_at_-1": (lambda lib, a: a.log1p(), [-1.0, -2.0, 0.0]),
    "log2_at_0": (lambda lib, a: a.log2(), [0.0, -1.0, 8.0]),
    "log10_at_0": (lambda lib, a: a.log10(), [0.0, -1.0, 100.0]),
    "asin_at_1": (lambda lib, a: a.asin(), [1.0, -1.0, 2.0]),
    "acos_at_1": (lambda lib, a: a.acos(), [1.0, -1.0, 2.0]),
    "tan_at_pi_2": (lambda lib, a: a.tan(), [math.pi / 2]),
    "atan2_at_origin": (lambda lib, y, x: lib.atan2(y, x), [0.0, 0.0, 1.0, -0.0], [0.0, -0.0, 0.0, 0.0]),
    "atan2_underflow": (lambda lib, y, x: lib.atan2(y, x), [1e-200, 1e200], [1e-200, 0.0]),
    "maximum_ties": (lambda lib, a, b: lib.maximum(a, b), [1.0, 2.0, 3.0], [1.0, 1.0, 4.0]),
    "minimum_ties": (lambda lib, a, b: lib.minimum(a, b), [1.0, 2.0, 3.0], [1.0, 1.0, 4.0]),
    "maximum_infinities": (lambda lib, a, b: lib.maximum(a, b), [INF, -INF, 1.0], [1.0, 0.0, INF]),
    "maximum_infinite_ties": (lambda lib, a, b: lib.maximum(a, b), [INF, -INF], [INF, -INF]),
    "minimum_infinite_ties": (lambda lib, a, b: lib.minimum(a, b), [INF, -INF], [INF, -INF]),
    "maximum_nan": (lambda lib, a, b: lib.maximum(a, b), [NAN, 1.0, NAN], [0.0, NAN, NAN]),
    "minimum_nan": (lambda lib, a, b: lib.minimum(a, b), [NAN, 1.0], [0.0, NAN]),
    "maximum_same_tensor": (lambda lib, a: lib.maximum(a, a) * a, [1.0, -2.0]),
    "clamp_at_bounds": (lambda lib, a: a.clamp(0.0, 1.0), [0.0, 1.0, 0.5, -1.0, 2.0]),
    "clamp_min_at_bound": (lambda lib, a: a.clamp(min=0.0), [0.0, -1.0, 1.0]),
    "clamp_max_at_bound": (lambda lib, a: a.clamp(max=0.0), [0.0, -1.0, 1.0]),
    "clamp_min_above_max": (lambda lib, a: a.clamp(1.0, 0.0), [0.0, 1.0, 0.5, -1.0, 2.0]),
    "clamp_nan": (lambda lib, a: a.clamp(0.0, 1.0), [NAN, 0.5]),
    "clamp_infinite_input": (lambda lib, a: a.clamp(min=0.0), [INF, -INF]),
    "clamp_tensor_bounds": (lambda lib, a, lo, hi: lib.clamp(a, lo, hi), [0.0, 1.0, 0.5, -1.0, 2.0, 0.5],
                            [0.0, 0.0, 0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]),
    "clamp_tensor_min_at_bound": (lambda lib, a, lo: lib.clamp(a, min=lo), [0.0, -1.0, 2.0], [0.0, 0.0, 0.0]),
    "clamp_tensor_max_at_bound": (lambda lib, a, hi: lib.clamp(a, max=hi), [0.0, -1.0, 2.0], [0.0, 0.0, 0.0]),
    "clamp_tensor_equal_bounds": (lambda lib, a, lo, hi: lib.clamp(a, lo, hi), [0.0, 1.0, 2.0],
                                  [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),
    "where_at_0": (lambda lib, a, b: lib.where(a > 0, a, b), [0.0, -0.0, 1.0], [2.0, 3.0, 4.0]),
    "div_floor_exact": (lambda lib, a, b: lib.div(a, b, rounding_mode="floor"), [4.0, -4.0, 1.0, -0.0, 7.5],
                        [2.0, 2.0, 0.0, 3.0, -2.0]),
    "div_trunc_exact": (lambda lib, a, b: lib.div(a, b, rounding_mode="trunc"), [4.0, -4.0, 1.0, -7.5, 0.0],
                        [2.0, 3.0, 0.0, 2.0, 0.0]),
    "lerp_weight_0_1_half": (lambda lib, a, b, w: lib.lerp(a, b, w), [1.0, 2.0, 3.0, 1e300],
                             [3.0, -1.0, 7.0, -1e300], [0.0, 1.0, 0.5, 0.5]),
    "square_at_0": (lambda lib, a: a.square(), [0.0, -0.0, 3.0]),
    "erf_special": (lambda lib, a: a.erf(), [0.0, -0.0, 1e-300, 0.5, -0.5, 4.0, 6.0, 27.0, INF, -INF, NAN]),
    # masks select the gradient (PyTorch's where(mask, grad, 0)): an infinite gradient where the mask is 0
    # (sqrt'(0) = inf) gives 0, not inf * 0 = nan
    "where_masks_infinite_gradient": (lambda lib, a: lib.where(a > 0, a, 0.0).sqrt(), [1.0, -1.0, 0.0]),
    "clamp_masks_infinite_gradient": (lambda lib, a: a.clamp(min=0.0).sqrt(), [1.0, -1.0, 0.0]),
    "clamp_tensor_masks_infinite_gradient": (lambda lib, a, lo: lib.clamp(a, min=lo).sqrt(), [1.0, -1.0, 0.0],
                                             [0.0, 0.0, 0.0]),
    "maximum_masks_infinite_gradient": (lambda lib, a, b: lib.maximum(a, b).sqrt(), [1.0, -1.0, 0.0],
                                        [0.0, 0.0, 0.0]),
    "minimum_masks_infinite_gradient": (lambda lib, a, b: (-lib.minimum(a, b)).sqrt(), [1.0, -1.0, 0.0],
                                        [0.0, 0.0, 0.0]),
    "lerp_multiplies_infinite_gradient": (lambda lib, a, b: lib.lerp(a, b, 0.0).sqrt(), [0.0, 1.0], [2.0, 3.0]),
}


@pytest.mark.parametrize("name", KINKS)
def test_kinks_follow_torch(name):
    fn, *values = KINKS[name]
    check_values_against_torch(torch, fn, *values)


EXTREME = [-1e4, -1000.0, -30.0, -1e-20, 0.0, 1e-20, 30.0, 1000.0, 1e4]

EXTREME_OPS = {
    "expm1": lambda lib, z: z.expm1(),
    "log1p_of_exp": lambda lib, z: (z.clamp(max=700.0).exp()).log1p(),
    "log1p_tiny": lambda lib, z: (z * 1e-300).log1p(),
    "erf": lambda lib, z: z.erf(),
    "sinh": lambda lib, z: (z * 1e-3).sinh(),
    "atan": lambda lib, z: z.atan(),
    "atan2": lambda lib, z: lib.atan2(z, 1 - z * 0.5),
    "clamp": lambda lib, z: z.clamp(-1e3, 1e3),
}


@pytest.mark.parametrize("name", EXTREME_OPS)
def test_extreme_values_match_torch(name):
    """Finite wherever torch is finite, equal within float64 rounding, near 0 and at ±1e4."""
    check_values_against_torch(torch, EXTREME_OPS[name], EXTREME)


def test_stable_forms_do_not_overflow():
    """expm1/log1p/erf keep full relative precision near 0, where exp(x)-1 and log(1+x) lose it all."""
    z = symgrad.tensor([1e-20, -1e-18, 3e-10], dtype=symgrad.float64, requires_grad=True)
    for op, exact in (("expm1", np.expm1), ("log1p", np.log1p), ("erf", lambda v: [math.erf(t) for t in v])):
        out = getattr(z, op)()
        np.testing.assert_allclose(out.detach().numpy(), exact(z.detach().numpy()), rtol=1e-15, atol=0)


# ============================================================================ dtypes

DTYPE_CASES = {
    "abs_int": lambda lib: lib.tensor([1, -2, 3]).abs(),
    "sign_int": lambda lib: lib.tensor([1, -2, 0]).sign(),
    "sign_bool": lambda lib: lib.tensor([True, False]).sign(),
    "square_int": lambda lib: lib.tensor([1, -2, 3]).square(),
    "square_bool": lambda lib: lib.tensor([True, False]).square(),
    "sqrt_int": lambda lib: lib.tensor([1, 4, 9]).sqrt(),
    "erf_bool": lambda lib: lib.tensor([True, False]).erf(),
    "log2_int": lambda lib: lib.tensor([1, 2, 8]).log2(),
    "atan2_int": lambda lib: lib.atan2(lib.tensor([1, -2]), lib.tensor([1, 1])),
    "maximum_int_float": lambda lib: lib.maximum(lib.tensor([1, -2, 3]), lib.tensor([1.5, -2.0, 0.0])),
    "maximum_bool": lambda lib: lib.maximum(lib.tensor([True, False]), lib.tensor([False, False])),
    "minimum_float32_float64_0d": lambda lib: lib.minimum(lib.tensor([1.5, -2.0]), lib.tensor(0.0, dtype=lib.float64)),
    "clamp_int": lambda lib: lib.tensor([1, -2, 3]).clamp(0, 2),
    "clamp_int_float_bound": lambda lib: lib.tensor([1, -2, 3]).clamp(0.5, 2),
    "clamp_bool": lambda lib: lib.tensor([True, False]).clamp(0, 1),
    "clamp_int_tensor_float_bound": lambda lib: lib.clamp(lib.tensor([1, -2, 3]), min=lib.tensor(0.5)),
    "clamp_float32_tensor_float64_bound": lambda lib: lib.clamp(lib.tensor([1.5, -2.0]),
                                                                 min=lib.tensor([0.0, 0.0], dtype=lib.float64)),
    "where_int_float_scalar": lambda lib: lib.where(lib.tensor([True, False]), lib.tensor([1, 2]), 2.5),
    "where_numbers": lambda lib: lib.where(lib.tensor([True, False]), 1.0, 0.0),
    "where_int_tensors": lambda lib: lib.where(lib.tensor([True, False]), lib.tensor([1, 2]), lib.tensor([3, 4])),
    "div_floor_int": lambda lib: lib.div(lib.tensor([7, -7, 8]), 2, rounding_mode="floor"),
    "div_trunc_int": lambda lib: lib.div(lib.tensor([7, -7, 8]), lib.tensor([2, 2, -3]), rounding_mode="trunc"),
    "div_floor_int_by_float": lambda lib: lib.div(lib.tensor([7, -7]), 2.5, rounding_mode="floor"),
    "div_floor_float32": lambda lib: lib.div(lib.tensor([7.5, -7.5]), 2, rounding_mode="floor"),
    "lerp_float32": lambda lib: lib.lerp(lib.tensor([1.0, 2.0]), lib.tensor([3.0, -1.0]), 0.3),
    "sqrt_float32": lambda lib: lib.tensor([2.0, 3.0]).sqrt(),
    "erf_float32": lambda lib: lib.tensor([0.3, -2.0, 5.0]).erf(),
}


@pytest.mark.parametrize("name", DTYPE_CASES)
def test_dtype_and_values_match_torch(name):
    out_t, out_s = DTYPE_CASES[name](torch), DTYPE_CASES[name](symgrad)
    assert text(out_s.dtype) == text(out_t.dtype)
    float32 = out_t.dtype == torch.float32
    assert_close(out_s.numpy(), out_t.numpy(), rtol=1e-6 if float32 else 1e-12, atol=1e-7 if float32 else ATOL)
    assert out_s.grad_fn is None and not out_s.requires_grad


def test_float32_gradients_match_torch():
    """Gradients keep float32 (weakly typed constants, erf's helper casts back) and agree with torch's."""
    values = [[0.3, -1.2, 2.5], [1.5, 0.2, -0.7]]
    ops = [lambda lib, a, b: (a.erf() * b.atan2(a)).sum(), lambda lib, a, b: lib.lerp(a, b, 0.7).sqrt().sum(),
           lambda lib, a, b: lib.clamp(a, min=b).rsqrt().sum(), lambda lib, a, b: lib.maximum(a, b).expm1().sum()]
    for fn in ops:
        grads = {}
        for lib in (torch, symgrad):
            a, b = (lib.tensor(v, requires_grad=True) for v in values)
            with np.errstate(all="ignore"):
                fn(lib, a, b).backward()
            grads[lib.__name__] = [a.grad, b.grad]
        for gs, gt in zip(grads["symgrad"], grads["torch"]):
            assert gs.dtype is symgrad.float32
            np.testing.assert_allclose(gs.numpy(), gt.numpy(), rtol=1e-5, atol=1e-6, equal_nan=True)


# ============================================================================ comparisons

COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge", "not_equal", "less", "less_equal", "greater", "greater_equal"]
OPERATORS = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
             "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}

X = [[1.0, 2.0, NAN], [-0.0, 0.0, 3.0]]
Y = [2.0, 2.0, 3.0]


def _comparison_results(lib, compare):
    x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
    y = lib.tensor(Y, dtype=lib.float64)
    i = lib.tensor([1, 2, 3])
    return [compare(lib, x, y), compare(lib, x, 2), compare(lib, x, 0.0), compare(lib, i, x), compare(lib, i, 2.5),
            compare(lib, lib.tensor(NAN, dtype=lib.float64), lib.tensor(2.0)),
            compare(lib, lib.ones(0, 3, dtype=lib.float64), y),
            compare(lib, lib.tensor([True, False]), True)]


def _check_comparisons(compare):
    for out_s, out_t in zip(_comparison_results(symgrad, compare), _comparison_results(torch, compare)):
        assert out_s.dtype is symgrad.bool and out_t.dtype == torch.bool
        assert out_s.grad_fn is None and not out_s.requires_grad
        assert tuple(out_s.shape) == tuple(out_t.shape)
        np.testing.assert_array_equal(out_s.numpy(), out_t.numpy())


@pytest.mark.parametrize("name", COMPARISONS)
def test_comparison_functions_match_torch(name):
    _check_comparisons(lambda lib, a, b: getattr(lib, name)(a, b))
    _check_comparisons(lambda lib, a, b: getattr(a, name)(b))


@pytest.mark.parametrize("symbol", OPERATORS)
def test_comparison_operators_match_torch(symbol):
    operator = OPERATORS[symbol]
    _check_comparisons(lambda lib, a, b: operator(a, b))
    # a Python number on the left uses the reflected operator
    x_s, x_t = symgrad.tensor(X[1]), torch.tensor(X[1])
    np.testing.assert_array_equal(operator(0.0, x_s).numpy(), operator(0.0, x_t).numpy())


def test_tensors_stay_hashable_and_compare_with_none_like_torch():
    for lib in (torch, symgrad):
        x = lib.tensor([1.0, 2.0])
        assert {x: 1}[x] == 1 and x in {x} and x in [x]
        assert (x == None) is False and (x != None) is True  # noqa: E711 - the behaviour under test
        assert (x == "text") is False
    for symbol in ("<", ">="):
        type_s, message_s = _raised(lambda s=symbol: OPERATORS[s](symgrad.ones(2), None))
        type_t, message_t = _raised(lambda s=symbol: OPERATORS[s](torch.ones(2), None))
        assert (type_s, message_s) == (type_t, message_t) and type_s == "TypeError"


def _raised(action):
    try:
        action()
    except Exception as error:  # noqa: BLE001
        return type(error).__name__, str(error)
    raise AssertionError("no exception")


def test_boolean_masks_select_like_torch():
    """Comparisons feed where (and their results combine with where's broadcasting)."""
    def fn(lib):
        x = lib.tensor([[-1.0, 2.0], [3.0, -4.0]], dtype=lib.float64, requires_grad=True)
        out = lib.where(x >= 0, x.square(), -x) + lib.where(x < -2, 1.0, x)
        out.sum().backward()
        return out.detach().numpy(), x.grad.numpy()
    for a, b in zip(fn(symgrad), fn(torch)):
        assert_close(a, b)


# ============================================================================ generated code

def test_erf_helper_keeps_generated_code_numpy_only():
    x = symgrad.tensor([0.3, -1.0], dtype=symgrad.float64, requires_grad=True)
    y = symgrad.nn.functional.gelu(x)
    source = symgrad.backward_source(y.atan2(x).sum())  # gelu's derivative reads erf
    assert "def erf(x):" in source and source.startswith("import numpy as np\n")
    assert "symgrad" not in source.replace("symgrad.symbolic", "")  # nothing but NumPy
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - the code under test
    values = {"x": x.detach().numpy(), "y": y.detach().numpy()}
    (grad,) = namespace["backward"](*(values[p] for p in inspect.signature(namespace["backward"]).parameters))
    x_t = torch.tensor([0.3, -1.0], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.gelu(x_t).atan2(x_t).sum().backward()
    assert_close(grad, x_t.grad.numpy())


def test_numpy_erf_is_accurate_to_a_few_ulps():
    from symgrad.symbolic.numpy_helpers import erf
    xs = np.concatenate([np.linspace(-7.0, 7.0, 20001), np.geomspace(1e-300, 1.0, 600), [0.5, 4.0]])
    expected = np.array([math.erf(v) for v in xs])
    ulps = np.abs(erf(xs) - expected) / np.spacing(np.abs(expected))
    assert ulps.max() <= 4
    assert erf(np.float32(0.5)).dtype == np.float32


# ============================================================================ bad input

ERRORS = {
    "abs_bool": lambda lib: lambda: lib.tensor([True]).abs(),
    "clamp_no_bounds": lambda lib: lambda: lib.clamp(lib.ones(2)),
    "clamp_mixed_bounds": lambda lib: lambda: lib.clamp(lib.ones(2), min=lib.zeros(2), max=1.0),
    "clamp_bad_broadcast": lambda lib: lambda: lib.clamp(lib.ones(3), min=lib.zeros(2)),
    "maximum_number": lambda lib: lambda: lib.maximum(lib.ones(2), 2),
    "atan2_number": lambda lib: lambda: lib.atan2(lib.ones(2), 2.0),
    "minimum_bad_broadcast": lambda lib: lambda: lib.minimum(lib.ones(3), lib.ones(2)),
    "where_float_condition": lambda lib: lambda: lib.where(lib.ones(2), lib.ones(2), lib.zeros(2)),
    "where_int_condition": lambda lib: lambda: lib.where(lib.tensor([1, 0]), lib.ones(2), lib.zeros(2)),
    "where_bad_broadcast": lambda lib: lambda: lib.where(lib.ones(3) > 0, lib.ones(3), lib.zeros(2)),
    "lerp_int": lambda lib: lambda: lib.lerp(lib.tensor([1, 2]), lib.tensor([1, 2]), 0.5),
    "lerp_int_tensor_weight": lambda lib: lambda: lib.lerp(lib.tensor([1, 2]), lib.tensor([1, 2]), lib.tensor([1, 2])),
    "lerp_end_dtype": lambda lib: lambda: lib.lerp(lib.ones(2), lib.ones(2, dtype=lib.float64), 0.5),
    "lerp_weight_dtype": lambda lib: lambda: lib.lerp(lib.ones(2), lib.ones(2), lib.ones(2, dtype=lib.float64)),
    "lerp_end_0d_dtype": lambda lib: lambda: lib.lerp(lib.ones(2, dtype=lib.float64), lib.tensor(1.0), 0.5),
    "div_bad_mode": lambda lib: lambda: lib.div(lib.ones(2), 2, rounding_mode="round"),
    "div_floor_bool": lambda lib: lambda: lib.div(lib.tensor([True]), lib.tensor([True]), rounding_mode="floor"),
    "div_trunc_bool": lambda lib: lambda: lib.div(lib.tensor([True]), lib.tensor([True]), rounding_mode="trunc"),
    "div_floor_int_by_zero": lambda lib: lambda: lib.div(lib.tensor([1, 2]), 0, rounding_mode="floor"),
    "div_trunc_int_by_zero_tensor": lambda lib: lambda: lib.div(lib.tensor([1, 2]), lib.tensor([1, 0]),
                                                                rounding_mode="trunc"),
    "requires_grad_on_int_result": lambda lib: lambda: lib.tensor([1, -2]).abs().requires_grad_(),
    "comparison_bad_broadcast": lambda lib: lambda: lib.ones(3) < lib.ones(2),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors_match_torch(name):
    check_error_matches_torch(torch, ERRORS[name])


def test_errors_leave_no_trace():
    """A refused call changes nothing: no gradient, no version bump."""
    x = symgrad.ones(3, requires_grad=True)
    version = x._version_counter.value
    with pytest.raises(RuntimeError):
        symgrad.clamp(x)
    with pytest.raises(TypeError):
        symgrad.maximum(x, 2.0)
    assert x.grad is None and x._version_counter.value == version
