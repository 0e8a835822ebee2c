"""Tensor-level SymPy nodes: the graph every derivation, pass and printer works on.

A node is a :class:`sympy.Basic`, so equal subgraphs hash and compare equal
(hash-consing gives common-subexpression elimination for free) and SymPy's
printers dispatch on the class.  A ``(5, 3)`` parameter is one
:class:`TensorSymbol`, never 15 scalars; array sizes never change the graph's
size.  Elementwise work is one :class:`Elementwise` node holding a *scalar*
SymPy expression over the placeholders ``a0, a1, …`` (see :func:`arg`).

Build nodes with the lower-case constructors (:func:`elementwise`,
:func:`matmul`, :func:`reduce_sum`, …): they check shapes and fold trivial
cases (reshape to the same shape, identity kernels, constant kernels).

Every traversal of these graphs must be memoised: they are DAGs with heavy
sharing, and a tree walk (SymPy's ``xreplace``, ``atoms``, ``subs``) is
exponential on them.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp
from sympy.core.symbol import Str

__all__ = [
    "TensorExpr", "TensorSymbol", "Elementwise", "MatMul", "Sum", "Reshape", "BroadcastTo",
    "Permute", "Fill", "Reference", "REFERENCE_KINDS", "arg", "elementwise", "matmul", "swap_last_axes",
    "reduce_sum", "reshape", "broadcast_to",
    "permute", "fill", "broadcast_shapes", "unbroadcast", "topological_order", "replace_nodes",
    "Slice", "SliceScatter", "TakeAlong", "ScatterAddAlong", "Concat", "Cumsum", "canonical_slice",
    "slice_axes", "slice_scatter", "take_along", "scatter_add_along", "concat", "cumsum",
]


@cache
def arg(i: int) -> sp.Symbol:
    """The scalar placeholder for the i-th input of an elementwise kernel (real).

    >>> arg(0)
    a0
    """
    return sp.Symbol(f"a{i}", real=True)


def _tuple(values) -> sp.Tuple:
    return sp.Tuple(*(sp.Integer(int(v)) for v in values))


def _ints(t: sp.Tuple) -> tuple[int, ...]:
    return tuple(int(v) for v in t)


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy/PyTorch broadcasting of shapes; ``ValueError`` when they do not broadcast.

    >>> broadcast_shapes((5, 1), (3,))
    (5, 3)
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        offset = ndim - len(shape)
        for i, size in enumerate(shape):
            current = out[offset + i]
            if current == 1:
                out[offset + i] = size
            elif size != 1 and size != current:
                raise ValueError(f"shapes {shapes} do not broadcast")
    return tuple(out)


class TensorExpr(sp.Basic):
    """Base class: every node knows its ``shape`` (tuple of ints) and NumPy ``dtype``."""

    shape: tuple[int, ...]
    dtype: np.dtype | None  # None: a weakly typed Python scalar

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def inputs(self) -> tuple[TensorExpr, ...]:
        """The tensor operands (the args that are tensors, not attributes)."""
        return tuple(a for a in self.args if isinstance(a, TensorExpr))

    def __hash__(self) -> int:
        # SymPy hashes recursively and caches; a chain of 1000 ops would exceed Python's recursion
        # limit on its first hash, so operands are hashed first, bottom-up, without recursion
        if self._mhash is None:
            _hash_operands_first(self)
        return sp.Basic.__hash__(self)


def _hash_operands_first(root: TensorExpr) -> None:
    stack = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if ready:
            sp.Basic.__hash__(node)
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in node.args if isinstance(a, TensorExpr) and a._mhash is None)


class TensorSymbol(TensorExpr):
    """A named tensor value supplied at call time (a leaf, a constant, a saved value, a seed).

    ``kind`` says where the value comes from; ``dtype`` None marks a Python
    scalar, which NumPy treats as weakly typed (so ``float32 * 0.5`` stays
    float32), like PyTorch's wrapped numbers.

    >>> TensorSymbol("w", (5, 3), "float32").shape
    (5, 3)
    """

    def __new__(cls, name: str, shape, dtype: str | None, kind: str = "input"):
        obj = sp.Basic.__new__(cls, Str(name), _tuple(shape), Str(dtype or "scalar"), Str(kind))
        obj.shape = tuple(int(s) for s in shape)
        obj.dtype = None if dtype in (None, "scalar") else np.dtype(dtype)
        return obj

    @property
    def name(self) -> str:
        return self.args[0].name

    @property
    def kind(self) -> str:
        return self.args[3].name

    def _sympystr(self, printer):
        return self.name


class Elementwise(TensorExpr):
    """A scalar expression over ``a0, a1, …`` applied to broadcast tensor inputs."""

    def __new__(cls, expr: sp.Expr, dtype: str, *inputs: TensorExpr):
        obj = sp.Basic.__new__(cls, expr, Str(dtype), *inputs)
        obj.shape = broadcast_shapes(*(x.shape for x in inputs))
        obj.dtype = np.dtype(dtype)
        return obj

    @property
    def expr(self) -> sp.Expr:
        return self.args[0]

    @property
    def inputs(self) -> tuple[TensorExpr, ...]:
        return self.args[2:]


class MatMul(TensorExpr):
    """Matrix product of the last two axes, leading (batch) axes broadcast: NumPy's ``a @ b`` for N >= 2."""

    def __new__(cls, a: TensorExpr, b: TensorExpr):
        obj = sp.Basic.__new__(cls, a, b)
        obj.shape = broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
        obj.dtype = np.result_type(a.dtype, b.dtype)
        return obj


