"""``torch.linalg``-compatible functions: generated from the op table (``Api.linalg`` names), plus ``norm``.

>>> import symgrad
>>> symgrad.linalg.norm(symgrad.tensor([[1., 2.], [2., 4.]]))
tensor(5.)
"""

from __future__ import annotations

import math

from . import functional
from .functional import _vector_norm, public_function
from .ops.registry import REGISTRY
from .ops.structural import normalize_dim
from .tensor import _as_operand

__all__: list[str] = ["norm", "matrix_norm", "matmul"]

matmul = functional.matmul  # torch.linalg.matmul is an alias of torch.matmul


def _publish() -> None:
    for op in list(REGISTRY.values()):
        if op.api is None:
            continue
        for name in op.api.linalg:
            globals()[name] = public_function(op, op.api.signature)
            __all__.append(name)


_publish()


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):  # noqa: N803 - PyTorch's name
    """A norm of the matrices in the last two (or the given) dimensions, as ``torch.linalg.matrix_norm``.

    ``'fro'`` is the 2-norm of the entries (``LinalgVectorNormBackward0``);
    ``1``/``-1`` are the largest/smallest column sum of magnitudes and
    ``inf``/``-inf`` the largest/smallest row sum (``AmaxBackward0`` or
    ``AminBackward0`` over a 1-norm, PyTorch's chain; ties share the gradient).
    The spectral and nuclear norms (``2``, ``-2``, ``'nuc'``) are not supported.

    >>> import symgrad
    >>> symgrad.linalg.matrix_norm(symgrad.ones(3, 2, 2))
    tensor([2., 2., 2.])
    >>> symgrad.linalg.matrix_norm(symgrad.tensor([[1., -2.], [3., 4.]]), ord=1)
    tensor(6.)
    """
    x = _as_operand(A)
    if x.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    if ord == "fro":
        return _vector_norm(x, 2, dim, keepdim, dtype=dtype)
    if isinstance(ord, str) or abs(ord) not in (1, math.inf):
        raise NotImplementedError(f"linalg.matrix_norm(ord={ord!r}) is not supported (it needs singular values)")
    rows, columns = (normalize_dim(d, x.ndim) for d in dim)
    if abs(ord) == math.inf:  # the inf-norm is the 1-norm of the transpose
        rows, columns = columns, rows
    if not keepdim and rows < columns:
        columns -= 1
    sums = _vector_norm(x, 1, rows, keepdim, dtype=dtype)
    return (functional.amax if ord > 0 else functional.amin)(sums, columns, keepdim)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):  # noqa: N803
    """The vector norm (1-D, one ``dim``) or matrix norm (2-D, two dims) of ``A``, as ``torch.linalg.norm``.

    Without ``ord`` and ``dim`` it is the 2-norm of all elements (the Frobenius
    norm of a matrix), ``LinalgVectorNormBackward0``; matrix ``ord`` as in
    :func:`matrix_norm`.

    >>> import symgrad
    >>> symgrad.linalg.norm(symgrad.tensor([3., -4.]), ord=1)
    tensor(7.)
    """
    x = _as_operand(A)
    dims = None if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    if ord is None:
        if dims is not None and len(dims) not in (1, 2):
            raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {list(dims)}")
        return _vector_norm(x, 2, dim, keepdim, dtype=dtype)
    if dims is None:
        if x.ndim not in (1, 2):
            raise RuntimeError("linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                               f"Got {x.ndim}D.")
        dims = tuple(range(x.ndim))
    if len(dims) == 1 and not isinstance(ord, str):
        return _vector_norm(x, ord, dims, keepdim, dtype=dtype)
    if len(dims) in (1, 2) and (isinstance(ord, str) or len(dims) == 2):
        return matrix_norm(x, ord, dims, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {list(dims)}")
