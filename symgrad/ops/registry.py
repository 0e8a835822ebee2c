"""The op record: everything about one op, declared once.

An :class:`Op` knows its name, the PyTorch ``grad_fn`` class it produces, its
shape and dtype rule (raising PyTorch's errors), its eager NumPy forward, and
its meaning as tensor-level SymPy nodes (``lower``), from which the
derivative is derived.  Two kinds:

* :class:`ElementwiseOp` — a scalar SymPy ``formula``; forward, derivative
  and generated code all come from it.
* :class:`StructuralOp` — a NumPy ``forward`` and a ``lower`` written with the
  symbolic primitives (whose adjoints live in :mod:`symgrad.derive`).

Inputs reach an op as *operands* (tensor-likes with ``.shape``/``.dtype``, or
Python scalars) plus a tuple of hashable *attributes*.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from .. import dtypes
from ..derive import local_derivative
from ..symbolic.nodes import arg, elementwise
from ..symbolic.numpy_printer import kernel_function, may_warn, quiet

__all__ = ["Api", "Op", "ElementwiseOp", "StructuralOp", "REGISTRY", "broadcast_error_shapes", "operand_dtype",
           "note_reference", "reference_recipe"]

REGISTRY: dict[str, Op] = {}

_SCALARS = (bool, int, float)


def is_scalar(x) -> bool:
    return isinstance(x, _SCALARS)


def operand_dtype(x) -> dtypes.DType:
    """The dtype of a tensor-like or Python scalar operand."""
    return dtypes.scalar_dtype(x) if is_scalar(x) else x.dtype


def operand_shape(x) -> tuple[int, ...]:
    return () if is_scalar(x) else x.shape


def promote(operands) -> dtypes.DType:
    """PyTorch's result dtype for the operands (tensors by rank, then Python scalars)."""
    # fast path (the common case on the eager hot path): tensors of one dtype,
    # and Python scalars of no higher category
    common, scalar_category = None, -1
    for x in operands:
        if isinstance(x, _SCALARS):
            category = 2 if isinstance(x, float) else (0 if isinstance(x, bool) else 1)  # np.float64 is a float
            scalar_category = max(scalar_category, category)
        elif common is None:
            common = x.dtype
        elif x.dtype is not common:
            break
    else:
        if common is not None and common._category >= scalar_category:
            return common
    dimensioned, zero_dim, scalars = [], [], []
    for x in operands:
        if is_scalar(x):
            scalars.append(dtypes.scalar_dtype(x))
        elif x.shape:
            dimensioned.append(x.dtype)
        else:
            zero_dim.append(x.dtype)
    return dtypes.result_type(dimensioned, zero_dim, scalars)


