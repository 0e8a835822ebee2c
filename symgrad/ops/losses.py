"""Loss ops: an elementwise formula followed by PyTorch's ``reduction``.

A loss is declared by its per-element scalar formula; the reduction
(``'none'``, ``'mean'``, ``'sum'``) is shared by every loss, and the
derivative comes from ``sympy.diff`` of the formula like any elementwise op.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache

import numpy as np
import sympy as sp

from .. import dtypes
from ..grad_mode import is_grad_enabled
from ..symbolic.functions import Abs, Select, bce, softplus, xlogy
from ..symbolic.nodes import arg, elementwise, reduce_sum, reshape
from ..symbolic.numpy_printer import kernel_function
from .elementwise import exact_number, type_name
from .registry import (
    Api,
    ElementwiseOp,
    Op,
    StructuralOp,
    broadcast_error_shapes,
    broadcast_operands,
    kernel_saved_operands,
    promote,
)

__all__ = ["LossOp", "BCE_WITH_LOGITS", "REDUCTIONS", "MSE_LOSS", "L1_LOSS", "SMOOTH_L1_LOSS", "HUBER_LOSS",
           "BINARY_CROSS_ENTROPY", "KL_DIV", "NLL_LOSS", "check_nll_batch", "nll_loss_arguments",
           "SCALAR_MUL", "SCALAR_ADD", "SCALAR_DIV", "MASKED_FILL"]

REDUCTIONS = ("none", "mean", "sum")


class LossOp(Op):
    """Per-element ``formula(operands, *flags)`` then a reduction.

    Attributes are ``(reduction, *flags)``; ``arity(*flags)`` says how many
    operands the formula takes (optional weights add operands).  The reduction
    is ``'none'``, ``'sum'``, ``'mean'`` (over all elements) or ``'batchmean'``
    (the sum over the first operand's first dimension, ``kl_div``'s).
    ``grad_fn`` may be a function of the attributes (PyTorch's composite
    losses show the last op of their chain: ``l1_loss`` is ``MeanBackward0``).
    ``dtype(operands)`` overrides PyTorch's type promotion (``huber_loss`` keeps
    the input's dtype); ``check_values(values, *attrs)`` checks the values
    (``binary_cross_entropy``'s range) before anything is computed.
    """

    kind = "loss"

    def __init__(self, name: str, formula: Callable[..., sp.Expr], grad_fn: str | Callable[..., str], *,
                 arity: Callable[..., int], check: Callable | None = None, value_only=(),
                 api: Api | None = None, dtype: Callable | None = None, check_values: Callable | None = None):
        super().__init__(name, grad_fn, value_only=value_only, api=api)
        self.formula, self.arity, self.check = formula, arity, check
        self._dtype, self.check_values = dtype, check_values
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
        dtype = promote(operands) if self._dtype is None else self._dtype(operands)
        return (shape if attrs[0] == "none" else ()), dtype

    def forward(self, values, attrs, dtype, shape):
        if self.check_values is not None:
            self.check_values(values, *attrs)
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
        if reduction in ("mean", "batchmean"):
            count = per_element.size if reduction == "mean" else values[0].shape[0]
            total = total / count if count else np.nan
        return np.asarray(total, dtype=target)

    def lower(self, inputs, attrs, dtype):
        per_element = elementwise(self.kernel(attrs), inputs, dtype.numpy)
        reduction = attrs[0]
        if reduction == "none":
            return per_element
        total = reduce_sum(per_element)
        if reduction == "sum":
            return total
        count = int(np.prod(per_element.shape)) if reduction == "mean" else inputs[0].shape[0]
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


def legacy_reduction(size_average, reduce, stacklevel: int = 4) -> str:
    """The ``reduction`` meant by PyTorch's deprecated ``size_average``/``reduce`` flags (warning as PyTorch).

    ``stacklevel`` 4 points the warning at the caller of a public loss function.
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "none" if not reduce else ("mean" if size_average else "sum")
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                  UserWarning, stacklevel=stacklevel)
    return reduction


BCE_WITH_LOGITS = LossOp(
    "binary_cross_entropy_with_logits",
    _bce_with_logits, "BinaryCrossEntropyWithLogitsBackward0",
    arity=lambda has_weight, has_pos_weight: 2 + has_weight + has_pos_weight, check=_bce_check,
    value_only=(2, 3),  # weight and pos_weight are not differentiable: not graph edges in PyTorch
    api=Api(_bce_with_logits_signature, nn=("binary_cross_entropy_with_logits",)),
)


