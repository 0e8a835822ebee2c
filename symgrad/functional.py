"""Top-level math functions (``symgrad.exp``, ``symgrad.matmul`` …) with PyTorch's signatures.

Each forwards to the op table through :func:`symgrad.tensor.apply`; composites
such as ``matmul`` build the same chain of ``grad_fn`` nodes PyTorch does.
"""

from __future__ import annotations

import inspect

from .ops import elementwise as ew
from .ops import structural as st
from .tensor import Tensor, _as_operand, _make, apply

__all__ = ["add", "sub", "mul", "div", "pow", "matmul", "mm", "mv", "dot", "sum", "mean", "squeeze",
           "unsqueeze", "permute", *ew.UNARY]


def _from_method(name: str):
    """``symgrad.<name>(input, ...)`` as ``input.<name>(...)``: one definition serves both."""
    method = getattr(Tensor, name)

    def function(input, *args, **kwargs):
        return getattr(_as_operand(input), name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = method.__doc__
    function.__signature__ = inspect.signature(method).replace(
        parameters=[inspect.Parameter("input", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                    *list(inspect.signature(method).parameters.values())[1:]])
    return function


add, sub, mul, div = (_from_method(name) for name in ("add", "sub", "mul", "div"))


def pow(input, exponent) -> Tensor:  # noqa: A001 - PyTorch's name
    """``input ** exponent``.

    >>> import symgrad
    >>> symgrad.pow(symgrad.tensor([2., 3.]), 2)
    tensor([4., 9.])
    """
    if not isinstance(input, Tensor):
        return _as_operand(exponent).__rpow__(input)
    return input.pow(exponent)


def _unary(name: str, op):
    def function(input: Tensor) -> Tensor:
        return apply(op, (_as_operand(input),))
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Elementwise ``{name}`` (``{op.grad_fn_name(())}``).\n\n" \
                       f"    >>> import symgrad\n    >>> symgrad.{name}(symgrad.zeros(1)).shape\n" \
                       f"    symgrad.Size([1])\n"

    def method(self: Tensor) -> Tensor:
        return apply(op, (self,))
    method.__name__ = method.__qualname__ = name
    method.__doc__ = function.__doc__
    return function, method


for _name, _op in ew.UNARY.items():
    globals()[_name], _method = _unary(_name, _op)
    setattr(Tensor, _name, _method)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules for 1-D and 2-D operands.

    1-D @ 1-D is ``dot``; 2-D @ 1-D is ``mv``; 1-D @ 2-D unsqueezes the vector,
    multiplies and squeezes (``SqueezeBackward4 -> MmBackward0``), as PyTorch.

    >>> import symgrad
    >>> symgrad.matmul(symgrad.ones(5), symgrad.ones(5, 3))
    tensor([5., 5., 5.])
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
        # PyTorch records UnsqueezeBackward0 only when the vector requires grad
        if a.requires_grad:
            row = a.unsqueeze(0)
        else:  # the same view, unrecorded: it shares a's data and version counter
            row = _make(a._data.reshape(1, -1), a.dtype)
            row._version_counter = a._version_counter
        return apply(st.SQUEEZE, (apply(st.MM, (row, b)),), ((0,), 4))
    if a.ndim == 2 and b.ndim == 2:
        return apply(st.MM, (a, b))
    raise NotImplementedError(f"matmul of {a.ndim}-D and {b.ndim}-D tensors is not supported yet")


def _matmul_method(self: Tensor, other) -> Tensor:
    """Matrix product with PyTorch's 1-D/2-D rules (see :func:`symgrad.matmul`)."""
    return matmul(self, other)


def _rmatmul(self: Tensor, other) -> Tensor:
    return matmul(_as_operand(other), self)


Tensor.matmul = Tensor.__matmul__ = _matmul_method
Tensor.__rmatmul__ = _rmatmul


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices (``MmBackward0``)."""
    return apply(st.MM, (_as_operand(input), _as_operand(mat2)))


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product (``MvBackward0``)."""
    return apply(st.MV, (_as_operand(input), _as_operand(vec)))


def dot(input: Tensor, tensor: Tensor) -> Tensor:
    """Inner product of two 1-D tensors (``DotBackward0``)."""
    return apply(st.DOT, (_as_operand(input), _as_operand(tensor)))


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    """Sum of all elements or over ``dim``; see :meth:`Tensor.sum`."""
    return _as_operand(input).sum(dim, keepdim, dtype=dtype)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of all elements or over ``dim``; see :meth:`Tensor.mean`."""
    return _as_operand(input).mean(dim, keepdim, dtype=dtype)


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Remove size-1 dimensions; see :meth:`Tensor.squeeze`."""
    return _as_operand(input).squeeze(dim)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dimension; see :meth:`Tensor.unsqueeze`."""
    return _as_operand(input).unsqueeze(dim)


def permute(input: Tensor, dims) -> Tensor:
    """Reorder dimensions; see :meth:`Tensor.permute`."""
    return _as_operand(input).permute(*dims)