class Sum(TensorExpr):
    """Sum over ``axes`` (a sorted tuple), keeping them as size 1 when ``keepdim``."""

    def __new__(cls, a: TensorExpr, axes, keepdim: bool):
        obj = sp.Basic.__new__(cls, a, _tuple(axes), sp.true if keepdim else sp.false)
        axes = set(axes)
        if keepdim:
            obj.shape = tuple(1 if i in axes else s for i, s in enumerate(a.shape))
        else:
            obj.shape = tuple(s for i, s in enumerate(a.shape) if i not in axes)
        obj.dtype = a.dtype
        return obj

    @property
    def axes(self) -> tuple[int, ...]:
        return _ints(self.args[1])

    @property
    def keepdim(self) -> bool:
        return bool(self.args[2])


class _ShapeOp(TensorExpr):
    """A node whose only attribute is a target shape (or permutation)."""

    def __new__(cls, a: TensorExpr, shape):
        obj = sp.Basic.__new__(cls, a, _tuple(shape))
        obj.shape = cls._out_shape(a.shape, tuple(int(s) for s in shape))
        obj.dtype = a.dtype
        return obj

    @staticmethod
    def _out_shape(in_shape, attr):
        return attr

    @property
    def attr(self) -> tuple[int, ...]:
        return _ints(self.args[1])


class Reshape(_ShapeOp):
    """The same elements, another shape."""


class BroadcastTo(_ShapeOp):
    """Repeat along new leading axes and size-1 axes (NumPy ``broadcast_to``)."""


class Permute(_ShapeOp):
    """Reorder axes: output axis i is input axis ``perm[i]``."""

    @staticmethod
    def _out_shape(in_shape, perm):
        return tuple(in_shape[p] for p in perm)


class Fill(TensorExpr):
    """A tensor of one constant value (zeros for unused gradients, the implicit seed 1)."""

    def __new__(cls, value, shape, dtype: str):
        obj = sp.Basic.__new__(cls, sp.sympify(value), _tuple(shape), Str(dtype))
        obj.shape = tuple(int(s) for s in shape)
        obj.dtype = np.dtype(dtype)
        return obj

    @property
    def value(self) -> sp.Expr:
        return self.args[0]


class Reference(TensorExpr):
    """A value computed from ``a`` that gradients do not flow through (no adjoint rule).

    The reductions' *reference operands* (:mod:`symgrad.ops.reductions`): the
    eager path computes them in NumPy and passes them as constants; a compiled
    function (:func:`symgrad.compile`) computes them itself.  ``kind`` is one of
    :data:`REFERENCE_KINDS`; reduced ``axes`` are kept as size 1.
    """

    def __new__(cls, kind: str, a: TensorExpr, axes, dtype: str):
        obj = sp.Basic.__new__(cls, Str(kind), a, _tuple(axes), Str(dtype))
        axes = set(axes)
        masks = kind.startswith("selection_mask")
        obj.shape = a.shape if masks else tuple(1 if i in axes else s for i, s in enumerate(a.shape))
        obj.dtype = np.dtype(dtype)
        return obj

    @property
    def kind(self) -> str:
        return self.args[0].name

    @property
    def axes(self) -> tuple[int, ...]:
        return _ints(self.args[2])


