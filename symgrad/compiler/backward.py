"""The compiler behind ``Tensor.backward``: recorded structure -> SymPy graph -> derive -> NumPy.

The autograd engine describes a recorded graph by a hashable *structure key*
(no values in it).  On a cache miss, :func:`build_backward` lowers each
recorded op to tensor-level SymPy nodes, derives the adjoints in reverse
mode, replaces forward subexpressions by the values the forward pass saved,
optimises, and prints one NumPy function.  Every later graph with the same
structure reuses it with new values.

Structure key: ``(nodes, slots, roots, targets)``

* ``slots``: what the function may take as arguments, each
  ``(kind, shape, dtype)``; kind is ``leaf``, ``const``, ``scalar`` (a Python
  number; dtype is its type), dtypes are NumPy type codes (``"f"``), ``result`` (a node's saved output;
  ``stale`` when a later in-place op overwrote it, so it is recomputed) or
  ``seed`` (an explicit ``gradient``);
* ``nodes``: in topological order, ``(op name, attrs, refs, dtype, result slot)``
  where a ref ``r >= 0`` is a slot and ``r < 0`` is node ``~r``'s output;
* ``roots``: ``(node index, seed slot or -1 for an implicit 1)``;
* ``targets``: refs whose gradients are returned, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..derive import gradients
from ..ops.registry import REGISTRY
from ..symbolic.nodes import (
    BroadcastTo,
    Permute,
    Reference,
    Reshape,
    Slice,
    TensorExpr,
    TensorSymbol,
    fill,
    replace_nodes,
    topological_order,
)
from .codegen import compile_source, generate_function, python_name
from .optimize import optimize
from .stability import stabilize

__all__ = ["CompiledBackward", "build_backward", "lower_nodes"]


@dataclass(frozen=True)
class CompiledBackward:
    """A compiled gradient function and how to call it.

    ``fn(*values)`` takes the slot values listed in ``param_slots`` and returns
    one array (or None) per target.  ``source`` is the generated module.
    """

    fn: object
    source: str
    param_slots: tuple[int, ...]
    copies: tuple[bool, ...]  # per output: may alias an argument or be read-only, so copy it
    expressions: tuple = ()   # the gradients as SymPy graphs over ``parameters`` (differentiable again)
    parameters: tuple = ()


def build_backward(key, names: list[str] | None = None, *, reuse_saved: bool = True, stable: bool = False,
                   scalars: dict[int, object] | None = None) -> CompiledBackward:
    """Compile the gradient function for a structure key (see the module docstring).

    ``names`` gives readable parameter names per slot; ``reuse_saved`` makes the
    backward read forward results instead of recomputing them.  ``stable``
    applies the stability rewrites (:func:`symgrad.compiler.stability.stabilize`)
    to the forward graph before deriving; ``scalars`` (slot -> Python number)
    bakes those operands in as constants, so the rewrites see the 1 of
    ``1 + exp(x)``.  Rewritten nodes, and the nodes above them, are recomputed
    rather than read from the forward's saved results (those may be inf or nan).
    """
    nodes, slots, roots, targets = key
    taken: set[str] = set()
    symbols = [_slot_symbol(slot, python_name(names[i] if names else f"{slot[0]}{i}", taken))
               for i, slot in enumerate(slots)]
    inputs = list(symbols)
    for slot, value in (scalars or {}).items():
        inputs[slot] = _scalar_constant(value)
    lowered = lower_nodes(nodes, inputs)
    outputs = [lowered[i] for i, _ in roots]
    seeds = [symbols[s] if s >= 0 else fill(1, out.shape, out.dtype) for (_, s), out in zip(roots, outputs)]
    wrt = [lowered[~t] if t < 0 else symbols[t] for t in targets]
    if stable:
        # targets that are nodes go in as outputs: the pass keeps them (retain_grad, autograd.grad inputs)
        rewritten = stabilize(outputs + wrt)
        outputs, wrt = rewritten[:len(outputs)], rewritten[len(outputs):]
    grads = gradients(outputs, seeds, wrt)
    grads = [fill(0, w.shape, w.dtype) if g is None else g for g, w in zip(grads, wrt)]
    if reuse_saved:
        saved = {lowered[i]: symbols[node[4]] for i, node in enumerate(nodes) if slots[node[4]][0] == "result"}
        grads = replace_nodes(grads, saved)
    grads = optimize(grads)
    used = {n for n in topological_order(grads) if isinstance(n, TensorSymbol)}
    params = [s for s in symbols if s in used]
    target_names = [f"grad_{symbols[t if t >= 0 else nodes[~t][4]].name}" for t in targets]
    doc = f"Gradients of {', '.join(n[5:] for n in target_names)} through {_op_chain(nodes)}."
    source = generate_function("backward", params, grads, doc=doc, output_names=target_names)
    return CompiledBackward(compile_source(source, "backward"), source,
                            tuple(symbols.index(p) for p in params), tuple(may_alias(g) for g in grads),
                            tuple(grads), tuple(params))


def lower_nodes(nodes, inputs, references: dict | None = None) -> list:
    """The recorded nodes of a structure key as tensor-level SymPy nodes.

    ``inputs[r]`` stands for slot ``r``; a ref ``r < 0`` is node ``~r``'s output.
    ``references`` maps slots holding reference operands to ``(kind, axes)``:
    those are computed from the node's first operand instead (compiled programs).
    The formulas (:mod:`symgrad.formula`) lower with the same function.
    """
    lowered: list = []
    for op_name, attrs, refs, dtype, _ in nodes:
        operands = [lowered[~r] if r < 0 else inputs[r] for r in refs]
        if references:
            operands = [_reference(references[r], operands[0]) if r in references else x
                        for r, x in zip(refs, operands)]
        lowered.append(REGISTRY[op_name].lower(operands, attrs, dtypes.from_numpy_dtype(np.dtype(dtype))))
    return lowered


def _reference(recipe, x):
    kind, axes = recipe
    dtype = "bool" if kind.startswith("selection_mask") else x.dtype.name
    return Reference(kind, x, axes, dtype)


def may_alias(node) -> bool:
    """Whether the printed value of ``node`` may be an argument, a view of one, or read-only."""
    while isinstance(node, Reshape | Permute | Slice):
        node = node.args[0]
    return isinstance(node, TensorSymbol | BroadcastTo)


def _scalar_constant(value) -> TensorExpr:
    """A Python number operand as a constant (folded into the kernels that read it)."""
    if isinstance(value, bool):  # SymPy's True is a Boolean, not the number 1
        return fill(int(value), (), np.bool_)
    return fill(value, (), np.int64 if isinstance(value, int) else np.float64)


def _slot_symbol(slot, name: str) -> TensorSymbol:
    kind, shape, dtype = slot
    return TensorSymbol(name, shape, None if kind == "scalar" else np.dtype(dtype).name, kind)


def _op_chain(nodes) -> str:
    return " -> ".join(REGISTRY[n[0]].grad_fn_name(n[1]) for n in nodes)
