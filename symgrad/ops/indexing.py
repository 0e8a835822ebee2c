"""Indexing and joining ops: select, slice, advanced indexing, gather, index_select, cat, stack, split,
flip, repeat, narrow, cumsum.

Each record gives PyTorch's shape rule and errors, a NumPy forward (a NumPy
view for PyTorch's view ops) and a lowering to the indexing primitives of
:mod:`symgrad.symbolic.nodes` (``Slice``, ``TakeAlong``, ``Concat``,
``Cumsum``) and the shape primitives; the derivatives are the primitives'
adjoints (:mod:`symgrad.derive`): a slice scatters back into zeros, a take
scatter-adds (repeated indices accumulate), a concatenation slices.

Integer index tensors are *operands* (``value_only``: a slot of the compiled
backward, not a graph edge), never attributes: a training loop whose indices
change every step compiles once.  Static slices are attributes.  Python's
``x[...]`` and the functions taking lists of tensors (``cat``, ``stack``,
``split``, ``chunk``) are composites in :mod:`symgrad.indexing` that apply
these records the way PyTorch chains its nodes.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from .. import dtypes
from ..symbolic.nodes import (
    arg,
    broadcast_to,
    canonical_slice,
    concat,
    cumsum,
    elementwise,
    fill,
    permute,
    reshape,
    slice_axes,
    take_along,
)
from .registry import Api, StructuralOp, promote
from .structural import normalize_dim, normalize_dims

__all__ = ["SELECT", "SLICE", "SPLIT", "ALIAS", "INDEX", "GATHER", "INDEX_SELECT", "CAT", "STACK", "FLIP",
           "REPEAT", "CUMSUM", "out_of_bounds", "shape_list", "cat_shape", "stack_dim", "result_dtype_name"]


def shape_list(shape) -> str:
    """A shape as PyTorch's messages print it: ``[4, 5]``."""
    return "[" + ", ".join(map(str, shape)) + "]"


def out_of_bounds(index: int, dim: int, size: int) -> str:
    """PyTorch's message for an index outside a dimension."""
    return f"index {index} is out of bounds for dimension {dim} with size {size}"


def _at(ndim: int, dim: int, item) -> tuple:
    return (slice(None),) * dim + (item,) + (slice(None),) * (ndim - dim - 1)


def _converted(x, dtype):
    """``x`` as a symbolic node of ``dtype`` (a no-op when it already is)."""
    return x if x.dtype == dtype.numpy else elementwise(arg(0), [x], dtype.numpy)


# ------------------------------------------------------------------ basic indexing (views)

def _select_infer(operands, dim, index):
    shape = operands[0].shape
    return shape[:dim] + shape[dim + 1:], operands[0].dtype


# x[i]: attributes (dim, index), the index already checked and made non-negative
SELECT = StructuralOp(
    "select", "SelectBackward0",
    infer=_select_infer,
    forward=lambda x, dim, index: x[_at(x.ndim, dim, slice(index, index + 1))].reshape(
        x.shape[:dim] + x.shape[dim + 1:]),
    lower=lambda x, dim, index: reshape(slice_axes(x, {dim: (index, index + 1, 1)}),
                                        x.shape[:dim] + x.shape[dim + 1:]),
    view=True,
)


def _narrow_signature(input, dim, start, length):
    """``length`` elements of ``dim`` from ``start`` (negative counts from the end), a view (``SliceBackward0``).

    >>> import symgrad
    >>> symgrad.arange(5.0).narrow(0, 1, 3)
    tensor([1., 2., 3.])
    """
    if input.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    dim = normalize_dim(dim, input.ndim)
    size = input.shape[dim]
    if not -size <= start <= size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], but got {start})")
    start = start + size if start < 0 else start
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return (input,), (dim, *canonical_slice(size, start, start + length, 1))


def _slice_infer(operands, dim, start, stop, step, *rest):
    shape = list(operands[0].shape)
    shape[dim] = len(range(start, stop, step))
    return tuple(shape), operands[0].dtype


def _slice_forward(x, dim, start, stop, step, *rest):
    return x[_at(x.ndim, dim, slice(start, stop, step))]


def _slice_lower(x, dim, start, stop, step, *rest):
    return slice_axes(x, {dim: (start, stop, step)})


