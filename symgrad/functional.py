"""The public functions and methods of the op table, plus the composites.

Every op record that declares an :class:`~symgrad.ops.registry.Api` becomes
``symgrad.<name>`` and ``Tensor.<name>`` here, with PyTorch's signature and the
record's docstring; nothing about an op is written twice.  The composites
(``matmul``, ``pow``, ``reshape``, ``max`` …) choose between records the way PyTorch does and build
the same chain of ``grad_fn`` nodes.
"""

from __future__ import annotations

import functools
import inspect
from collections import namedtuple

import numpy as np

from . import dtypes
from .ops import elementwise as ew
from .ops import reductions as rd
from .ops import shape as sh
from .ops import structural as st
from .ops.registry import REGISTRY, Op
from .tensor import Tensor, _as_operand, _make, apply

__all__ = ["matmul", "pow", "public_function"]


def public_function(op: Op, signature):
    """The public function for ``op``: parse PyTorch's arguments, then :func:`apply`.

    The first argument (``input``) may be a tensor, a NumPy array or a nested list.

    >>> import symgrad
    >>> from symgrad.ops.elementwise import EXP
    >>> public_function(EXP, EXP.api.signature)([0.0])
    tensor([1.])
    """
    def function(*args, **kwargs):
        if args and type(args[0]) is not Tensor:
            args = (_as_operand(args[0]), *args[1:])
        parsed = signature(*args, **kwargs)  # (operands, attrs), or (operands, attrs, sibling op)
        operands = tuple(x if type(x) is Tensor else _as_operand(x) for x in parsed[0])
        return apply(op if len(parsed) == 2 else parsed[2], operands, parsed[1])
    functools.update_wrapper(function, signature)
    function.__qualname__ = signature.__name__
    function.__module__ = "symgrad"
    function.__signature__ = inspect.signature(signature)
    return function


def _publish() -> None:
    for op in list(REGISTRY.values()):
        if op.api is None:
            continue
        function = public_function(op, op.api.signature)
        for name in op.api.functions:
            globals()[name] = function
            __all__.append(name)
        if op.api.method_signature is not None:
            function = public_function(op, op.api.method_signature)
        for name in op.api.methods:
            setattr(Tensor, name, function)  # `input` binds to self


_publish()


def pow(input, exponent) -> Tensor:  # noqa: A001 - PyTorch's name
    """``input ** exponent``: ``PowBackward0`` for a number exponent, ``PowBackward1`` for a tensor one,
    ``PowBackward2`` for a number base.

    >>> import symgrad
    >>> symgrad.pow(symgrad.tensor([2., 3.]), 2)
    tensor([4., 9.])
    """
    if isinstance(input, bool | int | float):
        return apply(ew.RPOW, (_as_operand(exponent), input))
    base = _as_operand(input)
    if isinstance(exponent, bool | int | float):
        return apply(ew.POW, (base,), (exponent,))
    return apply(ew.POW_TENSOR, (base, _as_operand(exponent)))


