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
from .ops import linalg as la
from .ops import reductions as rd
from .ops import shape as sh
from .ops import structural as st
from .ops.registry import REGISTRY, Op, broadcast_error_shapes
from .tensor import Tensor, _as_operand, _make, apply, is_recorded

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
        chosen = op if len(parsed) == 2 else parsed[2]
        if chosen.inplace:  # `inplace=True` of an activation
            return operands[0]._inplace(chosen, operands, parsed[1])
        return apply(chosen, operands, parsed[1])
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
    """Matrix product with PyTorch's rules for 1-D, 2-D and batched (N-D, broadcast batch) operands.

    The same decomposition as PyTorch, so the same ``grad_fn`` chain: 1-D @ 1-D
    is ``dot``, 2-D @ 1-D ``mv``, 1-D @ 2-D unsqueezes, multiplies and squeezes
    (``SqueezeBackward4 -> MmBackward0``), 2-D @ 2-D ``mm``; N-D @ 1-D/2-D
    folds the batch into the rows of one ``mm``/``mv`` (``UnsafeViewBackward0``)
    where PyTorch does; otherwise both operands are expanded to the broadcast
    batch, flattened to 3-D and multiplied by ``bmm`` (``UnsafeViewBackward0 ->
    BmmBackward0``).

    >>> import symgrad
    >>> symgrad.matmul(symgrad.ones(5), symgrad.ones(5, 3))
    tensor([5., 5., 5.])
    >>> w = symgrad.ones(2, 1, 3, 4, requires_grad=True)
    >>> (w @ symgrad.ones(5, 4, 2)).grad_fn
    <UnsafeViewBackward0 object at 0x...>
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
        if is_recorded(a):
            row = a.unsqueeze(0)
        else:  # the same view, unrecorded: it shares a's data and version counter
            row = _make(a._data.reshape(1, -1), a.dtype)
            row._version_counter = a._version_counter
        return apply(st.SQUEEZE, (apply(st.MM, (row, b)),), ((0,), 4))
    if a.ndim == 2 and b.ndim == 2:
        return apply(st.MM, (a, b))
    if _should_fold(a, b):
        return _folded_matmul(a, b)
    return _batched_matmul(a, b)


def _should_fold(a: Tensor, b: Tensor) -> bool:
    """PyTorch's choice of one ``mm``/``mv`` over the folded batch of the larger operand instead of ``bmm``."""
    a_larger = a.ndim >= b.ndim
    big, small = (a, b) if a_larger else (b, a)
    if not (big.ndim >= 3 and small.ndim <= 2):
        return False
    if small.requires_grad:  # folding spares the backward a batch of gradients of the small operand
        return True
    if a.ndim == 2:  # folding would need a transposed copy of the result
        return False
    if big.numel() == 0:
        return True
    shape, strides = list(big.shape), list(big._data.strides)
    if not a_larger:  # PyTorch folds b.mT
        shape[-2:], strides[-2:] = shape[:-3:-1], strides[:-3:-1]
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(len(shape) - 2))


def _folded_matmul(a: Tensor, b: Tensor) -> Tensor:
    transpose = b.ndim > a.ndim
    big = b.mT if transpose else a
    small = (a.t() if a.ndim == 2 else a) if transpose else b
    rows = big.shape[:-1]
    folded = reshape(big, (int(np.prod(rows, dtype=np.int64)), big.shape[-1]))
    if small.ndim == 1:
        return apply(sh.UNSAFE_VIEW, (apply(st.MV, (folded, small)),), (rows,))
    output = apply(sh.UNSAFE_VIEW, (apply(st.MM, (folded, small)),), (rows + (small.shape[1],),))
    return _contiguous(output.mT) if transpose else output


def _contiguous(x: Tensor) -> Tensor:
    return x if x._data.flags.c_contiguous else apply(sh.CLONE, (x,), (True,))


def contiguous(self: Tensor, memory_format=None) -> Tensor:
    """Itself when its data is C-contiguous, else a contiguous copy (``CloneBackward0``), as PyTorch.

    >>> import symgrad
    >>> w = symgrad.ones(2, 3, requires_grad=True)
    >>> w.contiguous() is w, w.t().contiguous().grad_fn
    (True, <CloneBackward0 object at 0x...>)
    """
    if memory_format is not None and str(memory_format) not in ("torch.contiguous_format", "contiguous_format"):
        raise NotImplementedError(f"contiguous(memory_format={memory_format!r}): only the default layout exists")
    return _contiguous(self)