# ------------------------------------------------------------ elementwise losses (issue 3)


def _reduction(size_average, reduce, reduction, valid=REDUCTIONS) -> str:
    if size_average is not None or reduce is not None:
        return legacy_reduction(size_average, reduce, stacklevel=5)
    if reduction not in valid:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _warn_target_size(input, target) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({_size(target.shape)}) that is different to the input size "
                      f"({_size(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=5)


def _no_weight(name: str, weight) -> None:
    if weight is not None:
        raise NotImplementedError(f"symgrad's {name} does not support weight= yet (PyTorch 2.6+ computes it as a "
                                  "composite of mul, sum and div)")


def _pointwise_signature(name: str, input, target, size_average, reduce, reduction, *flags):
    """PyTorch's order: the size warning, the legacy flags, broadcasting, then the reduction's validity."""
    _warn_target_size(input, target)
    legacy = size_average is not None or reduce is not None
    if legacy:
        reduction = legacy_reduction(size_average, reduce, stacklevel=5)
    broadcast_error_shapes(tuple(input.shape), tuple(target.shape))
    if not legacy and reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return (input, target), (reduction, *flags)


def _floating_kernel(kernel: str):
    """A check: PyTorch's ``NotImplementedError`` when the loss is computed in a non-floating dtype."""
    def check(operands, *attrs):
        dtype = promote(operands)
        if not dtype.is_floating_point:
            raise NotImplementedError(f'"{kernel}" not implemented for \'{type_name(dtype)}\'')
    return check


def _mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Squared error ``(input - target)**2``, reduced (``MseLossBackward0``); ``target`` may require grad.

    A ``target`` of another shape broadcasts with PyTorch's warning.  ``weight``
    (new in PyTorch 2.6) is not supported yet.

    >>> import symgrad
    >>> x = symgrad.tensor([1.0, 2.0], requires_grad=True)
    >>> symgrad.nn.functional.mse_loss(x, symgrad.tensor([0.0, 4.0]))
    tensor(2.5000, grad_fn=<MseLossBackward0>)
    """
    _no_weight("mse_loss", weight)
    return _pointwise_signature("mse_loss", input, target, size_average, reduce, reduction)


MSE_LOSS = LossOp("mse_loss", lambda ops: (ops[0] - ops[1]) ** 2, "MseLossBackward0", arity=lambda: 2,
                  check=_floating_kernel("mse_cpu"), api=Api(_mse_loss, nn=("mse_loss",)))


_REDUCTION_NODES = {"mean": "MeanBackward0", "sum": "SumBackward0", "batchmean": "DivBackward0"}


def _l1_check(operands, reduction):
    dtype = promote(operands)
    if reduction == "mean" and not dtype.is_floating_point:
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating point or "
                           f"complex dtype. Got: {type_name(dtype)}")


def _l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Absolute error ``|input - target|``, reduced; its gradient at 0 is 0.

    PyTorch computes it as ``abs`` then ``mean``/``sum``, so ``grad_fn`` is
    ``AbsBackward0``, ``MeanBackward0`` or ``SumBackward0`` (here one node).

    >>> import symgrad
    >>> x = symgrad.tensor([1.0, 2.0], requires_grad=True)
    >>> symgrad.nn.functional.l1_loss(x, symgrad.tensor([0.0, 4.0]))
    tensor(1.5000, grad_fn=<MeanBackward0>)
    """
    _no_weight("l1_loss", weight)
    return _pointwise_signature("l1_loss", input, target, size_average, reduce, reduction)


L1_LOSS = LossOp("l1_loss", lambda ops: Abs(ops[0] - ops[1]),
                 lambda reduction: _REDUCTION_NODES.get(reduction, "AbsBackward0"), arity=lambda: 2,
                 check=_l1_check, api=Api(_l1_loss, nn=("l1_loss",)))


def _smooth_l1_formula(ops, beta):
    d = ops[0] - ops[1]
    beta = exact_number(beta)
    return sp.Piecewise((d**2 / (2 * beta), Abs(d) < beta), (Abs(d) - beta / 2, True))