def broadcast_error_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Broadcast two shapes, raising PyTorch's ``RuntimeError`` naming both sizes.

    >>> broadcast_error_shapes((2, 1), (3,))
    (2, 3)
    """
    ndim = max(len(a), len(b))
    out = [1] * ndim
    for dim in reversed(range(ndim)):  # PyTorch reports the last mismatching dimension
        sa = a[dim - ndim + len(a)] if dim - ndim + len(a) >= 0 else 1
        sb = b[dim - ndim + len(b)] if dim - ndim + len(b) >= 0 else 1
        if sa != sb and sa != 1 and sb != 1:
            raise RuntimeError(f"The size of tensor a ({sa}) must match the size of tensor b ({sb}) "
                               f"at non-singleton dimension {dim}")
        out[dim] = sa if sb == 1 else sb
    return tuple(out)


def broadcast_operands(operands) -> tuple[int, ...]:
    """The broadcast shape of the tensor operands (Python scalars are 0-d)."""
    shape = None
    for x in operands:
        if isinstance(x, _SCALARS):
            continue
        other = x.shape
        if shape is None:
            shape = other
        elif other != shape:
            shape = broadcast_error_shapes(shape, other)
    return () if shape is None else tuple(shape)


@dataclass(frozen=True)
class Api:
    """Where an op is public, and PyTorch's signature for it.

    ``signature(*args, **kwargs) -> (operands, attrs)`` takes exactly PyTorch's
    parameters, and its docstring is the public one.  The facade generates
    ``symgrad.<f>`` for each name in ``functions``, ``Tensor.<m>`` for each in
    ``methods`` (``self`` as the first parameter),
    ``symgrad.nn.functional.<n>`` for each in ``nn`` and ``symgrad.linalg.<l>``
    for each in ``linalg``.

    The signature may return ``(operands, attrs, op)`` to apply a sibling
    record instead (``clamp`` with tensor bounds is ``ClampBackward0``, with
    numbers ``ClampBackward1``).  ``method_signature``
    replaces ``signature`` for the methods when PyTorch's method takes other
    parameters (``Tensor.where(condition, other)`` vs ``where(condition, input, other)``).
    """

    signature: Callable[..., tuple]
    functions: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    nn: tuple[str, ...] = ()
    linalg: tuple[str, ...] = ()
    method_signature: Callable[..., tuple] | None = None


class Op:
    """Base op record.  ``grad_fn`` is a name or a function of the attributes.

    ``view``: the result shares its first operand's data, and so its version
    counter (an in-place change through either is seen by both, as in PyTorch).
    ``inplace``: the public function writes the result into its first operand
    (``Tensor._inplace``) instead of returning a new tensor.
    ``api``: where the op is public (see :class:`Api`).
    """

    kind = "op"
    view = False
    inplace = False

    def __init__(self, name: str, grad_fn: str | Callable[..., str], *, value_only: tuple[int, ...] = (),
                 api: Api | None = None):
        self.name = name
        self.api = api
        self._grad_fn = grad_fn
        # operands that are saved values but not graph edges (like PyTorch's
        # Scalar arguments: `1 - w` has one edge, `w + 1` has two)
        self.value_only = value_only
        if name in REGISTRY:
            raise ValueError(f"op {name!r} declared twice")
        REGISTRY[name] = self

    def grad_fn_name(self, attrs: tuple) -> str:
        return self._grad_fn if isinstance(self._grad_fn, str) else self._grad_fn(*attrs)

    def saved_operands(self, attrs: tuple, needs_grad: tuple[bool, ...]) -> frozenset[int]:
        """Operands (index ``len(needs_grad)`` = the result) the derivative reads, as PyTorch saves them.

        Decides which in-place modifications and freed graphs make ``backward`` fail.
        """
        return frozenset()

    def infer(self, operands, attrs) -> tuple[tuple[int, ...], dtypes.DType]:
        raise NotImplementedError

    def forward(self, values, attrs, dtype: dtypes.DType, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def lower(self, inputs, attrs, dtype: dtypes.DType):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.kind} op {self.name}>"


class ElementwiseOp(Op):
    """An op defined by a scalar SymPy formula of its operands and attributes.

    ``float_result``: integer inputs give the default float dtype (exp, sigmoid,
    true division …).  ``numpy``: an optional NumPy ufunc used for the eager
    forward instead of the printed formula (same math, one less call layer).
    ``contiguous``: the result is C-contiguous whatever the operands' layout
    (PyTorch's ``pow(Scalar, Tensor)``); otherwise it is laid out like them.
    """

    kind = "elementwise"

    def __init__(self, name, formula: Callable[..., sp.Expr], grad_fn, *, arity: int = 1,
                 float_result: bool = False, numpy: Callable | None = None, value_only=(),
                 scalar_attrs: bool = False, check: Callable | None = None,
                 saves: Callable[[tuple[bool, ...]], set[int]] | None = None, api: Api | None = None,
                 contiguous: bool = False):
        super().__init__(name, grad_fn, value_only=value_only, api=api)
        self.contiguous = contiguous
        self._saves = saves  # overrides what the formula's derivative reads (PyTorch's saved tensors)
        self.check = check  # extra validation of the operands (raises PyTorch's error)
        self.formula = formula
        self.arity = arity
        self.float_result = float_result
        self.numpy = numpy
        # attributes that take part in type promotion like Python scalars (pow's exponent)
        self.scalar_attrs = scalar_attrs
        self._forward_functions: dict[tuple, Callable] = {}

    @cache  # noqa: B019 - op records live for the whole process
    def kernel(self, attrs: tuple) -> sp.Expr:
        """The scalar formula over ``a0 …`` for these attributes."""
        return sp.sympify(self.formula(*(arg(i) for i in range(self.arity)), *attrs))

    def infer(self, operands, attrs):
        if self.check is not None:
            self.check(operands)
        dtype = promote([*operands, *attrs] if self.scalar_attrs else operands)
        if self.float_result and not dtype.is_floating_point:
            dtype = dtypes.get_default_dtype()
        return broadcast_operands(operands), dtype

    def forward(self, values, attrs, dtype, shape):
        target = dtype.numpy
        for v in values:
            if type(v) is np.ndarray and v.dtype is not target:  # compute in the result dtype, as PyTorch
                values = [x if is_scalar(x) or x.dtype is target else x.astype(target) for x in values]
                break
        fn = self._forward_functions.get(attrs)
        if fn is None:
            fn = self._forward_functions[attrs] = self._forward_function(attrs)
        out = fn(*values)
        if type(out) is not np.ndarray or out.dtype is not target:
            out = np.asarray(out, dtype=target)
        if out.shape != shape:  # a kernel that reads only some operands (x ** 0 is 1): laid out like them
            like = next((v for v in values if type(v) is np.ndarray and v.shape == shape), None)
            out = np.array(np.broadcast_to(out, shape)) if like is None else np.full_like(like, out, dtype=target)
        if self.contiguous and not out.flags.c_contiguous:
            out = np.ascontiguousarray(out)
        return out

    def _forward_function(self, attrs):
        kernel = self.kernel(attrs)
        if self.numpy is not None and not attrs:
            return quiet(self.numpy) if may_warn(kernel) else self.numpy
        return kernel_function(kernel, self.arity)

    def lower(self, inputs, attrs, dtype):
        return elementwise(self.kernel(attrs), inputs, dtype.numpy)

    def inplace_variant(self, grad_fn: str | None = None,
                        saves: Callable[[tuple[bool, ...]], set[int]] | None = None) -> ElementwiseOp:
        """PyTorch's in-place ``<name>_``: the same formula, written into the first operand.

        ``grad_fn``: PyTorch's node name where it differs (``LeakyReluBackward1``
        reads the result, the input being overwritten); ``saves``: that node's
        saved tensors, which decide the version-counter errors.

        >>> from symgrad.ops.activations import LEAKY_RELU_
        >>> LEAKY_RELU_.name, LEAKY_RELU_.inplace, LEAKY_RELU_.grad_fn_name((0.01,))
        ('leaky_relu_', True, 'LeakyReluBackward1')
        """
        variant = ElementwiseOp(f"{self.name}_", self.formula, grad_fn or self._grad_fn, arity=self.arity,
                                float_result=self.float_result, numpy=self.numpy, value_only=self.value_only,
                                scalar_attrs=self.scalar_attrs, check=self.check, saves=saves or self._saves)
        variant.inplace = True
        return variant

    def saved_operands(self, attrs, needs_grad):
        if self._saves is not None:
            return frozenset(self._saves(needs_grad))
        return kernel_saved_operands(self.kernel(attrs), needs_grad)


@cache
def kernel_saved_operands(kernel: sp.Expr, needs_grad: tuple[bool, ...]) -> frozenset[int]:
    """Which operands (and ``len(needs_grad)`` for the result) the kernel's derivatives read."""
    n = len(needs_grad)
    used = set()
    for i, needed in enumerate(needs_grad):
        if needed:
            used |= local_derivative(kernel, i, n).free_symbols
    return frozenset(i for i in range(n + 1) if arg(i) in used)