def is_contiguous(self: Tensor, memory_format=None) -> bool:
    """Whether the data is laid out row-major without gaps (PyTorch's default layout).

    >>> import symgrad
    >>> symgrad.ones(2, 3).is_contiguous(), symgrad.ones(2, 3).t().is_contiguous()
    (True, False)
    """
    return bool(self._data.flags.c_contiguous)


Tensor.contiguous = contiguous
Tensor.is_contiguous = is_contiguous


def _batched_matmul(a: Tensor, b: Tensor) -> Tensor:
    n, m1 = (a.shape[-2] if a.ndim > 1 else 1), a.shape[-1]
    m2, p = (b.shape[-2], b.shape[-1]) if b.ndim > 1 else (b.shape[0], 1)
    batch_a, batch_b = tuple(a.shape[:-2]), tuple(b.shape[:-2])
    if a.ndim == 3 and b.ndim == 3 and batch_a[0] != batch_b[0]:
        # as PyTorch: a batch of one that requires grad is squeezed, so that matmul folds instead
        if batch_a[0] == 1 and a.requires_grad:
            return matmul(a.squeeze(0), b)
        if batch_b[0] == 1 and b.requires_grad:
            return matmul(a, b.squeeze(0))
    batch = broadcast_error_shapes(batch_a, batch_b)
    count = int(np.prod(batch, dtype=np.int64))
    left = reshape(a.expand(batch + (n, m1)), (count, n, m1))
    if b.ndim == 1:
        right = reshape(b.expand(batch + (m2,)), (count, m2)).unsqueeze(2)
    else:
        right = reshape(b.expand(batch + (m2, p)), (count, m2, p))
    product = apply(la.BMM, (left, right))
    if b.ndim == 1:
        product = product.squeeze(-1)
    shape = batch + ((n,) if a.ndim > 1 else ()) + ((p,) if b.ndim > 1 else ())
    return apply(sh.UNSAFE_VIEW, (product,), (shape,))


def einsum(equation, *operands) -> Tensor:
    """Sum of products over labelled dimensions, with ``torch.einsum``'s equations and rules.

    ``'ij,jk->ik'`` (explicit output), ``'ij,jk'`` (implicit: the labels used
    once, alphabetically), ``'...'`` for broadcast leading dimensions, a label
    repeated in one operand for its diagonal (``'ii->i'``), size-1 dimensions
    broadcasting; operands may also be given as one list, or in the sublist
    format ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.  The ``grad_fn`` is the
    last node of PyTorch's chain (``ViewBackward0`` after a contraction of
    several operands, ``MulBackward0`` without one, ``SumBackward1`` or
    ``PermuteBackward0`` for one operand); the chain below it is one node.

    >>> import symgrad
    >>> symgrad.einsum("ii", symgrad.tensor([[1., 2.], [3., 4.]]))
    tensor(5.)
    >>> symgrad.einsum("bij,bjk->bik", symgrad.ones(2, 1, 3), symgrad.ones(2, 3, 4)).shape
    symgrad.Size([2, 1, 4])
    """
    if not isinstance(equation, str):
        equation, operands = _sublist_equation(equation, operands)
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): must specify the equation string and at least one operand, or at least one "
                         "operand and its subscripts list")
    tensors = tuple(_as_operand(x) for x in operands)
    subscripts = la.einsum_subscripts(equation, [x.shape for x in tensors])
    return apply(la.EINSUM, tensors, (subscripts, la.einsum_dtype(subscripts, tensors).name))


def _sublist_equation(first, rest) -> tuple[str, tuple]:
    """``(op0, sublist0, op1, sublist1, …, [output])`` as an equation and the operands."""
    items = (first, *rest)
    operands, sublists = items[0::2], items[1::2]
    output = None
    if len(items) % 2 == 1 and len(items) > 1:  # a trailing output sublist
        operands, output = operands[:-1], items[-1]

    def letters(sublist) -> str:
        return "".join("..." if s is Ellipsis else (chr(ord("A") + s) if s < 26 else chr(ord("a") + s - 26))
                       for s in sublist)

    equation = ",".join(letters(s) for s in sublists)
    return (equation if output is None else f"{equation}->{letters(output)}"), operands


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
__all__ += ["reshape", "flatten", "broadcast_to", "outer", "max", "min", "norm", "einsum"]
