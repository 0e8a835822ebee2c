"""``torch.nn.functional``-compatible functions, generated from the op table (``Api.nn`` names)."""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from .. import random as _random
from ..functional import _vector_norm, broadcast_to, log_softmax, matmul, public_function, reshape
from ..functional import relu as _relu
from ..ops import losses as ls
from ..ops.activations import RELU_
from ..ops.elementwise import type_name
from ..ops.linalg import ADDMM, CLAMPED_CLONE, NORM_CLAMP_MIN
from ..ops.registry import REGISTRY, broadcast_error_shapes
from ..ops.shape import CLONE
from ..ops.structural import normalize_dim
from ..tensor import Tensor, _as_operand, apply

__all__: list[str] = []


def _publish() -> None:
    for op in list(REGISTRY.values()):
        if op.api is None:
            continue
        for name in op.api.nn:
            globals()[name] = public_function(op, op.api.signature)
            __all__.append(name)


_publish()


def relu(input, inplace: bool = False):
    """``max(input, 0)`` (``ReluBackward0``), as ``torch.nn.functional.relu``; ``inplace=True`` overwrites ``input``.

    >>> import symgrad
    >>> x = symgrad.tensor([-1.0, 2.0])
    >>> symgrad.nn.functional.relu(x, inplace=True) is x, x
    (True, tensor([0., 2.]))
    """
    if inplace:
        x = _as_operand(input)
        return x._inplace(RELU_, (x,), ())
    return _relu(input)


# ------------------------------------------------------------------ composites
# linear, cosine_similarity and normalize record the chains of nodes PyTorch builds.