class StructuralOp(Op):
    """An op with a NumPy forward and a lowering to symbolic primitives."""

    kind = "structural"

    def __init__(self, name, grad_fn, *, infer: Callable, forward: Callable, lower: Callable, value_only=(),
                 saves: Callable[[tuple[bool, ...]], set[int]] | None = None, view: bool = False,
                 api: Api | None = None):
        super().__init__(name, grad_fn, value_only=value_only, api=api)
        self._infer, self._forward, self._lower = infer, forward, lower
        self._saves = saves
        self.view = view

    def saved_operands(self, attrs, needs_grad):
        return frozenset(self._saves(needs_grad)) if self._saves else frozenset()

    def infer(self, operands, attrs):
        return self._infer(operands, *attrs)

    def forward(self, values, attrs, dtype, shape):
        return self._forward(*values, *attrs)

    def lower(self, inputs, attrs, dtype):
        return self._lower(*inputs, *attrs)


# ---------------------------------------------------------------- reference operands

# The reductions compute *reference operands* (a maximum to shift by, a one-hot
# selection) in NumPy and pass them as constants.  A compiled function cannot
# take them from the trace (they change with the input), so each is noted with
# how to recompute it: a ``symgrad.symbolic.nodes.Reference`` kind and axes.
_REFERENCES: dict[int, tuple] = {}


def note_reference(array: np.ndarray, kind: str, axes) -> np.ndarray:
    """Remember that ``array`` is reference ``kind`` over ``axes`` of its op's first operand; returns it.

    >>> a = note_reference(np.zeros((1, 1)), "reference_max", (1,))
    >>> reference_recipe(a)
    ('reference_max', (1,))
    """
    array = np.asarray(array)  # NumPy reduces a 0-d array to a scalar, which cannot be weakly referenced
    key = id(array)
    _REFERENCES[key] = (weakref.ref(array, lambda _, key=key: _REFERENCES.pop(key, None)), kind, tuple(axes))
    return array


def reference_recipe(value) -> tuple[str, tuple[int, ...]] | None:
    """``(kind, axes)`` when ``value`` is a noted reference operand, else None."""
    entry = _REFERENCES.get(id(value))
    return entry[1:] if entry is not None and entry[0]() is value else None
