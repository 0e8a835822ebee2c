"""Shape ops: views and copies that rearrange elements without computing on them.

Each record gives PyTorch's shape rule and errors, a NumPy forward (a real
NumPy view for PyTorch's view ops, so in-place changes are shared as in
PyTorch) and a lowering to ``reshape``/``permute``/``broadcast_to``; the
derivatives are those primitives' adjoints (:mod:`symgrad.derive`).

``reshape``/``flatten`` choose between these records the way PyTorch does
(a composite in :mod:`symgrad.functional`): ``ViewBackward0`` when the data is
contiguous, ``ReshapeAliasBackward0`` when a non-contiguous tensor can still
be viewed, and ``CloneBackward0`` then ``UnsafeViewBackward0`` when it has to
be copied.
"""

from __future__ import annotations

import numpy as np

from ..symbolic.nodes import broadcast_to, permute, reshape
from .registry import Api, StructuralOp
from .structural import normalize_dim

__all__ = ["VIEW", "RESHAPE_ALIAS", "UNSAFE_VIEW", "CLONE", "TRANSPOSE", "T", "EXPAND",
           "size_arguments", "infer_size", "expand_shape", "tensor_type_name", "VIEW_ERROR"]

VIEW_ERROR = ("view size is not compatible with input tensor's size and stride (at least one dimension spans "
              "across two contiguous subspaces). Use .reshape(...) instead.")


def size_arguments(sizes) -> tuple[int, ...]:
    """``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` all give ``(2, 3)``.

    >>> size_arguments(((2, 3),)), size_arguments((2, 3))
    ((2, 3), (2, 3))
    """
    if len(sizes) == 1 and not isinstance(sizes[0], int | np.integer):
        sizes = tuple(sizes[0])
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int | np.integer):
            raise TypeError(f"sizes must be a tuple of ints, but got an element of type {type(s).__name__}")
    return tuple(int(s) for s in sizes)


def _shape_text(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def infer_size(shape: tuple[int, ...], numel: int) -> tuple[int, ...]:
    """A requested shape with its ``-1`` filled in, raising PyTorch's errors.

    >>> infer_size((-1, 4), 24)
    (6, 4)
    """
    inferred, known = None, 1
    for i, s in enumerate(shape):
        if s == -1:
            if inferred is not None:
                raise RuntimeError("only one dimension can be inferred")
            inferred = i
        elif s < 0:
            raise RuntimeError(f"invalid shape dimension {s} at index {i} of shape {_shape_text(shape)}")
        else:
            known *= s
    if inferred is None:
        if known != numel:
            raise RuntimeError(f"shape '{_shape_text(shape)}' is invalid for input of size {numel}")
        return shape
    if known == 0:
        if numel == 0:
            raise RuntimeError(f"cannot reshape tensor of 0 elements into shape {_shape_text(shape)} because the "
                               "unspecified dimension size -1 can be any value and is ambiguous")
        raise RuntimeError(f"shape '{_shape_text(shape)}' is invalid for input of size {numel}")
    if numel % known:
        raise RuntimeError(f"shape '{_shape_text(shape)}' is invalid for input of size {numel}")
    return shape[:inferred] + (numel // known,) + shape[inferred + 1:]


def tensor_type_name(dtype) -> str:
    """PyTorch's legacy type name, as its messages print it: ``symgrad.DoubleTensor``."""
    kind = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}[dtype.name]
    return f"symgrad.{kind}Tensor"


def expand_shape(shape: tuple[int, ...], sizes: tuple[int, ...], dtype) -> tuple[int, ...]:
    """The shape ``expand(*sizes)`` gives (``-1`` keeps a size), raising PyTorch's errors.

    >>> import symgrad
    >>> expand_shape((1, 4), (3, -1), symgrad.float32)
    (3, 4)
    """
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand({tensor_type_name(dtype)}{{{_shape_text(shape)}}}, size={_shape_text(sizes)}): "
                           f"the number of sizes provided ({len(sizes)}) must be greater or equal to the number of "
                           f"dimensions in the tensor ({len(shape)})")
    lead = len(sizes) - len(shape)
    out = []
    for i, size in enumerate(sizes):
        if i < lead:
            if size < 0:
                raise RuntimeError(f"The expanded size of the tensor ({size}) isn't allowed in a leading, "
                                   f"non-existing dimension {i}")
            out.append(size)
            continue
        current = shape[i - lead]
        if size == -1:
            size = current
        elif size != current and (current != 1 or size < 0):
            raise RuntimeError(f"The expanded size of the tensor ({size}) must match the existing size ({current}) "
                               f"at non-singleton dimension {i}.  Target sizes: {_shape_text(sizes)}.  "
                               f"Tensor sizes: {_shape_text(shape)}")
        out.append(size)
    return tuple(out)


def _same_dtype_infer(shape_of):
    def infer(operands, *attrs):
        return shape_of(operands[0].shape, *attrs), operands[0].dtype
    return infer


# ----------------------------------------------------------------- reshapes

