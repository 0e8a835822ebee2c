"""Elementwise ops: one line each, a scalar SymPy formula and PyTorch's grad_fn name.

Derivatives are not written here: :mod:`symgrad.derive` obtains them with
``sympy.diff`` from these formulas.  Adding an op is one more line.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p, log2, log10

from .. import dtypes
from ..symbolic.functions import (
    Abs,
    Select,
    atan2,
    clamp,
    erf,
    floor_divide,
    maximum,
    minimum,
    power,
    relu,
    sigmoid,
    sign,
    trunc_divide,
)
from ..symbolic.numpy_helpers import erf as numpy_erf
from .registry import Api, ElementwiseOp, broadcast_operands, is_scalar, promote

__all__ = ["TO_COPY", "COPY", "ADD", "SUB", "RSUB", "MUL", "DIV", "NEG", "RECIPROCAL", "POW", "POW_TENSOR", "RPOW",
           "EXP", "LOG", "SIGMOID", "TANH", "RELU", "ABS", "SIGN", "SQRT", "RSQRT", "EXPM1", "LOG1P", "LOG2",
           "LOG10", "SIN", "COS", "TAN", "ASIN", "ACOS", "ATAN", "ATAN2", "SINH", "COSH", "ERF", "MAXIMUM",
           "MINIMUM", "CLAMP", "CLAMP_TENSOR", "WHERE", "LERP", "LERP_TENSOR", "EQ", "NE", "LT", "LE", "GT", "GE",
           "exact_number", "unary_api", "not_implemented_for", "type_name", "ZERO", "FILL", "FILL_TENSOR"]

def _no_bool(message: str):
    """A check rejecting bool operands, as PyTorch's ``-`` does."""
    def check(operands):
        for x in operands:
            if (x.dtype if hasattr(x, "dtype") else type(x)) in (dtypes.bool, bool):
                raise RuntimeError(message)
    return check


_BOOL_SUBTRACTION = ("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to "
                     "invert a mask, use the `~` or `logical_not()` operator instead.")
_BOOL_NEGATION = ("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a "
                  "mask, use the `~` or `logical_not()` operator instead.")

def unary_api(name: str, *aliases: str, nn: bool = False, doc: str = "") -> Api:
    """``symgrad.<name>(input)`` and ``Tensor.<name>()`` (and aliases; ``nn``: also in nn.functional).

    ``doc``: what the op computes, for its docstring (PyTorch's kinks, say).
    """
    def signature(input):
        return (input,), ()
    signature.__name__ = name
    signature.__doc__ = (f"{doc or f'Elementwise ``{name}``'}; differentiable.\n\n"
                         f"    >>> import symgrad\n"
                         f"    >>> symgrad.{name}(symgrad.ones(2, requires_grad=True)).grad_fn\n"
                         f"    <...Backward0 object at 0x...>\n")
    names = (name, *aliases)
    return Api(signature, functions=names, methods=names, nn=(name,) if nn else ())


def _binary_api(name: str, symbol: str, *, alpha: bool = False) -> Api:
    """``symgrad.<name>(input, other)`` and ``Tensor.<name>(other)``, broadcasting, Python numbers allowed."""
    if alpha:
        def signature(input, other, *, alpha=1):
            return (input, other), (() if alpha == 1 else (alpha,))
        formula = f"input {symbol} alpha * other"
    else:
        def signature(input, other):
            return (input, other), ()
        formula = f"input {symbol} other"
    signature.__name__ = name
    signature.__doc__ = (f"``{formula}`` with broadcasting and PyTorch's type promotion.\n\n"
                         f"    >>> import symgrad\n"
                         f"    >>> symgrad.{name}(symgrad.ones(2, requires_grad=True), 2).grad_fn\n"
                         f"    <...Backward0 object at 0x...>\n")
    return Api(signature, functions=(name,), methods=(name,))


