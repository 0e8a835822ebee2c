"""The backward driver: walk a recorded graph, look its compiled gradient up, run it.

Per call it walks the ``grad_fn`` nodes once, building the structure key and
collecting the values (leaves, constants, saved results, seeds).  Only a key
never seen before builds SymPy (see :mod:`symgrad.compiler.backward`); a
training loop compiles once.  Checks (freed graph, in-place modification of a
saved value) all run before anything is computed or accumulated.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict

import numpy as np

from ..compiler.backward import CompiledBackward, build_backward
from ..compiler.cache import CompileCache
from ..compiler.codegen import compile_source
from ..symbolic.nodes import topological_order
from .gradient_op import GradientOp
from .graph import AccumulateGrad, Node, value_name

__all__ = ["BACKWARD_CACHE", "run_backward", "compiled_backward", "last_compiled", "set_stability_rewrites",
           "is_stability_rewrites_enabled", "stability_rewrites"]

BACKWARD_CACHE = CompileCache(maxsize=256)
_last: list[CompiledBackward] = []

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they "
    "have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward.")


class _Plan:
    """One walk of a graph: its structure key, slot values and what the targets are."""

    __slots__ = ("key", "values", "names", "order", "targets", "paths", "accessors", "leaf_edges",
                 "leaf_of_slot")

    def __init__(self, roots, seeds, targets):
        order, self.paths = _topological_nodes(roots)
        index = {node: i for i, node in enumerate(order)}
        # dtypes enter the key as one-letter codes: comparing np.dtype objects is slow
        slots, values, names = [], [], []
        # where each slot's value sits in any graph of this structure: node i's
        # operand j, node i's result, or seed r (used to generate a gather function)
        accessors: list[tuple] = []
        leaf_slots: dict[AccumulateGrad, int] = {}
        leaf_edges: dict[AccumulateGrad, tuple[int, int]] = {}
        entries = []
        for i, node in enumerate(order):
            refs = []
            for j, (edge, value) in enumerate(zip(node.edges, node.values)):
                if edge is None:
                    accessors.append(("value", i, j))
                    refs.append(len(slots))
                    if type(value) is np.ndarray:
                        slots.append(("const", value.shape, value.dtype.char))
                        names.append(_Name(value_name(value), "input"))
                    else:
                        slots.append(("scalar", (), type(value)))
                        names.append("scalar")
                    values.append(value)
                elif type(edge) is Node:
                    refs.append(~index[edge])
                else:
                    slot = leaf_slots.get(edge)
                    if slot is None:
                        accessors.append(("value", i, j))
                        leaf_edges[edge] = (i, j)
                        slot = leaf_slots[edge] = len(slots)
                        slots.append(("leaf", value.shape, value.dtype.char))
                        values.append(value)
                        names.append(_Name(getattr(edge.variable, "_name", None), f"t{len(leaf_slots) - 1}"))
                    refs.append(slot)
            result = node.result
            accessors.append(("result", i))
            entries.append((node.op.name, node.attrs, tuple(refs), result.dtype.char, len(slots)))
            # a result overwritten by a later in-place op is no longer the value this node
            # computed: the backward must recompute it instead of reading it
            fresh = node.result_counter.value == node.result_version
            slots.append(("result" if fresh else "stale", result.shape, result.dtype.char))
            values.append(result)
            names.append(node.op.name + "_result")

        root_entries = []
        for r, (root, seed) in enumerate(zip(roots, seeds)):
            if seed is None:
                root_entries.append((index[root], -1))
            else:
                accessors.append(("seed", r))
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
        self.accessors, self.leaf_edges = accessors, [leaf_edges[a] for a in leaf_slots]
        self.leaf_of_slot = {slot: acc for acc, slot in leaf_slots.items()}


class _Name(str):
    """A slot's name: the ``name=`` given to its tensor (which outranks variable names), or a default."""

    def __new__(cls, explicit: str | None, default: str):
        obj = super().__new__(cls, explicit or default)
        obj.explicit = explicit is not None
        return obj


def _slot_names(plan: _Plan, namer) -> list[str]:
    """Readable parameter names: ``name=``, else the caller's variable name, else a default."""
    if namer is None:
        return [str(n) for n in plan.names]
    return [str(n) if getattr(n, "explicit", False) else (namer(v) or str(n))
            for v, n in zip(plan.values, plan.names)]