# x[a:b:c] and narrow: attributes (dim, start, stop, step), canonical (symgrad.symbolic.nodes.canonical_slice)
SLICE = StructuralOp(
    "slice", "SliceBackward0", api=Api(_narrow_signature, functions=("narrow",), methods=("narrow",)),
    infer=_slice_infer, forward=_slice_forward, lower=_slice_lower, view=True,
)

# one piece of split/chunk: (dim, start, stop, step, with_sizes); PyTorch's name depends on how it was split
SPLIT = StructuralOp(
    "split", lambda dim, start, stop, step, with_sizes: "SplitWithSizesBackward0" if with_sizes else "SplitBackward0",
    infer=_slice_infer, forward=_slice_forward, lower=_slice_lower, view=True,
)

# x[...] and indexing that selects everything: the same data, a new tensor
ALIAS = StructuralOp(
    "alias", "AliasBackward0",
    infer=lambda operands: (operands[0].shape, operands[0].dtype),
    forward=lambda x: x.view(), lower=lambda x: x, view=True,
)


# ----------------------------------------------------------------- advanced indexing

# x[index arrays …]: operands (x, *index arrays) — the caller's int64 tensors (negative
# entries wrap), bool masks already turned into positions — and attributes (perm, pre,
# count): the indexed axes, permuted to be adjacent at `pre`, are read through one flat
# index computed from the arrays (in the generated code: the arrays are runtime inputs)

def _index_parts(shape, perm, pre, count):
    moved = tuple(shape[p] for p in perm)
    return moved[:pre], moved[pre:pre + count], moved[pre + count:]


def _index_infer(operands, perm, pre, count):
    x, *arrays = operands
    before, _, after = _index_parts(x.shape, perm, pre, count)
    batch = np.broadcast_shapes(*(tuple(a.shape) for a in arrays))
    return before + batch + after, x.dtype


def _flat_index_values(arrays, sizes) -> np.ndarray:
    if len(arrays) == 1:
        return arrays[0]
    flat = np.zeros(np.broadcast_shapes(*(a.shape for a in arrays)), dtype=np.int64)
    for a, size in zip(arrays, sizes):
        flat = flat * size + (a % size if size else a)
    return flat


def _index_forward(x, *arrays_and_attrs):
    *arrays, perm, pre, count = arrays_and_attrs
    before, sizes, after = _index_parts(x.shape, perm, pre, count)
    moved = np.transpose(x, perm).reshape(before + (math.prod(sizes),) + after)
    # an empty tensor reads nothing: PyTorch does not check the indices then
    return np.take(moved, _flat_index_values(arrays, sizes), axis=pre, mode="clip" if x.size == 0 else "raise")


def _flat_index(arrays, sizes):
    """One index into the indexed axes taken together (a single array is its own: negatives wrap in NumPy)."""
    if len(arrays) == 1:
        return arrays[0]
    flat = sp.Integer(0)
    for k, size in enumerate(sizes):
        flat = flat * size + (sp.Mod(arg(k), size) if size else arg(k))
    return elementwise(flat, arrays, np.int64)


def _index_lower(x, *arrays_and_attrs):
    *arrays, perm, pre, count = arrays_and_attrs
    before, sizes, after = _index_parts(x.shape, perm, pre, count)
    index = _flat_index(arrays, sizes)
    batch = index.shape or (1,)
    moved = reshape(permute(x, perm), before + (1,) * (len(batch) - 1) + (math.prod(sizes),) + after)
    positions = reshape(index, (1,) * len(before) + batch + (1,) * len(after))
    taken = take_along(moved, positions, len(before) + len(batch) - 1)
    return reshape(taken, before + index.shape + after)


INDEX = StructuralOp(
    "index", "IndexBackward0", infer=_index_infer, forward=_index_forward, lower=_index_lower,
    value_only=tuple(range(1, 65)),  # the index arrays are values, not graph edges
    saves=lambda needs_grad: set(range(1, len(needs_grad))),
)


def _index_dtype_check(index, who: str) -> None:
    if index.dtype is not dtypes.int64:
        raise RuntimeError(f"{who}(): Expected dtype int32{'/' if who == 'gather' else ' or '}int64 for index")


