"""Linear-algebra records built on the existing primitives: ``addmm`` and the norm clamps.

``nn.functional.linear``, ``cosine_similarity``, ``normalize`` and ``outer``
are composites (:mod:`symgrad.nn.functional`, :mod:`symgrad.functional`) that
record the same chains of nodes PyTorch does, from these records and the
shape, reduction and elementwise ones.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..symbolic.nodes import arg, elementwise, matmul
from .registry import Api, ElementwiseOp, StructuralOp
from .shape import expand_shape
from .structural import _same_dtype

__all__ = ["ADDMM", "NORM_CLAMP_MIN", "CLAMPED_CLONE"]


def _number(value) -> sp.Expr:
    value = float(value)
    return sp.Integer(int(value)) if value.is_integer() else sp.Float(value)


def _addmm_signature(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)``, ``input`` broadcast to the product (``AddmmBackward0``).

    >>> import symgrad
    >>> symgrad.addmm(symgrad.ones(3), symgrad.ones(2, 4), symgrad.ones(4, 3))
    tensor([[5., 5., 5.],
            [5., 5., 5.]])
    """
    return (input, mat1, mat2), (beta, alpha)


def _addmm_infer(operands, beta, alpha):
    bias, a, b = operands
    for name, m in (("mat1", a), ("mat2", b)):
        if m.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {m.ndim}-D tensor")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                           f"{b.shape[0]}x{b.shape[1]})")
    dtype = _same_dtype(a, b, "m1 and m2")
    _same_dtype(bias, a, "self and mat2")
    shape = (a.shape[0], b.shape[1])
    expand_shape(bias.shape, shape, bias.dtype)  # PyTorch's error when the input does not broadcast
    return shape, dtype


def _addmm_forward(bias, a, b, beta, alpha):
    product = a @ b
    out = (bias if beta == 1 else beta * bias) + (product if alpha == 1 else alpha * product)
    return np.array(np.broadcast_to(out, product.shape), order="C")


def _addmm_lower(bias, a, b, beta, alpha):
    return elementwise(_number(beta) * arg(0) + _number(alpha) * arg(1), [bias, matmul(a, b)], a.dtype)


def _addmm_saves(needs_grad):
    saved = set()
    if needs_grad[1]:
        saved.add(2)
    if needs_grad[2]:
        saved.add(1)
    return saved


ADDMM = StructuralOp("addmm", "AddmmBackward0", api=Api(_addmm_signature, functions=("addmm",), methods=("addmm",)),
                     infer=_addmm_infer, forward=_addmm_forward, lower=_addmm_lower, saves=_addmm_saves)


# F.normalize: norm.clamp_min(eps), derivative 1 where norm >= eps and 0 below (ClampMinBackward0)
NORM_CLAMP_MIN = ElementwiseOp(
    "norm_clamp_min", lambda a, eps: sp.Piecewise((a, a >= _number(eps)), (_number(eps), True)), "ClampMinBackward0",
)

# F.cosine_similarity: PyTorch clones each norm and clamps the clone to eps in place under
# no_grad, so the value is clamped but the gradient passes through as if it were not
# (CloneBackward0).  The same here: the norm plus the forward's clamping correction,
# a hidden constant operand (derivative 1; the correction is not differentiated).
CLAMPED_CLONE = ElementwiseOp("clamped_clone", lambda a, correction: a + correction, "CloneBackward0", arity=2,
                              value_only=(1,))
