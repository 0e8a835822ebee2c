"""``x[index]``, ``cat``/``concat``, ``stack``, ``split`` and ``chunk``: composites over the indexing records.

``Tensor.__getitem__`` follows PyTorch's indexing (``applySlicing``): each
integer is a ``select`` (``SelectBackward0``), each slice a ``slice``
(``SliceBackward0``; inside a tuple, a slice written from 0 to the end, ``:``
or ``0:n``, is skipped), each ``None`` an ``unsqueeze``; integer arrays and
boolean masks (as the positions of their True entries), once all basic
indices are applied, become one ``index`` node (``IndexBackward0``) whose
index arrays are runtime operands; an index that changes nothing gives
``AliasBackward0``.  The records live in :mod:`symgrad.ops.indexing`.

``split``/``chunk`` return one tensor per piece, each with its own
``SplitBackward0`` node (PyTorch shares one node between the pieces).
"""

from __future__ import annotations

import math

import numpy as np

from . import dtypes
from .autograd.graph import name_value
from .functional import cumsum, flip, gather, index_select, narrow
from .grad_mode import is_grad_enabled, no_grad
from .ops import indexing as ix
from .ops import structural as st
from .ops.shape import expand_shape
from .symbolic.nodes import canonical_slice
from .tensor import Tensor, _as_operand, _make, apply

__all__ = ["getitem", "setitem", "cat", "concat", "concatenate", "stack", "split", "chunk", "cumsum", "flip",
           "gather", "index_select", "narrow"]

_INVALID = ("only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices "
            "(got {})")


# ------------------------------------------------------------------ reading an index

def _integer(item) -> int | None:
    """The Python int an index item stands for (ints, NumPy integers, 0-d int64 tensors), else None."""
    if isinstance(item, bool | np.bool_):
        return None
    if isinstance(item, int | np.integer):
        return int(item)
    if isinstance(item, Tensor) and item.ndim == 0 and item.dtype is dtypes.int64:
        return int(item._data)
    if isinstance(item, np.ndarray) and item.ndim == 0 and item.dtype.kind in "iu":
        return int(item)
    return None


def _array(item) -> np.ndarray | Tensor | None:
    """An index as an int64 tensor (the caller's own when it is one) or a boolean mask array;
    None when ``item`` is not a tensor-like."""
    if isinstance(item, Tensor):
        if item.dtype is dtypes.int64:
            return item  # the caller's tensor: the generated backward reads it by name
        array = item._data
    elif isinstance(item, np.ndarray):
        array = item
    elif isinstance(item, list | tuple):
        array = np.asarray(item)
        if array.dtype == object or array.dtype.kind in "USO":
            raise TypeError(f"new(): invalid data type '{type(item[0]).__name__ if item else 'list'}'")
        if array.size == 0:
            array = array.astype(np.int64)
        elif array.dtype.kind == "f":  # PyTorch converts a list of numbers to a long tensor
            array = array.astype(np.int64)
    else:
        return None
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind not in "iu":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return _index_tensor(array)


def _index_tensor(array: np.ndarray) -> Tensor:
    tensor = _make(np.ascontiguousarray(array, dtype=np.int64), dtypes.int64)
    name_value(tensor._data, "index")  # the generated backward's parameter name
    return tensor


def _parse(index) -> list:
    """The index as a list of items: ints, slices, None, Ellipsis, True/False, int64 arrays, bool masks."""
    items = []
    for item in index:
        if item is None or item is Ellipsis or isinstance(item, slice):
            items.append(item)
        elif isinstance(item, bool | np.bool_):
            items.append(bool(item))
        elif (number := _integer(item)) is not None:
            items.append(number)
        elif (array := _array(item)) is not None:
            is_mask = isinstance(array, np.ndarray)
            items.append(bool(array) if is_mask and array.ndim == 0 else array)
        elif isinstance(item, str):
            raise TypeError(f"new(): invalid data type '{type(item).__name__}'")
        else:
            raise IndexError(_INVALID.format(type(item).__name__))
    return items


