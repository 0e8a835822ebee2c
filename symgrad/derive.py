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

from .symbolic.einsum import Einsum, einsum, einsum_adjoint_subscripts
from .symbolic.functions import Select
from .symbolic.nodes import (
    BroadcastTo,
    Concat,
    Cumsum,
    Elementwise,
    MatMul,
    Permute,
    Reshape,
    ScatterAddAlong,
    Slice,
    SliceScatter,
    Sum,
    TakeAlong,
    TensorExpr,
    arg,
    broadcast_to,
    cumsum,
    elementwise,
    matmul,
    permute,
    reshape,
    scatter_add_along,
    slice_axes,
    slice_scatter,
    swap_last_axes,
    take_along,
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
        # integer and boolean values (masks, counts, indices) carry no gradient
        carries = node.dtype is None or node.dtype.kind in "fc"
        depends[node] = node in targets or (carries and any(depends[c] for c in node.inputs))
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
    a, b = node.args  # batch axes a factor was broadcast over are summed by unbroadcast in gradients()
    if depends[a]:
        yield a, matmul(g, swap_last_axes(b))
    if depends[b]:
        yield b, matmul(swap_last_axes(a), g)


def _einsum_vjp(node: Einsum, g, depends):
    operands = node.inputs
    for k, x in enumerate(operands):
        if depends[x]:
            others = [y for j, y in enumerate(operands) if j != k]
            yield x, einsum(einsum_adjoint_subscripts(node.subscripts, k), [g, *others], x.shape)


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


def _slice_vjp(node: Slice, g, depends):
    a = node.args[0]
    slices = node.slices
    if node.shape == a.shape and all(abs(step) == 1 for _, _, step in slices):
        yield a, slice_axes(g, dict(enumerate(slices)))  # a flip is its own adjoint
    else:
        yield a, slice_scatter(g, slices, a.shape)


def _slice_scatter_vjp(node: SliceScatter, g, depends):
    yield node.args[0], slice_axes(g, dict(enumerate(node.slices)))


def _take_along_vjp(node: TakeAlong, g, depends):
    a, index = node.args[:2]  # the index is an integer value: no gradient
    if depends[a]:
        yield a, scatter_add_along(g, index, node.axis, a.shape[node.axis])


def _scatter_add_along_vjp(node: ScatterAddAlong, g, depends):
    a, index = node.args[:2]
    if depends[a]:
        yield a, take_along(g, index, node.axis)


def _concat_vjp(node: Concat, g, depends):
    axis, offset = node.axis, 0
    for x in node.inputs:
        size = x.shape[axis]
        if depends[x]:
            yield x, slice_axes(g, {axis: (offset, offset + size, 1)})
        offset += size


def _reversed(g, axis: int):
    return slice_axes(g, {axis: (g.shape[axis] - 1, -1, -1)})


def _cumsum_vjp(node: Cumsum, g, depends):
    axis = node.axis  # each input element reaches every later output: a cumulative sum from the end
    yield node.args[0], _reversed(cumsum(_reversed(g, axis), axis), axis)


_RULES = {
    Slice: _slice_vjp,
    SliceScatter: _slice_scatter_vjp,
    TakeAlong: _take_along_vjp,
    ScatterAddAlong: _scatter_add_along_vjp,
    Concat: _concat_vjp,
    Cumsum: _cumsum_vjp,
    Elementwise: _elementwise_vjp,
    MatMul: _matmul_vjp,
    Einsum: _einsum_vjp,
    Sum: _sum_vjp,
    Reshape: _reshape_vjp,
    BroadcastTo: _broadcast_vjp,
    Permute: _permute_vjp,
}
