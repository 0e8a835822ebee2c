"""Reverse-mode derivation over the tensor-level SymPy graph.

Local derivatives, global chain rule: each node contributes a vector-Jacobian
product written in other nodes, and adjoints are accumulated in reverse
topological order.  Elementwise kernels are differentiated by ``sympy.diff``
on their small scalar expression, never on the whole composite (expression
swell would make that exponential).  Broadcasting is undone once, here, for
every contribution: no rule has to think about it.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .symbolic.functions import Select
from .symbolic.nodes import (
    BroadcastTo,
    Elementwise,
    MatMul,
    Permute,
    Reshape,
    Sum,
    TensorExpr,
    arg,
    broadcast_to,
    elementwise,
    matmul,
    permute,
    reshape,
    topological_order,
    unbroadcast,
)

__all__ = ["gradients", "local_derivative"]


def gradients(outputs, seeds, wrt) -> list[TensorExpr | None]:
    """Adjoints of ``wrt`` given adjoint ``seeds`` for ``outputs`` (None where no path exists).

    >>> import sympy as sp
    >>> from symgrad.symbolic import TensorSymbol, elementwise, arg, fill
    >>> x = TensorSymbol("x", (), "float64")
    >>> y = elementwise(sp.sin(arg(0)), [x], "float64")
    >>> (dx,) = gradients([y], [fill(1, (), "float64")], [x])
    >>> dx.expr
    cos(a0)
    """
    order = topological_order(outputs)
    targets = set(wrt)
    depends = _dependence(order, targets)
    adjoints: dict[TensorExpr, list[TensorExpr]] = {}
    for out, seed in zip(outputs, seeds):
        if depends.get(out):
            adjoints.setdefault(out, []).append(seed)
    for node in reversed(order):
        parts = adjoints.get(node)
        if not parts:
            continue
        g = accumulate(parts, node)
        adjoints[node] = [g]
        for child, contribution in _vjp(node, g, depends):
            adjoints.setdefault(child, []).append(unbroadcast(contribution, child.shape))
    return [accumulate(adjoints[w], w) if adjoints.get(w) else None for w in wrt]


def accumulate(parts: list[TensorExpr], like: TensorExpr) -> TensorExpr:
    """Sum adjoint contributions (one elementwise kernel, not a chain of adds)."""
    if len(parts) == 1:
        return parts[0]
    return elementwise(sp.Add(*(arg(i) for i in range(len(parts)))), parts, like.dtype)


def _dependence(order, targets) -> dict[TensorExpr, bool]:
    depends = {}
    for node in order:
        depends[node] = node in targets or any(depends[c] for c in node.inputs)
    return depends


def _vjp(node, g, depends):
    rule = _RULES.get(type(node))
    if rule is None:
        return []
    return [(child, c) for child, c in rule(node, g, depends) if c is not None]


@lru_cache(maxsize=8192)
def local_derivative(expr: sp.Expr, i: int, n: int) -> sp.Expr:
    """``∂expr/∂a{i}`` for a kernel of ``n`` inputs, reusing the output as ``a{n}``.

    Writing ``exp(a0)``'s derivative as ``a1`` (the forward result) lets the
    backward pass reuse what the forward pass computed, as PyTorch's saved
    results do.

    >>> import sympy as sp
    >>> local_derivative(sp.exp(arg(0)), 0, 1)
    a1
    """
    d = sp.diff(expr, arg(i))
    if d.has(sp.DiracDelta):
        # derivatives of kinks (relu', sign, Heaviside) are 0 almost everywhere; PyTorch uses 0
        d = d.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.Integer(0))
    if d.has(expr) and not expr.is_Symbol:
        d = d.subs(expr, arg(n))
    return d


def _elementwise_vjp(node: Elementwise, g, depends):
    inputs = node.inputs
    n = len(inputs)
    operands = [*inputs, node, g]
    for i, x in enumerate(inputs):
        if not depends[x]:
            continue
        d = local_derivative(node.expr, i, n)
        if d == 0:
            continue
        contribution = arg(n + 1) * d
        if d.has(Select):  # a mask selects the gradient, as PyTorch's where(mask, grad, 0): inf there gives 0
            contribution = sp.piecewise_fold(contribution)
        yield x, elementwise(contribution, operands, node.dtype if x.dtype is None else x.dtype)


def _matmul_vjp(node: MatMul, g, depends):
    a, b = node.args
    if depends[a]:
        yield a, matmul(g, permute(b, (1, 0)))
    if depends[b]:
        yield b, matmul(permute(a, (1, 0)), g)


def _sum_vjp(node: Sum, g, depends):
    a = node.args[0]
    if not node.keepdim:
        axes = set(node.axes)
        g = reshape(g, tuple(1 if i in axes else s for i, s in enumerate(a.shape)))
    yield a, broadcast_to(g, a.shape)


def _reshape_vjp(node: Reshape, g, depends):
    a = node.args[0]
    yield a, reshape(g, a.shape)


def _broadcast_vjp(node: BroadcastTo, g, depends):
    yield node.args[0], g  # gradients() sums it back down


def _permute_vjp(node: Permute, g, depends):
    perm = node.attr
    inverse = sorted(range(len(perm)), key=perm.__getitem__)
    yield node.args[0], permute(g, inverse)


_RULES = {
    Elementwise: _elementwise_vjp,
    MatMul: _matmul_vjp,
    Sum: _sum_vjp,
    Reshape: _reshape_vjp,
    BroadcastTo: _broadcast_vjp,
    Permute: _permute_vjp,
}