def _consumed(item) -> int:
    """How many dims of the tensor an index item consumes."""
    if item is None or item is Ellipsis or isinstance(item, bool):
        return 0
    if isinstance(item, np.ndarray):  # a boolean mask
        return item.ndim
    return 1


# ------------------------------------------------------------------------ getitem

def getitem(self: Tensor, index) -> Tensor:
    """``self[index]`` with PyTorch's semantics, nodes and errors.

    Basic indexing (ints, slices, ``None``, ``...``) gives a view; integer
    arrays (lists, int64 tensors, NumPy arrays) and boolean masks give a copy
    whose gradient scatter-adds back (repeated indices accumulate).

    >>> import symgrad
    >>> x = symgrad.arange(6.0).reshape(2, 3).requires_grad_()
    >>> x[1], x[:, 1:], x[0, [2, 2]]
    (tensor([3., 4., 5.], grad_fn=<SelectBackward0>), tensor([[1., 2.],
            [4., 5.]], grad_fn=<SliceBackward0>), tensor([2., 2.], grad_fn=<IndexBackward0>))
    >>> x[x > 3].sum().backward(); x.grad
    tensor([[0., 0., 0.],
            [0., 1., 1.]])
    """
    if not isinstance(index, tuple):
        if self.ndim == 0 and _integer(index) is not None:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` "
                             "in C++ to convert a 0-dim tensor to a number")
        if isinstance(index, slice):  # a lone slice is always recorded, even a whole one (as in PyTorch)
            return _slice(self, 0, index, skip_whole=False)
        index = (index,)
    items = _parse(index)
    specified = sum(_consumed(item) for item in items)
    if specified > self.ndim:
        raise IndexError(f"too many indices for tensor of dimension {self.ndim}")
    result, dim, advanced = self, 0, []
    for item in items:
        if item is Ellipsis:
            dim += self.ndim - specified
        elif item is None:
            result, dim = apply(st.UNSQUEEZE, (result,), (dim,)), dim + 1
        elif isinstance(item, bool):  # a Python bool is a new axis indexed by a one-element mask
            result = apply(st.UNSQUEEZE, (result,), (dim,))
            advanced.append((dim, _index_tensor(np.arange(1 if item else 0))))
            dim += 1
        elif isinstance(item, int):
            result = _select(result, dim, item)
        elif isinstance(item, slice):
            result, dim = _slice(result, dim, item, skip_whole=True), dim + 1
        elif isinstance(item, np.ndarray):  # a boolean mask: the positions of its True entries
            _check_mask(item, result.shape, dim)
            advanced.extend((dim + j, _index_tensor(p)) for j, p in enumerate(np.nonzero(item)))
            dim += item.ndim
        else:
            advanced.append((dim, item))
            dim += 1
    if advanced:
        result = _index(result, advanced)
    if result is self:
        result = apply(ix.ALIAS, (self,))
    return result


def _select(x: Tensor, dim: int, index: int) -> Tensor:
    size = x.shape[dim]
    if not -size <= index < size:
        raise IndexError(ix.out_of_bounds(index, dim, size))
    return apply(ix.SELECT, (x,), (dim, index % size))


def _slice(x: Tensor, dim: int, item: slice, skip_whole: bool) -> Tensor:
    start, stop, step = (None if v is None else _slice_bound(v) for v in (item.start, item.stop, item.step))
    if step is not None and step <= 0:
        raise ValueError("slice step cannot be zero" if step == 0 else "step must be greater than zero")
    if x.ndim == 0:
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` in "
                         "C++ to convert a 0-dim tensor to a number")
    size = x.shape[dim]
    # PyTorch skips a slice written from 0 to the end or past it (`:`, `0:n`), not one that only selects all
    if skip_whole and start in (None, 0) and (stop is None or stop >= size) and step in (None, 1):
        return x
    bounds = canonical_slice(size, start, stop, step or 1)
    return apply(ix.SLICE, (x,), (dim, *bounds))


def _slice_bound(value) -> int:
    number = _integer(value)
    if number is None:
        raise TypeError("slice indices must be integers or None or have an __index__ method")
    return number


