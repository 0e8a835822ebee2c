"""Reductions beyond ``sum``/``mean``, and the softmax family.

Each record gives PyTorch's shape/dtype rule and errors, a NumPy forward and
a lowering to the symbolic primitives (``Sum`` and elementwise kernels); the
derivatives are derived from the lowering, never written here.  PyTorch's
conventions at kinks come out of the kernels themselves:

* ``prod`` is the product of the nonzero entries (``exp`` of a sum of
  logarithms, with the sign from the count of negatives) times the entries
  that are zero, which are written as sums of those entries.  Their value is
  0 but their derivative marks them, so the gradient at a single zero is the
  product of the others and every gradient is 0 with two or more zeros, as in
  PyTorch (and the second derivatives are right too).
* ``amax``/``amin``/``max()``/``min()`` compare the input with the reduced
  value (a ``Piecewise`` equality mask, whose derivative is 0), so the gradient
  is split evenly among ties.  The reduced value is a *reference operand*: the
  forward's own result passed to the lowering as a constant (PyTorch saves the
  result for the same purpose); the primitives have no max reduction.  It is a
  hidden operand (``value_only``), not a graph edge.
* ``max(dim)``/``min(dim)`` select the element of the index they return (a
  one-hot reference operand), so the gradient flows to that element only.
* ``logsumexp``, ``softmax`` and ``log_softmax`` shift by the maximum (the
  same kind of reference operand); the lowering is exact for any shift, the
  maximum only keeps ``exp`` in range (finite at ±1000 like PyTorch).
* ``norm``/``std`` take a square root written ``Piecewise((0, Eq(s, 0)),
  (sqrt(s), True))``, whose derivative is 0 where the sum of squares is 0:
  PyTorch's gradient at the zero vector and at constant inputs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import sympy as sp

from .. import dtypes
from ..symbolic.functions import Abs  # PyTorch's sgn derivative, also of composite arguments
from ..symbolic.nodes import arg, elementwise, reduce_sum, reshape
from .registry import Api, StructuralOp, note_reference
from .structural import _converted, _reduced_shape, _torch_type_name, normalize_dim, normalize_dims

__all__ = ["PROD", "VAR", "STD", "AMAX", "AMIN", "MAX_ALL", "MIN_ALL", "MAX_DIM", "MIN_DIM", "LOGSUMEXP",
           "SOFTMAX", "LOG_SOFTMAX", "VECTOR_NORM", "check_nonempty", "extreme_reference", "selection_reference"]


def _number(value) -> sp.Expr:
    """A Python number for a kernel: an Integer when integral, else a Float."""
    value = float(value)
    return sp.Integer(int(value)) if value.is_integer() else sp.Float(value)


def _result(array, dtype=None) -> np.ndarray:
    """A forward result as an array in C order (PyTorch's reductions and softmaxes return contiguous tensors)."""
    return np.asarray(array, dtype=dtype, order="C")


def _values(tensor) -> np.ndarray:
    """A tensor operand's data, read without recording anything (for reference operands)."""
    return np.asarray(tensor.detach())


def _count(shape, dims) -> int:
    return int(np.prod([shape[d] for d in dims], dtype=np.int64))


def _all_dims(dim) -> bool:
    return dim is None or (isinstance(dim, tuple | list) and len(dim) == 0)


def _safe_sqrt(s: sp.Expr) -> sp.Expr:
    """``sqrt(s)`` whose derivative is 0 at ``s == 0`` (PyTorch's norm/std gradient there)."""
    return sp.Piecewise((0, sp.Eq(s, 0)), (sp.sqrt(s), True))


def _float_dtype(x) -> dtypes.DType:
    return x.dtype if x.dtype.is_floating_point else dtypes.get_default_dtype()


# ------------------------------------------------------------------------ prod

def _prod_signature(input, dim=None, keepdim=False, *, dtype=None):
    """Product of all elements, or along one ``dim`` (``ProdBackward0``/``ProdBackward1``).

    The gradient at zeros is PyTorch's: the product of the other elements at a
    single zero, and 0 everywhere when two or more elements are zero.

    >>> import symgrad
    >>> x = symgrad.tensor([2., 0., 3.], requires_grad=True)
    >>> x.prod().backward(); x.grad
    tensor([0., 6., 0.])
    """
    if dim is not None and not isinstance(dim, int):
        raise TypeError(f"prod(): argument 'dim' must be int, not {type(dim).__name__}")
    dims = normalize_dims(dim, input.ndim)
    return (input,), (dims, bool(keepdim), dim is None, None if dtype is None else dtypes.as_dtype(dtype).name)


def _prod_infer(operands, dims, keepdim, all_dims, dtype_name):
    (x,) = operands
    if dtype_name is not None:
        dtype = dtypes.as_dtype(dtype_name)
    else:
        dtype = x.dtype if x.dtype.is_floating_point else dtypes.int64
    return _reduced_shape(x.shape, dims, keepdim), dtype


def _prod_forward(x, dims, keepdim, all_dims, dtype_name):
    dtype = dtype_name or (x.dtype if x.dtype.kind == "f" else np.int64)
    with np.errstate(all="ignore"):
        return _result(np.prod(x, axis=dims, keepdims=keepdim, dtype=dtype))


def _prod_lower(x, dims, keepdim, all_dims, dtype_name):
    x = _converted(x, dtype_name)
    a, dtype = arg(0), x.dtype
    zero = sp.Eq(a, 0)

    def total(kernel):
        return reduce_sum(elementwise(kernel, [x], dtype), dims, True)

    zeros = total(sp.Piecewise((1, zero), (0, True)))
    negatives = total(sp.Piecewise((1, a < 0), (0, True)))
    log_magnitude = total(sp.Piecewise((0, zero), (sp.log(Abs(a)), True)))
    # both are 0, but their derivatives mark the zero entries: the product of the
    # zero entries is w1 for one zero and (w1**2 - w2)/2 for two
    w1 = total(sp.Piecewise((a, zero), (0, True)))
    w2 = total(sp.Piecewise((a ** 2, zero), (0, True)))
    z, n, log_q, s1, s2 = (arg(i) for i in range(5))
    q = (1 - 2 * sp.Mod(n, 2)) * sp.exp(log_q)  # the product of the nonzero entries
    product = sp.Piecewise((q, sp.Eq(z, 0)), (q * s1, sp.Eq(z, 1)), (q * (s1 ** 2 - s2) / 2, sp.Eq(z, 2)),
                           (0, True))
    out = elementwise(product, [zeros, negatives, log_magnitude, w1, w2], dtype)
    return reshape(out, _reduced_shape(x.shape, dims, keepdim))


PROD = StructuralOp(
    "prod", lambda dims, keepdim, all_dims, dtype: "ProdBackward0" if all_dims else "ProdBackward1",
    api=Api(_prod_signature, functions=("prod",), methods=("prod",)),
    infer=_prod_infer, forward=_prod_forward, lower=_prod_lower,
    saves=lambda needs_grad: {0, 1},
)


# ------------------------------------------------------------------- var, std

def _variance_api(name: str) -> Api:
    def signature(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, bool):  # var(x, False): the unbiased flag
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise TypeError(f"{name}() received an invalid combination of arguments - got both unbiased and "
                            "correction")
        if correction is None:
            correction = 0 if unbiased is False else 1
        dims = normalize_dims(None if _all_dims(dim) else dim, input.ndim)
        return (input,), (dims, bool(keepdim), correction)
    signature.__name__ = name
    what = "variance" if name == "var" else "standard deviation"
    grad_fn = "VarBackward0" if name == "var" else "StdBackward0"
    signature.__doc__ = (
        f"The {what} over all elements or ``dim`` (``{grad_fn}``), dividing by ``N - correction``\n"
        f"(``correction=1`` by default, ``unbiased=False`` is ``correction=0``).\n\n"
        f"    >>> import symgrad\n"
        f"    >>> symgrad.tensor([1., 2., 3., 4.]).{name}(correction=0)\n"
        f"    tensor({'1.2500' if name == 'var' else '1.1180'})\n")
    return Api(signature, functions=(name,), methods=(name,))


def _variance_infer(name):
    def infer(operands, dims, keepdim, correction):
        (x,) = operands
        if not x.dtype.is_floating_point:
            raise RuntimeError("std and var only support floating point and complex dtypes")
        if _count(x.shape, dims) - correction <= 0:
            warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less than the "
                          "reduction factor (input numel divided by output numel).", UserWarning, stacklevel=5)
        return _reduced_shape(x.shape, dims, keepdim), x.dtype
    return infer