# Binary arithmetic.  `alpha` is an attribute (add(a, b, alpha=2) scales b);
# the NumPy ufunc serves the common attribute-free case.
ADD = ElementwiseOp("add", lambda a, b, alpha=1: a + alpha * b, "AddBackward0", arity=2, numpy=np.add,
                    api=_binary_api("add", "+", alpha=True))
SUB = ElementwiseOp("sub", lambda a, b, alpha=1: a - alpha * b, "SubBackward0", arity=2, numpy=np.subtract,
                    check=_no_bool(_BOOL_SUBTRACTION), api=_binary_api("sub", "-", alpha=True))
# `1 - w`: the scalar is a saved value but not a graph edge, as in PyTorch
RSUB = ElementwiseOp("rsub", lambda a, b, alpha=1: b - alpha * a, "RsubBackward1", arity=2,
                     value_only=(1,), check=_no_bool(_BOOL_SUBTRACTION))
MUL = ElementwiseOp("mul", lambda a, b: a * b, "MulBackward0", arity=2, numpy=np.multiply,
                    api=_binary_api("mul", "*"))


class _DivOp(ElementwiseOp):
    """True division; with ``rounding_mode`` (an attribute) the rounded quotient, whose gradient is 0."""

    def infer(self, operands, attrs):
        if not attrs:
            return super().infer(operands, attrs)
        dtype = promote(operands)
        if dtype is dtypes.bool:
            raise NotImplementedError(f'"div_{attrs[0]}_cpu" not implemented for \'Bool\'')
        return broadcast_operands(operands), dtype  # integers stay integers

    def forward(self, values, attrs, dtype, shape):
        if attrs and not dtype.is_floating_point and np.any(np.asarray(values[1]) == 0):
            raise RuntimeError("ZeroDivisionError")
        return super().forward(values, attrs, dtype, shape)


_ROUNDED = {"floor": floor_divide, "trunc": trunc_divide}


def _div(input, other, *, rounding_mode=None):
    """``input / other`` with broadcasting; ``rounding_mode`` ``'trunc'`` or ``'floor'`` rounds the quotient.

    True division gives ``DivBackward0`` and a float result; a rounding mode
    gives ``DivBackward2``, keeps integer dtypes, and a zero gradient (as in
    PyTorch, the derivative of the rounded quotient is 0).

    >>> import symgrad
    >>> x = symgrad.tensor([-7.0, 7.5], requires_grad=True)
    >>> symgrad.div(x, 2), symgrad.div(x, 2, rounding_mode="floor")
    (tensor([-3.5000,  3.7500], grad_fn=<DivBackward0>), tensor([-4.,  3.], grad_fn=<DivBackward2>))
    >>> symgrad.tensor([-7, 7]).div(2, rounding_mode="trunc")
    tensor([-3,  3])
    """
    if rounding_mode is None:
        return (input, other), ()
    if rounding_mode not in _ROUNDED:
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"'{rounding_mode}'")
    return (input, other), (rounding_mode,)


DIV = _DivOp("div", lambda a, b, mode=None: a / b if mode is None else _ROUNDED[mode](a, b),
             lambda mode=None: "DivBackward0" if mode is None else "DivBackward2", arity=2,
             numpy=np.true_divide, float_result=True,
             api=Api(_div, functions=("div", "divide"), methods=("div", "divide")))
NEG = ElementwiseOp("neg", lambda a: -a, "NegBackward0", numpy=np.negative, check=_no_bool(_BOOL_NEGATION),
                    api=unary_api("neg", "negative"))
RECIPROCAL = ElementwiseOp("reciprocal", lambda a: 1 / a, "ReciprocalBackward0", float_result=True,
                           api=unary_api("reciprocal"))


def exact_number(value) -> sp.Expr:
    """A Python number as SymPy keeps it readable: 2.0 -> 2, 0.5 -> 1/2, else the float.

    >>> exact_number(2.0), exact_number(-0.5), exact_number(0.1)
    (2, -1/2, 0.100000000000000)
    """
    if float(value).is_integer():
        return sp.Integer(int(value))
    if float(value * 2).is_integer():
        return sp.Rational(int(value * 2), 2)
    return sp.Float(value)


