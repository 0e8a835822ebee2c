"""Stability rewrites: naive formulas written by hand -> the stable primitives, before deriving.

``log(1 + exp(x))`` is ``inf`` at x = 800 and its derivative
``exp(x)/(1 + exp(x))`` is ``inf/inf``; ``softplus(x)`` is 800 with
derivative ``sigmoid(x)`` = 1.  :func:`stabilize` finds such patterns in a
tensor-level graph and rewrites them, so value and gradient are finite
wherever the exact math is finite.  Patterns (``u`` any expression, ``c`` a
positive number, ``dims`` the reduced axes):

=============================================================  ==================================
naive                                                          rewritten
=============================================================  ==================================
``log(1 + exp(u))``, ``log(exp(u) + 1)``, ``log1p(exp(u))``    ``softplus(u)``
``1/(1 + exp(-u))``, ``exp(u)/(1 + exp(u))``                   ``sigmoid(u)``
``log(sigmoid(u))``                                            ``-softplus(-u)``
``log(1 - sigmoid(u))``, ``log1p(-sigmoid(u))``                ``-softplus(u)``
``log(1 - exp(u))``, ``log1p(-exp(u))``                        ``log(-expm1(u))``
``log(exp(u))``                                                ``u``
``exp(log(u))``, only where SymPy proves ``u > 0``             ``u``
``sqrt(u*u)``, ``sqrt(u**2)``                                  ``abs(u)``
``log(sum(exp(u), dims))``, ``log(c*sum(exp(u), dims))``       ``logsumexp(u, dims)`` (+ ``log(c)``)
``exp(u) / sum(exp(u), dims, keepdim=True)``                   ``softmax(u, dims)``
``log(exp(u) / sum(exp(u), dims, keepdim=True))``              ``log_softmax(u, dims)``
``log(softmax(u, dim))``                                       ``log_softmax(u, dim)``
=============================================================  ==================================

``sum`` may also be ``mean`` (a sum times ``1/n``), and a denominator summed
without ``keepdim`` counts when it broadcasts like the kept one (a reshape
back to it, or leading axes reduced).  The tensor-level rewrites lower with the
very code of the ``logsumexp``/``softmax``/``log_softmax`` ops (shifted by the
maximum, a :class:`~symgrad.symbolic.nodes.Reference` the gradient does not
flow through).  ``exp(log(u))`` is left alone unless ``u > 0`` is provable:
for ``u < 0`` the naive value is ``nan`` and ``u`` would not be.  For the same
reason a formula in which SymPy's automatic simplification would drop such a
``log`` or square root (``sqrt(u)**2`` is ``u`` to SymPy) is not rewritten.

How: each recorded op is its own elementwise node, so a pattern spans a chain
of nodes.  Walking the graph once, inputs used only here are composed into
their consumer's formula (as :func:`symgrad.compiler.optimize.fuse_elementwise`
does, but only a few levels deep and only for kernels holding a ``log``,
``exp``, reciprocal or square root, so the pass stays linear and cheap), and
the rules are applied bottom-up to the composed formula.  A rule may also look through an input used elsewhere (``y =
sigmoid(z)`` read by ``log(y)`` and ``log(1 - y)``); that input then stays for
its other readers.  A node is rebuilt only when a rule fired in its formula;
everything else stays the very same object, and a graph without patterns
comes back unchanged.  The outputs passed in are never looked through (they
may be differentiation targets).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .. import dtypes
from ..ops.registry import REGISTRY
from ..symbolic.functions import Abs, sigmoid, softplus
from ..symbolic.nodes import (
    Elementwise,
    Reference,
    Reshape,
    Sum,
    TensorExpr,
    TensorSymbol,
    arg,
    broadcast_to,
    elementwise,
    reshape,
    topological_order,
)

__all__ = ["stabilize"]

# how many levels of single-use inputs are composed into a formula that may hold a pattern
# (log -> add -> exp -> neg is the deepest), and into an input that is looked through
_DEPTH = 4
_VIEW_DEPTH = 2


def stabilize(outputs: list[TensorExpr | None]) -> list[TensorExpr | None]:
    """Rewrite naive numerically unstable patterns under ``outputs`` into stable primitives.

    Graphs without a pattern come back unchanged (the same objects); ``None``
    outputs pass through.  See the module docstring for the patterns.

    >>> import sympy as sp
    >>> from symgrad.symbolic import TensorSymbol, elementwise, arg
    >>> x = TensorSymbol("x", (3,), "float64")
    >>> e = elementwise(sp.exp(arg(0)), [x], "float64")
    >>> naive = elementwise(sp.log(arg(0) + 1), [e], "float64")
    >>> stabilize([naive])[0].expr
    softplus(a0)
    >>> plain = elementwise(sp.sin(arg(0)), [e], "float64")
    >>> stabilize([plain])[0] is plain
    True
    """
    return _Stabilizer(outputs).run()


@dataclass(frozen=True)
class _Composed:
    """A node's formula with its single-use elementwise inputs inlined and the rules applied."""

    expr: sp.Expr   # over leaf symbols (one per tensor that is not inlined)
    fired: bool     # whether a rule rewrote anything in it