def _smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (``d = input - target``), reduced.

    ``SmoothL1LossBackward0``; ``beta=0`` is ``l1_loss``, as in PyTorch.

    >>> import symgrad
    >>> x = symgrad.tensor([0.5, 3.0], requires_grad=True)
    >>> symgrad.nn.functional.smooth_l1_loss(x, symgrad.zeros(2), reduction="none")
    tensor([0.1250, 2.5000], grad_fn=<SmoothL1LossBackward0>)
    """
    operands, (reduction,) = _pointwise_signature("smooth_l1_loss", input, target, size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0:
        return operands, (reduction,), L1_LOSS
    return operands, (reduction, float(beta))


SMOOTH_L1_LOSS = LossOp("smooth_l1_loss", _smooth_l1_formula, "SmoothL1LossBackward0", arity=lambda beta: 2,
                        check=_floating_kernel("smooth_l1_cpu"), api=Api(_smooth_l1_loss, nn=("smooth_l1_loss",)))


def _huber_formula(ops, delta):
    d = ops[0] - ops[1]
    delta = exact_number(delta)
    return sp.Piecewise((d**2 / 2, Abs(d) < delta), (delta * (Abs(d) - delta / 2), True))


def _input_dtype(operands):
    return operands[0].dtype


def _huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)`` (``d = input - target``), reduced.

    ``HuberLossBackward0``; the result has ``input``'s dtype, as in PyTorch.
    ``weight`` (new in PyTorch 2.6) is not supported yet.

    >>> import symgrad
    >>> x = symgrad.tensor([0.5, 3.0], requires_grad=True)
    >>> symgrad.nn.functional.huber_loss(x, symgrad.zeros(2), reduction="sum")
    tensor(2.6250, grad_fn=<HuberLossBackward0>)
    """
    _no_weight("huber_loss", weight)
    operands, (reduction,) = _pointwise_signature("huber_loss", input, target, None, None, reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    return operands, (reduction, float(delta))


def _huber_check(operands, reduction, delta):
    x, common = operands[0], promote(operands)
    if not dtypes.can_cast(common, x.dtype):  # PyTorch computes in the common dtype, writes input's
        raise RuntimeError(f"result type {type_name(common)} can't be cast to the desired output type "
                           f"{type_name(x.dtype)}")
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f'"huber_cpu" not implemented for \'{type_name(x.dtype)}\'')


HUBER_LOSS = LossOp("huber_loss", _huber_formula, "HuberLossBackward0", arity=lambda delta: 2,
                    check=_huber_check, dtype=_input_dtype,
                    api=Api(_huber_loss, nn=("huber_loss",)))


def _bce_formula(ops, has_weight):
    loss = bce(ops[0], ops[1])
    return ops[2] * loss if has_weight else loss


def _bce_checks(operands, reduction, has_weight):
    x, y = operands[0], operands[1]
    if y.dtype is not x.dtype:
        raise RuntimeError(f"Found dtype {type_name(y.dtype)} but expected {type_name(x.dtype)}")
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f'"binary_cross_entropy" not implemented for \'{type_name(x.dtype)}\'')
    if has_weight:
        broadcast = broadcast_error_shapes(tuple(x.shape), tuple(operands[2].shape))
        if broadcast != tuple(x.shape):
            raise RuntimeError(f"output with shape [{', '.join(map(str, x.shape))}] doesn't match the broadcast "
                               f"shape [{', '.join(map(str, broadcast))}]")


def _bce_values(values, reduction, has_weight):
    for name, v in (("input", values[0]), ("target", values[1])):
        if not np.all((v >= 0) & (v <= 1)):  # NaN fails too, as in PyTorch
            raise RuntimeError(f"all elements of {name} should be between 0 and 1")


def _expand_check(target_shape, weight_shape) -> None:
    """``torch.broadcast_shapes(target, weight)``'s error for a weight that does not broadcast."""
    for i in range(-1, -1 - min(len(target_shape), len(weight_shape)), -1):
        t, w = target_shape[i], weight_shape[i]
        if w != t and w != 1 and t != 1:
            raise RuntimeError(f"Attempting to broadcast a dimension of length {w} at {i}! Mismatching argument at "
                               f"index 1 had {_size(weight_shape)}; but expected shape should be broadcastable to "
                               f"[{', '.join(map(str, target_shape))}]")


