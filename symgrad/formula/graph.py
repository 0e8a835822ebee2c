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

from ..autograd.engine import _Plan
from ..autograd.graph import Node, value_name
from ..compiler.backward import lower_nodes
from ..derive import gradients
from ..ops.elementwise import exact_number
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
    requires_grad: bool = False   # a leaf of the autograd graph (not a constant)
    display: sp.Symbol = field(init=False, default=None)  # the SymPy symbol a formula shows

    @property
    def shape(self) -> tuple[int, ...]:
        return self.symbol.shape


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``b`` is ``a`` reshaped: the same contiguous elements in the same order."""
    return (a.flags.c_contiguous and b.flags.c_contiguous and a.size == b.size and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


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
        self._by_data: dict[tuple[str, int], TensorSymbol] = {}
        self.operand_symbols: dict[int, TensorSymbol] = {}  # id of an operand array the nodes hold -> its input
        self.order: list[Node] = []
        self.nodes: list[TensorExpr] = []
        self.result_names: list[str | None] = []
        if root._grad_fn is None:
            kind = "leaf" if root.requires_grad else "const"
            self.output = self._leaf_symbol(root._data, root, names.name_of(root), kind)
        else:
            self._lower(root._grad_fn, names)
            self.output = self.nodes[self.order.index(root._grad_fn)]
        self.root_name = self.table.claim(names.output_name(root) or "out") if root._grad_fn is not None \
            else self.leaves[self.output].name
        self._name_the_rest()

    # ------------------------------------------------------------ lowering

    def _lower(self, root_node: Node, names: CallerNames) -> None:
        plan = _Plan([root_node], [None], [])
        entries, slots, _, _ = plan.key
        inputs: list[TensorExpr | None] = []
        for s, (kind, _, _) in enumerate(slots):
            value = plan.values[s]
            if kind == "leaf":
                tensor = plan.leaf_of_slot[s].variable
                inputs.append(self._leaf_symbol(value, tensor, names.name_of(tensor), "leaf"))
            elif kind == "const":
                symbol, expr = self._constant(value, names, self._hidden(plan, s))
                self.operand_symbols[id(value)] = symbol
                inputs.append(expr)
            elif kind == "scalar":
                inputs.append(fill(exact_number(value), (), "float64"))
            else:  # results and seeds are not inputs of the formula
                inputs.append(None)
        self.order = plan.order
        self.nodes.extend(lower_nodes(entries, inputs))  # the same lowering backward compiles
        for node in self.order:
            name = names.result_name(node.result, node) if node is not root_node else None
            self.result_names.append(self.table.claim(name) if name else None)

    def _leaf_symbol(self, value: np.ndarray, tensor: Tensor | None, name: str | None,
                     kind: str = "const") -> TensorSymbol:
        # a leaf's data read as a constant elsewhere (through .detach()) is another input: no gradient flows
        key = (kind, id(value))
        symbol = self._by_data.get(key)
        if symbol is None:
            symbol = TensorSymbol(f"s{len(self.leaves)}", value.shape, value.dtype.name)
            self.leaves[symbol] = Leaf(symbol, self.table.claim(name) if name else None, value, tensor, kind == "leaf")
            self._by_data[key] = symbol
        return symbol

    @staticmethod
    def _hidden(plan: _Plan, slot: int) -> bool:
        """Whether a constant is an op's hidden operand (not a graph edge: the maximum ``softmax`` shifts by)."""
        _, i, j = plan.accessors[slot]
        return j in plan.order[i].op.value_only

    def _constant(self, value: np.ndarray, names: CallerNames, hidden: bool = False) -> tuple[TensorSymbol,
                                                                                             TensorExpr]:
        """The input symbol of a constant operand, and the expression that reads it (a reshape, for a view).

        An op's hidden reference value (the maximum that ``max`` and the
        softmax family compare with or shift by) is named ``ref``.
        """
        owner = names.owner(value)
        if owner is None:
            base = value.base
            if isinstance(base, np.ndarray) and _same_memory(base, value):
                # an unnamed view (matmul's row of a 1-D input): the formula reads the whole array
                symbol = self._leaf_symbol(base, None, None)
                return symbol, reshape(symbol, value.shape)
            label = "index" if value.dtype.kind in "iu" else "ref"  # an index array, or a reference value
            symbol = self._leaf_symbol(value, None, value_name(value) or (label if hidden else None))
            return symbol, symbol
        symbol = self._leaf_symbol(owner.tensor._data, owner.tensor, owner.name)
        return symbol, (reshape(symbol, value.shape) if owner.view else symbol)

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

    def leaf_tensors(self) -> list[Tensor]:
        """The leaves that require grad, in the order the graph reads them."""
        return [leaf.tensor for leaf in self.leaves.values() if leaf.requires_grad]

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