def _check_mask(mask: np.ndarray, shape, dim: int) -> None:
    for j, size in enumerate(mask.shape):
        if dim + j >= len(shape) or shape[dim + j] != size:
            raise IndexError(f"The shape of the mask {ix.shape_list(mask.shape)} at index {j} does not match the "
                             f"shape of the indexed tensor {ix.shape_list(shape)} at index {dim + j}")


def _index(x: Tensor, advanced: list) -> Tensor:
    """One ``IndexBackward0`` node for all index arrays (runtime operands of the compiled backward)."""
    dims = [d for d, _ in advanced]
    arrays = [a for _, a in advanced]
    try:
        np.broadcast_shapes(*(tuple(a.shape) for a in arrays))
    except ValueError:
        shapes = ", ".join(ix.shape_list(a.shape) for a in arrays)
        raise IndexError(f"shape mismatch: indexing tensors could not be broadcast together with shapes "
                         f"{shapes}") from None
    if len(dims) > 64:
        raise IndexError(f"too many index arrays ({len(dims)}); symgrad takes at most 64")
    for k, (d, a) in enumerate(zip(dims, arrays)):
        size, values = x.shape[d], a._data
        if size == 0 and values.size:
            raise IndexError("index is out of bounds for dimension with size 0")
        wrong = (values < -size) | (values >= size)
        if x.numel() and wrong.any():  # PyTorch names the index's position among the index arrays
            raise IndexError(ix.out_of_bounds(int(values[wrong].flat[0]), k, size))
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    rest = [d for d in range(x.ndim) if d not in dims]
    perm = tuple(range(x.ndim)) if adjacent else tuple(dims + rest)
    return apply(ix.INDEX, (x, *arrays), (perm, dims[0] if adjacent else 0, len(dims)))


def setitem(self: Tensor, index, value) -> None:
    """``self[index] = value`` for tensors outside autograd (no gradient flows through an assignment yet).

    PyTorch records an assignment into a tensor that requires grad as
    ``CopySlices``; symgrad does not, and says so.

    >>> import symgrad
    >>> x = symgrad.zeros(2, 3)
    >>> x[0, 1:] = 5.0
    >>> x
    tensor([[0., 5., 5.],
            [0., 0., 0.]])
    """
    value = _as_operand(value)
    recorded = self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)
    if recorded and is_grad_enabled():
        if self._grad_fn is None and self._requires_grad:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        raise NotImplementedError("symgrad does not record x[index] = value on tensors that require grad "
                                  "(PyTorch's CopySlices); build the tensor with symgrad.where, cat or "
                                  "index arithmetic instead")
    with no_grad():
        target = getitem(self, index)  # PyTorch's checks and errors; a view for basic indexing
    source = value._data if isinstance(value, Tensor) else np.asarray(value)
    view = target._data.base is not None and np.shares_memory(target._data, self._data)
    if view:  # PyTorch copies into the view: expand's rule and message
        expand_shape(source.shape, tuple(target.shape), target.dtype)
        np.copyto(target._data, source, casting="unsafe")
    else:
        try:
            fits = np.broadcast_shapes(source.shape, target.shape) == tuple(target.shape)
        except ValueError:
            fits = False
        if not fits:
            raise RuntimeError(f"shape mismatch: value tensor of shape {ix.shape_list(source.shape)} cannot be "
                               f"broadcast to indexing result of shape {ix.shape_list(target.shape)}")
        self._data[_numpy_index(index)] = source
    self._version_counter.value += 1


def _numpy_index(index) -> tuple:
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        if isinstance(item, Tensor | list):
            item = _array(item)
            item = item._data if isinstance(item, Tensor) else item
        out.append(item)
    return tuple(out)


# ------------------------------------------------------------------------ joining

