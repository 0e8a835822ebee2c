"""From tensor-level SymPy graphs to readable formulas.

Each node of a lowered graph (:mod:`symgrad.symbolic.nodes`) becomes notation
(:mod:`symgrad.formula.notation`):

* a connected run of elementwise nodes becomes *one* scalar SymPy expression
  over its non-elementwise inputs, simplified as a scalar expression (so the
  tutorial's gradient reads ``σ(z) − y``), then written over those inputs;
* ``MatMul`` becomes a matrix product, an outer product (contraction over a
  size-1 axis) or a vector product — the unsqueeze/squeeze reshapes PyTorch
  records around 1-D operands disappear;
* ``Sum`` becomes ``sum`` over the axes it reduces (``sum₀`` is a broadcast
  undone), and the ``sum/n`` that ``mean`` lowers to reads ``mean``;
* ``Permute`` of a matrix is a transpose; reshapes that only add or drop
  size-1 axes are invisible.

A shown value may differ from its node's shape by size-1 axes (a vector
standing for a ``(1, n)`` row); each step checks that the NumPy meaning of
what it writes is still the node's value and writes an explicit reshape where
it would not be, so a formula evaluated with NumPy gives the node's values.

Named intermediates: nodes listed in ``named`` are written by name and their
definitions collected; with ``max_depth``, deeper subexpressions are given
fresh names ``u1, u2, …``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp
from sympy.core.mul import _keep_coeff
from sympy.core.parameters import distribute

from ..symbolic.einsum import Einsum
from ..symbolic.functions import power
from ..symbolic.nodes import (
    BroadcastTo,
    Concat,
    Cumsum,
    Elementwise,
    Fill,
    MatMul,
    Permute,
    Reshape,
    ScatterAddAlong,
    Slice,
    SliceScatter,
    Sum,
    TakeAlong,
    TensorExpr,
    TensorSymbol,
    arg,
)
from .notation import (
    Broadcast,
    Cumulative,
    Full,
    Gathered,
    Joined,
    MatProd,
    MeanOver,
    Outer,
    Permuted,
    Reshaped,
    ScatterAdded,
    Sliced,
    SliceScattered,
    SumOver,
    TensorNotation,
    Transposed,
    einsum_notation,
    shape_tuple,
    slices_notation,
)
from .printing import shape_of

__all__ = ["Shown", "Display", "tidy"]


@dataclass(frozen=True)
class Shown:
    """A node as notation: the expression, the NumPy shape it evaluates to, and its nesting depth."""

    expr: sp.Expr
    shape: tuple[int, ...]
    depth: int = 0

    @property
    def constant(self) -> bool:
        """A number standing for a tensor filled with it."""
        return bool(self.expr.is_number)


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1)


def _strip_leading_ones(shape) -> tuple[int, ...]:
    shape = tuple(shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def _same_broadcast(shown: tuple[int, ...], exact: tuple[int, ...]) -> bool:
    """Whether broadcasting ``shown`` instead of ``exact`` gives the same alignment (they differ in leading 1s)."""
    return _strip_leading_ones(shown) == _strip_leading_ones(exact)


def _map_axes(exact: tuple[int, ...], shown: tuple[int, ...], axes) -> list[int] | None:
    """``axes`` of a tensor of shape ``exact`` as axes of the shown value (size-1 axes drop out)."""
    if exact == shown:
        return list(axes)
    real_exact = [i for i, s in enumerate(exact) if s != 1]
    real_shown = [j for j, s in enumerate(shown) if s != 1]
    if [exact[i] for i in real_exact] != [shown[j] for j in real_shown]:
        return None
    mapping = dict(zip(real_exact, real_shown))
    return sorted(mapping[i] for i in axes if i in mapping)


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy's ``matmul`` result shape for 1-D and 2-D operands (a 1-D operand loses its axis)."""
    rows = a[:-1]
    cols = b[1:] if len(b) == 2 else ()
    return rows + cols


