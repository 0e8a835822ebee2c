"""Elementwise ops: one line each, a scalar SymPy formula and PyTorch's grad_fn name.

Derivatives are not written here: :mod:`symgrad.derive` obtains them with
``sympy.diff`` from these formulas.  Adding an op is one more line.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .. import dtypes
from ..symbolic.functions import power, relu, sigmoid
from .registry import Api, ElementwiseOp

__all__ = ["TO_COPY", "ADD", "SUB", "RSUB", "MUL", "DIV", "NEG", "RECIPROCAL", "POW", "POW_TENSOR", "RPOW",
           "EXP", "LOG", "SIGMOID", "TANH", "RELU", "exact_number", "unary_api"]

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

def unary_api(name: str, *aliases: str, nn: bool = False) -> Api:
    """``symgrad.<name>(input)`` and ``Tensor.<name>()`` (and aliases; ``nn``: also in nn.functional)."""
    def signature(input):
        return (input,), ()
    signature.__name__ = name
    signature.__doc__ = (f"Elementwise ``{name}``; differentiable.\n\n"
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
DIV = ElementwiseOp("div", lambda a, b: a / b, "DivBackward0", arity=2, numpy=np.true_divide,
                    float_result=True, api=_binary_api("div", "/"))
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


def _check_int_power(operands, exponent):
    if not operands[0].dtype.is_floating_point and isinstance(exponent, int) and exponent < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")


class _PowOp(ElementwiseOp):
    def infer(self, operands, attrs):
        _check_int_power(operands, attrs[0])
        return super().infer(operands, attrs)


# Powers: a scalar exponent is an attribute (it shapes the formula: x**2 -> 2*x).
# `pow` dispatches between the three records (symgrad/functional.py).
POW = _PowOp("pow", lambda a, exponent: a ** exact_number(exponent), "PowBackward0",
                    scalar_attrs=True, saves=lambda needs_grad: {0})  # PyTorch saves self even for x**0
POW_TENSOR = ElementwiseOp("pow_tensor", power, "PowBackward1", arity=2)
RPOW = ElementwiseOp("rpow", lambda a, base: power(base, a), "PowBackward2", arity=2, value_only=(1,))

# Unary math
EXP = ElementwiseOp("exp", sp.exp, "ExpBackward0", float_result=True, numpy=np.exp, api=unary_api("exp"))
LOG = ElementwiseOp("log", sp.log, "LogBackward0", float_result=True, numpy=np.log, api=unary_api("log"))
SIGMOID = ElementwiseOp("sigmoid", sigmoid, "SigmoidBackward0", float_result=True,
                        api=unary_api("sigmoid", nn=True))
TANH = ElementwiseOp("tanh", sp.tanh, "TanhBackward0", float_result=True, numpy=np.tanh,
                     api=unary_api("tanh", nn=True))
RELU = ElementwiseOp("relu", relu, "ReluBackward0", api=unary_api("relu", nn=True))
