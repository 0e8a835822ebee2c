"""``torch.nn.functional``-compatible functions."""

from __future__ import annotations

from ..autograd.grad_mode import is_grad_enabled
from ..functional import relu, sigmoid, tanh
from ..ops.losses import BCE_WITH_LOGITS, REDUCTIONS
from ..tensor import Tensor, _as_operand, apply

__all__ = ["binary_cross_entropy_with_logits", "relu", "sigmoid", "tanh"]


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy on logits, stable for any logit (``BinaryCrossEntropyWithLogitsBackward0``).

    Per element ``softplus(z) - y*z`` (with ``weight`` and ``pos_weight`` as PyTorch
    defines them), then ``reduction`` ``'mean'`` (default), ``'sum'`` or ``'none'``.

    >>> import symgrad
    >>> z = symgrad.tensor([1000.0, -1000.0, 0.0], requires_grad=True)
    >>> symgrad.nn.functional.binary_cross_entropy_with_logits(z, symgrad.zeros(3))
    tensor(333.5644, grad_fn=<BinaryCrossEntropyWithLogitsBackward0>)
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    operands = [_as_operand(input), _as_operand(target)]
    for argument, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        value = _as_operand(value)
        if is_grad_enabled() and getattr(value, "requires_grad", False):
            raise RuntimeError("The function 'binary_cross_entropy_with_logits' is not differentiable with "
                               f"respect to argument '{argument}'. This input cannot have requires_grad True.")
        operands.append(value)
    return apply(BCE_WITH_LOGITS, tuple(operands), (reduction, weight is not None, pos_weight is not None))


def _legacy_reduction(size_average, reduce) -> str:
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"