@dataclass(frozen=True)
class _ExpSum:
    """``T = sum(exp(u), axes)`` (maybe reshaped): what logsumexp and softmax rewrites start from."""

    total: Sum
    exponent: sp.Expr     # u, over leaf symbols
    exp_node: TensorExpr  # the tensor exp(u) that is summed


class _Stabilizer:
    """One run of the pass over the graph below ``outputs``."""

    def __init__(self, outputs):
        self.outputs = outputs
        live = [o for o in outputs if o is not None]
        self.order = topological_order(live)
        self.uses: dict[TensorExpr, int] = {}
        for node in self.order:
            for child in node.inputs:
                self.uses[child] = self.uses.get(child, 0) + 1
        self.kept = set(live)  # outputs: never inlined nor looked through
        self.composed: dict[tuple[TensorExpr, int, bool], _Composed | None] = {}
        self.new: dict[TensorExpr, TensorExpr] = {}
        self.changed: set[TensorExpr] = set()
        self.leaf_symbols: dict[TensorExpr, sp.Symbol] = {}
        self.leaf_tensors: dict[sp.Symbol, TensorExpr] = {}
        self.leaf_order: dict[sp.Symbol, int] = {}
        self.created: dict[tuple, TensorExpr] = {}           # rewritten reductions, built once
        self.softmaxes: dict[sp.Symbol, _ExpSum] = {}        # leaf of a created softmax -> what it normalises

    # ------------------------------------------------------------ graph walk

    def run(self) -> list[TensorExpr | None]:
        for node in self.order:
            if isinstance(node, Elementwise) and _may_match(node.expr):
                new = self._elementwise(node)
            else:
                new = self._rebuilt(node)
            self.new[node] = new
            if new is not node:
                self.changed.add(node)
        if not any(o in self.changed for o in self.outputs if o is not None):
            return list(self.outputs)
        return [None if o is None else self.new[o] for o in self.outputs]

    def _rebuilt(self, node: TensorExpr) -> TensorExpr:
        """``node`` over its inputs' new versions (itself when none changed)."""
        # (equal nodes may be distinct objects: the changed set compares by value)
        if not any(a in self.changed for a in node.inputs):
            return node
        args = [self.new[a] if isinstance(a, TensorExpr) else a for a in node.args]
        rebuilt = sp.Basic.__new__(type(node), *args)
        rebuilt.shape, rebuilt.dtype = node.shape, node.dtype
        return rebuilt

    def _elementwise(self, node: Elementwise) -> TensorExpr:
        composed = self.compose(node, _DEPTH)
        if composed is None or not composed.fired:
            return self._rebuilt(node)
        return self._build(composed.expr, node.shape, node.dtype)

    def compose(self, node: Elementwise, depth: int, peek: bool = True) -> _Composed | None:
        """``node``'s formula, single-use inputs inlined ``depth`` levels deep, rules applied (memoised).

        ``peek`` False applies the scalar rules only, never looking through
        inputs: what :meth:`view` shows (so looking through stays one level deep).
        None when SymPy's own simplification would drop a ``log`` or a square root
        of a ``u`` of unknown sign from it (``exp(log(u))`` is ``u``): that node stays as written.
        """
        key = (node, depth, peek)
        if key in self.composed:
            return self.composed[key]
        env, fired = {}, False
        for i, x in enumerate(node.inputs):
            inner = None
            # a mask stays a leaf: SymPy has no arithmetic on relations (x * (x > 0))
            if depth > 0 and isinstance(x, Elementwise) and self.uses.get(x) == 1 and x not in self.kept \
                    and x.dtype != bool:
                inner = self.compose(x, depth - 1, peek)
            if inner is None:
                env[arg(i)] = self._leaf(x)
            else:
                env[arg(i)] = inner.expr
                fired |= inner.fired
        rewriter = _KernelRewriter(self, env, peek)
        expr = rewriter.rewrite(node.expr)
        result = None if rewriter.hazard else _Composed(expr, fired or rewriter.fired)
        self.composed[key] = result
        return result

    def _leaf(self, x: TensorExpr) -> sp.Symbol:
        symbol = self.leaf_symbols.get(x)
        if symbol is None:
            symbol = sp.Dummy(f"t{len(self.leaf_symbols)}", real=True)
            self.leaf_symbols[x] = symbol
            self.leaf_tensors[symbol] = x
            self.leaf_order[symbol] = len(self.leaf_order)
        return symbol

    def _build(self, expr: sp.Expr, shape, dtype) -> TensorExpr:
        """The tensor of a formula over leaf symbols, broadcast to ``shape``."""
        order = self.leaf_order
        leaves = sorted((s for s in expr.free_symbols if s in order), key=order.__getitem__)
        tensors = [self.new.get(self.leaf_tensors[s], self.leaf_tensors[s]) for s in leaves]
        kernel = expr.xreplace({s: arg(i) for i, s in enumerate(leaves)})
        out = elementwise(kernel, tensors, dtype)
        return out if out.shape == tuple(shape) else broadcast_to(out, shape)

    # ------------------------------------------------------ looking through

    def view(self, e: sp.Expr) -> sp.Expr:
        """What ``e`` computes, when it is the leaf of an elementwise input that may be looked through."""
        tensor = self.leaf_tensors.get(e) if isinstance(e, sp.Dummy) else None
        if not isinstance(tensor, Elementwise) or tensor in self.kept:
            return e
        inner = self.compose(tensor, _VIEW_DEPTH, peek=False)
        return e if inner is None else inner.expr

    def exp_sum(self, e: sp.Expr, shifted: bool = False) -> _ExpSum | None:
        """``e`` as the leaf of ``sum(exp(u))`` (or a reshape of it).

        Unless ``shifted``, not when ``u`` is already shifted (the ops' own stable lowerings).
        """
        tensor = self.leaf_tensors.get(e) if isinstance(e, sp.Dummy) else None
        if isinstance(tensor, Reshape) and tensor not in self.kept:
            tensor = tensor.args[0]
        if not isinstance(tensor, Sum) or not isinstance(tensor.args[0], Elementwise):
            return None
        summed = tensor.args[0]
        if tensor in self.kept or summed in self.kept:
            return None
        inner = self.compose(summed, _VIEW_DEPTH, peek=False)
        if inner is None or not isinstance(inner.expr, sp.exp):
            return None
        exponent = inner.expr.args[0]
        if not shifted and self._already_shifted(exponent):
            return None
        return _ExpSum(tensor, exponent, summed)

    def _already_shifted(self, exponent: sp.Expr) -> bool:
        """``u = x - shift`` with a reference or constant shift: the ops' own stable lowerings."""
        for term in sp.Add.make_args(exponent):
            tensor = self.leaf_tensors.get(-term)
            if isinstance(tensor, Reference) or (isinstance(tensor, TensorSymbol) and tensor.kind == "const"):
                return True
        return False

    # ------------------------------------------------- tensor-level rewrites

    def _reduction(self, op_name: str, found: _ExpSum, shift_kind: str, attrs) -> TensorExpr:
        summed = found.exp_node
        key = (op_name, found.exponent, summed.shape, attrs)
        built = self.created.get(key)
        if built is None:
            x = self._build(found.exponent, summed.shape, summed.dtype)
            axes = found.total.axes
            shift = Reference(shift_kind, x, axes, summed.dtype.name)
            built = REGISTRY[op_name].lower([x, shift], attrs, dtypes.from_numpy_dtype(summed.dtype))
            self.created[key] = built
        return built

    def logsumexp(self, e: sp.Expr) -> sp.Expr | None:
        """The leaf of a logsumexp node for ``e = sum(exp(u))`` (times a positive constant)."""
        coefficient, rest = e.as_coeff_Mul()
        if not (coefficient.is_Number and coefficient.is_positive):
            return None
        found = self.exp_sum(rest)
        if found is None:
            return None
        total = found.total
        lse = self._reduction("logsumexp", found, "reference_finite_shift", (total.axes, total.keepdim))
        shown = self.leaf_tensors[rest]
        leaf = self._leaf(reshape(lse, shown.shape))
        return leaf if _is(coefficient, 1) else leaf + sp.log(coefficient)

    def softmax_factors(self, factors, exp_argument, shifted: bool = False) -> tuple | None:
        """``(i, j, found)`` when ``factors[i] / factors[j]`` is ``exp(u) / sum(exp(u), keepdim)``."""
        for j, f in enumerate(factors):
            if not (isinstance(f, sp.Pow) and _is(f.exp, -1)):
                continue
            found = self.exp_sum(f.base, shifted)
            if found is None or not self._broadcasts_as_kept(f.base, found):
                continue
            for i, g in enumerate(factors):
                if i != j and exp_argument(g) == found.exponent:
                    return i, j, found
        return None

    def _broadcasts_as_kept(self, leaf: sp.Symbol, found: _ExpSum) -> bool:
        """Whether the denominator broadcasts against ``exp(u)`` like the sum with ``keepdim``."""
        shape = self.leaf_tensors[leaf].shape
        full = found.exp_node.shape
        kept = tuple(1 if i in found.total.axes else s for i, s in enumerate(full))
        return len(shape) <= len(full) and (1,) * (len(full) - len(shape)) + tuple(shape) == kept

    def softmax(self, found: _ExpSum, log: bool) -> sp.Symbol:
        name = "log_softmax" if log else "softmax"
        node = self._reduction(name, found, "reference_shift", (found.total.axes,))
        leaf = self._leaf(node)
        self.softmaxes[leaf] = found
        return leaf