def _gather_signature(input, dim, index, *, sparse_grad=False):
    """``out[i][j] = input[i][index[i][j]]`` for ``dim=1`` (``GatherBackward0``); repeated indices accumulate.

    >>> import symgrad
    >>> symgrad.gather(symgrad.tensor([[1., 2.], [3., 4.]]), 1, symgrad.tensor([[0, 0], [1, 0]]))
    tensor([[1., 1.],
            [4., 3.]])
    """
    dim = normalize_dim(dim, input.ndim)
    _index_dtype_check(index, "gather")
    if index.ndim != input.ndim and not (max(index.ndim, input.ndim) <= 1 and index.numel() <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for d in range(index.ndim if index.numel() else 0):  # an empty index is not checked
        if d != dim and index.ndim == input.ndim and index.shape[d] > input.shape[d]:
            raise RuntimeError(f"Size does not match at dimension {d} expected index {shape_list(index.shape)} to "
                               f"be no larger than self {shape_list(input.shape)} apart from dimension {dim}")
    values = _index_values(index)
    size = input.shape[dim] if input.ndim else 1
    wrong = (values < 0) | (values >= size)
    if wrong.any():
        raise RuntimeError(out_of_bounds(int(values[wrong].flat[0]), dim, size))
    if sparse_grad:
        raise NotImplementedError("gather(sparse_grad=True) is not supported; symgrad has no sparse tensors")
    return (input, index), (dim,)


def _index_values(index) -> np.ndarray:
    return np.asarray(index.detach() if hasattr(index, "detach") else index)


def _gather_parts(x_shape, index_shape, dim):
    """The input's axes cut to the index's sizes (gather reads only those), as slices."""
    return {d: (0, index_shape[d], 1) for d in range(len(index_shape)) if d != dim}


def _gather_forward(x, index, dim):
    if index.size == 0:
        return np.zeros(index.shape, dtype=x.dtype)
    if x.ndim == 0 or index.ndim == 0:
        return np.asarray(x.reshape(-1)[index.reshape(-1)]).reshape(index.shape)
    cut = tuple(slice(0, index.shape[d]) if d != dim else slice(None) for d in range(x.ndim))
    return np.take_along_axis(x[cut], index, axis=dim)


def _gather_lower(x, index, dim):
    if 0 in index.shape:
        return fill(0, index.shape, x.dtype)
    if x.ndim == 0 or index.ndim == 0:
        return reshape(take_along(reshape(x, (1,)), reshape(index, (1,)), 0), index.shape)
    return take_along(slice_axes(x, _gather_parts(x.shape, index.shape, dim)), index, dim)


GATHER = StructuralOp(
    "gather", "GatherBackward0", api=Api(_gather_signature, functions=("gather",), methods=("gather",)),
    infer=lambda operands, dim: (tuple(operands[1].shape), operands[0].dtype),
    forward=_gather_forward, lower=_gather_lower, value_only=(1,), saves=lambda needs_grad: {1},
)


def _index_select_signature(input, dim, index):
    """The entries of ``input`` at ``index`` (a vector) along ``dim`` (``IndexSelectBackward0``).

    >>> import symgrad
    >>> symgrad.index_select(symgrad.tensor([[1., 2.], [3., 4.]]), 0, symgrad.tensor([1, 1]))
    tensor([[3., 4.],
            [3., 4.]])
    """
    dim = normalize_dim(dim, input.ndim)
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    _index_dtype_check(index, "index_select")
    if input.ndim == 0 and index.numel() != 1:
        raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {index.numel()} value(s)")
    values = _index_values(index)
    size = input.shape[dim] if input.ndim else 1
    wrong = (values < 0) | (values >= size)
    if size == 0 and values.size and input.ndim > 1:
        raise RuntimeError("index_select(): self indexing axis dim should be positive")
    if wrong.any():
        if input.ndim > 1 and (dim == 1 or input.numel() == 0):  # PyTorch's kernels for these word it so
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={int(values[wrong].flat[0])} "
                               f"axis_dim={size}")
        raise IndexError("index out of range in self")
    return (input, index), (dim,)


def _index_select_shape(x_shape, index_shape, dim):
    if not x_shape:
        return ()
    return x_shape[:dim] + (int(math.prod(index_shape)),) + x_shape[dim + 1:]


def _index_select_lower(x, index, dim):
    if x.ndim == 0:
        return reshape(take_along(reshape(x, (1,)), reshape(index, (1,)), 0), ())
    count = int(math.prod(index.shape))
    positions = reshape(index, (1,) * dim + (count,) + (1,) * (x.ndim - dim - 1))
    return take_along(x, positions, dim)