def _variance_forward(root: bool):
    def forward(x, dims, keepdim, correction):
        n = _count(x.shape, dims)
        with np.errstate(all="ignore"):
            mean = np.sum(x, axis=dims, keepdims=True) / n if n else np.nan
            squares = np.sum(np.square(x - mean), axis=dims, keepdims=keepdim)
            out = squares / max(n - correction, 0)
            return _result(np.sqrt(out) if root else out, x.dtype)
    return forward


def _variance_lower(root: bool):
    def lower(x, dims, keepdim, correction):
        n, dtype = _count(x.shape, dims), x.dtype
        mean = elementwise(arg(0) / n if n else arg(0) * sp.nan, [reduce_sum(x, dims, True)], dtype)
        squares = reduce_sum(elementwise((arg(0) - arg(1)) ** 2, [x, mean], dtype), dims, keepdim)
        dof = n - correction
        # no degrees of freedom: PyTorch divides by 0 (inf, or nan for a zero sum)
        variance = elementwise(arg(0) / _number(dof) if dof > 0 else arg(0) * sp.oo, [squares], dtype)
        return elementwise(_safe_sqrt(arg(0)), [variance], dtype) if root else variance
    return lower


VAR = StructuralOp("var", "VarBackward0", api=_variance_api("var"), infer=_variance_infer("var"),
                   forward=_variance_forward(False), lower=_variance_lower(False), saves=lambda needs_grad: {0})