# the kinds, each printed as a call of the NumPy helper of that name (symbolic/numpy_helpers.py)
REFERENCE_KINDS = ("reference_max", "reference_min", "reference_absmax", "reference_absmin",
                   "reference_shift", "reference_finite_shift", "selection_mask_max", "selection_mask_min")


# ---------------------------------------------------------------- indexing primitives
# Slices are static (attributes, part of a compiled function's structure);
# integer index arrays are operands (values supplied at call time), so a loop
# whose indices change every step compiles once.


def _slice_tuple(slices) -> sp.Tuple:
    return sp.Tuple(*(_tuple(s) for s in slices))


def _slices(t: sp.Tuple) -> tuple[tuple[int, int, int], ...]:
    return tuple(_ints(s) for s in t)


class Slice(TensorExpr):
    """``a[start:stop:step, …]``: one canonical ``(start, stop, step)`` per axis (see :func:`canonical_slice`)."""

    def __new__(cls, a: TensorExpr, slices):
        obj = sp.Basic.__new__(cls, a, _slice_tuple(slices))
        obj.shape = tuple(len(range(*s)) for s in slices)
        obj.dtype = a.dtype
        return obj

    @property
    def slices(self) -> tuple[tuple[int, int, int], ...]:
        return _slices(self.args[1])


class SliceScatter(TensorExpr):
    """Zeros of ``shape`` with ``a`` written at ``slices``: the adjoint of :class:`Slice`."""

    def __new__(cls, a: TensorExpr, slices, shape):
        obj = sp.Basic.__new__(cls, a, _slice_tuple(slices), _tuple(shape))
        obj.shape = tuple(int(s) for s in shape)
        obj.dtype = a.dtype
        return obj

    @property
    def slices(self) -> tuple[tuple[int, int, int], ...]:
        return _slices(self.args[1])


def _along_shape(a_shape, index_shape, axis: int) -> tuple[int, ...]:
    """NumPy ``take_along_axis``: the other axes broadcast, ``axis`` has the index's size."""
    def without(shape):
        return tuple(1 if i == axis else s for i, s in enumerate(shape))
    shape = list(broadcast_shapes(without(a_shape), without(index_shape)))
    shape[axis] = index_shape[axis]
    return tuple(shape)


class TakeAlong(TensorExpr):
    """NumPy's ``take_along_axis(a, index, axis)``; ``index`` is an integer tensor operand (a value, not structure)."""

    def __new__(cls, a: TensorExpr, index: TensorExpr, axis):
        obj = sp.Basic.__new__(cls, a, index, sp.Integer(int(axis)))
        obj.shape = _along_shape(a.shape, index.shape, int(axis))
        obj.dtype = a.dtype
        return obj

    @property
    def axis(self) -> int:
        return int(self.args[2])


class ScatterAddAlong(TensorExpr):
    """Zeros with ``size`` along ``axis``, ``a`` added at ``index`` (repeats accumulate): the adjoint of TakeAlong."""

    def __new__(cls, a: TensorExpr, index: TensorExpr, axis, size):
        obj = sp.Basic.__new__(cls, a, index, sp.Integer(int(axis)), sp.Integer(int(size)))
        obj.shape = tuple(int(size) if i == int(axis) else s for i, s in enumerate(a.shape))
        obj.dtype = a.dtype
        return obj

    @property
    def axis(self) -> int:
        return int(self.args[2])

    @property
    def size(self) -> int:
        return int(self.args[3])


class Concat(TensorExpr):
    """Tensors of one dtype joined along ``axis`` (NumPy ``concatenate``)."""

    def __new__(cls, axis, *inputs: TensorExpr):
        obj = sp.Basic.__new__(cls, sp.Integer(int(axis)), *inputs)
        axis = int(axis)
        first = inputs[0].shape
        obj.shape = first[:axis] + (sum(x.shape[axis] for x in inputs),) + first[axis + 1:]
        obj.dtype = inputs[0].dtype
        return obj

    @property
    def axis(self) -> int:
        return int(self.args[0])

    @property
    def inputs(self) -> tuple[TensorExpr, ...]:
        return self.args[1:]