def _binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Binary cross-entropy of probabilities ``input`` and ``target`` (``BinaryCrossEntropyBackward0``).

    Per element ``-w * (y*log(x) + (1-y)*log(1-x))`` with each log clamped at
    -100, as PyTorch, so probabilities of exactly 0 or 1 give finite losses
    and (PyTorch's clamp of the gradient's denominator at 1e-12) finite
    gradients.  Both tensors must lie in [0, 1] and share a dtype and shape;
    ``weight`` broadcasts to them and may not require grad.

    >>> import symgrad
    >>> p = symgrad.tensor([0.0, 0.5, 1.0], requires_grad=True)
    >>> symgrad.nn.functional.binary_cross_entropy(p, symgrad.tensor([0.0, 1.0, 0.0]), reduction="none")
    tensor([  0.0000,   0.6931, 100.0000], grad_fn=<BinaryCrossEntropyBackward0>)
    """
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({_size(target.shape)}) that is different to the input size "
                         f"({_size(input.shape)}) is deprecated. Please ensure they have the same size.")
    operands = [input, target]
    if weight is not None:
        _expand_check(tuple(target.shape), tuple(weight.shape))
        if getattr(weight, "requires_grad", False) and is_grad_enabled():
            raise RuntimeError("The function 'binary_cross_entropy' is not differentiable with respect to argument "
                               "'weight'. This input cannot have requires_grad True.")
        operands.append(weight)
    return tuple(operands), (reduction, weight is not None)


BINARY_CROSS_ENTROPY = LossOp(
    "binary_cross_entropy", _bce_formula, "BinaryCrossEntropyBackward0", arity=lambda has_weight: 2 + has_weight,
    check=_bce_checks, check_values=_bce_values,
    value_only=(2,),  # weight is not differentiable: not a graph edge in PyTorch
    api=Api(_binary_cross_entropy, nn=("binary_cross_entropy",)))


def _kl_formula(ops, log_target):
    x, t = ops
    return sp.exp(t) * (t - x) if log_target else xlogy(t, t) - t * x


def _kl_check(operands, reduction, log_target):
    x, t = operands
    broadcast_error_shapes(tuple(t.shape), tuple(x.shape))  # PyTorch computes target op input: sizes named so
    if not (x.dtype.is_floating_point and t.dtype.is_floating_point):
        raise RuntimeError("kl_div: Integral inputs not supported.")


_KL_MEAN_WARNING = ("reduction: 'mean' divides the total loss by both the batch size and the support size."
                    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                    "'mean' will be changed to behave the same as 'batchmean' in the next major release.")


def _kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence with ``input`` as log-probabilities: ``target * (log(target) - input)``.

    With ``log_target`` the target is a log-probability too:
    ``exp(target) * (target - input)``.  ``reduction='batchmean'`` divides the
    sum by the batch size (``input.shape[0]``): the divergence proper;
    ``'mean'`` divides by the element count and warns, as PyTorch.  PyTorch
    computes it as a chain of ops; ``grad_fn`` is its last one (``SubBackward0``
    or ``MulBackward0`` for ``'none'``, ``MeanBackward0``, ``SumBackward0``,
    ``DivBackward0`` for ``'batchmean'``), here one node.

    >>> import symgrad
    >>> x = symgrad.tensor([[-1.2, -0.4]], requires_grad=True)
    >>> symgrad.nn.functional.kl_div(x, symgrad.tensor([[0.3, 0.7]]), reduction="batchmean")
    tensor(0.0291, grad_fn=<DivBackward0>)
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    else:
        if reduction == "mean":
            warnings.warn(_KL_MEAN_WARNING, UserWarning, stacklevel=3)
        if reduction not in (*REDUCTIONS, "batchmean"):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        if reduction == "batchmean" and not input.shape:
            reduction = "sum"  # PyTorch divides only tensors with a batch dimension
    return (input, target), (reduction, bool(log_target))


def _kl_grad_fn(reduction, log_target):
    if reduction == "none":
        return "MulBackward0" if log_target else "SubBackward0"
    return _REDUCTION_NODES[reduction]


KL_DIV = LossOp("kl_div", _kl_formula, _kl_grad_fn, arity=lambda log_target: 2, check=_kl_check,
                api=Api(_kl_div, nn=("kl_div",)))


# ------------------------------------------------------------ nll_loss (issue 3)
#
# The target holds class indices: data that changes every training step, so it
# is an operand (a slot of the compiled backward, never part of its source).
# The lowering compares it with a constant operand of class ids 0 … C-1
# (shaped to broadcast along the class dimension): the one-hot selection is
# computed inside the generated code, and a loop over batches compiles once.


def _shape_list(shape) -> str:
    return f"[{', '.join(map(str, shape))}]"


def check_nll_batch(input, target) -> None:
    """The checks PyTorch's ``nll_loss_nd`` makes before choosing a kernel (``ValueError``)."""
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim == 1 and target.ndim == 1 and target.shape[0] != 1:
        raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}")
    if input.ndim != 1 and input.shape[0] != (target.shape[0] if target.ndim else 0):
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0] if target.ndim else 0}).")
    if input.ndim == 3 or input.ndim > 4:
        expected = (input.shape[0], *input.shape[2:])
        if tuple(target.shape) != expected:
            raise RuntimeError(f"Expected target size {_shape_list(expected)}, got {_shape_list(target.shape)}")