STD = StructuralOp("std", "StdBackward0", api=_variance_api("std"), infer=_variance_infer("std"),
                   forward=_variance_forward(True), lower=_variance_lower(True), saves=lambda needs_grad: {0, 1})


# ------------------------------------------------------ amax, amin, max, min

def check_nonempty(name: str, shape, dims, all_dims: bool) -> None:
    if all_dims and int(np.prod(shape, dtype=np.int64)) == 0:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. Specify the "
                           "reduction dim with the 'dim' argument.")
    for d in dims:
        if shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def extreme_reference(input, dims, largest: bool) -> np.ndarray:
    """The reduced maximum (or minimum) of ``input``'s data, with reduced dims kept as size 1."""
    reference = (np.amax if largest else np.amin)(_values(input), axis=dims, keepdims=True)
    return note_reference(reference, "reference_max" if largest else "reference_min", dims)


def _extreme_lower(x, reference, dims, keepdim, magnitude=False):
    """``reference`` plus a 0 whose derivative is the evenly split tie mask (``|x|`` when ``magnitude``)."""
    if not dims:  # nothing reduced (a 0-d input): the element itself
        return elementwise(Abs(arg(0)) if magnitude else arg(0), [x], x.dtype)
    value = Abs(arg(0)) if magnitude else arg(0)
    hit = sp.Eq(value, arg(1))
    dtype = x.dtype
    ties = reduce_sum(elementwise(sp.Piecewise((1, hit), (0, True)), [x, reference], dtype), dims, True)
    offset = reduce_sum(elementwise(sp.Piecewise((value - arg(1), hit), (0, True)), [x, reference], dtype),
                        dims, True)
    out = elementwise(arg(0) + arg(1) / arg(2), [reference, offset, ties], dtype)
    return reshape(out, _reduced_shape(x.shape, dims, keepdim))


def _reference_infer(operands, dims, keepdim):
    x = operands[0]
    return _reduced_shape(x.shape, dims, keepdim), x.dtype


def _reference_forward(x, reference, dims, keepdim):
    return np.array(reference.reshape(_reduced_shape(x.shape, dims, keepdim)), order="C")  # owned: not the operand


def _extreme_api(name: str, largest: bool) -> Api:
    def signature(input, dim=(), keepdim=False):
        all_dims = _all_dims(dim)
        dims = normalize_dims(None if all_dims else dim, input.ndim)
        check_nonempty(name, input.shape, dims, all_dims)
        return (input, extreme_reference(input, dims, largest)), (dims, bool(keepdim))
    signature.__name__ = name
    word = "maximum" if largest else "minimum"
    signature.__doc__ = (
        f"The {word} over all elements or ``dim`` (int or tuple), ``{name.capitalize()}Backward0``.\n\n"
        f"The gradient is split evenly among tied elements, as in PyTorch.\n\n"
        f"    >>> import symgrad\n"
        f"    >>> x = symgrad.tensor([1., 3., 3.], requires_grad=True)\n"
        f"    >>> x.{name}().backward(); x.grad\n"
        f"    tensor({'[0.0000, 0.5000, 0.5000]' if largest else '[1., 0., 0.]'})\n")
    return Api(signature, functions=(name,), methods=(name,))


