"""Tensor creation with PyTorch's signatures: ``tensor``, ``ones``, ``randn`` …

Every function accepts ``dtype``, ``requires_grad``, ``device='cpu'`` and
``name`` (a label used in formulas and generated code).  Random tensors come
from :mod:`symgrad.random`, which reproduces PyTorch's CPU generator, so
``manual_seed(0); randn(5, 3)`` gives PyTorch's numbers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from . import dtypes
from . import random as _random
from .autograd.graph import name_value
from .tensor import Tensor, _make

__all__ = ["tensor", "as_tensor", "from_numpy", "ones", "zeros", "randn", "rand", "ones_like",
           "zeros_like", "manual_seed", "full", "full_like", "eye", "arange", "linspace", "randint", "randn_like"]


def _finish(array: np.ndarray, dtype: dtypes.DType, requires_grad: bool, device, name) -> Tensor:
    if device not in (None, "cpu") and str(device) != "cpu":
        raise RuntimeError(f"symgrad runs on the CPU only; got device={device!r}")
    if requires_grad and not dtype.is_floating_point:
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    t = _make(array, dtype)
    t._requires_grad = bool(requires_grad)
    if name is not None:
        t._name = str(name)
        name_value(array, t._name)  # constants reach the graph as arrays: keep their name too
    return t


def _infer_dtype(array: np.ndarray, from_python: bool) -> dtypes.DType:
    if from_python and array.dtype.kind == "f":
        return dtypes.get_default_dtype()
    return dtypes.from_numpy_dtype(array.dtype)


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """A new tensor copying ``data`` (numbers, nested lists, NumPy arrays).

    Python floats give the default dtype (float32), ints give int64.

    >>> import symgrad
    >>> symgrad.tensor([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    >>> symgrad.tensor([1.5], dtype=symgrad.float64, requires_grad=True)
    tensor([1.5000], dtype=symgrad.float64, requires_grad=True)
    """
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use sourceTensor.clone().detach() "
                      "or sourceTensor.clone().detach().requires_grad_(True), rather than "
                      "symgrad.tensor(sourceTensor).", UserWarning, stacklevel=2)
        data = data._data
    from_python = not isinstance(data, np.ndarray | np.generic)
    array = np.array(_plain(data), copy=True)
    if array.dtype == object:
        raise TypeError(f"Could not infer dtype of {type(data).__name__}")
    dtype = _infer_dtype(array, from_python) if dtype is None else dtypes.as_dtype(dtype)
    return _finish(array.astype(dtype.numpy, copy=False), dtype, requires_grad, device, name)


def _plain(data):
    """Nested sequences with tensors inside replaced by their values."""
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, list | tuple):
        return [_plain(x) for x in data]
    return data


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """A tensor sharing ``data``'s memory when it is already a suitable array or tensor.

    >>> import numpy as np, symgrad
    >>> a = np.zeros(2); t = symgrad.as_tensor(a); a[0] = 7; t
    tensor([7., 0.], dtype=symgrad.float64)
    """
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray):
        target = dtypes.from_numpy_dtype(data.dtype) if dtype is None else dtypes.as_dtype(dtype)
        return _finish(data.astype(target.numpy, copy=False), target, False, device, None)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing the memory of a NumPy array (changes show in both).

    >>> import numpy as np, symgrad
    >>> symgrad.from_numpy(np.arange(3))
    tensor([0, 1, 2])
    """
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    dtype = dtypes.from_numpy_dtype(ndarray.dtype)
    if ndarray.dtype != dtype.numpy:
        raise TypeError(f"can't convert np.ndarray of type numpy.{ndarray.dtype.name}. The only supported "
                        "types are: float64, float32, int64 and bool.")
    return _finish(ndarray, dtype, False, None, None)


def _shape(size) -> tuple[int, ...]:
    if len(size) == 1 and not isinstance(size[0], int | np.integer):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(shape)}: {list(shape)}")
    return shape


def _float_dtype(dtype) -> dtypes.DType:
    return dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)