class Cumsum(TensorExpr):
    """Cumulative sum along ``axis``."""

    def __new__(cls, a: TensorExpr, axis):
        obj = sp.Basic.__new__(cls, a, sp.Integer(int(axis)))
        obj.shape = a.shape
        obj.dtype = a.dtype
        return obj

    @property
    def axis(self) -> int:
        return int(self.args[1])


# ---------------------------------------------------------------- constructors


def _dtype_name(dtype) -> str:
    return np.dtype(dtype).name


def elementwise(expr: sp.Expr, inputs, dtype) -> TensorExpr:
    """Apply the scalar ``expr`` (over ``a0 … a{n-1}``) to ``inputs``; folds trivial kernels.

    Repeated inputs are merged, scalar constants are substituted into the
    kernel, and a kernel that is just one of its inputs returns that input.

    >>> x = TensorSymbol("x", (3,), "float64")
    >>> elementwise(arg(0) * arg(1), [x, x], "float64").expr
    a0**2
    """
    inputs = list(inputs)
    out_shape = broadcast_shapes(*(x.shape for x in inputs))
    mapping, kept = {}, []
    for i, x in enumerate(inputs):
        if isinstance(x, Fill) and _still_broadcasts(inputs, i, out_shape):
            mapping[arg(i)] = x.value
            inputs[i] = None
            continue
        if x in kept:
            mapping[arg(i)] = arg(kept.index(x))
        else:
            mapping[arg(i)] = arg(len(kept))
            kept.append(x)
        inputs[i] = x
    expr = expr.xreplace(mapping) if mapping else expr
    used = expr.free_symbols
    if not used and expr.is_number and expr.is_finite is not False:
        return fill(expr, out_shape, dtype)
    if len(used) < len(kept):
        # drop inputs the kernel no longer reads; broadcasting restores the shape
        live = [i for i in range(len(kept)) if arg(i) in used]
        expr = expr.xreplace({arg(i): arg(j) for j, i in enumerate(live)})
        kept = [kept[i] for i in live]
    result = _identity_input(expr, kept, dtype)
    if result is None:
        result = Elementwise(expr, _dtype_name(dtype), *kept)
    return broadcast_to(result, out_shape)


def _identity_input(expr, kept, dtype):
    for i, x in enumerate(kept):
        if expr == arg(i) and x.dtype == np.dtype(dtype):
            return x
    return None


def _still_broadcasts(inputs, dropped: int, out_shape) -> bool:
    """Whether the other inputs alone still produce ``out_shape``."""
    rest = [x.shape for j, x in enumerate(inputs) if j != dropped and x is not None]
    return broadcast_shapes(*rest) == out_shape if rest else out_shape == ()


def matmul(a: TensorExpr, b: TensorExpr) -> TensorExpr:
    """Matrix product of 2-D or batched (N-D, batch axes broadcast) operands.

    >>> a = TensorSymbol("a", (2, 5), "float64"); b = TensorSymbol("b", (4, 1, 5, 3), "float64")
    >>> matmul(a, b).shape
    (4, 1, 2, 3)
    """
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul shapes {a.shape} and {b.shape}")
    broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return MatMul(a, b)