def _extreme_op(name, grad_fn, largest, api=True):
    return StructuralOp(
        name, grad_fn, api=_extreme_api(name, largest) if api else None,
        infer=_reference_infer, forward=_reference_forward,
        lower=lambda x, reference, dims, keepdim: _extreme_lower(x, reference, dims, keepdim),
        value_only=(1,), saves=lambda needs_grad: {0, 2},
    )


AMAX = _extreme_op("amax", "AmaxBackward0", True)
AMIN = _extreme_op("amin", "AminBackward0", False)
# whole-tensor max()/min() (symgrad.functional.max chooses between these and the dim variants)
MAX_ALL = _extreme_op("max_all", "MaxBackward1", True, api=False)
MIN_ALL = _extreme_op("min_all", "MinBackward1", False, api=False)


def selection_reference(input, dim: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, one_hot)``: the index of the first maximum (minimum) along ``dim`` (kept as size 1)
    and a boolean mask selecting it."""
    data = _values(input)
    if data.ndim == 0:
        return np.zeros((), dtype=np.int64), np.ones((), dtype=bool)
    indices = (np.argmax if largest else np.argmin)(data, axis=dim, keepdims=True)
    one_hot = np.zeros(data.shape, dtype=bool)
    np.put_along_axis(one_hot, indices, True, axis=dim)
    return indices.astype(np.int64), note_reference(one_hot, f"selection_mask_{'max' if largest else 'min'}", (dim,))


def _selection_infer(operands, dims, keepdim):
    x = operands[0]
    return _reduced_shape(x.shape, dims, keepdim), x.dtype


def _selection_forward(x, one_hot, dims, keepdim):
    return _result(np.sum(np.where(one_hot, x, 0), axis=dims, keepdims=keepdim, dtype=x.dtype))


def _selection_lower(x, one_hot, dims, keepdim):
    picked = elementwise(sp.Piecewise((arg(0), sp.Eq(arg(1), 1)), (0, True)), [x, one_hot], x.dtype)
    return reduce_sum(picked, dims, keepdim)


def _selection_op(name, grad_fn):
    return StructuralOp(name, grad_fn, infer=_selection_infer, forward=_selection_forward, lower=_selection_lower,
                        value_only=(1,), saves=lambda needs_grad: {0})


# max(dim)/min(dim): values of the selected indices (the gradient goes to that element only)
MAX_DIM = _selection_op("max_dim", "MaxBackward0")
MIN_DIM = _selection_op("min_dim", "MinBackward0")


# ------------------------------------------------------------------ logsumexp

def _shift(input, dims) -> np.ndarray:
    """A shift that keeps ``exp`` in range: the maximum, with infinities (and empty reductions) made 0."""
    data = _values(input).astype(_float_dtype(input).numpy, copy=False)
    top = np.amax(data, axis=dims, keepdims=True, initial=-np.inf)
    return note_reference(np.where(np.isinf(top), 0, top).astype(data.dtype, copy=False), "reference_finite_shift",
                          dims)


def _logsumexp_signature(input, dim, keepdim=False):
    """``log(sum(exp(input)))`` over ``dim`` (int or tuple), computed stably (``LogsumexpBackward0``).

    >>> import symgrad
    >>> symgrad.tensor([1000., 1000.]).logsumexp(0)
    tensor(1000.6932)
    """
    dims = normalize_dims(dim, input.ndim)
    return (input, _shift(input, dims)), (dims, bool(keepdim))


def _logsumexp_infer(operands, dims, keepdim):
    x = operands[0]
    return _reduced_shape(x.shape, dims, keepdim), _float_dtype(x)


def _logsumexp_forward(x, shift, dims, keepdim):
    x = x.astype(shift.dtype, copy=False)
    with np.errstate(all="ignore"):
        out = np.log(np.sum(np.exp(x - shift), axis=dims, keepdims=True)) + shift
    return _result(out.reshape(_reduced_shape(x.shape, dims, keepdim)))


def _logsumexp_lower(x, shift, dims, keepdim):
    dtype = shift.dtype
    total = reduce_sum(elementwise(sp.exp(arg(0) - arg(1)), [x, shift], dtype), dims, True)
    out = elementwise(arg(0) + sp.log(arg(1)), [shift, total], dtype)
    return reshape(out, _reduced_shape(x.shape, dims, keepdim))


LOGSUMEXP = StructuralOp(
    "logsumexp", "LogsumexpBackward0",
    api=Api(_logsumexp_signature, functions=("logsumexp",), methods=("logsumexp",)),
    infer=_logsumexp_infer, forward=_logsumexp_forward, lower=_logsumexp_lower,
    value_only=(1,), saves=lambda needs_grad: {0, 2},
)


# ------------------------------------------------------------ softmax family

def _softmax_api(name: str) -> Api:
    def signature(input, dim=None, _stacklevel=3, dtype=None):
        if not isinstance(_stacklevel, int):  # torch.softmax(input, dim, dtype): the third parameter is dtype
            _stacklevel, dtype = 3, _stacklevel
        x = input if dtype is None else input.to(dtype)  # converted first, as PyTorch (ToCopyBackward0)
        if dim is None:
            warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
                          "dim=X as an argument.", UserWarning, stacklevel=_stacklevel)
            dim = 0 if x.ndim in (0, 1, 3) else 1
        d = normalize_dim(dim, x.ndim)
        if not x.dtype.is_floating_point:
            kernel = f"{name}_lastdim_kernel_impl" if d == x.ndim - 1 else f"{name}_kernel_impl"
            raise NotImplementedError(f'"{kernel}" not implemented for \'{_torch_type_name(x.dtype)}\'')
        dims = (d,) if x.ndim else ()
        shift = np.amax(_values(x), axis=dims, keepdims=True, initial=-np.inf)
        return (x, note_reference(shift, "reference_shift", dims)), (dims,)
    signature.__name__ = name
    grad_fn = "SoftmaxBackward0" if name == "softmax" else "LogSoftmaxBackward0"
    formula = "exp(x) / sum(exp(x))" if name == "softmax" else "x - log(sum(exp(x)))"
    signature.__doc__ = (
        f"``{formula}`` along ``dim``, computed stably (``{grad_fn}``).\n\n"
        f"``dtype`` converts the input first.  Without ``dim`` PyTorch's implicit choice\n"
        f"is made, with its deprecation warning.\n\n"
        f"    >>> import symgrad\n"
        f"    >>> symgrad.{name}(symgrad.tensor([1000., 1000.]), dim=0)\n"
        f"    tensor({'[0.5000, 0.5000]' if name == 'softmax' else '[-0.6931, -0.6931]'})\n")
    return Api(signature, functions=(name,), methods=(name,), nn=(name,))


def _softmax_forward(x, shift, dims):
    with np.errstate(all="ignore"):
        e = np.exp(x - shift)
        return _result(e / np.sum(e, axis=dims, keepdims=True))


def _log_softmax_forward(x, shift, dims):
    with np.errstate(all="ignore"):
        shifted = x - shift
        return _result(shifted - np.log(np.sum(np.exp(shifted), axis=dims, keepdims=True)))


def _softmax_lower(x, shift, dims):
    e = elementwise(sp.exp(arg(0) - arg(1)), [x, shift], x.dtype)
    return elementwise(arg(0) / arg(1), [e, reduce_sum(e, dims, True)], x.dtype)


def _log_softmax_lower(x, shift, dims):
    total = reduce_sum(elementwise(sp.exp(arg(0) - arg(1)), [x, shift], x.dtype), dims, True)
    return elementwise(arg(0) - arg(1) - sp.log(arg(2)), [x, shift, total], x.dtype)


def _softmax_infer(operands, dims):
    return operands[0].shape, operands[0].dtype


# The backward recomputes the normalisation from the input (PyTorch's reads only the
# saved result), so the input is saved too: modifying it in place is an error here.
SOFTMAX = StructuralOp("softmax", "SoftmaxBackward0", api=_softmax_api("softmax"), infer=_softmax_infer,
                       forward=_softmax_forward, lower=_softmax_lower, value_only=(1,),
                       saves=lambda needs_grad: {0, 2})
LOG_SOFTMAX = StructuralOp("log_softmax", "LogSoftmaxBackward0", api=_softmax_api("log_softmax"),
                           infer=_softmax_infer, forward=_log_softmax_forward, lower=_log_softmax_lower,
                           value_only=(1,), saves=lambda needs_grad: {0, 2})


# --------------------------------------------------------------------- norms

def _vector_norm_signature(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector ``ord``-norm over all elements or ``dim`` (``LinalgVectorNormBackward0``).

    ``ord`` is any number: 2 (default), 1, ``inf`` (largest magnitude; ties
    share the gradient), ``-inf``, 0 (count of nonzeros, gradient 0) or any
    other p.  The gradient at the zero vector is 0, as in PyTorch.

    >>> import symgrad
    >>> x = symgrad.tensor([3., 4.], requires_grad=True)
    >>> symgrad.linalg.vector_norm(x)
    tensor(5., grad_fn=<LinalgVectorNormBackward0>)
    """
    if isinstance(ord, bool) or not isinstance(ord, int | float):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, not {type(ord).__name__}")
    dtype_name = None if dtype is None else dtypes.as_dtype(dtype).name
    if not (x.dtype if dtype_name is None else dtypes.as_dtype(dtype_name)).is_floating_point:
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as input. "
                           f"Got {_torch_type_name(x.dtype)}")
    dims = normalize_dims(None if _all_dims(dim) else dim, x.ndim)
    attrs = (float(ord), dims, bool(keepdim), dtype_name)
    if not math.isinf(ord):
        return (x,), attrs
    if _count(x.shape, dims) == 0:
        raise RuntimeError("linalg.vector_norm cannot compute the inf norm on an empty tensor because the "
                           "operation does not have an identity")
    data = np.abs(_values(x)).astype(dtypes.as_dtype(dtype_name).numpy if dtype_name else x.dtype.numpy)
    reference = (np.amax if ord > 0 else np.amin)(data, axis=dims, keepdims=True)
    return (x, note_reference(reference, "reference_absmax" if ord > 0 else "reference_absmin", dims)), attrs