INDEX_SELECT = StructuralOp(
    "index_select", "IndexSelectBackward0",
    api=Api(_index_select_signature, functions=("index_select",), methods=("index_select",)),
    infer=lambda operands, dim: (_index_select_shape(operands[0].shape, operands[1].shape, dim), operands[0].dtype),
    forward=lambda x, index, dim: np.take(x, index.reshape(-1), axis=dim) if x.ndim else x.copy(),
    lower=_index_select_lower, value_only=(1,), saves=lambda needs_grad: {1},
)


# ------------------------------------------------------------------------ joining

def _legacy_empty(shape) -> bool:
    """PyTorch's cat skips 1-D empty tensors whatever the other shapes (legacy behaviour)."""
    return tuple(shape) == (0,)


def cat_shape(shapes, dim: int) -> tuple[int, int, tuple[int, ...]]:
    """``(normalized dim, reference tensor number, result shape)`` of ``cat``, raising PyTorch's errors.

    >>> cat_shape([(2, 3), (0,), (1, 3)], 0)
    (0, 0, (3, 3))
    """
    for i, shape in enumerate(shapes):
        if not shape:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    kept = [i for i, s in enumerate(shapes) if not _legacy_empty(s)]
    if not kept:  # only skipped tensors: PyTorch checks nothing
        return 0, 0, (0,)
    first = kept[0]
    reference = shapes[first]
    dim = normalize_dim(dim, len(reference))
    total = 0
    for i in kept:
        shape = shapes[i]
        if len(shape) != len(reference):
            raise RuntimeError(f"Tensors must have same number of dimensions: got {len(reference)} and {len(shape)}")
        for d, (a, b) in enumerate(zip(reference, shape)):
            if d != dim and a != b:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {dim}. Expected size {a} but "
                                   f"got size {b} for tensor number {i} in the list.")
        total += shape[dim]
    return dim, first, reference[:dim] + (total,) + reference[dim + 1:]


def _cat_infer(operands, dim, dtype_name):
    _, _, shape = cat_shape([x.shape for x in operands], dim)
    return shape, dtypes.as_dtype(dtype_name)


def _cat_forward(*values_and_attrs):
    *values, dim, dtype_name = values_and_attrs
    kept = [v for v in values if not _legacy_empty(v.shape)]
    if not kept:
        return np.zeros((0,), dtype=dtype_name)
    return np.concatenate(kept, axis=dim, dtype=dtype_name)


def _cat_lower(*inputs_and_attrs):
    *inputs, dim, dtype_name = inputs_and_attrs
    dtype = dtypes.as_dtype(dtype_name)
    kept = [_converted(x, dtype) for x in inputs if not _legacy_empty(x.shape)]
    return concat(kept, dim) if kept else _converted(inputs[0], dtype)


def result_dtype_name(tensors) -> str:
    """PyTorch's promoted dtype of the tensors joined by ``cat``/``stack``."""
    return promote(tensors).name


# operands: the tensors; attributes: the normalized dim and the promoted dtype's name
CAT = StructuralOp("cat", "CatBackward0", infer=_cat_infer, forward=_cat_forward, lower=_cat_lower)


def stack_dim(shapes, dim: int) -> int:
    """The normalized ``dim`` of ``stack``, raising PyTorch's errors for unequal shapes."""
    if not shapes:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {shape_list(shapes[0])} at "
                               f"entry 0 and {shape_list(shape)} at entry {i}")
    return normalize_dim(dim, len(shapes[0]) + 1)


def _stack_infer(operands, dim, dtype_name):
    shape = operands[0].shape
    return shape[:dim] + (len(operands),) + shape[dim:], dtypes.as_dtype(dtype_name)


def _stack_forward(*values_and_attrs):
    *values, dim, dtype_name = values_and_attrs
    return np.stack(values, axis=dim, dtype=dtype_name)


def _stack_lower(*inputs_and_attrs):
    *inputs, dim, dtype_name = inputs_and_attrs
    dtype = dtypes.as_dtype(dtype_name)
    shape = inputs[0].shape[:dim] + (1,) + inputs[0].shape[dim:]
    return concat([reshape(_converted(x, dtype), shape) for x in inputs], dim)


STACK = StructuralOp("stack", "StackBackward0", infer=_stack_infer, forward=_stack_forward, lower=_stack_lower)


# --------------------------------------------------------------- flip, repeat, cumsum