def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` with PyTorch's chain of nodes.

    2-D input with a bias is one ``AddmmBackward0`` (over ``TBackward0`` of the
    weight); other contiguous inputs with a 1-D bias are flattened to 2-D first
    (``ViewBackward0 -> AddmmBackward0 -> ViewBackward0``); without a bias it is
    ``matmul(input, weight.t())``.

    >>> import symgrad
    >>> w = symgrad.ones(2, 3, requires_grad=True)
    >>> y = symgrad.nn.functional.linear(symgrad.ones(4, 3), w, symgrad.zeros(2))
    >>> y.grad_fn, y.shape
    (<AddmmBackward0 object at 0x...>, symgrad.Size([4, 2]))
    """
    x, w = _as_operand(input), _as_operand(weight)
    if x.ndim == 0 or w.ndim == 0:
        raise RuntimeError(f"both arguments to linear need to be at least 1D, but they are {x.ndim}D and "
                           f"{w.ndim}D")
    b = None if bias is None else _as_operand(bias)
    wt = w.t()
    if b is not None and x.ndim == 2:
        return apply(ADDMM, (b, x, wt), (1, 1))
    if b is not None and x._data.flags.c_contiguous and (x.ndim == 3 or b.ndim == 1):
        rows = int(np.prod(x.shape[:-1], dtype=np.int64))
        out = apply(ADDMM, (b, reshape(x, (rows, x.shape[-1])), wt), (1, 1))
        return out.view(x.shape[:-1] + (out.shape[1],))
    out = matmul(x, wt)
    return out if b is None else out + b


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim`` (broadcasting), each norm at least ``eps``.

    Records PyTorch's chain: ``SumBackward1 -> MulBackward0 -> DivBackward0``
    of each input by its norm, clamped as PyTorch does: the value is at least
    ``eps`` but the gradient passes through the clamp (``CloneBackward0``).

    >>> import symgrad
    >>> symgrad.nn.functional.cosine_similarity(symgrad.tensor([[1., 0.]]), symgrad.tensor([[1., 1.]]))
    tensor([0.7071])
    """
    a, b = _as_operand(x1), _as_operand(x2)
    if tuple(a.shape) != tuple(b.shape):
        shape = broadcast_error_shapes(tuple(a.shape), tuple(b.shape))
        a, b = broadcast_to(a, shape), broadcast_to(b, shape)
    d = normalize_dim(dim, a.ndim)

    def unit(v):
        length = _vector_norm(v, 2, d, True)
        data = length.detach().numpy()
        correction = _as_operand(np.maximum(data, eps) - data)  # PyTorch's in-place clamp under no_grad
        return v / apply(CLAMPED_CLONE, (length, correction))

    return (unit(a) * unit(b)).sum(d)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input`` divided by its ``p``-norm along ``dim``, the norm clamped to at least ``eps``.

    PyTorch's chain: ``DivBackward0 -> ExpandBackward0 -> ClampMinBackward0 -> LinalgVectorNormBackward0``.

    >>> import symgrad
    >>> symgrad.nn.functional.normalize(symgrad.tensor([[3., 4.]]))
    tensor([[0.6000, 0.8000]])
    """
    if out is not None:
        raise NotImplementedError("normalize(out=...) is not supported")
    x = _as_operand(input)
    denominator = apply(NORM_CLAMP_MIN, (x.norm(p, dim, keepdim=True),), (eps,))
    return x / denominator.expand_as(x)


__all__ += ["linear", "cosine_similarity", "normalize"]


# ------------------------------------------------------------ classification losses (issue 3)
# nll_loss and cross_entropy record the chains PyTorch builds (log_softmax, views
# for spatial inputs, the label-smoothing sum); the nll node itself is one
# record, symgrad.ops.losses.NLL_LOSS, whose target is a runtime operand.

def _reduction_argument(size_average, reduce, reduction) -> str:
    if size_average is not None or reduce is not None:
        return ls.legacy_reduction(size_average, reduce, stacklevel=4)
    if reduction not in ls.REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _nll_nd(logp: Tensor, target: Tensor, weight, reduction: str, ignore_index: int) -> Tensor:
    """PyTorch's ``nll_loss_nd``: 1-D, 2-D and 4-D inputs directly, others viewed as 4-D (``ViewBackward0``)."""
    ls.check_nll_batch(logp, target)
    if logp.ndim == 3 or logp.ndim > 4:
        n, c, spatial = logp.shape[0], logp.shape[1], tuple(logp.shape[2:])
        flat = (n, c, 1, -1) if logp.numel() else (n, c, 0, 0)
        # PyTorch's input.contiguous().view(...): a CloneBackward0 first for a non-contiguous input
        contiguous = logp if logp._data.flags.c_contiguous else apply(CLONE, (logp,), (True,))
        out = _nll(contiguous.view(flat), reshape(target, (n, 1, -1) if target.numel() else (n, 0, 0)), weight,
                   reduction, ignore_index)
        return out.view((n, *spatial)) if reduction == "none" else out
    return _nll(logp, target, weight, reduction, ignore_index)


def _nll(logp, target, weight, reduction, ignore_index) -> Tensor:
    operands, attrs = ls.nll_loss_arguments(logp, target, weight, ignore_index, reduction)
    return apply(ls.NLL_LOSS, tuple(_as_operand(x) for x in operands), attrs)


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices: ``-weight[t] * input[n, t]`` per sample, reduced.

    ``input`` holds log-probabilities, shape ``(C,)``, ``(N, C)`` or
    ``(N, C, d1, …)``; ``target`` holds ``int64`` class indices, shape ``()``,
    ``(N,)`` or ``(N, d1, …)``.  Samples whose target is ``ignore_index``
    count for nothing; ``'mean'`` divides by the sum of the weights of the
    other samples.  ``NllLossBackward0`` (``NllLoss2DBackward0`` for spatial
    inputs, between views as PyTorch).  The target is data: a training loop
    whose targets change compiles its backward once.

    >>> import symgrad
    >>> logp = symgrad.tensor([[-0.5, -1.0], [-2.0, -0.1]], requires_grad=True)
    >>> symgrad.nn.functional.nll_loss(logp, symgrad.tensor([1, 0]))
    tensor(1.5000, grad_fn=<NllLossBackward0>)
    """
    x, t = _as_operand(input), _as_operand(target)
    reduction = _reduction_argument(size_average, reduce, reduction)
    return _nll_nd(x, t, None if weight is None else _as_operand(weight), reduction, int(ignore_index))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits ``input`` against class indices or class probabilities ``target``.

    Class indices (``int64``, shaped as for :func:`nll_loss`): ``log_softmax``
    along the class dimension, then ``nll_loss`` (``NllLossBackward0`` over
    ``LogSoftmaxBackward0``).  A ``target`` of ``input``'s shape holds class
    probabilities (floats): ``-sum(weight * target * log_softmax(input))``
    over the classes (``NegBackward0``; ``DivBackward1`` for ``'mean'``,
    which divides by the number of samples).  ``label_smoothing`` mixes the
    target with the uniform distribution, as PyTorch (``AddBackward0`` on top
    for class indices).  Stable for any logits (``log_softmax`` shifts by the maximum).

    >>> import symgrad
    >>> z = symgrad.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    >>> symgrad.nn.functional.cross_entropy(z, symgrad.tensor([1]))
    tensor(20000., grad_fn=<NllLossBackward0>)
    """
    x, t = _as_operand(input), _as_operand(target)
    w = None if weight is None else _as_operand(weight)
    reduction = _reduction_argument(size_average, reduce, reduction)
    class_dim = 0 if x.ndim == 1 else 1
    if tuple(x.shape) == tuple(t.shape):
        if not t.dtype.is_floating_point:
            raise RuntimeError("Expected floating point type for target with class probabilities, got "
                               f"{type_name(t.dtype)}")
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        return _cross_entropy_probabilities(x, t, w, reduction, float(label_smoothing), class_dim)
    if label_smoothing > 0.0:
        _check_label_smoothing(label_smoothing)
        return _cross_entropy_smoothed(x, t, w, reduction, int(ignore_index), float(label_smoothing), class_dim)
    return _nll_nd(log_softmax(x, class_dim), t, w, reduction, int(ignore_index))


def _check_label_smoothing(label_smoothing: float) -> None:
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")


def _class_view(weight: Tensor, ndim: int, class_dim: int) -> Tensor:
    """The weight shaped to broadcast along the class dimension (a ``ViewBackward0`` when it needs one)."""
    if ndim <= 1:
        return weight
    return weight.view(tuple(weight.shape[0] if d == class_dim else 1 for d in range(ndim)))


def _cross_entropy_probabilities(x, t, w, reduction, label_smoothing, class_dim) -> Tensor:
    """PyTorch's ``cross_entropy_loss_prob_target``, node for node."""
    n_classes = x.shape[class_dim] if x.ndim else 1
    if w is not None and (w.ndim != 1 or w.numel() != n_classes):
        raise RuntimeError(f"cross_entropy: weight tensor should be defined either for all {n_classes} classes or no "
                           f"classes but got weight tensor of shape: [{', '.join(map(str, w.shape))}]")
    logp = log_softmax(x, class_dim)
    if label_smoothing > 0.0:
        _check_label_smoothing(label_smoothing)
        # PyTorch's C++ multiplies and adds Scalars here (MulBackward1 -> AddBackward1), not wrapped numbers
        t = apply(ls.SCALAR_ADD, (apply(ls.SCALAR_MUL, (t, 1 - label_smoothing)), label_smoothing / n_classes))
    terms = logp * t
    if w is not None:
        terms = terms * _class_view(w, x.ndim, class_dim)
    if reduction == "none":
        return -terms.sum(class_dim)
    total = terms.sum()
    if reduction == "sum":
        return -total
    if x.numel() == 0:
        return -total.fill_(math.nan)
    return apply(ls.SCALAR_DIV, (-total, x.numel() // n_classes))


def _cross_entropy_smoothed(x, t, w, reduction, ignore_index, label_smoothing, class_dim) -> Tensor:
    """PyTorch's ``cross_entropy_loss_label_smoothing``, node for node."""
    logp = log_softmax(x, class_dim)
    nll = _nll_nd(logp, t, w, reduction, ignore_index)
    n_classes = x.shape[class_dim]
    ignored = t == ignore_index
    smooth = -(logp if w is None else logp * _class_view(w, x.ndim, class_dim)).sum(class_dim)
    smooth = apply(ls.MASKED_FILL, (smooth, ignored, 0.0))
    if reduction == "mean":
        kept = t != ignore_index
        # the weights of the kept targets, computed with ops from the target (data, not a constant of the code)
        weights = None if w is None else w.detach() if w.requires_grad else w  # (a traced w stays traced)
        count = kept.sum() if w is None else (_target_weights(t, weights, class_dim) * kept).sum()
        smooth = smooth.sum() / count
    elif reduction == "sum":
        smooth = smooth.sum()
    return apply(ls.SCALAR_MUL, (nll, 1 - label_smoothing)) + apply(ls.SCALAR_MUL,
                                                                    (smooth, label_smoothing / n_classes))


def _target_weights(t: Tensor, w: Tensor, class_dim: int) -> Tensor:
    """``w[t]`` per sample (0 where ``t`` is no class): a one-hot comparison summed over the classes."""
    classes = _as_operand(np.arange(w.shape[0], dtype=np.int64))
    picked = t.unsqueeze(class_dim) == _class_view(classes, t.ndim + 1, class_dim)
    return (picked * _class_view(w, t.ndim + 1, class_dim)).sum(class_dim)


__all__ += ["nll_loss", "cross_entropy"]


# ------------------------------------------------------------ one_hot, dropout (issue 3)

def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """``int64`` one-hot encoding of class indices: shape ``(*tensor.shape, num_classes)``.

    ``num_classes=-1`` takes the largest index plus one.

    >>> import symgrad
    >>> symgrad.nn.functional.one_hot(symgrad.tensor([0, 2]))
    tensor([[1, 0, 0],
            [0, 0, 1]])
    """
    t = _as_operand(tensor)
    if t.dtype is not dtypes.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    values = t.detach().numpy()
    if num_classes == -1 and values.size == 0:
        raise RuntimeError("Can not infer total number of classes from empty tensor.")
    if values.size and values.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(values.max()) + 1
    if values.size and values.max() >= num_classes or num_classes < -1:
        raise RuntimeError("Class values must be smaller than num_classes.")
    # with ops, not NumPy: symgrad.compile records them, so a compiled function encodes each call's classes
    classes = _as_operand(np.arange(num_classes, dtype=np.int64))
    return (t.unsqueeze(-1) == classes).to(dtypes.int64)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the others by ``1/(1-p)`` (``MulBackward0``).

    ``training=False`` (and ``p=0``) returns ``input`` itself.  The mask comes
    from symgrad's generator, drawn as PyTorch's CPU ``bernoulli_`` draws it
    (one double uniform per element, kept where it is below ``1 - p``), so
    after the same ``manual_seed`` the masks are PyTorch's.

    >>> import symgrad
    >>> _ = symgrad.manual_seed(0)
    >>> symgrad.nn.functional.dropout(symgrad.ones(6), p=0.5)
    tensor([0., 0., 2., 0., 0., 0.])
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = _as_operand(input)
    if not training or p == 0 or x.numel() == 0:
        return x
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"result type {type_name(dtypes.get_default_dtype())} can't be cast to the desired output "
                           f"type {type_name(x.dtype)}")
    dtype = x.dtype.numpy
    if p == 1:
        mask = np.zeros((), dtype)
    else:
        keep = _random.uniform(tuple(x.shape), np.float64) < 1 - p  # PyTorch's bernoulli_distribution<double>
        mask = keep.astype(dtype) / dtype.type(1 - p)  # PyTorch: bernoulli_(1 - p).div_(1 - p) in x's dtype
    mask = _as_operand(mask)
    return x.mul_(mask) if inplace else x * mask


__all__ += ["one_hot", "dropout"]