def _filled(value, size, dtype, requires_grad, device, name) -> Tensor:
    dtype = _float_dtype(dtype)
    return _finish(np.full(_shape(size), value, dtype=dtype.numpy), dtype, requires_grad, device, name)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """A tensor of ones; ``size`` as separate ints or one sequence.

    >>> import symgrad
    >>> symgrad.ones(5)
    tensor([1., 1., 1., 1., 1.])
    """
    return _filled(1, size, dtype, requires_grad, device, name)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """A tensor of zeros.

    >>> import symgrad
    >>> symgrad.zeros(2, 2, dtype=symgrad.int64)
    tensor([[0, 0],
            [0, 0]])
    """
    return _filled(0, size, dtype, requires_grad, device, name)


def randn(*size, dtype=None, device=None, requires_grad: bool = False, generator=None,
          name: str | None = None) -> Tensor:
    """Standard normal samples, the same numbers PyTorch's CPU generator gives.

    >>> import symgrad
    >>> _ = symgrad.manual_seed(0)
    >>> symgrad.randn(3)
    tensor([ 1.5410, -0.2934, -2.1788])
    """
    dtype = _float_dtype(dtype)
    values = _random.normal(_shape(size), dtype.numpy, generator=generator)
    return _finish(values, dtype, requires_grad, device, name)


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator=None,
         name: str | None = None) -> Tensor:
    """Uniform samples in [0, 1), the same numbers PyTorch's CPU generator gives.

    >>> import symgrad
    >>> _ = symgrad.manual_seed(0)
    >>> symgrad.rand(2)
    tensor([0.4963, 0.7682])
    """
    dtype = _float_dtype(dtype)
    values = _random.uniform(_shape(size), dtype.numpy, generator=generator)
    return _finish(values, dtype, requires_grad, device, name)


def ones_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones with ``input``'s shape and dtype."""
    dtype = input.dtype if dtype is None else dtypes.as_dtype(dtype)
    return _finish(np.ones(input._data.shape, dtype.numpy), dtype, requires_grad, device, None)


def zeros_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``input``'s shape and dtype."""
    dtype = input.dtype if dtype is None else dtypes.as_dtype(dtype)
    return _finish(np.zeros(input._data.shape, dtype.numpy), dtype, requires_grad, device, None)


def manual_seed(seed: int):
    """Seed the default generator (PyTorch-compatible streams); returns the generator.

    >>> import symgrad
    >>> _ = symgrad.manual_seed(0)
    """
    return _random.manual_seed(seed)


# ------------------------------------------------------------------ issue 3: full, eye, arange, linspace, randint …


def _scalar_dtype(value) -> dtypes.DType:
    """PyTorch's dtype for a fill value: bool, int64 for ints, else the default float dtype."""
    if isinstance(value, bool | np.bool_):
        return dtypes.bool
    if isinstance(value, int | np.integer):
        return dtypes.int64
    return dtypes.get_default_dtype()


def _number(value):
    return value.item() if isinstance(value, Tensor | np.generic) else value


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False,
         name: str | None = None) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value (bool, int64, float).

    >>> import symgrad
    >>> symgrad.full((2, 2), 7)
    tensor([[7, 7],
            [7, 7]])
    """
    if not isinstance(size, list | tuple | Tensor):
        raise TypeError(f"full(): argument 'size' (position 1) must be tuple of ints, not {type(size).__name__}")
    value = _number(fill_value)
    dtype = _scalar_dtype(value) if dtype is None else dtypes.as_dtype(dtype)
    return _finish(np.full(_shape(tuple(size)), value, dtype=dtype.numpy), dtype, requires_grad, device, name)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` in ``input``'s shape and dtype (the value converted to it).

    >>> import symgrad
    >>> symgrad.full_like(symgrad.tensor([1, 2]), 2.7)
    tensor([2, 2])
    """
    dtype = input.dtype if dtype is None else dtypes.as_dtype(dtype)
    array = np.empty(input._data.shape, dtype.numpy)
    array[...] = _number(fill_value)  # unsafe cast, as PyTorch's fill_
    return _finish(array, dtype, requires_grad, device, None)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False,
        name: str | None = None) -> Tensor:
    """The ``n`` × ``m`` identity matrix (``m`` defaults to ``n``).

    >>> import symgrad
    >>> symgrad.eye(2, 3)
    tensor([[1., 0., 0.],
            [0., 1., 0.]])
    """
    for label, value in (("n", n), ("m", m)):
        if value is not None and value < 0:
            raise RuntimeError(f"{label} must be greater or equal to 0, got {value}")
    dtype = _float_dtype(dtype)
    return _finish(np.eye(n, n if m is None else m, dtype=dtype.numpy), dtype, requires_grad, device, name)


