"""``torch.nn.functional``-compatible functions, generated from the op table (``Api.nn`` names)."""

from __future__ import annotations

import numpy as np

from ..functional import _vector_norm, broadcast_to, matmul, public_function, reshape
from ..ops.linalg import ADDMM, CLAMPED_CLONE, NORM_CLAMP_MIN
from ..ops.registry import REGISTRY, broadcast_error_shapes
from ..ops.structural import normalize_dim
from ..tensor import _as_operand, apply

__all__: list[str] = []


def _publish() -> None:
    for op in list(REGISTRY.values()):
        if op.api is None:
            continue
        for name in op.api.nn:
            globals()[name] = public_function(op, op.api.signature)
            __all__.append(name)


_publish()


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