class _KernelRewriter:
    """Applies the rules bottom-up to one node's formula, inlined inputs substituted from ``env``."""

    def __init__(self, graph: _Stabilizer, env: dict, peek: bool):
        self.graph, self.env, self.peek = graph, env, peek
        self.fired = False
        # SymPy folded exp(log(u)) or sqrt(u)**2 to u, with u of unknown sign: leave this node alone
        self.hazard = False

    def rewrite(self, e: sp.Basic) -> sp.Basic:
        if e in self.env:
            return self.env[e]
        if not e.args:
            return e
        args = [self.rewrite(a) for a in e.args]
        result = self._rule(e.func, args)
        if result is not None:
            self.fired = True
            return result
        if all(a is b for a, b in zip(args, e.args)):
            return e
        rebuilt = e.func(*args)
        restricted = set().union(*(_domain_restricted(a) for a in args))
        if restricted and not restricted <= _domain_restricted(rebuilt):
            self.hazard = True
        return rebuilt

    def view(self, e: sp.Expr) -> sp.Expr:
        return self.graph.view(e) if self.peek else e

    def exp_argument(self, e: sp.Expr) -> sp.Expr | None:
        v = self.view(e)
        return v.args[0] if isinstance(v, sp.exp) else None

    def sigmoid_argument(self, e: sp.Expr) -> sp.Expr | None:
        v = self.view(e)
        return v.args[0] if isinstance(v, sigmoid) else None

    def _rule(self, func, args) -> sp.Expr | None:
        if func is sp.log:
            return self._log(args[0])
        if func is log1p:
            return self._log_one_plus(args[0])
        if func is sp.exp:
            v = self.view(args[0])
            if isinstance(v, sp.log) and v.args[0].is_positive:
                return v.args[0]
            return None
        if func is sp.Pow:
            return self._power(*args)
        if func is sp.Mul:
            return self._product(args)
        return None

    def _one_plus(self, e: sp.Expr) -> sp.Expr | None:
        """``t`` when ``e`` is ``1 + t``."""
        v = self.view(e)
        if isinstance(v, sp.Add) and len(v.args) == 2:
            first, second = v.args
            return second if _is(first, 1) else first if _is(second, 1) else None
        return None

    def _log_one_plus(self, t: sp.Expr) -> sp.Expr | None:
        """Rules for ``log(1 + t)``."""
        u = self.exp_argument(t)
        if u is not None:
            return softplus(u)
        u = self.sigmoid_argument(-t)
        if u is not None:
            return -softplus(u)
        u = self.exp_argument(-t)
        if u is not None:
            return sp.log(-expm1(u))
        return None

    def _log(self, x: sp.Expr) -> sp.Expr | None:
        g = self.graph
        v = self.view(x)
        if isinstance(v, sp.exp):
            return v.args[0]
        if isinstance(v, sigmoid):
            return -softplus(-v.args[0])
        t = self._one_plus(v)
        if t is not None:
            rewritten = self._log_one_plus(t)
            if rewritten is not None:
                return rewritten
        if not self.peek:  # tensor-level rules only where the node itself is rewritten
            return None
        found = g.softmaxes.get(v)
        if found is not None:
            return g.softmax(found, log=True)
        lse = g.logsumexp(v)
        if lse is not None:
            return lse
        if isinstance(v, sp.Mul):
            coefficient, rest = v.as_coeff_Mul()
            factors = list(sp.Mul.make_args(rest))
            # shifted too: log(softmax(x)) underflows where log_softmax(x) does not
            match = g.softmax_factors(factors, self.exp_argument, shifted=True) if coefficient.is_positive else None
            if match is not None and len(factors) == 2:
                log_softmax = g.softmax(match[2], log=True)
                return log_softmax if _is(coefficient, 1) else log_softmax + sp.log(coefficient)
        return None

    def _power(self, base: sp.Expr, exponent: sp.Expr) -> sp.Expr | None:
        if _is(exponent, -1):
            t = self._one_plus(base)
            u = None if t is None else self.exp_argument(t)
            return None if u is None else sigmoid(-u)
        if _is(exponent, 0.5):
            v = self.view(base)
            if isinstance(v, sp.Pow) and _is(v.exp, 2):
                return Abs(v.base)
        return None

    def _product(self, factors) -> sp.Expr | None:
        g = self.graph
        for i, f in enumerate(factors):  # exp(u) * sigmoid(-u), the rewritten exp(u)/(1 + exp(u))
            u = self.exp_argument(f)
            if u is None:
                continue
            for j, h in enumerate(factors):
                if j != i and self.sigmoid_argument(h) == -u:
                    rest = [a for k, a in enumerate(factors) if k not in (i, j)]
                    return sp.Mul(sigmoid(u), *rest)
        match = g.softmax_factors(factors, self.exp_argument) if self.peek else None
        if match is None:
            return None
        i, j, found = match
        rest = [a for k, a in enumerate(factors) if k not in (i, j)]
        return sp.Mul(g.softmax(found, log=False), *rest)


def _domain_restricted(e: sp.Basic) -> set:
    """The subexpressions of ``e`` that are nan for some real inputs: ``log(u)``, ``u**(1/2)`` (u of unknown sign).

    SymPy's automatic simplification may drop them (``exp(log(u))`` is ``u``,
    ``sqrt(u)**2`` is ``u``); where the naive program gives nan, that would
    change results.
    """
    return {a for a in sp.preorder_traversal(e)
            if (isinstance(a, sp.log) and not a.args[0].is_positive)
            or (isinstance(a, sp.Pow) and not a.exp.is_integer and not a.base.is_nonnegative)}


def _is(e: sp.Expr, number: float) -> bool:
    """``e`` is the number (an Integer, Rational or Float: SymPy's ``Float(1.0) == 1`` is False)."""
    return e.is_Number and float(e) == number


@lru_cache(maxsize=8192)
def _may_match(kernel: sp.Expr) -> bool:
    """Whether a rule could fire at some function in ``kernel`` (most kernels are skipped on this test)."""
    return any(isinstance(e, sp.log | log1p | sp.exp) or (isinstance(e, sp.Pow) and (_is(e.exp, -1) or _is(e.exp, 0.5)))
               for e in sp.preorder_traversal(kernel))

