"""Linear-algebra records: ``addmm``, ``bmm``, ``einsum`` and the norm clamps.

``bmm`` lowers to the batched ``MatMul`` primitive, ``einsum`` to ``Einsum``
(:mod:`symgrad.symbolic.einsum`) after PyTorch's parsing of the equation.
``matmul``, ``nn.functional.linear``, ``cosine_similarity``, ``normalize`` and ``outer``
are composites (:mod:`symgrad.nn.functional`, :mod:`symgrad.functional`) that
record the same chains of nodes PyTorch does, from these records and the
shape, reduction and elementwise ones.
"""

from __future__ import annotations

import string

import numpy as np
import sympy as sp

from .. import dtypes
from ..symbolic.einsum import einsum, split_subscripts
from ..symbolic.nodes import arg, elementwise, matmul, reshape
from .registry import Api, ElementwiseOp, StructuralOp, promote
from .shape import expand_shape
from .structural import _bilinear_saves, _same_dtype

__all__ = ["ADDMM", "BMM", "EINSUM", "NORM_CLAMP_MIN", "CLAMPED_CLONE", "same_scalar_type", "einsum_subscripts",
           "einsum_dtype"]


def _number(value) -> sp.Expr:
    value = float(value)
    return sp.Integer(int(value)) if value.is_integer() else sp.Float(value)


def _addmm_signature(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)``, ``input`` broadcast to the product (``AddmmBackward0``).

    >>> import symgrad
    >>> symgrad.addmm(symgrad.ones(3), symgrad.ones(2, 4), symgrad.ones(4, 3))
    tensor([[5., 5., 5.],
            [5., 5., 5.]])
    """
    return (input, mat1, mat2), (beta, alpha)


def _addmm_infer(operands, beta, alpha):
    bias, a, b = operands
    for name, m in (("mat1", a), ("mat2", b)):
        if m.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {m.ndim}-D tensor")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                           f"{b.shape[0]}x{b.shape[1]})")
    dtype = _same_dtype(a, b, "m1 and m2")
    _same_dtype(bias, a, "self and mat2")
    shape = (a.shape[0], b.shape[1])
    expand_shape(bias.shape, shape, bias.dtype)  # PyTorch's error when the input does not broadcast
    return shape, dtype


def _addmm_forward(bias, a, b, beta, alpha):
    product = a @ b
    out = (bias if beta == 1 else beta * bias) + (product if alpha == 1 else alpha * product)
    return np.array(np.broadcast_to(out, product.shape), order="C")


def _addmm_lower(bias, a, b, beta, alpha):
    return elementwise(_number(beta) * arg(0) + _number(alpha) * arg(1), [bias, matmul(a, b)], a.dtype)


def _addmm_saves(needs_grad):
    saved = set()
    if needs_grad[1]:
        saved.add(2)
    if needs_grad[2]:
        saved.add(1)
    return saved


ADDMM = StructuralOp("addmm", "AddmmBackward0", api=Api(_addmm_signature, functions=("addmm",), methods=("addmm",)),
                     infer=_addmm_infer, forward=_addmm_forward, lower=_addmm_lower, saves=_addmm_saves)


def same_scalar_type(a, b) -> dtypes.DType:
    """The common dtype of two batched-product operands; PyTorch's error when they differ."""
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected scalar type {_scalar_type_name(a.dtype)} but found {_scalar_type_name(b.dtype)}")
    if a.dtype is dtypes.bool:
        raise NotImplementedError('"bmm" not implemented for \'Bool\'')
    return a.dtype


def _scalar_type_name(dtype: dtypes.DType) -> str:
    return {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}[dtype.name]


def _bmm_signature(input, mat2):
    """Batched matrix product of two 3-D tensors of the same batch size (``BmmBackward0``).

    >>> import symgrad
    >>> symgrad.bmm(symgrad.ones(4, 2, 3), symgrad.ones(4, 3, 5)).shape
    symgrad.Size([4, 2, 5])
    """
    return (input, mat2), ()


def _bmm_infer(operands):
    a, b = operands
    for name, m in (("batch1", a), ("batch2", b)):
        if m.ndim != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    if b.shape[:2] != (a.shape[0], a.shape[2]):
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{a.shape[0]}, "
                           f"{a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    return (a.shape[0], a.shape[1], b.shape[2]), same_scalar_type(a, b)


BMM = StructuralOp("bmm", "BmmBackward0", api=Api(_bmm_signature, functions=("bmm",), methods=("bmm",)),
                   infer=_bmm_infer, forward=np.matmul, lower=matmul, saves=_bilinear_saves)


# ---------------------------------------------------------------------- einsum
# torch.einsum parses the equation, then records a chain of diagonal/permute/sum/mul/bmm/view
# nodes; symgrad records one node (the Einsum primitive) named like the chain's last node.

_ELLIPSIS = "."


