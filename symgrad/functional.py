"""The public functions and methods of the op table, plus the composites.

Every op record that declares an :class:`~symgrad.ops.registry.Api` becomes
``symgrad.<name>`` and ``Tensor.<name>`` here, with PyTorch's signature and the
record's docstring; nothing about an op is written twice.  The composites
(``matmul``, ``pow``) choose between records the way PyTorch does and build
the same chain of ``grad_fn`` nodes.
"""

from __future__ import annotations

import functools
import inspect

from .ops import elementwise as ew
from .ops import structural as st
from .ops.registry import REGISTRY, Op
from .tensor import Tensor, _as_operand, _make, apply

__all__ = ["matmul", "pow", "public_function"]


def public_function(op: Op, signature):
    """The public function for ``op``: parse PyTorch's arguments, then :func:`apply`.

    The first argument (``input``) may be a tensor, a NumPy array or a nested list.

    >>> import symgrad
    >>> from symgrad.ops.elementwise import EXP
    >>> public_function(EXP, EXP.api.signature)([0.0])
    tensor([1.])
    """
    def function(*args, **kwargs):
        if args and type(args[0]) is not Tensor:
            args = (_as_operand(args[0]), *args[1:])
        operands, attrs = signature(*args, **kwargs)
        return apply(op, tuple(x if type(x) is Tensor else _as_operand(x) for x in operands), attrs)
    functools.update_wrapper(function, signature)
    function.__qualname__ = signature.__name__
    function.__module__ = "symgrad"
    function.__signature__ = inspect.signature(signature)
    return function


def _publish() -> None:
    for op in list(REGISTRY.values()):
        if op.api is None:
            continue
        function = public_function(op, op.api.signature)
        for name in op.api.functions:
            globals()[name] = function
            __all__.append(name)
        for name in op.api.methods:
            setattr(Tensor, name, function)  # `input` binds to self


_publish()


def pow(input, exponent) -> Tensor:  # noqa: A001 - PyTorch's name
    """``input ** exponent``: ``PowBackward0`` for a number exponent, ``PowBackward1`` for a tensor one,
    ``PowBackward2`` for a number base.

    >>> import symgrad
    >>> symgrad.pow(symgrad.tensor([2., 3.]), 2)
    tensor([4., 9.])
    """
    if isinstance(input, bool | int | float):
        return apply(ew.RPOW, (_as_operand(exponent), input))
    base = _as_operand(input)
    if isinstance(exponent, bool | int | float):
        return apply(ew.POW, (base,), (exponent,))
    return apply(ew.POW_TENSOR, (base, _as_operand(exponent)))


Tensor.pow = pow


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
        if a.requires_grad:
            row = a.unsqueeze(0)
        else:  # the same view, unrecorded: it shares a's data and version counter
            row = _make(a._data.reshape(1, -1), a.dtype)
            row._version_counter = a._version_counter
        return apply(st.SQUEEZE, (apply(st.MM, (row, b)),), ((0,), 4))
    if a.ndim == 2 and b.ndim == 2:
        return apply(st.MM, (a, b))
    raise NotImplementedError(f"matmul of {a.ndim}-D and {b.ndim}-D tensors is not supported yet")


def _rmatmul(self: Tensor, other) -> Tensor:
    return matmul(_as_operand(other), self)


Tensor.matmul = Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = _rmatmul