def exact(shown: Shown, shape: tuple[int, ...], shapes: dict | None = None) -> sp.Expr:
    """``shown`` as an expression whose NumPy value has exactly ``shape``.

    A reduction gets its reduced axes back as size 1 (``keepdim``, invisible
    in the notation) rather than an explicit reshape.
    """
    if shown.shape == tuple(shape):
        return shown.expr
    if shown.constant:
        return Full(shown.expr, shape_tuple(shape))
    kept = _keep_dims(shown.expr, shape, shapes or {})
    return kept if kept is not None else Reshaped(shown.expr, shape_tuple(shape))


def _keep_dims(expr: sp.Expr, shape: tuple[int, ...], shapes: dict) -> sp.Expr | None:
    """``expr`` with its outermost reductions keeping their axes, if that gives exactly ``shape``.

    ``1/sum₁(e)`` broadcast against ``e`` is the row sums kept as a column:
    the notation stays ``sum₁(e)``, only its NumPy meaning keeps the axis.
    """
    outer: dict = {}

    def collect(e) -> None:
        if isinstance(e, SumOver | MeanOver):
            if not e.keepdim:
                outer[e] = _kept(e, shapes)
            return
        if isinstance(e, TensorNotation):
            return  # a reduction inside another operation keeps that operation's shapes
        for a in e.args:
            collect(a)

    collect(expr)
    if not outer:
        return None
    kept = expr.xreplace(outer)
    return kept if shape_of(kept, shapes) == tuple(shape) else None


def _kept(reduction, shapes: dict) -> sp.Expr:
    source = shape_of(reduction.operand, shapes)
    axes = reduction.axes or tuple(range(len(source)))
    kept = tuple(1 if i in axes else n for i, n in enumerate(source))
    return type(reduction)(reduction.operand, reduction.args[1], sp.true, shape_tuple(kept))