def _parse_operands(lhs: str, count: int) -> list[list[str]]:
    """Each operand's labels, ``'.'`` standing for its ellipsis; PyTorch's parse errors."""
    labels: list[list[str]] = [[]]
    i = 0
    while i < len(lhs):
        c = lhs[i]
        if c == ".":
            operand = len(labels) - 1
            if _ELLIPSIS in labels[-1]:
                raise RuntimeError(f"einsum(): found '.' for operand {operand} for which an ellipsis was already found")
            if not (i + 2 < len(lhs) and lhs[i + 1] == "." and lhs[i + 2] == "."):
                raise RuntimeError(f"einsum(): found '.' for operand {operand} that is not part of any ellipsis")
            labels[-1].append(_ELLIPSIS)
            i += 2
        elif c == ",":
            if len(labels) == count:
                raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
            labels.append([])
        elif c != " ":
            _check_letter(c, i)
            labels[-1].append(c)
        i += 1
    if len(labels) != count:
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    return labels


def _check_letter(c: str, index: int) -> None:
    if c not in string.ascii_letters:
        raise RuntimeError(f"einsum(): invalid subscript given at index {index} in the equation string, "
                           "subscripts must be in [a-zA-Z]")


def _parse_output(rhs: str, offset: int, counts: dict[str, int]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(rhs):
        c = rhs[i]
        if c == ".":
            if _ELLIPSIS in out:
                raise RuntimeError("einsum(): found '.' for output but an ellipsis (...) was already found")
            if not (i + 2 < len(rhs) and rhs[i + 1] == "." and rhs[i + 2] == "."):
                raise RuntimeError("einsum(): found '.' for output that is not part of any ellipsis (...)")
            out.append(_ELLIPSIS)
            i += 2
        elif c != " ":
            _check_letter(c, offset + i)
            if not counts.get(c) or c in out:
                problem = "appears more than once in the output" if c in out else \
                    "does not appear in the equation for any input operand"
                raise RuntimeError(f"einsum(): output subscript {c} {problem}")
            out.append(c)
        i += 1
    return out


def einsum_subscripts(equation: str, shapes: list[tuple[int, ...]]) -> str:
    """``equation`` for operands of ``shapes`` with every label written out: ``...`` as letters, implicit output.

    PyTorch's rules: the implicit output is the ellipsis dims then the labels
    used once, in alphabetical order (upper case first); ellipses broadcast
    right-aligned.  Raises PyTorch's errors for a malformed equation.

    >>> einsum_subscripts("...ij,jk", [(5, 2, 3), (3, 4)])
    'aij,jk->aik'
    """
    arrow = equation.find("->")
    lhs = equation if arrow < 0 else equation[:arrow]
    labels = _parse_operands(lhs, len(shapes))
    counts: dict[str, int] = {}
    ellipsis_dims = 0
    for i, (operand, shape) in enumerate(zip(labels, shapes)):
        named = [c for c in operand if c != _ELLIPSIS]
        for c in named:
            counts[c] = counts.get(c, 0) + 1
        if _ELLIPSIS in operand:
            ellipsis_dims = max(ellipsis_dims, len(shape) - len(named))
            if len(named) > len(shape):
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(named)}) is more than "
                                   f"the number of dimensions ({len(shape)}) for operand {i}")
        elif len(named) != len(shape):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(named)}) does not match "
                               f"the number of dimensions ({len(shape)}) for operand {i} and no ellipsis was given")
    if arrow < 0:
        output = [_ELLIPSIS] + sorted(c for c, n in counts.items() if n == 1)
    else:
        output = _parse_output(equation[arrow + 2:], len(lhs) + 2, counts)
    spare = [c for c in string.ascii_letters if c not in counts]
    fill = spare[:ellipsis_dims]

    def written(operand: list[str], ndim: int) -> str:
        width = ndim - (len(operand) - 1) if _ELLIPSIS in operand else 0
        return "".join(c if c != _ELLIPSIS else "".join(fill[ellipsis_dims - width:]) for c in operand)

    inputs = [written(operand, len(shape)) for operand, shape in zip(labels, shapes)]
    subscripts = ",".join(inputs) + "->" + written(output, len(output) - 1 + ellipsis_dims)
    einsum_sizes(subscripts, shapes, "".join(fill))
    return subscripts


def einsum_sizes(subscripts: str, shapes, ellipsis_labels: str = "") -> dict[str, int]:
    """Each label's size, size-1 dimensions broadcasting; PyTorch's size errors.

    ``ellipsis_labels``: the labels that stand for ``...`` (their errors name the ellipsis).
    """
    inputs, _ = split_subscripts(subscripts)
    sizes: dict[str, int] = {}
    for i, (labels, shape) in enumerate(zip(inputs, shapes)):
        first: dict[str, int] = {}
        for dim, (c, size) in enumerate(zip(labels, shape)):
            if c in first:
                if size != shape[first[c]]:
                    raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {i} but the sizes don't "
                                       f"match, {size} != {shape[first[c]]}")
                continue
            first[c] = dim
            if size != 1:
                if sizes.get(c, 1) not in (1, size) and c in ellipsis_labels:
                    raise RuntimeError(f"einsum(): dimension {dim} covered by ellipsis in operand {i}has size {size} "
                                       "which does not broadcast with previously seen ellipsis with size "
                                       f"{sizes[c]} for the respective dimension")
                if sizes.get(c, 1) not in (1, size):
                    raise RuntimeError(f"einsum(): subscript {c} has size {size} for operand {i} which does not "
                                       f"broadcast with previously seen size {sizes[c]}")
                sizes[c] = size
            else:
                sizes.setdefault(c, 1)
    return sizes