Tensor.pow = pow


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules for 1-D and 2-D operands.

    1-D @ 1-D is ``dot``; 2-D @ 1-D is ``mv``; 1-D @ 2-D unsqueezes the vector,
    multiplies and squeezes (``SqueezeBackward4 -> MmBackward0``), as PyTorch;
    N-D @ 2-D folds the leading dimensions into rows (``UnsafeViewBackward0 ->
    MmBackward0 -> ViewBackward0``).

    >>> import symgrad
    >>> symgrad.matmul(symgrad.ones(5), symgrad.ones(5, 3))
    tensor([5., 5., 5.])
    """
    a, b = _as_operand(input), _as_operand(other)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {a.ndim}D and "
                           f"{b.ndim}D")
    if a.ndim == 1 and b.ndim == 1:
        return apply(st.DOT, (a, b))
    if a.ndim == 2 and b.ndim == 1:
        return apply(st.MV, (a, b))
    if a.ndim == 1 and b.ndim == 2:
        if a.requires_grad:
            row = a.unsqueeze(0)
        else:  # the same view, unrecorded: it shares a's data and version counter
            row = _make(a._data.reshape(1, -1), a.dtype)
            row._version_counter = a._version_counter
        return apply(st.SQUEEZE, (apply(st.MM, (row, b)),), ((0,), 4))
    if a.ndim == 2 and b.ndim == 2:
        return apply(st.MM, (a, b))
    if a.ndim >= 3 and b.ndim == 2:  # PyTorch folds the batch into the rows of one mm
        rows = apply(st.MM, (reshape(a, (-1, a.shape[-1])), b))
        return apply(sh.UNSAFE_VIEW, (rows,), (a.shape[:-1] + (b.shape[1],),))
    raise NotImplementedError(f"matmul of {a.ndim}-D and {b.ndim}-D tensors is not supported yet")


def _rmatmul(self: Tensor, other) -> Tensor:
    return matmul(_as_operand(other), self)


Tensor.matmul = Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = _rmatmul


# ----------------------------------------------------------------- shape composites
# (records in symgrad/ops/shape.py; these choose between them as PyTorch does)


def reshape(input, *shape) -> Tensor:
    """The same elements with another shape (``-1`` infers one size): a view when the layout allows.

    As in PyTorch: contiguous data gives ``ViewBackward0``; a non-contiguous
    tensor that can still be viewed ``ReshapeAliasBackward0``; otherwise the
    data is copied (``CloneBackward0`` then ``UnsafeViewBackward0``).

    >>> import symgrad
    >>> w = symgrad.ones(2, 3, requires_grad=True)
    >>> w.reshape(-1).grad_fn, w.t().reshape(-1).grad_fn.next_functions[0][0]
    (<ViewBackward0 object at 0x...>, <CloneBackward0 object at 0x...>)
    """
    x = _as_operand(input)
    target = sh.infer_size(sh.size_arguments(shape), x.numel())
    if x._data.flags.c_contiguous:
        return apply(sh.VIEW, (x,), (target,))
    try:
        np.reshape(x._data, target, copy=False)
    except ValueError:  # not viewable: a contiguous copy, then a view of it
        return apply(sh.UNSAFE_VIEW, (apply(sh.CLONE, (x,), (True,)),), (target,))
    return apply(sh.RESHAPE_ALIAS, (x,), (target,))


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim`` … ``end_dim`` into one (a ``reshape``; itself when nothing merges).

    >>> import symgrad
    >>> symgrad.ones(2, 3, 4).flatten(1).shape
    symgrad.Size([2, 12])
    """
    x = _as_operand(input)
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = st.normalize_dim(start_dim, x.ndim), st.normalize_dim(end_dim, x.ndim)
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if start == end:
        return x
    merged = int(np.prod(x.shape[start:end + 1], dtype=np.int64))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def broadcast_to(input, size) -> Tensor:
    """``input`` expanded to ``size`` (``ExpandBackward0``), PyTorch's broadcasting rules and errors.

    >>> import symgrad
    >>> symgrad.broadcast_to(symgrad.ones(3), (2, 3)).shape
    symgrad.Size([2, 3])
    """
    x = _as_operand(input)
    return apply(sh.EXPAND, (x,), (sh.expand_shape(x.shape, sh.size_arguments((size,)), x.dtype),))


def _expand_as(self: Tensor, other: Tensor) -> Tensor:
    """This tensor expanded to ``other``'s shape (``ExpandBackward0``).

    >>> import symgrad
    >>> symgrad.ones(3).expand_as(symgrad.zeros(2, 3)).shape
    symgrad.Size([2, 3])
    """
    return apply(sh.EXPAND, (self,), (sh.expand_shape(self.shape, tuple(other.shape), self.dtype),))


def _view_as(self: Tensor, other: Tensor) -> Tensor:
    """``self.view(other.shape)`` (``ViewBackward0``).

    >>> import symgrad
    >>> symgrad.ones(6).view_as(symgrad.zeros(2, 3)).shape
    symgrad.Size([2, 3])
    """
    return self.view(tuple(other.shape))


def _reshape_as(self: Tensor, other: Tensor) -> Tensor:
    """``self.reshape(other.shape)``.

    >>> import symgrad
    >>> symgrad.ones(2, 3).t().reshape_as(symgrad.zeros(6)).shape
    symgrad.Size([6])
    """
    return reshape(self, tuple(other.shape))


def _matrix_transpose(name: str, matrices_only: bool = False):
    def transpose(self: Tensor) -> Tensor:
        if matrices_only and self.ndim != 2:
            raise RuntimeError(f"tensor.{name} is only supported on matrices (2-D tensors). Got {self.ndim}-D "
                               "tensor. For batches of matrices, consider using tensor.mH")
        if self.ndim < 2:
            raise RuntimeError(f"tensor.{name} is only supported on matrices or batches of matrices. Got "
                               f"{self.ndim}-D tensor.")
        return self.transpose(-2, -1)
    transpose.__name__ = name
    transpose.__doc__ = (f"The last two dimensions swapped (``TransposeBackward0``), as PyTorch's ``.{name}``.\n\n"
                         f"    >>> import symgrad\n"
                         f"    >>> symgrad.ones(2, 3).{name}.shape\n"
                         f"    symgrad.Size([3, 2])\n")
    return property(transpose)


