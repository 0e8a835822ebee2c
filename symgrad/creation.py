"""Tensor creation with PyTorch's signatures: ``tensor``, ``ones``, ``randn`` …

Every function accepts ``dtype``, ``requires_grad``, ``device='cpu'`` and
``name`` (a label used in formulas and generated code).  Random tensors come
from :mod:`symgrad.random`, which reproduces PyTorch's CPU generator, so
``manual_seed(0); randn(5, 3)`` gives PyTorch's numbers.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import dtypes
from . import random as _random
from .autograd.graph import name_value
from .tensor import Tensor, _make

__all__ = ["tensor", "as_tensor", "from_numpy", "ones", "zeros", "randn", "rand", "ones_like",
           "zeros_like", "manual_seed"]


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
