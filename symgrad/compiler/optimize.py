"""Optimisation passes over the tensor-level graph, run before printing.

Common subexpressions are already shared (nodes are hash-consed SymPy
objects); dead code never reaches the printer (it prints only what the
outputs reach).  The passes here:

* ``fuse_elementwise`` — an elementwise node read by exactly one other
  elementwise node is folded into that node's scalar formula, so a chain like
  ``g/3 * (σ(z) − y)`` is one kernel and one line;
* implicit broadcasting — a ``BroadcastTo`` (or a reshape that only adds
  leading 1s) feeding an elementwise kernel is dropped when NumPy's own
  broadcasting gives the same result shape.

No pass changes values beyond floating-point reassociation.  (Kernels are
also printed with common factors pulled out: see
:func:`symgrad.symbolic.numpy_printer.kernel_source`.)
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..symbolic.nodes import (
    BroadcastTo,
    Elementwise,
    Reshape,
    TensorExpr,
    arg,
    broadcast_shapes,
    broadcast_to,
    elementwise,
    topological_order,
)

__all__ = ["optimize"]


def optimize(outputs: list[TensorExpr | None]) -> list[TensorExpr | None]:
    """Run all passes.

    >>> from symgrad.symbolic import TensorSymbol, elementwise, arg
    >>> import sympy as sp
    >>> x = TensorSymbol("x", (3,), "float64")
    >>> y = elementwise(sp.exp(arg(0)), [x], "float64")
    >>> optimize([elementwise(arg(0) * 2, [y], "float64")])[0].expr
    2*exp(a0)
    """
    return fuse_elementwise(outputs)


def _implicit_broadcast_source(x: TensorExpr) -> TensorExpr:
    """What NumPy could broadcast instead of ``x`` (x itself when nothing can be dropped)."""
    while True:
        if isinstance(x, BroadcastTo):
            x = x.args[0]
        elif isinstance(x, Reshape) and _adds_leading_ones(x.args[0].shape, x.shape):
            x = x.args[0]
        else:
            return x


def _adds_leading_ones(before, after) -> bool:
    lead = len(after) - len(before)
    return lead > 0 and after[lead:] == before and all(s == 1 for s in after[:lead])


def fuse_elementwise(outputs):
    """Fold single-use elementwise inputs into their consumer and drop implicit broadcasts."""
    live = [o for o in outputs if o is not None]
    order = topological_order(live)
    uses: dict[TensorExpr, int] = {}
    for node in order:
        for child in node.inputs:
            uses[child] = uses.get(child, 0) + 1
    for o in live:
        uses[o] = uses.get(o, 0) + 1  # an output is read by the caller too
    new: dict[TensorExpr, TensorExpr] = {}
    for node in order:
        inputs = [new[c] for c in node.inputs]
        if isinstance(node, Elementwise):
            new[node] = _fused(node, inputs, uses)
        elif all(a is b for a, b in zip(inputs, node.inputs)):
            new[node] = node
        else:
            args = [new.get(a, a) if isinstance(a, TensorExpr) else a for a in node.args]
            rebuilt = sp.Basic.__new__(type(node), *args)
            rebuilt.shape, rebuilt.dtype = node.shape, node.dtype
            new[node] = rebuilt
    return [None if o is None else new[o] for o in outputs]


def _fused(node: Elementwise, inputs, uses) -> TensorExpr:
    operands: list[TensorExpr] = []
    mapping = {}
    expected = _domain_count(node.expr)
    for i, (old, x) in enumerate(zip(node.inputs, inputs)):
        if isinstance(x, Elementwise) and uses.get(old, 0) == 1 and _worth_inlining(x, node, arg(i)):
            offset = len(operands)
            operands.extend(x.inputs)
            mapping[arg(i)] = x.expr.xreplace({arg(j): arg(offset + j) for j in range(len(x.inputs))})
            expected += _domain_count(x.expr)
        else:
            mapping[arg(i)] = arg(len(operands))
            operands.append(x)
    composed = node.expr.xreplace(mapping)
    if _domain_count(composed) < expected:
        # SymPy folded exp(log(u)) or sqrt(u)**2 to u while composing: the nan of u < 0 would be lost
        return _unfused(node, inputs)
    operands = _drop_implicit_broadcasts(operands, node.shape)
    fused = elementwise(composed, operands, node.dtype)
    # inlining can cancel the only operand that carried the shape (exp(x)/exp(x) is 1)
    return fused if fused.shape == node.shape else broadcast_to(fused, node.shape)


def _domain_count(expr: sp.Expr) -> int:
    """How many logarithms and fractional powers (functions with a restricted domain) ``expr`` holds."""
    return sum(1 for e in sp.preorder_traversal(expr)
               if isinstance(e, sp.log) or (e.is_Pow and not e.exp.is_Integer))


def _unfused(node: Elementwise, inputs) -> TensorExpr:
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return node
    return elementwise(node.expr, inputs, node.dtype)


def _worth_inlining(x: Elementwise, consumer: Elementwise, placeholder: sp.Symbol) -> bool:
    """Inline ``x`` into ``consumer`` where that computes the same values with fewer temporaries.

    Not a mask (SymPy has no arithmetic on relations: ``x * (x > 0)``), not a
    dtype conversion or a kernel of another dtype (its rounding, float64 -> float32,
    must happen where the program does it), and not a formula the consumer
    reads twice (it would then be computed twice: ``-y*(b + r) + log(1 + exp(b + r))``).
    """
    if x.dtype == bool or x.dtype != consumer.dtype:
        return False
    natural = [i.dtype for i in x.inputs if i.dtype is not None]
    if natural and np.result_type(*natural) != x.dtype:
        return False
    return x.expr.is_Atom or consumer.expr.count(placeholder) <= 1


def _drop_implicit_broadcasts(operands, shape):
    operands = list(operands)
    for i, x in enumerate(operands):
        source = _implicit_broadcast_source(x)
        if source is x:
            continue
        trial = operands[:i] + [source] + operands[i + 1:]
        if broadcast_shapes(*(t.shape for t in trial)) == shape:
            operands = trial
    return operands