def _flip_signature(input, *dims, **keywords):
    """Reverse the order of elements along ``dims`` (a copy, ``FlipBackward0``); ``dims=`` by keyword too.

    >>> import symgrad
    >>> symgrad.tensor([[1., 2.], [3., 4.]]).flip(0, 1)
    tensor([[4., 3.],
            [2., 1.]])
    """
    if keywords.keys() - {"dims"}:
        raise TypeError(f"flip() got an unexpected keyword argument '{next(iter(keywords.keys() - {'dims'}))}'")
    if "dims" in keywords:
        if dims:
            raise TypeError("flip() got multiple values for argument 'dims'")
        dims = (keywords["dims"],)
    if len(dims) == 1 and not isinstance(dims[0], int):
        dims = tuple(dims[0])
    return (input,), (normalize_dims(tuple(dims), input.ndim),)


FLIP = StructuralOp(
    "flip", "FlipBackward0", api=Api(_flip_signature, functions=("flip",), methods=("flip",)),
    infer=lambda operands, dims: (operands[0].shape, operands[0].dtype),
    forward=lambda x, dims: np.array(np.flip(x, dims)),
    lower=lambda x, dims: slice_axes(x, {d: canonical_slice(x.shape[d], None, None, -1) for d in dims}),
)


def _repeat_signature(input, *repeats):
    """The tensor tiled ``repeats[i]`` times along dim i; extra leading repeats add dims (``RepeatBackward0``).

    >>> import symgrad
    >>> symgrad.tensor([1., 2.]).repeat(2, 2)
    tensor([[1., 2., 1., 2.],
            [1., 2., 1., 2.]])
    """
    from .shape import size_arguments
    if not repeats:
        raise TypeError('repeat() missing 1 required positional arguments: "repeats"')
    repeats = size_arguments(repeats)
    if len(repeats) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of "
                           "tensor")
    shape = (1,) * (len(repeats) - input.ndim) + tuple(input.shape)
    out = tuple(r * s for r, s in zip(repeats, shape))
    for size in out:
        if size < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {size}: {shape_list(out)}")
    return (input,), (repeats,)


def _repeated_shape(shape, repeats):
    shape = (1,) * (len(repeats) - len(shape)) + tuple(shape)
    return tuple(r * s for r, s in zip(repeats, shape))


def _repeat_lower(x, repeats):
    shape = (1,) * (len(repeats) - x.ndim) + x.shape
    interleaved = tuple(v for s in shape for v in (1, s))
    tiled = tuple(v for r, s in zip(repeats, shape) for v in (r, s))
    return reshape(broadcast_to(reshape(x, interleaved), tiled), _repeated_shape(x.shape, repeats))


REPEAT = StructuralOp(
    "repeat", "RepeatBackward0", api=Api(_repeat_signature, methods=("repeat",)),
    infer=lambda operands, repeats: (_repeated_shape(operands[0].shape, repeats), operands[0].dtype),
    forward=lambda x, repeats: np.tile(x, repeats).reshape(_repeated_shape(x.shape, repeats)),
    lower=_repeat_lower,
)


def _cumsum_signature(input, dim, *, dtype=None):
    """Cumulative sums along ``dim`` (``CumsumBackward0``); integer inputs sum in int64, ``dtype`` converts first.

    >>> import symgrad
    >>> symgrad.tensor([1., 2., 3.]).cumsum(0)
    tensor([1., 3., 6.])
    """
    return (input,), (normalize_dim(dim, input.ndim), None if dtype is None else dtypes.as_dtype(dtype).name)


def _cumsum_dtype(x, dtype_name) -> dtypes.DType:
    if dtype_name is not None:
        return dtypes.as_dtype(dtype_name)
    return x.dtype if x.dtype.is_floating_point else dtypes.int64


CUMSUM = StructuralOp(
    "cumsum", "CumsumBackward0", api=Api(_cumsum_signature, functions=("cumsum",), methods=("cumsum",)),
    infer=lambda operands, dim, dtype_name: (operands[0].shape, _cumsum_dtype(operands[0], dtype_name)),
    forward=lambda x, dim, dtype_name: np.cumsum(
        x, axis=dim if x.ndim else None,
        dtype=dtype_name or (x.dtype if x.dtype.kind == "f" else np.int64)).reshape(x.shape),
    lower=lambda x, dim, dtype_name: cumsum(
        _converted(x, dtypes.as_dtype(dtype_name)) if dtype_name else x, dim),
)