def _pull_number(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``(c, rest)`` with ``expr == c*rest`` and c a plain number (so ``sum(x/3)`` reads ``sum(x)/3``)."""
    c, rest = expr.as_coeff_Mul()
    if c.is_Number and c != 1 and not rest.is_number:
        return c, rest
    return sp.S.One, expr


# ------------------------------------------------------------- simplification

def _numeric_content(expr: sp.Expr) -> sp.Expr:
    """A common number pulled out of a sum, ``(σ(z) − y)/3``; symbols stay where they are (``x²·… + 2·x·…``)."""
    content, primitive = expr.as_content_primitive()
    return _keep_coeff(content, primitive)




def _at_a_point(condition) -> bool:
    """Whether a condition holds only where some expression equals a value (a set of measure zero)."""
    if isinstance(condition, sp.Eq):
        return True
    return isinstance(condition, sp.And) and any(isinstance(c, sp.Eq) for c in condition.args)


def _readable(expr: sp.Expr) -> sp.Expr:
    """``power(a, b)`` as ``a**b``, and derivatives without PyTorch's zeros at isolated points.

    ``d/dx x**x`` is a ``Piecewise`` whose first case is PyTorch's 0 at x = 0
    (where the math is undefined); a formula shows the derivative everywhere
    else.  Only such zero cases go: a case that carries a value at a point
    (the tie mask of ``max``) and kinks on intervals (relu's ``𝟙(x > 0)``) stay.
    """
    def general_case(pw):
        *cases, (value, otherwise) = pw.args
        if otherwise == sp.true and value != 0 and all(v == 0 and _at_a_point(c) for v, c in cases):
            return value
        return pw
    expr = expr.replace(lambda e: isinstance(e, power), lambda e: sp.Pow(*e.args))
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), general_case) if expr.has(sp.Piecewise) else expr


def _cost(expr) -> tuple[int, int]:
    """(divisions, operations): fewer fractions read better; ``count_ops`` counts the rest."""
    ops = sp.count_ops(expr, visual=True)
    divisions = ops.coeff(sp.Symbol("DIV")) if ops != 0 else 0
    return int(divisions), int(sp.count_ops(expr))


def _better(candidate, best) -> bool:
    """Prefer fewer fractions at no extra cost, or a clearly (25%) shorter form; else keep what was derived.

    Factoring ``x`` out of ``x²·(1 − tanh(x)²) + 2·x·tanh(x)`` saves one
    multiplication and hides the product rule, so it is not taken.
    """
    (c_div, c_ops), (b_div, b_ops) = _cost(candidate), _cost(best)
    return (c_div < b_div and c_ops <= b_ops) or (c_div <= b_div and c_ops <= 0.75 * b_ops)


_SMALL = 30  # count_ops up to which a formula is also factored (factoring is slow on large ones)


@lru_cache(maxsize=8192)
def tidy(expr: sp.Expr, thorough: bool = True) -> sp.Expr:
    """A short form of a scalar expression, from predictable rewrites only.

    Numbers come out of sums, fractions are combined and, for small
    expressions (``thorough``), factored.  ``sympy.simplify`` is not used: it
    rewrites functions (``1 − tanh²`` as ``1/cosh²``) and can take minutes
    on a formula of a few dozen operations.

    >>> import sympy as sp
    >>> y, z = sp.symbols("y z", real=True)
    >>> from symgrad.symbolic import sigmoid
    >>> tidy(-y/3 + sigmoid(z)/3)
    (-y + sigmoid(z))/3
    >>> x = sp.Symbol("x", real=True)
    >>> tidy(sp.exp(x)/x - sp.exp(x)/x**2)
    (x - 1)*exp(x)/x**2
    """
    if expr.is_Atom:
        return expr
    with distribute(True):  # rewriting needs SymPy's usual arithmetic
        candidates = [expr, _numeric_content(expr)]
        if thorough and sp.count_ops(expr) <= _SMALL:
            together = sp.together(expr)
            candidates += [together, sp.factor(together)]
    best = candidates[0]
    for candidate in candidates[1:]:
        if _better(candidate, best):
            best = candidate
    return best


# ------------------------------------------------------------------ display


class Display:
    """Writes tensor graphs as notation, sharing names and definitions across several outputs.

    ``symbols`` maps input symbols to the SymPy symbols shown for them;
    ``named`` maps nodes shown by name to their names; ``fresh()`` gives a
    new name for a node cut off by ``max_depth``.
    """

    def __init__(self, symbols: dict[TensorSymbol, sp.Symbol], named: dict[TensorExpr, str],
                 fresh: Callable[[], str], max_depth: int | None = None) -> None:
        self.symbols = symbols
        self.names: dict[TensorExpr, sp.Symbol] = {n: sp.Symbol(name, real=True) for n, name in named.items()}
        self.fresh, self.max_depth = fresh, max_depth
        self.shapes: dict[sp.Symbol, tuple[int, ...]] = {s: n.shape for n, s in self.names.items()}
        self.shapes.update({sym: node.shape for node, sym in symbols.items()})
        self.referenced: list[TensorExpr] = []  # named nodes in order of first use
        self._shown: dict[TensorExpr, Shown] = {}

    # ----------------------------------------------------------- entry points

    def show(self, node: TensorExpr) -> Shown:
        """The definition of ``node`` (never just its own name)."""
        found = self._shown.get(node)
        if found is None:
            # keep (σ(z) − y)/3 as written: SymPy would distribute a number over a sum
            with distribute(False):
                found = self._shown[node] = self._dispatch(node)
        return found

    def ref(self, node: TensorExpr) -> Shown:
        """``node`` as an operand: its name when it has one, else its definition."""
        name = self.names.get(node)
        if name is None:
            return self.show(node)
        if node not in self.referenced:
            self.referenced.append(node)
        return Shown(name, node.shape)

    def definitions(self) -> list[tuple[sp.Symbol, Shown]]:
        """``(name, definition)`` of every named node used so far, in reading order."""
        done, out = 0, []
        while done < len(self.referenced):  # a definition may reference further names
            node = self.referenced[done]
            out.append((self.names[node], self.show(node)))
            done += 1
        return out

    # -------------------------------------------------------------- helpers

    def _operand(self, node: TensorExpr) -> Shown:
        shown = self.ref(node)
        if self.max_depth is not None and shown.depth >= self.max_depth and node not in self.names:
            self.names[node] = name = sp.Symbol(self.fresh(), real=True)
            self.shapes[name] = node.shape
            shown = self.ref(node)
        return shown

    def _dispatch(self, node: TensorExpr) -> Shown:
        if isinstance(node, TensorSymbol):
            return Shown(self.symbols[node], node.shape)
        if isinstance(node, Fill):
            return Shown(node.value, ())
        if isinstance(node, Elementwise):
            mean_of = self._mean_of(node)
            return self._reduction(mean_of, mean=True) if mean_of is not None else self._region(node)
        handler = {MatMul: self._matmul, Einsum: self._einsum, Sum: self._reduction, Reshape: self._reshape,
                   Permute: self._permute, BroadcastTo: self._broadcast, Slice: self._slice,
                   SliceScatter: self._slice_scatter, TakeAlong: self._take_along,
                   ScatterAddAlong: self._scatter_add_along, Concat: self._concat, Cumsum: self._cumsum}[type(node)]
        return handler(node)

    def _mean_of(self, node: Elementwise) -> Sum | None:
        """The ``Sum`` that ``node`` divides by its element count (how ``mean`` lowers), if it is one."""
        if len(node.inputs) != 1 or not isinstance(node.inputs[0], Sum) or node.inputs[0] in self.names:
            return None
        total = node.inputs[0]
        source = total.args[0].shape
        count = int(np.prod([source[a] for a in total.axes]))
        return total if count > 1 and node.expr == arg(0) / count else None

    # ------------------------------------------------------------ elementwise

    def _exact(self, shown: Shown, shape: tuple[int, ...]) -> sp.Expr:
        return exact(shown, shape, self.shapes)

    def _region(self, node: Elementwise, implicit: bool = True) -> Shown:
        """A run of elementwise nodes as one simplified scalar formula over its other inputs.

        With ``implicit``, a broadcast feeding the run is left to NumPy's own
        broadcasting (as the reader would write it); if that would change the
        result's shape, the run is written again with the broadcasts shown.
        """
        placeholders: dict[TensorExpr, sp.Symbol] = {}
        operands: dict[sp.Symbol, tuple[Shown, tuple[int, ...]]] = {}  # shown, and the exact shape it stands for

        def scalar(n: TensorExpr) -> sp.Expr:
            inline = n is node or (isinstance(n, Elementwise) and n not in self.names and self._mean_of(n) is None)
            if inline:
                return n.expr.xreplace({arg(i): scalar(x) for i, x in enumerate(n.inputs)})
            if n not in placeholders:
                placeholders[n] = p = sp.Symbol(f"_p{len(placeholders)}", real=True)
                source = n.args[0] if implicit and isinstance(n, BroadcastTo) and n not in self.names else n
                operands[p] = (self._operand(source), source.shape)
            return placeholders[n]

        expr = tidy(_readable(scalar(node)))
        used = {p: v for p, v in operands.items() if p in expr.free_symbols}
        shown = self._aligned(used, node.shape)
        shape = tuple(np.broadcast_shapes(*(s.shape for s in shown.values()))) if shown else ()
        if implicit and shown and not _squeezed(shape) == _squeezed(node.shape):
            return self._region(node, implicit=False)
        depth = 1 + max((s.depth for s in shown.values()), default=0)
        return Shown(expr.xreplace({p: s.expr for p, s in shown.items()}), shape, depth)

    def _aligned(self, operands: dict, out: tuple[int, ...]) -> dict[sp.Symbol, Shown]:
        """The operands of an elementwise run, written so NumPy broadcasts them as the exact shapes would.

        Shown values may drop size-1 axes.  That is safe when every operand
        drops them consistently: only leading ones, or for all operands the
        same size-1 axes of the result (a column ``(n, 1)`` shown as ``(n,)``).
        Otherwise the operands that differ are written with their exact shape.
        """
        def fits(rule) -> bool:
            return all(s.constant or rule(s.shape, e) for s, e in operands.values())

        ones = {i for i, size in enumerate(out) if size == 1}

        def without_ones(shown, exact_shape):
            padded = (1,) * (len(out) - len(exact_shape)) + tuple(exact_shape)
            kept = tuple(size for i, size in enumerate(padded) if i not in ones)
            return _strip_leading_ones(shown) == _strip_leading_ones(kept)

        if fits(_same_broadcast) or fits(without_ones):
            return {p: s for p, (s, _) in operands.items()}
        return {p: s if s.constant or _same_broadcast(s.shape, e) else Shown(self._exact(s, e), e, s.depth)
                for p, (s, e) in operands.items()}

    # ------------------------------------------------------------- structural

    def _matmul(self, node: MatMul) -> Shown:
        a, b = node.args
        left, right = self._operand(a), self._operand(b)
        depth = 1 + max(left.depth, right.depth)
        if node.ndim > 2:  # a batch of products: NumPy's matmul of the operands as they are
            ea, eb = self._exact(left, a.shape), self._exact(right, b.shape)
            return Shown(_product(MatProd, ea, eb, node.shape), node.shape, depth)
        (n, k), m = a.shape, b.shape[1]
        if k == 1 and len(left.shape) <= 1 and len(right.shape) <= 1:
            # a contraction over one element is an outer product of the two vectors
            if not left.shape or not right.shape:
                return Shown(left.expr * right.expr, left.shape + right.shape, depth)
            return Shown(_product(Outer, left.expr, right.expr, left.shape + right.shape), left.shape + right.shape,
                         depth)
        ea, sa = self._matrix_operand(left, (n, k), vector=n == 1)
        eb, sb = self._matrix_operand(right, (k, m), vector=m == 1)
        shape = _matmul_shape(sa, sb)
        return Shown(_product(MatProd, ea, eb, shape), shape, depth)

    def _einsum(self, node: Einsum) -> Shown:
        shown = [self._operand(x) for x in node.inputs]
        operands = [self._exact(s, x.shape) for s, x in zip(shown, node.inputs)]
        depth = 1 + max(s.depth for s in shown)
        return Shown(einsum_notation(node.subscripts, operands, node.shape), node.shape, depth)

    def _matrix_operand(self, shown: Shown, shape: tuple[int, int], vector: bool) -> tuple[sp.Expr, tuple]:
        """A matmul operand as NumPy reads it: the matrix, or a 1-D vector where the matrix is one row/column."""
        if shown.shape == shape or (vector and len(shown.shape) == 1 and shown.shape[0] == max(shape)):
            return shown.expr, shown.shape
        return self._exact(shown, shape), shape

    def _reduction(self, node: Sum, mean: bool = False) -> Shown:
        a = node.args[0]
        inner = self._operand(a)
        if inner.constant:
            inner = Shown(self._exact(inner, a.shape), a.shape, inner.depth)
        axes = _map_axes(a.shape, inner.shape, node.axes)
        expr, shape = inner.expr, inner.shape
        if axes is None:
            expr, shape, axes = self._exact(inner, a.shape), a.shape, list(node.axes)
        if not axes:  # only size-1 axes: nothing is summed
            return inner
        keepdim = node.keepdim and shape == a.shape  # keep the axes where the value is shown exactly
        out_shape = tuple((1 if keepdim else None) if i in axes else s for i, s in enumerate(shape))
        out_shape = tuple(s for s in out_shape if s is not None)
        shown_axes = () if len(axes) == len(shape) else tuple(axes)
        c, rest = _pull_number(expr)
        cls = MeanOver if mean else SumOver
        reduced = cls(rest, sp.Tuple(*shown_axes), sp.true if keepdim else sp.false, shape_tuple(out_shape))
        return Shown(c * reduced, out_shape, inner.depth + 1)

    def _reshape(self, node: Reshape) -> Shown:
        inner = self._operand(node.args[0])
        if inner.constant or _squeezed(inner.shape) == _squeezed(node.shape):
            return inner
        return Shown(Reshaped(inner.expr, shape_tuple(node.shape)), node.shape, inner.depth + 1)

    def _permute(self, node: Permute) -> Shown:
        a = node.args[0]
        inner = self._operand(a)
        if inner.constant or len(inner.shape) <= 1:
            return inner  # a vector (or scalar) reads the same in any orientation
        perm = node.attr
        if inner.shape == _squeezed(a.shape):
            # shown without a's size-1 axes: permute the real axes among themselves
            real = [i for i, size in enumerate(a.shape) if size != 1]
            perm = tuple(real.index(p) for p in node.attr if p in real)
            expr, shape = inner.expr, tuple(inner.shape[p] for p in perm)
        else:
            expr, shape = self._exact(inner, a.shape), node.shape
        if perm == tuple(range(len(perm))):
            return Shown(expr, inner.shape, inner.depth)
        if perm == (1, 0):
            return Shown(_transpose(expr, shape), shape, inner.depth + 1)
        return Shown(Permuted(expr, sp.Tuple(*perm), shape_tuple(shape)), shape, inner.depth + 1)

    def _broadcast(self, node: BroadcastTo) -> Shown:
        a = node.args[0]
        inner = self._operand(a)
        if inner.constant:
            return inner
        expr = inner.expr if _same_broadcast(inner.shape, a.shape) else self._exact(inner, a.shape)
        return Shown(Broadcast(expr, shape_tuple(node.shape)), node.shape, inner.depth + 1)


    # ------------------------------------------------------------- indexing

    def _exact_operands(self, nodes) -> tuple[list[sp.Expr], int]:
        """The operands written with their exact shapes (indexing reads positions), and the deepest depth."""
        shown = [self._operand(x) for x in nodes]
        return [self._exact(s, x.shape) for s, x in zip(shown, nodes)], max(s.depth for s in shown)

    def _slice(self, node: Slice) -> Shown:
        a = node.args[0]
        (expr,), depth = self._exact_operands([a])
        return Shown(Sliced(expr, slices_notation(node.slices, a.shape), shape_tuple(node.shape)), node.shape,
                     depth + 1)

    def _slice_scatter(self, node: SliceScatter) -> Shown:
        (expr,), depth = self._exact_operands([node.args[0]])
        notation = SliceScattered(expr, slices_notation(node.slices, node.shape), shape_tuple(node.shape))
        return Shown(notation, node.shape, depth + 1)

    def _along(self, cls, node: TakeAlong | ScatterAddAlong) -> Shown:
        a, index = node.args[:2]
        (expr,), depth = self._exact_operands([a])
        shown_index = self._operand(index)  # its size-1 axes are restored by the notation's NumPy form
        notation = cls(expr, shown_index.expr, sp.Integer(node.axis), shape_tuple(index.shape), shape_tuple(node.shape))
        return Shown(notation, node.shape, max(depth, shown_index.depth) + 1)

    def _take_along(self, node: TakeAlong) -> Shown:
        return self._along(Gathered, node)

    def _scatter_add_along(self, node: ScatterAddAlong) -> Shown:
        return self._along(ScatterAdded, node)

    def _concat(self, node: Concat) -> Shown:
        operands, depth = self._exact_operands(node.inputs)
        return Shown(Joined(sp.Integer(node.axis), *operands, shape_tuple(node.shape)), node.shape, depth + 1)

    def _cumsum(self, node: Cumsum) -> Shown:
        (a,), depth = self._exact_operands([node.args[0]])
        return Shown(Cumulative(a, sp.Integer(node.axis), shape_tuple(node.shape)), node.shape, depth + 1)


def _transpose(expr: sp.Expr, shape: tuple[int, ...]) -> sp.Expr:
    """``exprᵀ``, with (aᵀ)ᵀ = a and (a ⊗ b)ᵀ = b ⊗ a, so equal terms can meet and add up."""
    c, rest = _pull_number(expr)
    if isinstance(rest, Transposed):
        return c * rest.operand
    if isinstance(rest, Outer):
        return c * Outer(rest.args[1], rest.args[0], shape_tuple(shape))
    return c * Transposed(rest, shape_tuple(shape))


def _product(cls, a: sp.Expr, b: sp.Expr, shape) -> sp.Expr:
    """``cls(a, b)`` with plain-number factors pulled in front: ``x ⊗ (g/3)`` reads ``(x ⊗ g)/3``."""
    ca, a = _pull_number(a)
    cb, b = _pull_number(b)
    return ca * cb * cls(a, b, shape_tuple(shape))