class _ConversionOp(ElementwiseOp):
    """A dtype conversion: the identity formula, the result dtype from the attribute."""

    def infer(self, operands, attrs):
        return operands[0].shape, dtypes.as_dtype(attrs[0])


# `Tensor.to(dtype)`, `.double()`, `.float()`: differentiable, as PyTorch's ToCopyBackward0
TO_COPY = _ConversionOp("to_copy", lambda a, dtype_name: a, "ToCopyBackward0")

# `Tensor.copy_(src)` when a gradient is recorded: the result is `src` (broadcast); `self`'s old value gets none
COPY = ElementwiseOp("copy", lambda a, b: b, "torch::autograd::CopyBackwards", arity=2)  # PyTorch's own name

# `Tensor.zero_()`, `fill_(number)`, `fill_(0-d tensor)` when recorded: one node each, as PyTorch
ZERO = ElementwiseOp("zero", lambda a: sp.Integer(0), "ZeroBackward0")
FILL = ElementwiseOp("fill", lambda a, value: sp.Float(value), "FillBackward2")
FILL_TENSOR = ElementwiseOp("fill_tensor", lambda a, b: b, "FillBackward3", arity=2)


def _check_int_power(operands, exponent):
    if not operands[0].dtype.is_floating_point and isinstance(exponent, int) and exponent < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")


class _PowOp(ElementwiseOp):
    def infer(self, operands, attrs):
        _check_int_power(operands, attrs[0])
        return super().infer(operands, attrs)


# Powers: a scalar exponent is an attribute (it shapes the formula: x**2 -> 2*x).
# `pow` dispatches between the three records (symgrad/functional.py).
def _square(input):
    """``input ** 2`` (``PowBackward0``, as PyTorch's ``square`` is ``pow(input, 2)``); integers stay integers.

    >>> import symgrad
    >>> symgrad.square(symgrad.tensor([-3.0, 2.0], requires_grad=True))
    tensor([9., 4.], grad_fn=<PowBackward0>)
    """
    return (input,), (2,)


POW = _PowOp("pow", lambda a, exponent: a ** exact_number(exponent), "PowBackward0",
             scalar_attrs=True, saves=lambda needs_grad: {0},  # PyTorch saves self even for x**0
             api=Api(_square, functions=("square",), methods=("square",)))
POW_TENSOR = ElementwiseOp("pow_tensor", power, "PowBackward1", arity=2)
RPOW = ElementwiseOp("rpow", lambda a, base: power(base, a), "PowBackward2", arity=2, value_only=(1,),
                     contiguous=True)

# Unary math
EXP = ElementwiseOp("exp", sp.exp, "ExpBackward0", float_result=True, numpy=np.exp, api=unary_api("exp"))
LOG = ElementwiseOp("log", sp.log, "LogBackward0", float_result=True, numpy=np.log, api=unary_api("log"))
SIGMOID = ElementwiseOp("sigmoid", sigmoid, "SigmoidBackward0", float_result=True,
                        api=unary_api("sigmoid", nn=True))
TANH = ElementwiseOp("tanh", sp.tanh, "TanhBackward0", float_result=True, numpy=np.tanh,
                     api=unary_api("tanh", nn=True))
RELU = ElementwiseOp("relu", relu, "ReluBackward0", api=unary_api("relu", nn=True))


# ----------------------------------------------------------------- math (issue 3)
# PyTorch's kinks come with the SymPy functions: abs'(0) = sign(0) = 0, sign' = 0,
# sqrt'(0) = 1/(2*0) = inf, atan2' = 0 at the origin, maximum/minimum ties split 1/2 : 1/2.

_TYPE_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}


def type_name(dtype: dtypes.DType) -> str:
    """PyTorch's name for a dtype in kernel errors (``'Long'``)."""
    return _TYPE_NAMES[dtype.name]