def swap_last_axes(a: TensorExpr) -> TensorExpr:
    """The matrix transpose of the last two axes (a batch of matrices stays a batch).

    >>> swap_last_axes(TensorSymbol("a", (4, 2, 5), "float64")).shape
    (4, 5, 2)
    """
    perm = list(range(a.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return permute(a, perm)


def reduce_sum(a: TensorExpr, axes=None, keepdim: bool = False) -> TensorExpr:
    """Sum over ``axes`` (all when None).

    >>> reduce_sum(TensorSymbol("a", (2, 5), "float64"), (1,)).shape
    (2,)
    """
    axes = tuple(range(a.ndim)) if axes is None else tuple(sorted({ax % max(a.ndim, 1) for ax in axes}))
    if not axes:
        return a
    if isinstance(a, Fill):
        count = int(np.prod([a.shape[i] for i in axes]))
        return fill(a.value * count, Sum(a, axes, keepdim).shape, a.dtype)
    return Sum(a, axes, keepdim)


def reshape(a: TensorExpr, shape) -> TensorExpr:
    """Same elements, new shape; folds no-ops and reshapes of reshapes.

    >>> reshape(TensorSymbol("a", (2, 3), "float64"), (2, 3)).shape
    (2, 3)
    """
    shape = tuple(int(s) for s in shape)
    if int(np.prod(shape)) != int(np.prod(a.shape)):
        raise ValueError(f"cannot reshape {a.shape} to {shape}")
    if shape == a.shape:
        return a
    if isinstance(a, Reshape):
        return reshape(a.args[0], shape)
    if isinstance(a, Fill):
        return fill(a.value, shape, a.dtype)
    return Reshape(a, shape)


def broadcast_to(a: TensorExpr, shape) -> TensorExpr:
    """Broadcast to ``shape``.

    >>> broadcast_to(TensorSymbol("a", (3,), "float64"), (2, 3)).shape
    (2, 3)
    """
    shape = tuple(int(s) for s in shape)
    if broadcast_shapes(a.shape, shape) != shape:
        raise ValueError(f"cannot broadcast {a.shape} to {shape}")
    if shape == a.shape:
        return a
    if isinstance(a, Fill):
        return fill(a.value, shape, a.dtype)
    return BroadcastTo(a, shape)


def permute(a: TensorExpr, perm) -> TensorExpr:
    """Reorder axes; folds identities and permutes of permutes.

    >>> permute(TensorSymbol("a", (2, 3), "float64"), (1, 0)).shape
    (3, 2)
    """
    perm = tuple(int(p) for p in perm)
    if sorted(perm) != list(range(a.ndim)):
        raise ValueError(f"{perm} is not a permutation of {a.ndim} axes")
    if perm == tuple(range(a.ndim)):
        return a
    if isinstance(a, Permute):
        inner = a.attr
        return permute(a.args[0], tuple(inner[p] for p in perm))
    if isinstance(a, Fill):
        return fill(a.value, tuple(a.shape[p] for p in perm), a.dtype)
    return Permute(a, perm)


def fill(value, shape, dtype) -> Fill:
    """A constant tensor.

    >>> fill(0, (2,), "float32").shape
    (2,)
    """
    return Fill(value, shape, _dtype_name(dtype))


def canonical_slice(size: int, start: int | None, stop: int | None, step: int) -> tuple[int, int, int]:
    """Python's ``slice(start, stop, step)`` of an axis of ``size`` as ``(first, first + length*step, step)``.

    Equal selections get equal triples (so equal subgraphs meet); a negative
    step's stop may be negative, meaning "through index 0".

    >>> canonical_slice(5, None, None, 1), canonical_slice(5, None, None, -1), canonical_slice(5, 1, 100, 2)
    ((0, 5, 1), (4, -1, -1), (1, 5, 2))
    """
    r = range(*slice(start, stop, step).indices(size))
    first = r.start if len(r) else 0
    return first, first + len(r) * r.step, r.step


def _is_full(s: tuple[int, int, int], size: int) -> bool:
    return s == (0, size, 1)


def slice_axes(a: TensorExpr, slices) -> TensorExpr:
    """``a`` sliced: ``slices`` maps axes to canonical ``(start, stop, step)``; other axes are kept whole.

    >>> slice_axes(TensorSymbol("a", (4, 5), "float64"), {0: (1, 3, 1)}).shape
    (2, 5)
    """
    full = [slices.get(i, (0, n, 1)) for i, n in enumerate(a.shape)]
    if all(_is_full(s, n) for s, n in zip(full, a.shape)):
        return a
    if isinstance(a, Fill):
        return fill(a.value, tuple(len(range(*s)) for s in full), a.dtype)
    return Slice(a, full)


def slice_scatter(a: TensorExpr, slices, shape) -> TensorExpr:
    """Zeros of ``shape`` holding ``a`` at ``slices`` (one canonical triple per axis).

    >>> slice_scatter(TensorSymbol("g", (2, 5), "float64"), [(1, 3, 1), (0, 5, 1)], (4, 5)).shape
    (4, 5)
    """
    slices = [tuple(s) for s in slices]
    if all(_is_full(s, n) for s, n in zip(slices, shape)):
        return a
    if isinstance(a, Fill) and a.value == 0:
        return fill(0, shape, a.dtype)
    return SliceScatter(a, slices, shape)


def take_along(a: TensorExpr, index: TensorExpr, axis: int) -> TakeAlong:
    """``np.take_along_axis(a, index, axis)`` (``index`` has ``a``'s number of axes).

    >>> take_along(TensorSymbol("a", (4, 5), "float64"), TensorSymbol("i", (3, 1), "int64"), 0).shape
    (3, 5)
    """
    if index.ndim != a.ndim:
        raise ValueError(f"index of {index.ndim} axes for a tensor of {a.ndim}")
    return TakeAlong(a, index, axis)


def scatter_add_along(a: TensorExpr, index: TensorExpr, axis: int, size: int) -> TensorExpr:
    """Zeros with ``size`` along ``axis``, ``a`` added at ``index`` (the adjoint of :func:`take_along`).

    >>> scatter_add_along(TensorSymbol("g", (3, 5), "float64"), TensorSymbol("i", (3, 1), "int64"), 0, 4).shape
    (4, 5)
    """
    if isinstance(a, Fill) and a.value == 0:
        return fill(0, ScatterAddAlong(a, index, axis, size).shape, a.dtype)
    return ScatterAddAlong(a, index, axis, size)


def concat(tensors, axis: int) -> TensorExpr:
    """Join tensors of one dtype along ``axis`` (empty ones dropped; one tensor is itself).

    >>> concat([TensorSymbol("a", (2, 3), "float64"), TensorSymbol("b", (1, 3), "float64")], 0).shape
    (3, 3)
    """
    tensors = list(tensors)
    kept = [x for x in tensors if x.shape[axis] != 0] or tensors[:1]
    if len({x.dtype for x in kept}) != 1:
        raise ValueError("concat of tensors of different dtypes")
    return kept[0] if len(kept) == 1 else Concat(axis, *kept)


def cumsum(a: TensorExpr, axis: int) -> TensorExpr:
    """Cumulative sum along ``axis`` (a 0-d or length-1 axis is the tensor itself).

    >>> cumsum(TensorSymbol("a", (2, 3), "float64"), 1).shape
    (2, 3)
    """
    if a.ndim == 0 or a.shape[axis] <= 1:
        return a
    return Cumsum(a, axis)


def unbroadcast(g: TensorExpr, shape: tuple[int, ...]) -> TensorExpr:
    """Sum ``g`` down to ``shape``: the adjoint of broadcasting, applied once by the derivation.

    >>> unbroadcast(TensorSymbol("g", (4, 3), "float64"), (1, 3)).shape
    (1, 3)
    """
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = list(range(lead))
    axes += [lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1]
    return reshape(reduce_sum(g, axes), shape)


def topological_order(outputs) -> list[TensorExpr]:
    """All tensor nodes reachable from ``outputs``, inputs before users (memoised, iterative).

    >>> x = TensorSymbol("x", (3,), "float64")
    >>> [type(n).__name__ for n in topological_order([reduce_sum(x)])]
    ['TensorSymbol', 'Sum']
    """
    order, seen = [], set()
    for root in outputs:
        if root in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            for child in reversed(node.inputs):
                if child not in seen:
                    stack.append((child, False))
    return order


def replace_nodes(outputs, mapping: dict) -> list:
    """Rebuild ``outputs`` with every node in ``mapping`` replaced (memoised; shapes must match).

    Nodes above a replacement are rebuilt around their new inputs with the
    same shape and dtype; ``None`` outputs pass through.

    >>> x = TensorSymbol("x", (3,), "float64"); y = TensorSymbol("y", (3,), "float64")
    >>> replace_nodes([reduce_sum(x)], {x: y})[0].args[0] is y
    True
    """
    new: dict[TensorExpr, TensorExpr] = dict(mapping)
    for node in topological_order([o for o in outputs if o is not None]):
        if node in new:
            continue
        args = [new.get(a, a) if isinstance(a, TensorExpr) else a for a in node.args]
        if all(a is b for a, b in zip(args, node.args)):
            new[node] = node
            continue
        rebuilt = sp.Basic.__new__(type(node), *args)
        rebuilt.shape, rebuilt.dtype = node.shape, node.dtype
        new[node] = rebuilt
    return [None if o is None else new[o] for o in outputs]
