"""Structural ops: reductions, matrix products and shape changes.

Each record gives PyTorch's shape/dtype rule and errors, a NumPy forward, and
a lowering to the symbolic primitives; the primitives' adjoints live in
:mod:`symgrad.derive`, so no op here writes a derivative.
"""

from __future__ import annotations

import inspect

import numpy as np
import sympy as sp

from .. import dtypes
from ..symbolic.nodes import arg, elementwise, matmul, permute, reduce_sum, reshape
from .registry import Api, StructuralOp

__all__ = ["SUM", "MEAN", "MM", "MV", "DOT", "SQUEEZE", "UNSQUEEZE", "PERMUTE",
           "normalize_dims", "dim_error"]


def dim_error(dim: int, ndim: int) -> IndexError:
    low, high = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    return IndexError(f"Dimension out of range (expected to be in range of [{low}, {high}], but got {dim})")


def normalize_dim(dim: int, ndim: int) -> int:
    """A dim in ``[-ndim, ndim)`` as a non-negative index (0-d tensors accept 0 and -1)."""
    bound = max(ndim, 1)
    if not -bound <= dim < bound:
        raise dim_error(dim, ndim)
    return dim % bound


def normalize_dims(dims, ndim: int) -> tuple[int, ...]:
    """``None``/int/sequence of dims as a sorted tuple of non-negative axes, rejecting repeats.

    >>> normalize_dims((-1, 0), 3)
    (0, 2)
    """
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = [normalize_dim(d, ndim) for d in dims]
    seen = set()
    for d in out:
        if d in seen:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        seen.add(d)
    return tuple(sorted(d for d in out if d < ndim))


def _reduced_shape(shape, axes, keepdim):
    if keepdim:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


# ------------------------------------------------------------------ reductions

# Reductions take attributes (dims, keepdim, all_dims, dtype): `all_dims` picks
# PyTorch's name (sum() is SumBackward0, sum(dim) SumBackward1); `dtype` (a name
# or None) is the `dtype=` argument: the input is converted before reducing.

def _reduction_signature(name: str):
    def signature(input, dim=None, keepdim=False, *, dtype=None):
        dims = normalize_dims(None if dim in ((), []) else dim, input.ndim)  # dim=() means all, as in PyTorch
        return (input,), (dims, bool(keepdim), dim is None, None if dtype is None else dtypes.as_dtype(dtype).name)
    signature.__name__ = name
    signature.__doc__ = (f"The {name} of all elements, or over ``dim`` (int or tuple), keeping reduced dims as size 1 "
                         f"when ``keepdim``; ``dtype`` converts the input first.\n\n"
                         f"    >>> import symgrad\n"
                         f"    >>> symgrad.{name}(symgrad.ones(2, 3), 1)\n"
                         f"    tensor([{'3., 3.' if name == 'sum' else '1., 1.'}])\n")
    return Api(signature, functions=(name,), methods=(name,))


def _converted(x, dtype_name):
    """The reduction's input after its ``dtype=`` conversion, as a symbolic node."""
    return x if dtype_name is None else elementwise(arg(0), [x], dtype_name)


def _sum_infer(operands, dims, keepdim, all_dims, dtype_name):
    (x,) = operands
    if dtype_name is not None:
        dtype = dtypes.as_dtype(dtype_name)
    else:
        dtype = x.dtype if x.dtype.is_floating_point else dtypes.int64
    return _reduced_shape(x.shape, dims, keepdim), dtype


def _sum_forward(x, dims, keepdim, all_dims, dtype_name):
    dtype = dtype_name or (x.dtype if x.dtype.kind == "f" else np.int64)
    return np.asarray(np.sum(x, axis=dims, keepdims=keepdim, dtype=dtype))


SUM = StructuralOp(
    "sum", lambda dims, keepdim, all_dims, dtype: "SumBackward0" if all_dims else "SumBackward1",
    api=_reduction_signature("sum"),
    infer=_sum_infer,
    forward=_sum_forward,
    lower=lambda x, dims, keepdim, all_dims, dtype_name: reduce_sum(_converted(x, dtype_name), dims, keepdim),
)


def _mean_infer(operands, dims, keepdim, all_dims, dtype_name):
    (x,) = operands
    dtype = x.dtype if dtype_name is None else dtypes.as_dtype(dtype_name)
    if not dtype.is_floating_point:
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating "
                           f"point or complex dtype. Got: {_torch_type_name(dtype)}")
    return _reduced_shape(x.shape, dims, keepdim), dtype