def arange(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False,
           name: str | None = None) -> Tensor:
    """Values from ``start`` (default 0) up to but excluding ``end``, ``step`` apart (may be negative).

    ``int64`` when every argument is an int, else the default float dtype.
    The values are PyTorch's bit for bit (its CPU kernel's arithmetic is
    reproduced) up to 32768 elements; above that PyTorch splits the work
    between its threads, which can move a float value by one rounding.

    >>> import symgrad
    >>> symgrad.arange(5), symgrad.arange(1, 2.5, 0.5)
    (tensor([0, 1, 2, 3, 4]), tensor([1.0000, 1.5000, 2.0000]))
    """
    if end is None:
        start, end = 0, start
    start, end, step = _number(start), _number(end), _number(step)
    if dtype is None:
        integral = all(isinstance(v, int | np.integer) for v in (start, end, step))
        dtype = dtypes.int64 if integral else dtypes.get_default_dtype()
    dtype = dtypes.as_dtype(dtype)
    if dtype is dtypes.bool:
        raise NotImplementedError("\"arange_cpu\" not implemented for 'Bool'")
    if dtype.is_floating_point:
        values = _float_range(float(start), float(end), float(step), dtype.numpy)
    elif step != 0 and int(step) == 0:  # a fractional step truncated to 0 by an integer dtype
        raise ValueError("step must be nonzero")
    else:
        values = _int_range(int(start), int(end), int(step))
    return _finish(values.astype(dtype.numpy, copy=False), dtype, requires_grad, device, name)


def _check_range(start, end, step) -> None:
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if not (math.isfinite(start) and math.isfinite(end)):
        raise RuntimeError(f"unsupported range: {start:g} -> {end:g}")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")


def _int_range(start: int, end: int, step: int) -> np.ndarray:
    _check_range(start, end, step)
    return np.arange(start, end, step, dtype=np.int64)


# PyTorch's arange kernel (CPU): start + step * i in double with a fused multiply-add,
# vectorised over 256-bit registers in pairs: each register starts from its
# first index's value (rounded to the dtype) and adds k * step (k < lanes).
_VECTOR_BYTES = 32