def _topological_nodes(roots) -> tuple[list[Node], dict]:
    """Nodes reachable from ``roots``, every node after the nodes it reads (iterative DFS).

    Also returns how each node was first reached: ``("root", r)`` or
    ``(parent, edge index)``, from which a gather function is generated.
    """
    order, paths = [], {}
    for r, root in enumerate(roots):
        if root in paths:
            continue
        paths[root] = ("root", r)
        stack = [(root, enumerate(root.edges))]
        while stack:
            node, edges = stack[-1]
            for k, edge in edges:
                if type(edge) is Node and edge not in paths:
                    paths[edge] = (node, k)
                    stack.append((edge, enumerate(edge.edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order, paths


def _check_saved_values(order: list[Node]) -> None:
    """Raise PyTorch's errors for a freed graph or a saved value modified in place."""
    for node in order:
        changed = [j for j, c in enumerate(node.counters) if c is not None and c.value != node.versions[j]]
        result_changed = node.result_counter.value != node.result_version
        if not (node.freed or changed or result_changed):
            continue
        if node.op.view and changed and node.edges[0] is not None:
            # PyTorch regenerates such a view's history (AsStridedBackward0); symgrad cannot yet,
            # and the old history would give a wrong gradient
            raise NotImplementedError("symgrad cannot backpropagate through a view whose base was modified in "
                                      "place after the view was taken; take the view after the in-place op")
        needs_grad = tuple(edge is not None for edge in node.edges)
        saved = node.op.saved_operands(node.attrs, needs_grad)
        if not saved:
            continue
        if node.freed:
            raise RuntimeError(_FREED_MESSAGE)
        for j in changed:
            if j in saved:
                # PyTorch names the tensor's current grad_fn (the in-place op, if it rebased history)
                counter = node.counters[j]
                producer = counter.rebased or (node.edges[j] if type(node.edges[j]) is Node else None)
                raise RuntimeError(_inplace_message(node.values[j], counter.value, node.versions[j], producer))
        if result_changed and len(node.edges) in saved:
            raise RuntimeError(_inplace_message(node.result, node.result_counter.value, node.result_version,
                                                node))


# "Backward0" goes, "Backward" of "Backward1" goes; CopyBackwards stays
_BACKWARD_SUFFIX = re.compile(r"Backward(0$|(?=[0-9]+$))")


def _inplace_message(value, version: int, expected: int, producer: Node | None = None) -> str:
    kind = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor",
            "bool": "BoolTensor"}.get(value.dtype.name, "Tensor")
    shape = ", ".join(map(str, value.shape))
    # PyTorch names the op that produced the tensor (ExpBackward0 -> "Exp", PowBackward1 -> "Pow1")
    origin = "" if producer is None else f", which is output 0 of {_BACKWARD_SUFFIX.sub('', producer.name())},"
    return ("one of the variables needed for gradient computation has been modified by an inplace "
            f"operation: [symgrad.{kind} [{shape}]]{origin} is at version {version}; expected version "
            f"{expected} instead.")


def compiled_backward(plan: _Plan, namer=None) -> CompiledBackward:
    """The compiled function for a plan's structure (built on the first request only).

    ``namer(value)`` may give a readable name for a slot's value (the user's
    variable name); it is only consulted when compiling.
    """
    key, options = _build_options(plan)

    def build():
        return build_backward(plan.key, _slot_names(plan, namer), **options)
    return BACKWARD_CACHE.get_or_build(key, build)


# ------------------------------------------------------------ stability rewrites

class _StabilityState:
    enabled = False


def set_stability_rewrites(enabled: bool) -> None:
    """Turn the stability rewrites of ``backward``/``autograd.grad`` on or off (off by default).

    On, gradients are compiled from the graph with naive patterns such as
    ``log(1 + exp(x))`` rewritten into stable primitives (``softplus(x)``; the
    list is in :mod:`symgrad.compiler.stability`), so they are finite wherever
    the exact math is.  Off, they are PyTorch's, ``nan`` included.  The
    forward values are NumPy's either way (the rewrite happens when the
    backward is compiled); :func:`symgrad.compile` rewrites the forward too.

    >>> import symgrad
    >>> x = symgrad.tensor(800.0, requires_grad=True)
    >>> symgrad.autograd.set_stability_rewrites(True)
    >>> symgrad.log(1 + symgrad.exp(x)).backward(); x.grad
    tensor(1.)
    >>> symgrad.autograd.set_stability_rewrites(False)
    """
    _StabilityState.enabled = bool(enabled)


def is_stability_rewrites_enabled() -> bool:
    """Whether ``backward`` applies the stability rewrites (see :func:`set_stability_rewrites`).

    >>> import symgrad
    >>> symgrad.autograd.is_stability_rewrites_enabled()
    False
    """
    return _StabilityState.enabled


class stability_rewrites:  # noqa: N801 - a context manager, named like torch.no_grad
    """Context manager (and decorator) setting the stability rewrites, restoring the previous state on exit.

    >>> import symgrad
    >>> x = symgrad.tensor(-800.0, requires_grad=True)
    >>> with symgrad.autograd.stability_rewrites():
    ...     symgrad.log(symgrad.sigmoid(x)).backward()
    >>> x.grad
    tensor(1.)
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = bool(enabled)
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(_StabilityState.enabled)
        _StabilityState.enabled = self.enabled

    def __exit__(self, *exc) -> None:
        _StabilityState.enabled = self._previous.pop()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with stability_rewrites(self.enabled):
                return fn(*args, **kwargs)
        return wrapper


def _build_options(plan: _Plan) -> tuple:
    """The cache key and ``build_backward`` options: the rewrites see the Python numbers, so they enter the key."""
    if not _StabilityState.enabled:
        return plan.key, {}
    scalars = {i: v for i, (slot, v) in enumerate(zip(plan.key[1], plan.values)) if slot[0] == "scalar"}
    return ((plan.key, "stable", tuple((i, type(v), v) for i, v in scalars.items())),
            {"stable": True, "scalars": scalars})


class _FastEntry:
    """For one exact graph structure (leaf identities included): a generated
    ``gather(roots, seeds) -> (nodes, args, leaves)`` and the compiled gradient."""

    __slots__ = ("gather", "compiled")

    def __init__(self, gather, compiled):
        self.gather, self.compiled = gather, compiled


_FAST: OrderedDict = OrderedDict()
_FAST_MAXSIZE = 256
BACKWARD_CACHE.on_clear.append(_FAST.clear)  # the fast path is a shortcut into the same cache


def run_backward(roots: list[Node], seeds: list, targets=None, retain_graph: bool = False, namer=None):
    """Gradients of ``roots`` (seeded by ``seeds``; None = 1) for ``targets``.

    ``targets`` None means every leaf reached plus every node with
    ``retain_grad``.  Returns ``[(target, gradient array or None)]``; nothing
    is accumulated here, so an error leaves every ``.grad`` untouched.

    The fast path (a training loop's second step onwards): the roots' structure
    ids name the exact graph, and a gather function generated for it collects
    the arguments without walking the graph generically.
    """
    fast_key = None
    # the fast path's structure ids leave out the Python numbers the rewrites bake in
    if targets is None and not _StabilityState.enabled:
        fast_key = (tuple(r.skey for r in roots),
                    tuple(None if s is None else (s.shape, s.dtype.char) for s in seeds))
        entry = _FAST.get(fast_key)
        if entry is not None:
            nodes, args, leaves = entry.gather(roots, seeds)
            if all(n.retained is None for n in nodes):
                BACKWARD_CACHE.hits += 1  # the fast path is a shortcut into the same cache
                _check_saved_values(nodes)
                grads = _call(entry.compiled, args)
                _finish(nodes, retain_graph)
                return list(zip(leaves, grads))
    plan = _Plan(roots, seeds, targets)
    _check_saved_values(plan.order)
    compiled = compiled_backward(plan, namer)
    values = plan.values
    grads = iter(_call(compiled, [values[s] for s in compiled.param_slots]))
    if fast_key is not None and all(n.retained is None for n in plan.order):
        _FAST[fast_key] = _FastEntry(_gather_function(plan, compiled), compiled)
        if len(_FAST) > _FAST_MAXSIZE:
            _FAST.popitem(last=False)
    _finish(plan.order, retain_graph)
    return [(t, next(grads) if reached else None) for t, reached in plan.targets]


def _call(compiled: CompiledBackward, args) -> list[np.ndarray]:
    """Run the compiled gradient; copy outputs that may alias an argument, be read-only, or repeat.

    Every gradient must be an array its tensor owns: ``.grad`` is later
    updated in place, which must never reach an input or another ``.grad``.
    """
    _last[:] = [compiled]
    with np.errstate(all="ignore"):  # PyTorch never warns about inf/nan
        outputs = compiled.fn(*args)
    grads, seen = [], set()
    for g, copy in zip(outputs, compiled.copies):
        g = np.array(g) if copy or id(g) in seen else np.asarray(g)
        seen.add(id(g))
        grads.append(g)
    return grads


def _finish(nodes, retain_graph: bool) -> None:
    if not retain_graph:
        for node in nodes:
            node.freed = True


def _gather_function(plan: _Plan, compiled: CompiledBackward):
    """Generate ``gather(roots, seeds)`` following the same edges this plan's walk took."""
    index = {node: i for i, node in enumerate(plan.order)}
    lines = ["def gather(roots, seeds):"]
    for node in reversed(plan.order):  # parents are reached before their operands
        how = plan.paths[node]
        source = f"roots[{how[1]}]" if how[0] == "root" else f"n{index[how[0]]}.edges[{how[1]}]"
        lines.append(f"    n{index[node]} = {source}")
    args = []
    for slot in compiled.param_slots:
        kind, *where = plan.accessors[slot]
        args.append({"value": "n{}.values[{}]", "result": "n{}.result", "seed": "seeds[{}]"}[kind].format(*where))
    leaves = [f"n{i}.edges[{j}]" for i, j in plan.leaf_edges]
    nodes = "".join(f"n{i}, " for i in range(len(plan.order)))
    lines.append(f"    return ({nodes}), [{', '.join(args)}], [{', '.join(leaves)}]")
    return compile_source("\n".join(lines) + "\n", "gather")


# create_graph: gradients as SymPy over the leaves (no reused forward values), one op per target
GRAPH_CACHE = CompileCache(maxsize=128)


class DifferentiableGradients:
    """What ``create_graph=True`` needs to record gradients as graph nodes.

    ``values[t]`` is target t's gradient (or None when unreached), ``ops[t]`` its
    :class:`GradientOp`, and ``operands`` the graph values it reads, each
    ``(kind, payload, version counter)``: ``("leaf", AccumulateGrad, None)``,
    ``("seed", root index, None)`` or ``("value", array or Python scalar, counter or None)``.
    """

    def __init__(self, values, ops, operands, differentiable: bool, uses):
        self.values, self.ops, self.operands = values, ops, operands
        self.uses = uses  # per target: the indices of the operands its gradient reads
        # PyTorch's rule: a gradient has a grad_fn when the backward read a saved
        # value that requires grad (x**2 does; 3*x, whose derivative is the constant 3, does not)
        self.differentiable = differentiable


def run_backward_graph(roots: list[Node], seeds: list, targets, retain_graph: bool,
                       namer=None) -> DifferentiableGradients:
    """Like :func:`run_backward`, but the gradients can be differentiated again."""
    plan = _Plan(roots, seeds, targets)
    _check_saved_values(plan.order)
    key, options = _build_options(plan)
    entry = GRAPH_CACHE.get_or_build(key, lambda: _graph_entry(plan, namer, options))
    compiled, ops, uses = entry
    grads = iter(_call(compiled, [plan.values[s] for s in compiled.param_slots]))
    _finish(plan.order, retain_graph)
    operands = []
    for slot in compiled.param_slots:
        kind, *where = plan.accessors[slot]
        if slot in plan.leaf_of_slot:
            operands.append(("leaf", plan.leaf_of_slot[slot], None))
        elif kind == "seed":
            operands.append(("seed", where[0], None))
        else:  # a constant operand of node i: keep its version counter, so in-place changes are caught
            operands.append(("value", plan.values[slot], plan.order[where[0]].counters[where[1]]))
    values, per_target = [], iter(zip(ops, uses))
    chosen = []
    for _, reached in plan.targets:
        values.append(next(grads) if reached else None)
        chosen.append(next(per_target) if reached else (None, ()))
    return DifferentiableGradients(values, [op for op, _ in chosen], operands,
                                   _reads_differentiable_values(plan.order), [use for _, use in chosen])


def _reads_differentiable_values(order: list[Node]) -> bool:
    for node in order:
        needs_grad = tuple(edge is not None for edge in node.edges)
        for j in node.op.saved_operands(node.attrs, needs_grad):
            if j == len(node.edges) or node.edges[j] is not None:
                return True
    return False


def _graph_entry(plan: _Plan, namer, options: dict):
    compiled = build_backward(plan.key, _slot_names(plan, namer), reuse_saved=False, **options)
    uses = []
    for expression in compiled.expressions:
        reached = set(topological_order([expression]))
        uses.append(tuple(k for k, p in enumerate(compiled.parameters) if p in reached))
    return compiled, [GradientOp(e, compiled.parameters) for e in compiled.expressions], uses


def default_targets(roots: list[Node]) -> list:
    """What ``backward`` fills: every leaf that requires grad below ``roots``, then every retain_grad node."""
    order, _ = _topological_nodes(roots)
    seen: dict = {}
    for node in order:
        for edge in node.edges:
            if edge is not None and type(edge) is not Node:
                seen.setdefault(edge, None)
    return list(seen) + [node for node in order if node.retained is not None]


def plan_source(roots: list[Node], seeds: list, targets=None, namer=None) -> str:
    """The generated source of the gradient function for this graph, named after the caller's variables.

    Built afresh (not from the cache), because the cached function keeps the
    names of whichever caller compiled it first; only the names can differ.
    """
    plan = _Plan(roots, seeds, targets)
    return build_backward(plan.key, _slot_names(plan, namer), **_build_options(plan)[1]).source


def last_compiled() -> CompiledBackward | None:
    """The compiled backward used most recently (None before any backward)."""
    return _last[0] if _last else None