def nll_loss_arguments(input, target, weight, ignore_index: int, reduction: str) -> tuple[tuple, tuple]:
    """PyTorch's kernel checks for ``nll_loss`` on a 1-D, 2-D or 4-D input; ``(operands, attrs)`` of :data:`NLL_LOSS`.

    The class ids (an ``int64`` array shaped to broadcast along the class
    dimension) are the third operand; a weight, when given, the fourth.
    """
    two_d = input.ndim == 4
    classes = input.shape[0 if input.ndim == 1 else 1]
    _check_nll_shapes(input, target, weight, classes, two_d)
    _check_nll_dtypes(input, target, weight, two_d)
    _check_targets(np.asarray(target.detach()), classes, ignore_index)
    class_shape = (classes,) if input.ndim == 1 else (1, classes) + (1,) * (input.ndim - 2)
    class_ids = np.arange(classes, dtype=np.int64).reshape(class_shape)
    operands = (input, target, class_ids) + (() if weight is None else (weight,))
    return operands, (reduction, int(ignore_index), weight is not None, two_d)


def _check_nll_shapes(input, target, weight, classes: int, two_d: bool) -> None:
    if two_d:
        if target.ndim != 3:
            raise RuntimeError("only batches of spatial targets supported (3D tensors) but got targets of "
                               f"dimension: {target.ndim}")
        if tuple(target.shape) != (input.shape[0], *input.shape[2:]):
            raise RuntimeError(f"size mismatch (got input: {_shape_list(input.shape)} , target: "
                               f"{_shape_list(target.shape)}")
    elif target.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if weight is not None and (weight.ndim > 1 or weight.numel() != classes):
        raise RuntimeError("weight tensor should be defined either for all or no classes" if two_d else
                           f"weight tensor should be defined either for all {classes} classes or no classes but "
                           f"got weight tensor of shape: {_shape_list(weight.shape)}")


def _check_nll_dtypes(input, target, weight, two_d: bool) -> None:
    if target.dtype is not dtypes.int64:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {type_name(target.dtype)}")
    if not input.dtype.is_floating_point:
        kernel = "nll_loss2d_forward_out_frame" if two_d else "nll_loss_out_frame"
        raise NotImplementedError(f'"{kernel}" not implemented for \'{type_name(input.dtype)}\'')
    if weight is None:
        return
    if weight.dtype is not input.dtype:
        raise RuntimeError(f"expected scalar type {type_name(input.dtype)} but found {type_name(weight.dtype)}")
    if getattr(weight, "requires_grad", False) and is_grad_enabled():
        raise RuntimeError(f"The function '{'nll_loss2d_forward' if two_d else 'nll_loss_forward'}' is not "
                           "differentiable with respect to argument 'weight'. This input cannot have "
                           "requires_grad True.")


def _check_targets(values: np.ndarray, classes: int, ignore_index: int) -> None:
    """PyTorch's ``IndexError`` naming the first target (in memory order) that is no class and not ignored."""
    wrong = (values != ignore_index) & ((values < 0) | (values >= classes))
    if wrong.any():
        raise IndexError(f"Target {values[wrong].flat[0]} is out of bounds.")


