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

from ..symbolic.nodes import (
    BroadcastTo,
    Elementwise,
    Fill,
    MatMul,
    Permute,
    Reshape,
    Sum,
    TensorExpr,
    TensorSymbol,
    arg,
)
from .notation import (
    Broadcast,
    Full,
    MatProd,
    MeanOver,
    Outer,
    Permutation,
    Reshaped,
    SumOver,
    Transpose,
    shape_tuple,
)

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
    return np.matmul(np.empty(a), np.empty(b)).shape


def exact(shown: Shown, shape: tuple[int, ...]) -> sp.Expr:
    """``shown`` as an expression whose NumPy value has exactly ``shape``."""
    if shown.shape == shape:
        return shown.expr
    if shown.constant:
        return Full(shown.expr, shape_tuple(shape))
    return Reshaped(shown.expr, shape_tuple(shape))


def _pull_number(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``(c, rest)`` with ``expr == c*rest`` and c a plain number (so ``sum(x/3)`` reads ``sum(x)/3``)."""
    c, rest = expr.as_coeff_Mul()
    if c.is_Number and c != 1 and not rest.is_number:
        return c, rest
    return sp.S.One, expr


# ------------------------------------------------------------- simplification

_GENTLE = (sp.factor_terms, sp.together)


def _cost(expr) -> tuple[int, int]:
    return sp.count_ops(expr), len(sp.srepr(expr))


def _functions(expr) -> set[type]:
    return {type(f) for f in expr.atoms(sp.Function)} | ({sp.Piecewise} if expr.has(sp.Piecewise) else set())


@lru_cache(maxsize=8192)
def tidy(expr: sp.Expr) -> sp.Expr:
    """A short form of a scalar expression; never one that brings in new functions (tanh stays tanh).

    >>> import sympy as sp
    >>> y, z = sp.symbols("y z", real=True)
    >>> from symgrad.symbolic import sigmoid
    >>> tidy(-y/3 + sigmoid(z)/3)
    (-y + sigmoid(z))/3
    """
    if expr.is_Atom:
        return expr
    candidates = [expr]
    for transform in _GENTLE:
        candidates.append(transform(expr))
    if sp.count_ops(expr) <= 40:
        simplified = sp.simplify(expr)
        if _functions(simplified) <= _functions(expr):
            candidates.append(simplified)
    return min(candidates, key=_cost)


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
        handler = {MatMul: self._matmul, Sum: self._reduction, Reshape: self._reshape,
                   Permute: self._permute, BroadcastTo: self._broadcast}[type(node)]
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

    def _region(self, node: Elementwise, implicit: bool = True) -> Shown:
        """A run of elementwise nodes as one simplified scalar formula over its other inputs.

        With ``implicit``, a broadcast feeding the run is left to NumPy's own
        broadcasting (as the reader would write it); if that would change the
        result's shape, the run is written again with the broadcasts shown.
        """
        placeholders: dict[TensorExpr, sp.Symbol] = {}
        operands: dict[sp.Symbol, Shown] = {}

        def scalar(n: TensorExpr) -> sp.Expr:
            inline = n is node or (isinstance(n, Elementwise) and n not in self.names and self._mean_of(n) is None)
            if inline:
                return n.expr.xreplace({arg(i): scalar(x) for i, x in enumerate(n.inputs)})
            if n not in placeholders:
                placeholders[n] = p = sp.Symbol(f"_p{len(placeholders)}", real=True)
                source = n.args[0] if implicit and isinstance(n, BroadcastTo) and n not in self.names else n
                shown = self._operand(source)
                if not (shown.constant or _same_broadcast(shown.shape, source.shape)):
                    shown = Shown(exact(shown, source.shape), source.shape, shown.depth)
                operands[p] = shown
            return placeholders[n]

        expr = tidy(scalar(node))
        used = [operands[p] for p in operands if p in expr.free_symbols]
        shape = tuple(np.broadcast_shapes(*(s.shape for s in used))) if used else ()
        if implicit and used and not _same_broadcast(shape, node.shape):
            return self._region(node, implicit=False)
        depth = 1 + max((s.depth for s in used), default=0)
        return Shown(expr.xreplace({p: s.expr for p, s in operands.items()}), shape, depth)

    # ------------------------------------------------------------- structural

    def _matmul(self, node: MatMul) -> Shown:
        a, b = node.args
        (n, k), m = a.shape, b.shape[1]
        left, right = self._operand(a), self._operand(b)
        depth = 1 + max(left.depth, right.depth)
        if k == 1 and len(left.shape) <= 1 and len(right.shape) <= 1:
            # a contraction over one element is an outer product of the two vectors
            if not left.shape or not right.shape:
                return Shown(left.expr * right.expr, left.shape + right.shape, depth)
            return Shown(_product(Outer, left.expr, right.expr, left.shape + right.shape), left.shape + right.shape,
                         depth)
        ea, sa = _matrix_operand(left, (n, k), vector=n == 1)
        eb, sb = _matrix_operand(right, (k, m), vector=m == 1)
        shape = _matmul_shape(sa, sb)
        return Shown(_product(MatProd, ea, eb, shape), shape, depth)

    def _reduction(self, node: Sum, mean: bool = False) -> Shown:
        a = node.args[0]
        inner = self._operand(a)
        if inner.constant:
            inner = Shown(exact(inner, a.shape), a.shape, inner.depth)
        axes = _map_axes(a.shape, inner.shape, node.axes)
        expr, shape = inner.expr, inner.shape
        if axes is None:
            expr, shape, axes = exact(inner, a.shape), a.shape, list(node.axes)
        if not axes:  # only size-1 axes: nothing is summed
            return inner
        out_shape = tuple(s for i, s in enumerate(shape) if i not in axes)
        shown_axes = () if len(axes) == len(shape) else tuple(axes)
        c, rest = _pull_number(expr)
        cls = MeanOver if mean else SumOver
        return Shown(c * cls(rest, sp.Tuple(*shown_axes), shape_tuple(out_shape)), out_shape, inner.depth + 1)

    def _reshape(self, node: Reshape) -> Shown:
        inner = self._operand(node.args[0])
        if inner.constant or _squeezed(inner.shape) == _squeezed(node.shape):
            return inner
        return Shown(Reshaped(inner.expr, shape_tuple(node.shape)), node.shape, inner.depth + 1)

    def _permute(self, node: Permute) -> Shown:
        a = node.args[0]
        inner = self._operand(a)
        if inner.constant or len(_squeezed(inner.shape)) <= 1:
            return inner  # one real axis: the element order is unchanged
        expr = exact(inner, a.shape)
        if node.attr == (1, 0):
            result = expr.operand if isinstance(expr, Transpose) else Transpose(expr, shape_tuple(node.shape))
        else:
            result = Permutation(expr, sp.Tuple(*node.attr), shape_tuple(node.shape))
        return Shown(result, node.shape, inner.depth + 1)

    def _broadcast(self, node: BroadcastTo) -> Shown:
        a = node.args[0]
        inner = self._operand(a)
        if inner.constant:
            return inner
        expr = inner.expr if _same_broadcast(inner.shape, a.shape) else exact(inner, a.shape)
        return Shown(Broadcast(expr, shape_tuple(node.shape)), node.shape, inner.depth + 1)


def _matrix_operand(shown: Shown, shape: tuple[int, int], vector: bool) -> tuple[sp.Expr, tuple[int, ...]]:
    """A matmul operand as NumPy reads it: the matrix itself, or a 1-D vector where the matrix is one row/column."""
    if shown.shape == shape or (vector and len(shown.shape) == 1 and shown.shape[0] == max(shape)):
        return shown.expr, shown.shape
    return exact(shown, shape), shape


def _product(cls, a: sp.Expr, b: sp.Expr, shape) -> sp.Expr:
    """``cls(a, b)`` with plain-number factors pulled in front: ``x ⊗ (g/3)`` reads ``(x ⊗ g)/3``."""
    ca, a = _pull_number(a)
    cb, b = _pull_number(b)
    return ca * cb * cls(a, b, shape_tuple(shape))
