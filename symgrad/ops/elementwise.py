"""Elementwise ops: one line each, a scalar SymPy formula and PyTorch's grad_fn name.

Derivatives are not written here: :mod:`symgrad.derive` obtains them with
``sympy.diff`` from these formulas.  Adding an op is one more line.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .. import dtypes
from ..symbolic.functions import power, relu, sigmoid
from .registry import ElementwiseOp

__all__ = ["ADD", "SUB", "RSUB", "MUL", "DIV", "NEG", "RECIPROCAL", "POW", "POW_TENSOR", "RPOW",
           "EXP", "LOG", "SIGMOID", "TANH", "RELU", "UNARY", "exact_number"]

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

# Binary arithmetic.  `alpha` is an attribute (add(a, b, alpha=2) scales b);
# the NumPy ufunc serves the common attribute-free case.
ADD = ElementwiseOp("add", lambda a, b, alpha=1: a + alpha * b, "AddBackward0", arity=2, numpy=np.add)
SUB = ElementwiseOp("sub", lambda a, b, alpha=1: a - alpha * b, "SubBackward0", arity=2, numpy=np.subtract,
                    check=_no_bool(_BOOL_SUBTRACTION))
# `1 - w`: the scalar is a saved value but not a graph edge, as in PyTorch
RSUB = ElementwiseOp("rsub", lambda a, b, alpha=1: b - alpha * a, "RsubBackward1", arity=2,
                     value_only=(1,), check=_no_bool(_BOOL_SUBTRACTION))
MUL = ElementwiseOp("mul", lambda a, b: a * b, "MulBackward0", arity=2, numpy=np.multiply)
DIV = ElementwiseOp("div", lambda a, b: a / b, "DivBackward0", arity=2, numpy=np.true_divide,
                    float_result=True)
NEG = ElementwiseOp("neg", lambda a: -a, "NegBackward0", numpy=np.negative, check=_no_bool(_BOOL_NEGATION))
RECIPROCAL = ElementwiseOp("reciprocal", lambda a: 1 / a, "ReciprocalBackward0", float_result=True)



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


# Powers: a scalar exponent is an attribute (it shapes the formula: x**2 -> 2*x)
POW = ElementwiseOp("pow", lambda a, exponent: a ** exact_number(exponent), "PowBackward0",
                    scalar_attrs=True, saves=lambda needs_grad: {0})  # PyTorch saves self even for x**0
POW_TENSOR = ElementwiseOp("pow_tensor", power, "PowBackward1", arity=2)
RPOW = ElementwiseOp("rpow", lambda a, base: power(base, a), "PowBackward2", arity=2, value_only=(1,))

# Unary math
EXP = ElementwiseOp("exp", sp.exp, "ExpBackward0", float_result=True, numpy=np.exp)
LOG = ElementwiseOp("log", sp.log, "LogBackward0", float_result=True, numpy=np.log)
SIGMOID = ElementwiseOp("sigmoid", sigmoid, "SigmoidBackward0", float_result=True)
TANH = ElementwiseOp("tanh", sp.tanh, "TanhBackward0", float_result=True, numpy=np.tanh)
RELU = ElementwiseOp("relu", relu, "ReluBackward0")

# The unary ops exposed as `symgrad.X(t)` and `Tensor.X()` with no other argument
UNARY = {"neg": NEG, "negative": NEG, "reciprocal": RECIPROCAL, "exp": EXP, "log": LOG,
         "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU}