Tensor.reshape = reshape
Tensor.flatten = flatten
Tensor.broadcast_to = broadcast_to
Tensor.expand_as = _expand_as
Tensor.view_as = _view_as
Tensor.reshape_as = _reshape_as
Tensor.mT = _matrix_transpose("mT")
Tensor.mH = _matrix_transpose("mH")  # real dtypes only: the conjugate is the tensor itself
Tensor.H = _matrix_transpose("H", matrices_only=True)


def outer(input, vec2) -> Tensor:
    """Outer product of two vectors: ``input`` as a column times ``vec2`` (``MulBackward0`` over ``ViewBackward0``).

    >>> import symgrad
    >>> symgrad.outer(symgrad.tensor([1., 2.]), symgrad.tensor([1., 10., 100.]))
    tensor([[  1.,  10., 100.],
            [  2.,  20., 200.]])
    """
    a, b = _as_operand(input), _as_operand(vec2)
    for name, v in (("self", a), ("vec2", b)):
        if v.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {v.ndim}-D")
    return reshape(a, (a.shape[0], 1)) * b


Tensor.outer = outer


# ------------------------------------------------------------- max/min, norm

_return_max = namedtuple("max", ["values", "indices"])
_return_min = namedtuple("min", ["values", "indices"])


def _extreme(name: str, largest: bool):
    whole, along = (rd.MAX_ALL, rd.MAX_DIM) if largest else (rd.MIN_ALL, rd.MIN_DIM)
    result_type = _return_max if largest else _return_min

    def extreme(input, dim=None, keepdim=False):
        x = _as_operand(input)
        if isinstance(dim, Tensor):  # max(input, other) is maximum(input, other)
            other = globals().get("maximum" if largest else "minimum")
            if other is None:
                raise NotImplementedError(f"{name}(input, other) needs symgrad.{'maximum' if largest else 'minimum'}")
            return other(x, dim)
        if dim is None:
            dims = tuple(range(x.ndim))
            rd.check_nonempty(name, x.shape, dims, True)
            return apply(whole, (x, _as_operand(rd.extreme_reference(x, dims, largest))), (dims, False))
        d = st.normalize_dim(dim, x.ndim)
        dims = (d,) if x.ndim else ()
        rd.check_nonempty(name, x.shape, dims, False)
        indices, one_hot = rd.selection_reference(x, d, largest)
        values = apply(along, (x, _as_operand(one_hot)), (dims, bool(keepdim)))
        return result_type(values, _make(indices.reshape(values.shape), dtypes.int64))

    extreme.__name__ = extreme.__qualname__ = name
    word = "largest" if largest else "smallest"
    extreme.__doc__ = f"""The {word} element (``{name.capitalize()}Backward1``), or ``(values, indices)`` along ``dim``.

    Without ``dim`` the gradient is split evenly among ties; with ``dim`` it goes
    to the element whose index is returned (``{name.capitalize()}Backward0``), as in PyTorch.
    A tensor as second argument is ``{'maximum' if largest else 'minimum'}``.

    >>> import symgrad
    >>> x = symgrad.tensor([[1., 5.], [7., 2.]], requires_grad=True)
    >>> symgrad.{name}(x, 1).indices
    tensor([{'1, 0' if largest else '0, 1'}])
    """
    return extreme


max = _extreme("max", True)  # noqa: A001 - PyTorch's names
min = _extreme("min", False)  # noqa: A001
Tensor.max = max
Tensor.min = min


def norm(input, p="fro", dim=None, keepdim=False, dtype=None) -> Tensor:
    """The vector ``p``-norm over all elements or ``dim`` (``LinalgVectorNormBackward0``); ``'fro'`` is p = 2.

    Matrix norms other than Frobenius (``'nuc'``) are not supported.

    >>> import symgrad
    >>> symgrad.tensor([[3., 0.], [0., 4.]]).norm()
    tensor(5.)
    """
    if isinstance(p, str):
        dims = () if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
        if p != "fro" or len(dims) > 2:
            raise NotImplementedError(f"norm(p={p!r}) is not supported; symgrad has vector norms and 'fro'")
        p = 2
    return _vector_norm(input, p, dim, keepdim, dtype=dtype)


_vector_norm = public_function(rd.VECTOR_NORM, rd.VECTOR_NORM.api.signature)
Tensor.norm = norm
__all__ += ["reshape", "flatten", "broadcast_to", "outer", "max", "min", "norm"]
