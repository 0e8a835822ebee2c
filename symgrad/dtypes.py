"""Data types with PyTorch's names, and PyTorch's type-promotion rules.

A :class:`DType` wraps a NumPy dtype.  Promotion follows PyTorch, not NumPy:
dimensioned tensors outrank 0-d tensors, which outrank Python scalars, within
a category (bool < integer < floating), so ``float32 tensor + float64 0-d
tensor`` stays ``float32`` and ``int tensor * 2.5`` becomes the default float
dtype.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DType", "float32", "float64", "int64", "bool", "get_default_dtype",
    "set_default_dtype", "as_dtype", "result_type", "can_cast",
]

_builtin_bool = bool


class DType:
    """A tensor element type, printed like PyTorch's (``symgrad.float32``).

    >>> import symgrad
    >>> symgrad.float64, symgrad.float64.is_floating_point
    (symgrad.float64, True)
    """

    __slots__ = ("name", "numpy", "is_floating_point", "itemsize", "_category")

    def __init__(self, name: str, numpy_dtype: np.dtype, category: int) -> None:
        self.name = name
        self.numpy = np.dtype(numpy_dtype)
        self.is_floating_point = category == _FLOAT
        self.itemsize = self.numpy.itemsize
        self._category = category

    def __repr__(self) -> str:
        return f"symgrad.{self.name}"

    def __reduce__(self):
        return (as_dtype, (self.name,))


_BOOL, _INT, _FLOAT = 0, 1, 2

float32 = DType("float32", np.float32, _FLOAT)
float64 = DType("float64", np.float64, _FLOAT)
int64 = DType("int64", np.int64, _INT)
bool = DType("bool", np.bool_, _BOOL)  # noqa: A001 - PyTorch's name

_BY_NUMPY = {d.numpy: d for d in (float32, float64, int64, bool)}
_BY_NAME = {d.name: d for d in (float32, float64, int64, bool)}
_BY_NAME.update({"float": float32, "double": float64, "long": int64})
_default_float = float32


def get_default_dtype() -> DType:
    """The dtype of tensors created from Python floats (float32 unless changed).

    >>> import symgrad
    >>> symgrad.get_default_dtype()
    symgrad.float32
    """
    return _default_float


def set_default_dtype(dtype: DType) -> None:
    """Set the default floating dtype (``float32`` or ``float64``), as ``torch.set_default_dtype``.

    >>> import symgrad
    >>> symgrad.set_default_dtype(symgrad.float64); symgrad.set_default_dtype(symgrad.float32)
    """
    global _default_float
    dtype = as_dtype(dtype)
    if not dtype.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {dtype}")
    _default_float = dtype


def as_dtype(dtype) -> DType:
    """Normalise a DType, NumPy dtype, Python type or name to a :class:`DType`.

    >>> import numpy as np, symgrad
    >>> symgrad.dtypes.as_dtype(np.float64)
    symgrad.float64
    """
    if isinstance(dtype, DType):
        return dtype
    if dtype is float:
        return _default_float
    if dtype is int:
        return int64
    if dtype is _builtin_bool:
        return bool
    if isinstance(dtype, str) and dtype in _BY_NAME:
        return _BY_NAME[dtype]
    try:
        found = _BY_NUMPY.get(np.dtype(dtype))
    except TypeError:
        found = None
    if found is None:
        raise TypeError(f"symgrad does not support dtype {dtype!r}; use float32, float64, int64 or bool")
    return found


def from_numpy_dtype(numpy_dtype: np.dtype) -> DType:
    """The :class:`DType` for an array's NumPy dtype, mapping other widths to ours.

    >>> import numpy as np
    >>> from_numpy_dtype(np.dtype(np.int32))
    symgrad.int64
    """
    found = _BY_NUMPY.get(numpy_dtype)
    if found is not None:
        return found
    kind = numpy_dtype.kind
    if kind == "f":
        return float64 if numpy_dtype.itemsize > 4 else float32
    if kind in "iu":
        return int64
    if kind == "b":
        return bool
    raise TypeError(f"can't convert np.ndarray of type {numpy_dtype}. The only supported types are: "
                    "float64, float32, int64, int32, int16, int8, uint8, and bool.")


def _promote(a: DType | None, b: DType | None) -> DType | None:
    if a is None:
        return b
    if b is None or a is b:
        return a
    if a._category != b._category:
        return a if a._category > b._category else b
    return a if a.itemsize >= b.itemsize else b


def scalar_dtype(value) -> DType:
    """The dtype PyTorch gives a Python scalar taking part in an operation.

    >>> scalar_dtype(2), scalar_dtype(2.5), scalar_dtype(True)
    (symgrad.int64, symgrad.float32, symgrad.bool)
    """
    if isinstance(value, _builtin_bool):
        return bool
    if isinstance(value, int) and not isinstance(value, float):
        return int64
    return _default_float


def result_type(dimensioned: list[DType], zero_dim: list[DType], scalars: list[DType]) -> DType:
    """PyTorch's result type for operands grouped by priority.

    ``dimensioned`` are dtypes of tensors with ``ndim > 0``, ``zero_dim`` of 0-d
    tensors, ``scalars`` of Python numbers.  A lower-priority group only
    matters when it belongs to a higher category (e.g. an int tensor times a
    float scalar).

    >>> result_type([float32], [float64], [])
    symgrad.float32
    >>> result_type([int64], [], [float32])
    symgrad.float32
    """
    dim = zero = wrapped = None
    for d in dimensioned:
        dim = _promote(dim, d)
    for d in zero_dim:
        zero = _promote(zero, d)
    for d in scalars:
        wrapped = _promote(wrapped, d)
    return _combine(dim, _combine(zero, wrapped))


def _combine(higher: DType | None, lower: DType | None) -> DType | None:
    if higher is None:
        return lower
    if lower is None or higher._category >= lower._category:
        return higher
    if lower._category == _FLOAT and higher._category < _FLOAT:
        # an integer or bool tensor meeting a float of lower priority takes the
        # lower-priority operand's float dtype (Python floats map to the default)
        return lower
    return _promote(higher, lower)


def can_cast(from_: DType, to: DType) -> _builtin_bool:
    """Whether an in-place op may write a ``from_`` result into a ``to`` tensor (no category drop).

    >>> can_cast(float64, float32), can_cast(float32, int64)
    (True, False)
    """
    return from_._category <= to._category