def _mean_forward(x, dims, keepdim, all_dims, dtype_name):
    if any(x.shape[d] == 0 for d in dims):  # PyTorch's nan, without NumPy's empty-slice warnings
        return np.full(np.sum(x, axis=dims, keepdims=keepdim).shape, np.nan, dtype=dtype_name or x.dtype)
    return np.asarray(np.mean(x, axis=dims, keepdims=keepdim, dtype=dtype_name or x.dtype))


def _mean_lower(x, dims, keepdim, all_dims, dtype_name):
    x = _converted(x, dtype_name)
    count = int(np.prod([x.shape[d] for d in dims]))
    total = reduce_sum(x, dims, keepdim)
    return elementwise(arg(0) / count if count else arg(0) * sp.nan, [total], x.dtype)


MEAN = StructuralOp(
    "mean", lambda dims, keepdim, all_dims, dtype: "MeanBackward0" if all_dims else "MeanBackward1",
    api=_reduction_signature("mean"),
    infer=_mean_infer,
    forward=_mean_forward,
    lower=_mean_lower,
)


def _torch_type_name(dtype: dtypes.DType) -> str:
    return {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}[dtype.name]


# --------------------------------------------------------------- linear algebra

def _same_dtype(a, b, who: str):
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected {who} to have the same dtype, but got: "
                           f"{_c_type_name(a.dtype)} != {_c_type_name(b.dtype)}")
    return a.dtype


def _c_type_name(dtype: dtypes.DType) -> str:
    return {"float32": "float", "float64": "double", "int64": "long int", "bool": "bool"}[dtype.name]


def _mm_infer(operands):
    a, b = operands
    sa, sb = a.shape, b.shape
    if len(sa) != 2 or len(sb) != 2:
        raise RuntimeError(f"{'self' if len(sa) != 2 else 'mat2'} must be a matrix")
    if sa[1] != sb[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sa[0]}x{sa[1]} and {sb[0]}x{sb[1]})")
    return (sa[0], sb[1]), _same_dtype(a, b, "m1 and m2")


def _bilinear_saves(needs_grad):
    """A product's gradient for one factor reads the other."""
    return {1 - i for i, needed in enumerate(needs_grad) if needed}


def _pair_api(name: str, second: str, doc: str) -> Api:
    def signature(input, other):
        return (input, other), ()
    signature.__name__ = name
    signature.__doc__ = doc
    signature.__signature__ = inspect.Signature([
        inspect.Parameter("input", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter(second, inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    return Api(signature, functions=(name,), methods=(name,))


MM = StructuralOp("mm", "MmBackward0", infer=_mm_infer, forward=np.matmul, lower=matmul, saves=_bilinear_saves,
                  api=_pair_api("mm", "mat2", """Product of two matrices (``MmBackward0``).

    >>> import symgrad
    >>> symgrad.mm(symgrad.ones(2, 3), symgrad.ones(3, 1))
    tensor([[3.],
            [3.]])
    """))


def _mv_infer(operands):
    a, v = operands
    if a.ndim != 2 or v.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {a.ndim}, {v.ndim}")
    if a.shape[1] != v.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({a.shape[0]}), mat ({a.shape[0]}x{a.shape[1]}), "
                           f"vec ({v.shape[0]})")
    if a.dtype is not v.dtype:  # PyTorch's mv is addmv into a result of the vector's dtype
        names = (_torch_type_name(v.dtype), _torch_type_name(a.dtype), _torch_type_name(v.dtype))
        raise RuntimeError("addmv input tensors must have the same dtype, but got {}, {}, and {}".format(*names))
    return (a.shape[0],), a.dtype


MV = StructuralOp(
    "mv", "MvBackward0", infer=_mv_infer, forward=np.matmul, saves=_bilinear_saves,
    api=_pair_api("mv", "vec", """Matrix-vector product (``MvBackward0``).

    >>> import symgrad
    >>> symgrad.mv(symgrad.ones(2, 3), symgrad.ones(3))
    tensor([3., 3.])
    """),
    lower=lambda a, v: reshape(matmul(a, reshape(v, (v.shape[0], 1))), (a.shape[0],)),
)


def _dot_infer(operands):
    a, b = operands
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] "
                           f"to have the same number of elements, but got {a.shape[0]} and {b.shape[0]} "
                           "elements respectively")
    return (), _same_dtype(a, b, "both vectors")


DOT = StructuralOp(
    "dot", "DotBackward0", infer=_dot_infer, forward=lambda a, b: np.asarray(np.dot(a, b)), saves=_bilinear_saves,
    api=_pair_api("dot", "tensor", """Inner product of two 1-D tensors (``DotBackward0``).

    >>> import symgrad
    >>> symgrad.dot(symgrad.ones(3), symgrad.ones(3))
    tensor(3.)
    """),
    lower=lambda a, b: reshape(matmul(reshape(a, (1, a.shape[0])), reshape(b, (b.shape[0], 1))), ()),
)


# ------------------------------------------------------------------------ shape

def _squeeze_shape(shape, dims):
    return tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))