def _norm_infer(operands, ord, dims, keepdim, dtype_name):
    x = operands[0]
    dtype = x.dtype if dtype_name is None else dtypes.as_dtype(dtype_name)
    return _reduced_shape(x.shape, dims, keepdim), dtype


def _norm_forward(*args):
    *values, ord, dims, keepdim, dtype_name = args  # noqa: A001
    x = values[0] if dtype_name is None else values[0].astype(dtype_name)
    shape = _reduced_shape(x.shape, dims, keepdim)
    if math.isinf(ord):
        return np.array(values[1].reshape(shape), order="C")  # owned: not the operand
    with np.errstate(all="ignore"):
        if ord == 2:
            out = np.sqrt(np.sum(np.square(x), axis=dims, keepdims=keepdim))
        elif ord == 1:
            out = np.sum(np.abs(x), axis=dims, keepdims=keepdim)
        elif ord == 0:
            out = np.sum(x != 0, axis=dims, keepdims=keepdim)
        else:
            out = np.sum(np.abs(x) ** ord, axis=dims, keepdims=keepdim) ** (1 / ord)
    return _result(out, x.dtype)


def _norm_lower(*args):
    *inputs, ord, dims, keepdim, dtype_name = args  # noqa: A001
    x = _converted(inputs[0], dtype_name)
    a, dtype = arg(0), x.dtype
    if math.isinf(ord):
        return _extreme_lower(x, inputs[1], dims, keepdim, magnitude=True)

    def total(kernel):
        return reduce_sum(elementwise(kernel, [x], dtype), dims, keepdim)

    if ord == 2:
        return elementwise(_safe_sqrt(arg(0)), [total(a ** 2)], dtype)
    if ord == 1:
        return total(Abs(a))
    if ord == 0:
        return total(sp.Piecewise((0, sp.Eq(a, 0)), (1, True)))
    p = _number(ord)
    if p > 0:  # |0|**p and s**(1/p) at 0 have derivative 0 (PyTorch masks the zero norm)
        s = total(sp.Piecewise((0, sp.Eq(a, 0)), (Abs(a) ** p, True)))
        return elementwise(sp.Piecewise((0, sp.Eq(a, 0)), (a ** (1 / p), True)), [s], dtype)
    return elementwise(a ** (1 / p), [total(Abs(a) ** p)], dtype)


VECTOR_NORM = StructuralOp(
    "vector_norm", "LinalgVectorNormBackward0", api=Api(_vector_norm_signature, linalg=("vector_norm",)),
    infer=_norm_infer, forward=_norm_forward, lower=_norm_lower,
    value_only=(1,), saves=lambda needs_grad: {0, len(needs_grad)},
)