def not_implemented_for(kernel: str, *bad: dtypes.DType, floating_only: bool = False):
    """A check raising PyTorch's ``NotImplementedError`` for operands of the ``bad`` dtypes (or non-floating ones).

    >>> import symgrad
    >>> not_implemented_for("abs_cpu", symgrad.bool)([symgrad.tensor([True])])
    Traceback (most recent call last):
    NotImplementedError: "abs_cpu" not implemented for 'Bool'
    """
    def check(operands):
        dtype = promote(operands)
        if dtype in bad or (floating_only and not dtype.is_floating_point):
            raise NotImplementedError(f'"{kernel}" not implemented for \'{type_name(dtype)}\'')
    return check


def _sign_forward(x):
    return x.copy() if x.dtype == np.bool_ else np.sign(np.nan_to_num(x))  # sign(True) is True; sign(nan) is 0


ABS = ElementwiseOp("abs", Abs, "AbsBackward0", numpy=np.abs, check=not_implemented_for("abs_cpu", dtypes.bool),
                    api=unary_api("abs", "absolute", doc="``|input|``; its gradient at 0 is 0, as in PyTorch"))
SIGN = ElementwiseOp("sign", sign, "SignBackward0", numpy=_sign_forward,
                     api=unary_api("sign", doc="-1, 0 or 1 (0 for NaN, as PyTorch's); its gradient is 0"))
SQRT = ElementwiseOp("sqrt", sp.sqrt, "SqrtBackward0", float_result=True, numpy=np.sqrt,
                     api=unary_api("sqrt", doc="``sqrt(input)``; its gradient at 0 is inf, as in PyTorch"))
RSQRT = ElementwiseOp("rsqrt", lambda a: 1 / sp.sqrt(a), "RsqrtBackward0", float_result=True,
                      api=unary_api("rsqrt", doc="``1/sqrt(input)``"))
EXPM1 = ElementwiseOp("expm1", expm1, "Expm1Backward0", float_result=True, numpy=np.expm1,
                      api=unary_api("expm1", doc="``exp(input) - 1``, accurate near 0"))
LOG1P = ElementwiseOp("log1p", log1p, "Log1PBackward0", float_result=True, numpy=np.log1p,
                      api=unary_api("log1p", doc="``log(1 + input)``, accurate near 0"))
LOG2 = ElementwiseOp("log2", log2, "Log2Backward0", float_result=True, numpy=np.log2, api=unary_api("log2"))
LOG10 = ElementwiseOp("log10", log10, "Log10Backward0", float_result=True, numpy=np.log10, api=unary_api("log10"))
SIN = ElementwiseOp("sin", sp.sin, "SinBackward0", float_result=True, numpy=np.sin, api=unary_api("sin"))
COS = ElementwiseOp("cos", sp.cos, "CosBackward0", float_result=True, numpy=np.cos, api=unary_api("cos"))
TAN = ElementwiseOp("tan", sp.tan, "TanBackward0", float_result=True, numpy=np.tan, api=unary_api("tan"))
ASIN = ElementwiseOp("asin", sp.asin, "AsinBackward0", float_result=True, numpy=np.arcsin,
                     api=unary_api("asin", "arcsin"))
ACOS = ElementwiseOp("acos", sp.acos, "AcosBackward0", float_result=True, numpy=np.arccos,
                     api=unary_api("acos", "arccos"))
ATAN = ElementwiseOp("atan", sp.atan, "AtanBackward0", float_result=True, numpy=np.arctan,
                     api=unary_api("atan", "arctan"))
SINH = ElementwiseOp("sinh", sp.sinh, "SinhBackward0", float_result=True, numpy=np.sinh, api=unary_api("sinh"))
COSH = ElementwiseOp("cosh", sp.cosh, "CoshBackward0", float_result=True, numpy=np.cosh, api=unary_api("cosh"))
ERF = ElementwiseOp("erf", erf, "ErfBackward0", float_result=True, numpy=numpy_erf,
                    api=unary_api("erf", doc="The error function (NumPy has none: W. J. Cody's approximation, "
                                             "within 3 ulps)"))