# `variant` picks PyTorch's name: squeeze() 0, squeeze(dim) 1, squeeze(dims) 2,
# and matmul's internal squeeze of a 1-D operand 4
def _squeeze_signature(input, dim=None):
    """Remove size-1 dimensions: all, one ``dim``, or a tuple of dims.

    >>> import symgrad
    >>> symgrad.ones(1, 3, 1).squeeze().shape
    symgrad.Size([3])
    """
    if dim is None:
        return (input,), (tuple(range(input.ndim)), 0)
    return (input,), (normalize_dims(dim, input.ndim), 1 if isinstance(dim, int) else 2)


def _unsqueeze_signature(input, dim):
    """Insert a size-1 dimension at ``dim`` (``UnsqueezeBackward0``).

    >>> import symgrad
    >>> symgrad.ones(3).unsqueeze(0).shape
    symgrad.Size([1, 3])
    """
    return (input,), (normalize_dim(dim, input.ndim + 1),)


def _permute_signature(input, *dims):
    """Reorder dimensions (``PermuteBackward0``): ``permute(x, (1, 0))`` or ``x.permute(1, 0)``.

    >>> import symgrad
    >>> symgrad.ones(2, 3).permute(1, 0).shape
    symgrad.Size([3, 2])
    """
    if len(dims) == 1 and not isinstance(dims[0], int):
        dims = tuple(dims[0])
    if len(dims) != input.ndim:
        raise RuntimeError("permute(sparse_coo): number of dimensions in the tensor input does not match the "
                           f"length of the desired ordering of dimensions i.e. input.dim() = {input.ndim} is "
                           f"not equal to len(dims) = {len(dims)}")
    perm = tuple(normalize_dim(d, input.ndim) for d in dims)
    if len(set(perm)) != len(perm):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return (input,), (perm,)


SQUEEZE = StructuralOp(
    "squeeze", lambda dims, variant: f"SqueezeBackward{variant}",
    api=Api(_squeeze_signature, functions=("squeeze",), methods=("squeeze",)),
    infer=lambda operands, dims, variant: (_squeeze_shape(operands[0].shape, dims), operands[0].dtype),
    forward=lambda x, dims, variant: x.reshape(_squeeze_shape(x.shape, dims)),
    lower=lambda x, dims, variant: reshape(x, _squeeze_shape(x.shape, dims)), view=True,
)


def _unsqueeze_shape(shape, dim):
    return shape[:dim] + (1,) + shape[dim:]


UNSQUEEZE = StructuralOp(
    "unsqueeze", "UnsqueezeBackward0",
    api=Api(_unsqueeze_signature, functions=("unsqueeze",), methods=("unsqueeze",)),
    infer=lambda operands, dim: (_unsqueeze_shape(operands[0].shape, dim), operands[0].dtype),
    forward=lambda x, dim: x.reshape(_unsqueeze_shape(x.shape, dim)),
    lower=lambda x, dim: reshape(x, _unsqueeze_shape(x.shape, dim)), view=True,
)

PERMUTE = StructuralOp(
    "permute", "PermuteBackward0",
    api=Api(_permute_signature, functions=("permute",), methods=("permute",)),
    infer=lambda operands, perm: (tuple(operands[0].shape[p] for p in perm), operands[0].dtype),
    forward=lambda x, perm: np.transpose(x, perm),
    lower=lambda x, perm: permute(x, perm), view=True,
)