def _tensor_list(tensors, who: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, list | tuple):
        raise TypeError(f"{who}(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        f"{type(tensors).__name__}")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
    return list(tensors)


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing ``dim`` (``CatBackward0``), promoting dtypes as PyTorch does.

    A 1-D empty tensor is skipped whatever the other shapes (PyTorch's legacy rule).

    >>> import symgrad
    >>> symgrad.cat([symgrad.ones(1, 2), symgrad.zeros(1, 2, dtype=symgrad.float64)])
    tensor([[1., 1.],
            [0., 0.]], dtype=symgrad.float64)
    """
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    dim, _, _ = ix.cat_shape([t.shape for t in tensors], dim)
    return apply(ix.CAT, tuple(tensors), (dim, ix.result_dtype_name(tensors)))


concat = concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    """Join equally shaped tensors along a new ``dim`` (``StackBackward0``).

    >>> import symgrad
    >>> symgrad.stack([symgrad.ones(2), symgrad.zeros(2)], dim=1)
    tensor([[1., 0.],
            [1., 0.]])
    """
    tensors = _tensor_list(tensors, "stack")
    dim = ix.stack_dim([tuple(t.shape) for t in tensors], dim)
    return apply(ix.STACK, tuple(tensors), (dim, ix.result_dtype_name(tensors)))


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size_or_sections`` elements along ``dim`` (the last may be smaller), or pieces of the
    listed sizes (``SplitBackward0`` / ``SplitWithSizesBackward0``); views of ``tensor``.

    >>> import symgrad
    >>> [t.shape[0] for t in symgrad.arange(5.0).split(2)], [t.shape[0] for t in symgrad.arange(5.0).split([1, 4])]
    ([2, 2, 1], [1, 4])
    """
    tensor = _as_operand(tensor)
    if tensor.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    if isinstance(split_size_or_sections, int | np.integer):
        piece = int(split_size_or_sections)
        if piece < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={piece}")
        axis = st.normalize_dim(dim, tensor.ndim)
        return _split_even(tensor, piece, axis, tensor.shape[axis])
    sizes = [int(s) for s in split_size_or_sections]
    axis = st.normalize_dim(dim, tensor.ndim)
    size = tensor.shape[axis]
    if any(s < 0 for s in sizes):
        raise RuntimeError("split_with_sizes expects split_sizes have only non-negative entries, but got "
                           f"split_sizes={ix.shape_list(sizes)}")
    if sum(sizes) != size:  # PyTorch prints the dim as given
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at "
                           f"dimension {dim}), but got split_sizes={ix.shape_list(sizes)}")
    starts = np.cumsum([0, *sizes])
    return tuple(apply(ix.SPLIT, (tensor,), (axis, int(a), int(b), 1, True)) for a, b in zip(starts, starts[1:]))


def _split_even(tensor: Tensor, piece: int, dim: int, size: int) -> tuple[Tensor, ...]:
    if piece == 0 and size != 0:
        raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
    count = max(math.ceil(size / piece), 1) if piece else 1
    return tuple(apply(ix.SPLIT, (tensor,), (dim, k * piece, min((k + 1) * piece, size), 1, False))
                 for k in range(count))


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` equal pieces along ``dim`` (the last may be smaller; ``SplitBackward0``).

    >>> import symgrad
    >>> [t.tolist() for t in symgrad.arange(5.0).chunk(2)]
    [[0.0, 1.0, 2.0], [3.0, 4.0]]
    """
    tensor = _as_operand(input)
    if tensor.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    dim = st.normalize_dim(dim, tensor.ndim)
    size = tensor.shape[dim]
    if size == 0:  # PyTorch gives `chunks` empty pieces, split by sizes
        return split(tensor, [0] * chunks, dim)
    return _split_even(tensor, math.ceil(size / chunks), dim, size)


def _split_method(self: Tensor, split_size, dim: int = 0) -> tuple[Tensor, ...]:
    """``Tensor.split(split_size, dim=0)``: see :func:`split`.

    >>> import symgrad
    >>> len(symgrad.ones(5).split(split_size=2))
    3
    """
    return split(self, split_size, dim)


def _iterate(self: Tensor):
    """Rows along dim 0 (``SelectBackward0`` each; PyTorch unbinds, ``UnbindBackward0``)."""
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (getitem(self, i) for i in range(self.shape[0]))


def _publish() -> None:
    Tensor.__iter__ = _iterate
    Tensor.__getitem__ = getitem
    Tensor.__setitem__ = setitem
    Tensor.split = _split_method
    Tensor.chunk = chunk


_publish()
