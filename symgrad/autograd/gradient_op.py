"""Gradients that are differentiable again (``create_graph=True``).

A gradient computed with ``create_graph=True`` is recorded as one node whose
op is the *symbolic gradient itself*: its lowering is the derived SymPy graph
(over the leaves, constants and seeds, without reused forward values), so a
second ``backward`` derives through it with the same pipeline — and a third.
"""

from __future__ import annotations

from itertools import count

from ..ops.registry import REGISTRY, Op
from ..symbolic.nodes import replace_nodes

__all__ = ["GradientOp"]

_ids = count()


class GradientOp(Op):
    """The op of a differentiable gradient: lowers to the derived expression.

    Its ``grad_fn`` name is ``CompiledGradBackward0`` (PyTorch shows the ops of
    its double-backward formula instead; the values agree).
    """

    kind = "gradient"

    def __init__(self, expression, parameters) -> None:
        super().__init__(f"gradient{next(_ids)}", "CompiledGradBackward0")
        self.expression = expression
        self.parameters = tuple(parameters)

    def lower(self, inputs, attrs, dtype):
        return replace_nodes([self.expression], dict(zip(self.parameters, inputs)))[0]

    def saved_operands(self, attrs, needs_grad):
        return frozenset(range(len(needs_grad)))  # a gradient reads all of its operands

    def release(self) -> None:
        """Remove this op from the table (when its compiled structure is evicted)."""
        REGISTRY.pop(self.name, None)