def _tensor_binary_api(name: str, doc: str, example: str, *aliases: str) -> Api:
    """``symgrad.<name>(input, other)`` and ``Tensor.<name>(other)`` where ``other`` must be a tensor (PyTorch's)."""
    def signature(input, other):
        if is_scalar(other) or isinstance(other, list | tuple):
            raise TypeError(f"{name}(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
        return (input, other), ()
    signature.__name__ = name
    signature.__doc__ = f"{doc}\n\n    >>> import symgrad\n{example}"
    names = (name, *aliases)
    return Api(signature, functions=names, methods=names)


ATAN2 = ElementwiseOp(
    "atan2", atan2, "Atan2Backward0", arity=2, float_result=True, numpy=np.arctan2,
    api=_tensor_binary_api(
        "atan2", "The angle of the point ``(other, input)``, in ``(-pi, pi]``; both gradients are 0 at the origin.",
        "    >>> symgrad.atan2(symgrad.tensor([1.0, -1.0]), symgrad.tensor([0.0, -1.0]))\n"
        "    tensor([ 1.5708, -2.3562])\n", "arctan2"))
MAXIMUM = ElementwiseOp(
    "maximum", maximum, "MaximumBackward0", arity=2, numpy=np.maximum,
    api=_tensor_binary_api(
        "maximum", "The elementwise maximum (NaN propagates); ties split the gradient half and half, as in PyTorch.",
        "    >>> a = symgrad.tensor([1.0, 3.0], requires_grad=True)\n"
        "    >>> symgrad.maximum(a, symgrad.tensor([1.0, 2.0])).sum().backward(); a.grad\n"
        "    tensor([0.5000, 1.0000])\n"))
MINIMUM = ElementwiseOp(
    "minimum", minimum, "MinimumBackward0", arity=2, numpy=np.minimum,
    api=_tensor_binary_api(
        "minimum", "The elementwise minimum (NaN propagates); ties split the gradient half and half, as in PyTorch.",
        "    >>> symgrad.minimum(symgrad.tensor([1.0, 3.0]), symgrad.tensor([2.0, 2.0]))\n"
        "    tensor([1., 2.])\n"))


# ------------------------------------------------------------------------ clamp
# Two records as in PyTorch: number bounds are attributes of ClampBackward1 (not
# graph edges); tensor bounds are operands of ClampBackward0.  An absent bound is
# the number 0 in its operand slot (PyTorch shows a None edge there), left out of
# type promotion and written ∓oo in the formula: the attributes say which exist.


class _ClampOp(ElementwiseOp):
    def infer(self, operands, attrs):
        present = [operands[0]] + [b for b, given in zip(operands[1:], attrs) if given]
        return broadcast_operands(present), promote(present)


def _clamp_formula(x, lo, hi, has_min, has_max):
    return clamp(x, lo if has_min else -sp.oo, hi if has_max else sp.oo)


def _is_number(x) -> bool:
    return is_scalar(x) or isinstance(x, np.generic)


def _clamp(input, min=None, max=None):  # noqa: A002 - PyTorch's names
    """``input`` limited to ``[min, max]`` (either may be None; ``max`` wins where min > max).

    Number bounds give ``ClampBackward1``; tensor bounds (which broadcast and
    receive gradients) ``ClampBackward0``.  As in PyTorch, the gradient passes
    where ``min <= input <= max``, bounds included.

    >>> import symgrad
    >>> x = symgrad.tensor([-1.0, 0.0, 0.5, 2.0], requires_grad=True)
    >>> y = symgrad.clamp(x, 0, 1); y
    tensor([0.0000, 0.0000, 0.5000, 1.0000], grad_fn=<ClampBackward1>)
    >>> y.sum().backward(); x.grad
    tensor([0., 1., 1., 0.])
    """
    if min is None and max is None:
        raise RuntimeError("symgrad.clamp: At least one of 'min' or 'max' must not be None")
    attrs = (min is not None, max is not None)
    operands = (input, 0 if min is None else min, 0 if max is None else max)
    if all(b is None or _is_number(b) for b in (min, max)):
        return operands, attrs, CLAMP
    if any(_is_number(b) for b in (min, max)):
        got = ", ".join(["Tensor"] + [f"{k}={'Tensor' if not _is_number(b) else type(b).__name__}"
                                      for k, b in (("max", max), ("min", min)) if b is not None])
        raise TypeError(f"clamp() received an invalid combination of arguments - got ({got}), but expected one of:\n"
                        " * (Tensor input, Tensor min = None, Tensor max = None, *, Tensor out = None)\n"
                        " * (Tensor input, Number min = None, Number max = None, *, Tensor out = None)\n")
    return operands, attrs, CLAMP_TENSOR


CLAMP = _ClampOp("clamp", _clamp_formula, "ClampBackward1", arity=3, value_only=(1, 2),
                 api=Api(_clamp, functions=("clamp", "clip"), methods=("clamp", "clip")))
CLAMP_TENSOR = _ClampOp("clamp_tensor", _clamp_formula, "ClampBackward0", arity=3)


# ------------------------------------------------------------------------ where


class _WhereOp(ElementwiseOp):
    """``where(condition, input, other)``: the condition is a bool operand that takes no part in promotion."""

    def infer(self, operands, attrs):
        condition = operands[0]
        if is_scalar(condition) or condition.dtype is not dtypes.bool:
            got = type(condition).__name__ if is_scalar(condition) else type_name(condition.dtype)
            raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {got}")
        return broadcast_operands(operands), promote(operands[1:])


def _where(condition, input, other):
    """``input`` where ``condition`` holds, else ``other`` (tensors or numbers, broadcast); ``WhereBackward0``.

    The gradient goes to ``input`` where the condition holds and to ``other``
    elsewhere; the bool ``condition`` has none.

    >>> import symgrad
    >>> x = symgrad.tensor([-1.0, 2.0], requires_grad=True)
    >>> symgrad.where(x > 0, x, 0.0)
    tensor([0., 2.], grad_fn=<WhereBackward0>)
    """
    return (condition, input, other), ()


def _where_method(self, condition, other):
    """``self`` where ``condition`` holds, else ``other``: ``symgrad.where(condition, self, other)``.

    >>> import symgrad
    >>> x = symgrad.tensor([-1.0, 2.0])
    >>> x.where(x > 0, symgrad.zeros(2))
    tensor([0., 2.])
    """
    return (condition, self, other), ()


WHERE = _WhereOp("where", lambda c, a, b: Select((a, sp.Ne(c, 0)), (b, True)), "WhereBackward0", arity=3,
                 numpy=np.where, value_only=(0,),
                 api=Api(_where, functions=("where",), methods=("where",), method_signature=_where_method))


# ------------------------------------------------------------------------- lerp

_LERP_TYPE_NAMES = {"float32": "float", "float64": "double", "int64": "long int", "bool": "bool"}


def _lerp_formula(start, end, weight):
    # PyTorch's two forms: exact at weight 0 and at weight 1
    return sp.Piecewise((start + weight * (end - start), sp.Abs(weight) < sp.Rational(1, 2)),
                        (end - (end - start) * (1 - weight), True))


def _lerp_check(operands):
    start = operands[0]
    for name, x in (("end", operands[1]), ("weight", operands[2])):
        if not is_scalar(x) and x.dtype is not start.dtype:
            raise RuntimeError(f"expected dtype {_LERP_TYPE_NAMES[start.dtype.name]} for `{name}` but got dtype "
                               f"{_LERP_TYPE_NAMES[x.dtype.name]}")
    if not start.dtype.is_floating_point:
        kind = "scalar" if is_scalar(operands[2]) else "tensor"
        raise NotImplementedError(f'"lerp_kernel_{kind}" not implemented for \'{type_name(start.dtype)}\'')


def _lerp(input, end, weight):
    """``input + weight * (end - input)``, computed as PyTorch does (exact at weight 0 and 1).

    A number ``weight`` gives ``LerpBackward0``, a tensor one (which broadcasts
    and receives a gradient) ``LerpBackward1``.  ``input``, ``end`` and a tensor
    ``weight`` must have one floating dtype.

    >>> import symgrad
    >>> symgrad.lerp(symgrad.tensor([0.0, 10.0]), symgrad.tensor([1.0, 20.0]), 0.25)
    tensor([ 0.2500, 12.5000])
    """
    if _is_number(end):
        kinds = ", ".join(["Tensor", type(end).__name__, "Tensor" if not _is_number(weight) else type(weight).__name__])
        raise TypeError(f"lerp() received an invalid combination of arguments - got ({kinds}), but expected one of:\n"
                        " * (Tensor input, Tensor end, Tensor weight, *, Tensor out = None)\n"
                        " * (Tensor input, Tensor end, Number weight, *, Tensor out = None)\n")
    if _is_number(weight):
        return (input, end, weight), (), LERP
    return (input, end, weight), (), LERP_TENSOR


LERP = ElementwiseOp("lerp", _lerp_formula, "LerpBackward0", arity=3, value_only=(2,), check=_lerp_check,
                     api=Api(_lerp, functions=("lerp",), methods=("lerp",)))
LERP_TENSOR = ElementwiseOp("lerp_tensor", _lerp_formula, "LerpBackward1", arity=3, check=_lerp_check)


# ------------------------------------------------------------------ comparisons
# Bool results: never differentiable, so never recorded; computed in the
# operands' promoted dtype, as PyTorch compares.

_Operand = namedtuple("_Operand", ["shape", "dtype"])


class _ComparisonOp(ElementwiseOp):
    def infer(self, operands, attrs):
        shape, _ = super().infer(operands, attrs)
        return shape, dtypes.bool

    def forward(self, values, attrs, dtype, shape):
        common = promote([v if is_scalar(v) else _Operand(v.shape, dtypes.from_numpy_dtype(v.dtype))
                          for v in values]).numpy
        values = [v if is_scalar(v) or v.dtype == common else v.astype(common) for v in values]
        out = np.asarray(self.numpy(*values), dtype=np.bool_)
        return out if out.shape == shape else np.array(np.broadcast_to(out, shape))


def _comparison(name: str, relation, ufunc, symbol: str, alias: str | None) -> ElementwiseOp:
    def signature(input, other):
        return (input, other), ()
    signature.__name__ = name
    signature.__doc__ = (f"``input {symbol} other`` elementwise, broadcasting: a bool tensor (no gradient). "
                         f"Also the ``{symbol}`` operator.\n\n"
                         f"    >>> import symgrad\n"
                         f"    >>> symgrad.{name}(symgrad.tensor([1.0, 2.0, 3.0]), 2).tolist()\n"
                         f"    {[bool(ufunc(v, 2)) for v in (1.0, 2.0, 3.0)]}\n")
    names = (name,) if alias is None else (name, alias)
    return _ComparisonOp(name, relation, f"{name.capitalize()}Backward0", arity=2, numpy=ufunc,
                         api=Api(signature, functions=names, methods=names))


EQ = _comparison("eq", sp.Eq, np.equal, "==", None)
NE = _comparison("ne", sp.Ne, np.not_equal, "!=", "not_equal")
LT = _comparison("lt", sp.Lt, np.less, "<", "less")
LE = _comparison("le", sp.Le, np.less_equal, "<=", "less_equal")
GT = _comparison("gt", sp.Gt, np.greater, ">", "greater")
GE = _comparison("ge", sp.Ge, np.greater_equal, ">=", "greater_equal")