def _nll_infer(operands, reduction, ignore_index, has_weight, two_d):
    x = operands[0]
    shape = () if x.ndim == 1 else (x.shape[0], *x.shape[2:])
    return (shape if reduction == "none" else ()), x.dtype


def _nll_forward(*values_and_attrs) -> np.ndarray:
    (x, target, _, *weight), (reduction, ignore_index, _, _) = values_and_attrs[:-4], values_and_attrs[-4:]
    class_dim = 0 if x.ndim == 1 else 1
    target = target.reshape(()) if x.ndim == 1 else target  # a (1,) target of a 1-D input is one sample
    kept = target != ignore_index
    safe = np.where(kept, target, 0)
    picked = np.take_along_axis(x, np.expand_dims(safe, class_dim), class_dim).squeeze(class_dim)
    weights = np.where(kept, weight[0][safe] if weight else 1, 0).astype(x.dtype)
    with np.errstate(all="ignore"):
        losses = np.where(kept, -weights * picked, 0).astype(x.dtype)
        if reduction == "none":
            return np.asarray(losses, order="C")
        total = np.sum(losses, dtype=x.dtype)
        if reduction == "mean":
            total = total / np.sum(weights, dtype=x.dtype)
    return np.asarray(total, dtype=x.dtype)


def _nll_lower(*inputs_and_attrs):
    (x, target, class_ids, *weight), (reduction, ignore_index, _, _) = inputs_and_attrs[:-4], inputs_and_attrs[-4:]
    target = reshape(target, () if x.ndim == 1 else (x.shape[0], 1, *x.shape[2:]))
    # a0 = input, a1 = target, a2 = class id, a3 = weight: the entry each sample picks
    picked = sp.And(sp.Eq(arg(1), arg(2)), sp.Ne(arg(1), ignore_index))
    w = arg(3) if weight else sp.Integer(1)
    inputs = [x, target, class_ids, *(reshape(v, class_ids.shape) for v in weight)]
    selected = elementwise(Select((-w * arg(0), picked), (0, True)), inputs, x.dtype)
    if reduction == "none":
        return reduce_sum(selected, (0 if x.ndim == 1 else 1,))
    total = reduce_sum(selected)
    if reduction == "sum":
        return total
    total_weight = reduce_sum(elementwise(Select((w, picked), (0, True)), inputs, x.dtype))
    return elementwise(arg(0) / arg(1), [total, total_weight], x.dtype)


def _nll_grad_fn(reduction, ignore_index, has_weight, two_d) -> str:
    return "NllLoss2DBackward0" if two_d else "NllLossBackward0"


NLL_LOSS = StructuralOp(
    "nll_loss", _nll_grad_fn, infer=_nll_infer, forward=_nll_forward, lower=_nll_lower,
    value_only=(1, 2, 3),  # target, class ids and weight are not graph edges (PyTorch's node has one)
    saves=lambda needs_grad: {0, 1} | ({3} if len(needs_grad) == 4 else set()),  # input, target, weight
)


# PyTorch's composite losses (cross_entropy with label smoothing or probability
# targets) multiply and divide by C++ Scalars: MulBackward1 / DivBackward1, one edge.
SCALAR_MUL = ElementwiseOp("mul_scalar", lambda a, s: a * s, "MulBackward1", arity=2, numpy=np.multiply,
                           value_only=(1,))
# the smoothed probability target `target * (1 - ls) + ls / C`: AddBackward1, one edge
SCALAR_ADD = ElementwiseOp("add_scalar", lambda a, s: a + s, "AddBackward1", arity=2, numpy=np.add,
                           value_only=(1,))
SCALAR_DIV = ElementwiseOp("div_scalar", lambda a, s: a / s, "DivBackward1", arity=2, float_result=True,
                           numpy=np.true_divide, value_only=(1,))


def _masked_fill_dtype_check(operands):
    if operands[1].dtype is not dtypes.bool:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{type_name(operands[1].dtype).lower()}")


# Tensor.masked_fill(mask, value) with a number: PyTorch's MaskedFillBackward0 (the
# label-smoothing term of cross_entropy zeroes the ignored samples with it)
MASKED_FILL = ElementwiseOp("masked_fill", lambda a, mask, value: Select((value, sp.Ne(mask, 0)), (a, True)),
                            "MaskedFillBackward0", arity=3, value_only=(1, 2), check=_masked_fill_dtype_check)
