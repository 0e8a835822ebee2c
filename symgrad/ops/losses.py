"""Loss ops: an elementwise formula followed by PyTorch's ``reduction``.

A loss is declared by its per-element scalar formula; the reduction
(``'none'``, ``'mean'``, ``'sum'``) is shared by every loss, and the
derivative comes from ``sympy.diff`` of the formula like any elementwise op.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import sympy as sp

from ..grad_mode import is_grad_enabled
from ..symbolic.functions import softplus
from ..symbolic.nodes import arg, elementwise, reduce_sum
from ..symbolic.numpy_printer import kernel_function
from .registry import Api, Op, broadcast_error_shapes, broadcast_operands, kernel_saved_operands, promote

__all__ = ["LossOp", "BCE_WITH_LOGITS", "REDUCTIONS"]

REDUCTIONS = ("none", "mean", "sum")


class LossOp(Op):
    """Per-element ``formula(operands, *flags)`` then a reduction.

    Attributes are ``(reduction, *flags)``; ``arity(*flags)`` says how many
    operands the formula takes (optional weights add operands).
    """

    kind = "loss"

    def __init__(self, name: str, formula: Callable[..., sp.Expr], grad_fn: str, *,
                 arity: Callable[..., int], check: Callable | None = None, value_only=(),
                 api: Api | None = None):
        super().__init__(name, grad_fn, value_only=value_only, api=api)
        self.formula, self.arity, self.check = formula, arity, check
        self._forward_functions: dict[tuple, Callable] = {}

    @cache  # noqa: B019 - op records live for the whole process
    def kernel(self, attrs: tuple) -> sp.Expr:
        """The per-element scalar formula over ``a0 …`` for these attributes."""
        flags = attrs[1:]
        return sp.sympify(self.formula([arg(i) for i in range(self.arity(*flags))], *flags))

    def saved_operands(self, attrs, needs_grad):
        return kernel_saved_operands(self.kernel(attrs), needs_grad)

    def infer(self, operands, attrs):
        if self.check is not None:
            self.check(operands, *attrs)
        shape = broadcast_operands(operands)
        dtype = promote(operands)
        return (shape if attrs[0] == "none" else ()), dtype

    def forward(self, values, attrs, dtype, shape):
        target = dtype.numpy
        values = [v if v.dtype == target else v.astype(target) for v in values]
        fn = self._forward_functions.get(attrs)
        if fn is None:
            fn = self._forward_functions[attrs] = kernel_function(self.kernel(attrs), len(values))
        per_element = fn(*values)
        if per_element.shape != values[0].shape:  # weights may broadcast the result (or a kernel ignore one)
            per_element = np.broadcast_to(per_element, _broadcast(values))
        reduction = attrs[0]
        if reduction == "none":
            return np.asarray(per_element, dtype=target)
        total = np.add.reduce(per_element, axis=None)
        if reduction == "mean":
            total = total / per_element.size if per_element.size else np.nan
        return np.asarray(total, dtype=target)

    def lower(self, inputs, attrs, dtype):
        per_element = elementwise(self.kernel(attrs), inputs, dtype.numpy)
        reduction = attrs[0]
        if reduction == "none":
            return per_element
        total = reduce_sum(per_element)
        if reduction == "sum":
            return total
        count = int(np.prod(per_element.shape))
        return elementwise(arg(0) / count if count else arg(0) * sp.nan, [total], dtype.numpy)


def _broadcast(values) -> tuple[int, ...]:
    return np.broadcast_shapes(*(v.shape for v in values))


def _bce_with_logits(operands, has_weight, has_pos_weight):
    z, y = operands[:2]
    weight = operands[2] if has_weight else 1
    if has_pos_weight:
        pos_weight = operands[-1]
        loss = (1 - y) * z + (1 + (pos_weight - 1) * y) * softplus(-z)
    else:
        loss = softplus(z) - z * y  # the stable form of y*log σ(z) + (1-y)*log(1-σ(z)), negated
    return weight * loss


def _bce_check(operands, reduction, has_weight, has_pos_weight):
    z, y = operands[0], operands[1]
    if y.shape != z.shape:
        raise ValueError(f"Target size ({_size(y.shape)}) must be the same as input size ({_size(z.shape)})")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    # check broadcasting in the order PyTorch computes, so the error names the same sizes
    if has_pos_weight:
        broadcast_error_shapes(operands[-1].shape, y.shape)  # (pos_weight - 1) * target
    if has_weight:
        broadcast_error_shapes(z.shape, operands[2].shape)  # loss * weight


def _size(shape) -> str:
    return f"symgrad.Size([{', '.join(map(str, shape))}])"


def _bce_with_logits_signature(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                               pos_weight=None):
    """Binary cross-entropy on logits, stable for any logit (``BinaryCrossEntropyWithLogitsBackward0``).

    Per element ``softplus(z) - y*z`` (with ``weight`` and ``pos_weight`` as
    PyTorch defines them), then ``reduction`` ``'mean'`` (default), ``'sum'`` or
    ``'none'``.  ``weight`` and ``pos_weight`` may not require grad.

    >>> import symgrad
    >>> z = symgrad.tensor([1000.0, -1000.0, 0.0], requires_grad=True)
    >>> symgrad.nn.functional.binary_cross_entropy_with_logits(z, symgrad.zeros(3))
    tensor(333.5644, grad_fn=<BinaryCrossEntropyWithLogitsBackward0>)
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    operands = [input, target]
    for argument, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        if getattr(value, "requires_grad", False) and is_grad_enabled():
            raise RuntimeError("The function 'binary_cross_entropy_with_logits' is not differentiable with "
                               f"respect to argument '{argument}'. This input cannot have requires_grad True.")
        operands.append(value)
    return tuple(operands), (reduction, weight is not None, pos_weight is not None)


def legacy_reduction(size_average, reduce) -> str:
    """The ``reduction`` meant by PyTorch's deprecated ``size_average``/``reduce`` flags."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


BCE_WITH_LOGITS = LossOp(
    "binary_cross_entropy_with_logits",
    _bce_with_logits, "BinaryCrossEntropyWithLogitsBackward0",
    arity=lambda has_weight, has_pos_weight: 2 + has_weight + has_pos_weight, check=_bce_check,
    value_only=(2, 3),  # weight and pos_weight are not differentiable: not graph edges in PyTorch
    api=Api(_bce_with_logits_signature, nn=("binary_cross_entropy_with_logits",)),
)