def _view_signature(input, *shape):
    """The same data with another shape (``ViewBackward0``); ``-1`` infers one size.

    Like PyTorch, a tensor whose memory layout cannot be viewed that way
    (e.g. a transposed matrix flattened) raises; ``reshape`` copies instead.

    >>> import symgrad
    >>> symgrad.tensor([0., 1., 2., 3., 4., 5.], requires_grad=True).view(2, -1)
    tensor([[0., 1., 2.],
            [3., 4., 5.]], grad_fn=<ViewBackward0>)
    """
    return (input,), (infer_size(size_arguments(shape), input.numel()),)


def _view_forward(x, shape):
    try:
        return np.reshape(x, shape, copy=False)
    except ValueError:
        raise RuntimeError(VIEW_ERROR) from None


VIEW = StructuralOp(
    "view", "ViewBackward0", api=Api(_view_signature, methods=("view",)),
    infer=_same_dtype_infer(lambda shape, target: target),
    forward=_view_forward,
    lower=lambda x, shape: reshape(x, shape), view=True,
)

# reshape of a non-contiguous tensor that can still be viewed (PyTorch's _reshape_alias)
RESHAPE_ALIAS = StructuralOp(
    "reshape_alias", "ReshapeAliasBackward0",
    infer=_same_dtype_infer(lambda shape, target: target),
    forward=_view_forward,
    lower=lambda x, shape: reshape(x, shape), view=True,
)

# the reshape of a contiguous copy (PyTorch's _unsafe_view): the copy is internal, so not a view
UNSAFE_VIEW = StructuralOp(
    "unsafe_view", "UnsafeViewBackward0",
    infer=_same_dtype_infer(lambda shape, target: target),
    forward=lambda x, shape: np.reshape(x, shape),
    lower=lambda x, shape: reshape(x, shape),
)


def _clone_signature(input, *, memory_format=None):
    """A copy with its own memory that stays in the graph (``CloneBackward0``).

    >>> import symgrad
    >>> symgrad.ones(2, requires_grad=True).clone()
    tensor([1., 1.], grad_fn=<CloneBackward0>)
    """
    if memory_format is not None:
        raise NotImplementedError("clone(memory_format=...) is not supported; symgrad keeps the layout")
    return (input,), (False,)


# `contiguous`: reshape's copy is C-ordered; clone() keeps the layout (PyTorch's preserve_format)
CLONE = StructuralOp(
    "clone", "CloneBackward0", api=Api(_clone_signature, functions=("clone",), methods=("clone",)),
    infer=_same_dtype_infer(lambda shape, contiguous: shape),
    forward=lambda x, contiguous: np.array(x, order="C" if contiguous else "K", copy=True),
    lower=lambda x, contiguous: x,
)


# ---------------------------------------------------------------- transposes

def _swap(ndim: int, dim0: int, dim1: int) -> tuple[int, ...]:
    perm = list(range(ndim))
    perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
    return tuple(perm)


def _transpose_signature(input, dim0, dim1):
    """Swap two dimensions (``TransposeBackward0``); negative dims count from the end.

    >>> import symgrad
    >>> symgrad.ones(2, 3, 4).transpose(0, -1).shape
    symgrad.Size([4, 3, 2])
    """
    ndim = input.ndim
    d0, d1 = normalize_dim(dim0, ndim), normalize_dim(dim1, ndim)
    return (input,), (_swap(ndim, d0, d1) if ndim else (),)


def _permuted(shape, perm):
    return tuple(shape[p] for p in perm)


TRANSPOSE = StructuralOp(
    "transpose", "TransposeBackward0",
    api=Api(_transpose_signature, functions=("transpose", "swapdims", "swapaxes"),
            methods=("transpose", "swapdims", "swapaxes")),
    infer=_same_dtype_infer(_permuted),
    forward=lambda x, perm: np.transpose(x, perm),
    lower=lambda x, perm: permute(x, perm), view=True,
)


def _t_signature(input):
    """Transpose of a matrix; a vector or a 0-d tensor is returned as is (``TBackward0``).

    >>> import symgrad
    >>> symgrad.ones(2, 3).t().shape
    symgrad.Size([3, 2])
    """
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return (input,), (tuple(reversed(range(input.ndim))),)


T = StructuralOp(
    "t", "TBackward0", api=Api(_t_signature, functions=("t",), methods=("t",)),
    infer=_same_dtype_infer(_permuted),
    forward=lambda x, perm: np.transpose(x, perm),
    lower=lambda x, perm: permute(x, perm), view=True,
)


# -------------------------------------------------------------------- expand

def _expand_signature(input, *sizes):
    """A view repeating size-1 dimensions (and new leading ones) without copying (``ExpandBackward0``).

    ``-1`` keeps a dimension's size.  Its gradient sums over the repeats.  The
    result is read-only (PyTorch refuses in-place writes to it too).

    >>> import symgrad
    >>> symgrad.ones(3, 1).expand(2, -1, 4).shape
    symgrad.Size([2, 3, 4])
    """
    return (input,), (expand_shape(input.shape, size_arguments(sizes), input.dtype),)


EXPAND = StructuralOp(
    "expand", "ExpandBackward0", api=Api(_expand_signature, methods=("expand",)),
    infer=_same_dtype_infer(lambda shape, target: target),
    forward=lambda x, shape: np.broadcast_to(x, shape),
    lower=lambda x, shape: broadcast_to(x, shape), view=True,
)