def _unbroadcast_subscripts(subscripts: str, shapes) -> tuple[str, list[tuple[int, ...]]]:
    """Size-1 dimensions that broadcast against a larger size dropped (their label too), for the primitive."""
    inputs, output = split_subscripts(subscripts)
    sizes = einsum_sizes(subscripts, shapes)
    kept_inputs, kept_shapes = [], []
    for labels, shape in zip(inputs, shapes):
        keep = [size == sizes[c] for c, size in zip(labels, shape)]
        kept_inputs.append("".join(c for c, k in zip(labels, keep) if k))
        kept_shapes.append(tuple(size for size, k in zip(shape, keep) if k))
    return ",".join(kept_inputs) + "->" + output, kept_shapes


def _einsum_grad_fn(subscripts: str, dtype_name: str) -> str:
    """The last node of PyTorch's einsum chain: a sum, permute, view or mul."""
    inputs, output = split_subscripts(subscripts)
    contracted = bool(set("".join(inputs)) - set(output))
    if len(inputs) == 1:
        return "SumBackward1" if contracted else "PermuteBackward0"
    return "ViewBackward0" if contracted else "MulBackward0"


def einsum_dtype(subscripts: str, operands) -> dtypes.DType:
    """PyTorch's result dtype: ``bmm`` (one dtype) where a summed label is in two operands, else ``mul``/``sum``.

    >>> from symgrad import ones, float64
    >>> einsum_dtype("i,j->", [ones(2), ones(3, dtype=float64)]).name   # two sums and a mul: promoted
    'float64'
    """
    inputs, output = split_subscripts(subscripts)
    contracted = set("".join(inputs)) - set(output)
    shared = [c for c in contracted
              if sum(any(label == c and size != 1 for label, size in zip(labels, x.shape))
                     for labels, x in zip(inputs, operands)) > 1]
    if shared:
        for x in operands[1:]:
            same_scalar_type(operands[0], x)
        return operands[0].dtype
    dtype = promote(operands)
    return dtypes.int64 if contracted and not dtype.is_floating_point else dtype


def _einsum_infer(operands, subscripts, dtype_name):
    sizes = einsum_sizes(subscripts, [x.shape for x in operands])
    return tuple(sizes[c] for c in split_subscripts(subscripts)[1]), dtypes.as_dtype(dtype_name)


def _einsum_forward(*values_and_attrs):
    *values, subscripts, dtype_name = values_and_attrs
    reduced, shapes = _unbroadcast_subscripts(subscripts, [v.shape for v in values])
    values = [np.reshape(v.astype(dtype_name, copy=False), s) for v, s in zip(values, shapes)]
    out = np.einsum(reduced, *values, optimize=len(values) > 1)
    # a new tensor: one operand's einsum keeps NumPy's layout (PyTorch returns a view, 'ji->ij' transposed);
    # a contraction is C-contiguous like PyTorch's bmm result (NumPy's BLAS path may leave it Fortran-ordered)
    return np.array(out, dtype=dtype_name, order="K" if len(values) == 1 else "C", copy=True)


def _einsum_lower(*inputs_and_attrs):
    *inputs, subscripts, dtype_name = inputs_and_attrs
    reduced, shapes = _unbroadcast_subscripts(subscripts, [x.shape for x in inputs])
    inputs = [reshape(elementwise(arg(0), [x], dtype_name), s) for x, s in zip(inputs, shapes)]
    return einsum(reduced, inputs)


def _einsum_saves(needs_grad):
    """The gradient of one factor reads all the others."""
    return {j for j in range(len(needs_grad)) for k, needed in enumerate(needs_grad) if needed and j != k}


EINSUM = StructuralOp("einsum", _einsum_grad_fn, infer=_einsum_infer, forward=_einsum_forward, lower=_einsum_lower,
                      saves=_einsum_saves)


# F.normalize: norm.clamp_min(eps), derivative 1 where norm >= eps and 0 below (ClampMinBackward0)
NORM_CLAMP_MIN = ElementwiseOp(
    "norm_clamp_min", lambda a, eps: sp.Piecewise((a, a >= _number(eps)), (_number(eps), True)), "ClampMinBackward0",
)

# F.cosine_similarity: PyTorch clones each norm and clamps the clone to eps in place under
# no_grad, so the value is clamped but the gradient passes through as if it were not
# (CloneBackward0).  The same here: the norm plus the forward's clamping correction,
# a hidden constant operand (derivative 1; the correction is not differentiated).
CLAMPED_CLONE = ElementwiseOp("clamped_clone", lambda a, correction: a + correction, "CloneBackward0", arity=2,
                              value_only=(1,))
