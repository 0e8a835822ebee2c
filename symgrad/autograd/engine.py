"""The backward driver: walk a recorded graph, look its compiled gradient up, run it.

Per call it walks the ``grad_fn`` nodes once, building the structure key and
collecting the values (leaves, constants, saved results, seeds).  Only a key
never seen before builds SymPy (see :mod:`symgrad.compiler.backward`); a
training loop compiles once.  Checks (freed graph, in-place modification of a
saved value) all run before anything is computed or accumulated.
"""

from __future__ import annotations

import numpy as np

from ..compiler.backward import CompiledBackward, build_backward
from ..compiler.cache import CompileCache
from .graph import AccumulateGrad, Node

__all__ = ["BACKWARD_CACHE", "run_backward", "compiled_backward", "last_compiled"]

BACKWARD_CACHE = CompileCache(maxsize=256)
_last: list[CompiledBackward] = []

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they "
    "have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward.")


class _Plan:
    """One walk of a graph: its structure key, slot values and what the targets are."""

    __slots__ = ("key", "values", "names", "order", "targets")

    def __init__(self, roots, seeds, targets):
        order = _topological_nodes(roots)
        index = {node: i for i, node in enumerate(order)}
        # dtypes enter the key as one-letter codes: comparing np.dtype objects is slow
        slots, values, names = [], [], []
        leaf_slots: dict[AccumulateGrad, int] = {}
        entries = []
        for node in order:
            refs = []
            for edge, value in zip(node.edges, node.values):
                if edge is None:
                    refs.append(len(slots))
                    if type(value) is np.ndarray:
                        slots.append(("const", value.shape, value.dtype.char))
                        names.append("input")
                    else:
                        slots.append(("scalar", (), type(value)))
                        names.append("scalar")
                    values.append(value)
                elif type(edge) is Node:
                    refs.append(~index[edge])
                else:
                    slot = leaf_slots.get(edge)
                    if slot is None:
                        slot = leaf_slots[edge] = len(slots)
                        slots.append(("leaf", value.shape, value.dtype.char))
                        values.append(value)
                        names.append(_leaf_name(edge))
                    refs.append(slot)
            result = node.result
            entries.append((node.op.name, node.attrs, tuple(refs), result.dtype.char, len(slots)))
            slots.append(("result", result.shape, result.dtype.char))
            values.append(result)
            names.append(node.op.name + "_result")

        root_entries = []
        for root, seed in zip(roots, seeds):
            if seed is None:
                root_entries.append((index[root], -1))
            else:
                root_entries.append((index[root], len(slots)))
                slots.append(("seed", seed.shape, seed.dtype.char))
                values.append(seed)
                names.append("grad_output")

        if targets is None:
            targets = list(leaf_slots) + [n for n in order if n.retained is not None]
        target_refs = []
        for t in targets:
            if type(t) is Node:
                target_refs.append(~index[t] if t in index else None)
            else:
                target_refs.append(leaf_slots.get(t))
        self.key = (tuple(entries), tuple(slots), tuple(root_entries),
                    tuple(r for r in target_refs if r is not None))
        self.values, self.names, self.order = values, names, order
        self.targets = [(t, r is not None) for t, r in zip(targets, target_refs)]


def _leaf_name(accumulator: AccumulateGrad) -> str:
    return getattr(accumulator.variable, "_name", None) or "leaf"


def _topological_nodes(roots) -> list[Node]:
    """Nodes reachable from ``roots``, every node after the nodes it reads (iterative DFS)."""
    order, seen = [], set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.edges))]
        while stack:
            node, edges = stack[-1]
            for edge in edges:
                if type(edge) is Node and edge not in seen:
                    seen.add(edge)
                    stack.append((edge, iter(edge.edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _check_saved_values(order: list[Node]) -> None:
    """Raise PyTorch's errors for a freed graph or a saved value modified in place."""
    for node in order:
        changed = [j for j, c in enumerate(node.counters) if c is not None and c.value != node.versions[j]]
        result_changed = node.result_counter.value != node.result_version
        if not (node.freed or changed or result_changed):
            continue
        needs_grad = tuple(edge is not None for edge in node.edges)
        saved = node.op.saved_operands(node.attrs, needs_grad)
        if not saved:
            continue
        if node.freed:
            raise RuntimeError(_FREED_MESSAGE)
        for j in changed:
            if j in saved:
                raise RuntimeError(_inplace_message(node.values[j], node.counters[j].value, node.versions[j]))
        if result_changed and len(node.edges) in saved:
            raise RuntimeError(_inplace_message(node.result, node.result_counter.value, 0,
                                                f", which is output 0 of {node.name()},"))


def _inplace_message(value, version: int, expected: int, origin: str = "") -> str:
    kind = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor",
            "bool": "BoolTensor"}.get(value.dtype.name, "Tensor")
    shape = ", ".join(map(str, value.shape))
    return ("one of the variables needed for gradient computation has been modified by an inplace "
            f"operation: [symgrad.{kind} [{shape}]]{origin} is at version {version}; expected version "
            f"{expected} instead.")


def compiled_backward(plan: _Plan, namer=None) -> CompiledBackward:
    """The compiled function for a plan's structure (built on the first request only).

    ``namer(value)`` may give a readable name for a slot's value (the user's
    variable name); it is only consulted when compiling.
    """
    def build():
        names = plan.names
        if namer is not None:
            names = [namer(v) or n for v, n in zip(plan.values, names)]
        return build_backward(plan.key, names)
    compiled = BACKWARD_CACHE.get_or_build(plan.key, build)
    _last[:] = [compiled]
    return compiled


def run_backward(roots: list[Node], seeds: list, targets=None, retain_graph: bool = False, namer=None):
    """Gradients of ``roots`` (seeded by ``seeds``; None = 1) for ``targets``.

    ``targets`` None means every leaf reached plus every node with
    ``retain_grad``.  Returns ``[(target, gradient array or None)]``; nothing
    is accumulated here, so an error leaves every ``.grad`` untouched.
    """
    plan = _Plan(roots, seeds, targets)
    _check_saved_values(plan.order)
    compiled = compiled_backward(plan, namer)
    values = plan.values
    args = [values[s] for s in compiled.param_slots]
    grads = iter([_fresh(g, args) for g in compiled.fn(*args)])
    if not retain_graph:
        for node in plan.order:
            node.freed = True
    return [(t, next(grads) if reached else None) for t, reached in plan.targets]


def _fresh(g, args) -> np.ndarray:
    """``g`` as an array the caller may keep and modify: never an input or a view of one."""
    g = np.asarray(g)
    base = g
    while base.base is not None and isinstance(base.base, np.ndarray):
        base = base.base
    if not g.flags.writeable or any(base is _root(a) for a in args if isinstance(a, np.ndarray)):
        return g.copy()
    return g


def _root(a: np.ndarray) -> np.ndarray:
    while a.base is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a


def plan_source(roots: list[Node], seeds: list, targets=None, namer=None) -> str:
    """The generated source of the gradient function for this graph (compiling it if new)."""
    return compiled_backward(_Plan(roots, seeds, targets), namer).source


def last_compiled() -> CompiledBackward | None:
    """The compiled backward used most recently (None before any backward)."""
    return _last[0] if _last else None
