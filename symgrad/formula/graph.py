"""A recorded ``grad_fn`` graph lowered to tensor-level SymPy, with the names formulas print.

The walk is the backward engine's own (:class:`~symgrad.autograd.engine._Plan`,
the structure key every backward compiles from), and each recorded op is
lowered by its op record exactly as :func:`symgrad.compiler.backward.build_backward`
does; derivatives come from :func:`symgrad.derive.gradients`.  What differs
from the compiler is only what the leaves are: every distinct tensor becomes
one symbol named after the user's tensor, Python numbers stay numbers (a
formula shows ``2·w``, not a parameter), and nothing is replaced by saved
forward values, so the expressions are in terms of the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .. import dtypes
from ..autograd.engine import _Plan
from ..autograd.graph import Node
from ..derive import gradients
from ..ops.elementwise import exact_number
from ..ops.registry import REGISTRY
from ..symbolic.nodes import TensorExpr, TensorSymbol, fill, reshape
from ..tensor import Tensor
from .names import CallerNames, NameTable

__all__ = ["Leaf", "RecordedGraph"]


@dataclass
class Leaf:
    """One input tensor of a formula: its symbol, display name and value."""

    symbol: TensorSymbol          # in the lowered graph
    name: str | None              # the name found for it (None: not found yet)
    value: np.ndarray             # the tensor's data (the whole tensor, for a view)
    tensor: Tensor | None = None
    display: sp.Symbol = field(init=False, default=None)  # the SymPy symbol a formula shows

    @property
    def shape(self) -> tuple[int, ...]:
        return self.symbol.shape


class RecordedGraph:
    """The graph below ``root``, lowered once; formulas and gradients are read off it.

    ``nodes[i]`` is the lowering of ``order[i]`` (the recorded nodes, inputs
    first); ``leaves`` maps each input symbol to its :class:`Leaf`;
    ``result_names[i]`` is the caller's variable holding node i's result.
    """

    def __init__(self, root: Tensor, names: CallerNames) -> None:
        self.root = root
        self.table = NameTable()
        self.leaves: dict[TensorSymbol, Leaf] = {}
        self._by_data: dict[int, TensorSymbol] = {}
        self.order: list[Node] = []
        self.nodes: list[TensorExpr] = []
        self.result_names: list[str | None] = []
        if root._grad_fn is None:
            kind = "leaf" if root.requires_grad else "const"
            self.output = self._leaf_symbol(root._data, root, root._name or names.variable_of(root), kind)
        else:
            self._lower(root._grad_fn, names)
            self.output = self.nodes[self.order.index(root._grad_fn)]
        self.root_name = self.table.claim(names.variable_of(root) or "out") if root._grad_fn is not None \
            else self.leaves[self.output].name
        self._name_the_rest()

    # ------------------------------------------------------------ lowering

    def _lower(self, root_node: Node, names: CallerNames) -> None:
        plan = _Plan([root_node], [None], [])
        entries, slots, _, _ = plan.key
        inputs: list[TensorExpr | None] = []
        for s, (kind, shape, code) in enumerate(slots):
            value = plan.values[s]
            if kind == "leaf":
                tensor = plan.leaf_of_slot[s].variable
                inputs.append(self._leaf_symbol(value, tensor, tensor._name or names.variable_of(tensor), "leaf"))
            elif kind == "const":
                inputs.append(self._constant(value, names))
            elif kind == "scalar":
                inputs.append(fill(exact_number(value), (), "float64"))
            else:  # results and seeds are not inputs of the formula
                inputs.append(None)
        self.order = plan.order
        for i, (op_name, attrs, refs, code, _) in enumerate(entries):
            operands = [self.nodes[~r] if r < 0 else inputs[r] for r in refs]
            dtype = dtypes.from_numpy_dtype(np.dtype(code))
            self.nodes.append(REGISTRY[op_name].lower(operands, attrs, dtype))
            node = self.order[i]
            name = names.result_name(node.result, node) if node is not root_node else None
            self.result_names.append(self.table.claim(name) if name else None)

    def _leaf_symbol(self, value: np.ndarray, tensor: Tensor | None, name: str | None,
                     kind: str = "const") -> TensorSymbol:
        # a leaf's data read as a constant elsewhere (through .detach()) is another input: no gradient flows
        key = (kind, id(value))
        symbol = self._by_data.get(key)
        if symbol is None:
            symbol = TensorSymbol(f"s{len(self.leaves)}", value.shape, value.dtype.name)
            self.leaves[symbol] = Leaf(symbol, self.table.claim(name) if name else None, value, tensor)
            self._by_data[key] = symbol
        return symbol

    def _constant(self, value: np.ndarray, names: CallerNames) -> TensorExpr:
        owner = names.owner(value)
        if owner is None:
            return self._leaf_symbol(value, None, None)
        symbol = self._leaf_symbol(owner.tensor._data, owner.tensor, owner.name)
        return reshape(symbol, value.shape) if owner.view else symbol

    def _name_the_rest(self) -> None:
        for leaf in self.leaves.values():
            if leaf.name is None:
                leaf.name = self.table.fresh("t")
            leaf.display = sp.Symbol(leaf.name, real=True)

    # ---------------------------------------------------------- read-outs

    def named_nodes(self, expand) -> dict[TensorExpr, str]:
        """Intermediates to show by name: those the caller holds in variables, less ``expand``."""
        if expand is True:
            return {}
        skip = set() if not expand else {expand} if isinstance(expand, str) else set(expand)
        named = {}
        for node, name in zip(self.nodes, self.result_names):
            if name and name not in skip and node is not self.output and not isinstance(node, TensorSymbol):
                named.setdefault(node, name)
        return named

    def target(self, tensor: Tensor) -> TensorExpr | None:
        """The expression standing for ``tensor`` in this graph (None when the graph does not read it)."""
        if tensor._grad_fn is not None:
            for node, lowered in zip(self.order, self.nodes):
                if node is tensor._grad_fn:
                    return lowered
            return None
        if tensor.requires_grad:
            return self._by_data.get(("leaf", id(tensor._data)))
        return self._by_data.get(("const", id(tensor._data)))

    def gradients(self, targets: list[TensorExpr | None], seed: TensorExpr | None = None) -> list[TensorExpr]:
        """``∂output/∂target`` for each target, as tensor-level graphs (zeros where unreached)."""
        out = self.output
        seed = fill(1, out.shape, out.dtype) if seed is None else seed
        live = [t for t in targets if t is not None]
        found = iter(gradients([out], [seed], live) if live else [])
        grads = []
        for t in targets:
            g = next(found) if t is not None else None
            grads.append(g)
        return grads