def _float_range(start: float, end: float, step: float, dtype: np.dtype) -> np.ndarray:
    _check_range(start, end, step)
    n = math.ceil((end - start) / step)
    index = np.arange(n, dtype=np.float64)
    out = _fma(step, index, start).astype(dtype)
    lanes = _VECTOR_BYTES // np.dtype(dtype).itemsize
    vectorised = n // (2 * lanes) * 2 * lanes
    head = index[:vectorised]
    first = _fma(step, head // lanes * lanes, start).astype(dtype).astype(np.float64)
    out[:vectorised] = _fma(head % lanes, step, first).astype(dtype)
    return out


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False,
             name: str | None = None) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (PyTorch's values bit for bit).

    >>> import symgrad
    >>> symgrad.linspace(0, 1, 5)
    tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000])
    """
    start, end, steps = _number(start), _number(end), int(_number(steps))
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dtype = _float_dtype(dtype)
    return _finish(_linspace_values(start, end, steps, dtype.numpy), dtype, requires_grad, device, name)


def _linspace_values(start, end, steps: int, dtype: np.dtype) -> np.ndarray:
    """PyTorch's kernel: the first half from ``start``, the second from ``end``, fused multiply-adds.

    Floating dtypes compute in that dtype; integer ones in double, then truncate.
    """
    floating = np.dtype(dtype).kind == "f"
    kind = np.dtype(dtype).type if floating else np.float64
    if steps <= 1:
        return np.full(steps, start, dtype=dtype)
    first = kind(dtype.type(start)) if not floating else kind(start)
    last = kind(dtype.type(end)) if not floating else kind(end)
    step = (last - first) / kind(steps - 1)
    index = np.arange(steps)
    fused = _random._fma32 if kind is np.float32 else _fma
    from_start = fused(np.full(steps, step, kind), index.astype(kind), np.full(steps, first, kind))
    from_end = fused(np.full(steps, -step, kind), (steps - index - 1).astype(kind), np.full(steps, last, kind))
    return np.where(index < steps // 2, from_start, from_end).astype(dtype)


# An exactly rounded float64 fused multiply-add (math.fma needs Python 3.13):
# Dekker's product and Knuth's sum are exact; rounding their tail to odd makes
# the final sum round correctly (Boldo & Melquiond, "Emulation of FMA", 2008).
_SPLITTER = 134217729.0  # 2**27 + 1


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_product(a, b):
    p = a * b
    a_high = _SPLITTER * a - (_SPLITTER * a - a)
    b_high = _SPLITTER * b - (_SPLITTER * b - b)
    a_low, b_low = a - a_high, b - b_high
    return p, ((a_high * b_high - p) + a_high * b_low + a_low * b_high) + a_low * b_low


def _fma(a, b, c) -> np.ndarray:
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c)))
    with np.errstate(all="ignore"):
        product, product_error = _two_product(a, b)
        high, low = _two_sum(c, product)
        tail, tail_error = _two_sum(low, product_error)
        even = (tail.view(np.int64) & 1) == 0
        inexact = (tail_error != 0) & even
        tail = np.where(inexact, np.nextafter(tail, np.copysign(np.inf, tail_error)), tail)
        return high + tail


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad: bool = False,
            name: str | None = None) -> Tensor:
    """Random integers in ``[low, high)``: ``randint(high, size)`` or ``randint(low, high, size)``.

    The same numbers as PyTorch's CPU generator (``int64`` unless ``dtype`` says otherwise).

    >>> import symgrad
    >>> _ = symgrad.manual_seed(0)
    >>> symgrad.randint(10, (5,))
    tensor([4, 9, 3, 0, 3])
    """
    if size is None:
        if high is None:
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    if not isinstance(size, list | tuple):
        raise TypeError(f"randint(): argument 'size' (position 2) must be tuple of ints, not {type(size).__name__}")
    low, high = int(_number(low)), int(_number(high))
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dtype = dtypes.int64 if dtype is None else dtypes.as_dtype(dtype)
    if requires_grad and not dtype.is_floating_point:
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    values = _random.randint(low, high, _shape(tuple(size)), generator=generator)
    return _finish(values.astype(dtype.numpy), dtype, requires_grad, device, name)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Standard normal samples in ``input``'s shape and dtype (PyTorch's numbers, as :func:`randn`).

    >>> import symgrad
    >>> _ = symgrad.manual_seed(0)
    >>> symgrad.randn_like(symgrad.zeros(3))
    tensor([ 1.5410, -0.2934, -2.1788])
    """
    dtype = input.dtype if dtype is None else dtypes.as_dtype(dtype)
    if not dtype.is_floating_point:
        raise NotImplementedError(f"\"normal_kernel_cpu\" not implemented for '{_TYPE_WORDS[dtype.name]}'")
    values = _random.normal(input._data.shape, dtype.numpy, generator=generator)
    return _finish(values, dtype, requires_grad, device, None)


_TYPE_WORDS = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}
