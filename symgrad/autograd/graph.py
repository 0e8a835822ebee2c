"""The recorded graph: light ``grad_fn`` nodes built by every op on the eager path.

A :class:`Node` stores the op record, its attributes, the graph edges to its
operands' nodes, the operand values and the result it computed (PyTorch's
saved tensors), and the version of every operand at the time.  It builds no
SymPy: ``backward`` turns a whole graph into SymPy only when its structure
has not been compiled before.
"""

from __future__ import annotations

__all__ = ["Node", "AccumulateGrad", "VersionCounter"]


class VersionCounter:
    """Counts in-place modifications of a tensor's data (shared by tensors sharing data)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class AccumulateGrad:
    """The graph node of a leaf that requires grad; ``backward`` adds into ``variable.grad``.

    >>> import symgrad
    >>> w = symgrad.ones(2, requires_grad=True)
    >>> (w * 2).grad_fn.next_functions[0][0].variable is w
    True
    """

    __slots__ = ("variable", "__weakref__")

    def __init__(self, variable) -> None:
        self.variable = variable

    def name(self) -> str:
        """PyTorch's name for this node class."""
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


class Node:
    """A ``grad_fn``: one recorded op application.

    >>> import symgrad
    >>> w = symgrad.ones(2, requires_grad=True)
    >>> (w + 1).grad_fn.name()
    'AddBackward0'
    """

    __slots__ = ("op", "attrs", "edges", "values", "counters", "versions", "result", "result_counter",
                 "result_version", "freed", "retained", "__weakref__")

    def __init__(self, op, attrs, edges, values, counters, result, result_counter) -> None:
        self.op = op
        self.attrs = attrs
        self.edges = edges            # per operand: Node, AccumulateGrad or None
        self.values = values          # per operand: ndarray or Python scalar
        self.counters = counters      # per operand: VersionCounter or None
        self.versions = tuple(c.value if c is not None else 0 for c in counters)
        self.result = result
        self.result_counter = result_counter
        self.result_version = result_counter.value
        self.freed = False
        self.retained = None          # weakref to the tensor when retain_grad() was called

    def name(self) -> str:
        """PyTorch's class name for this backward node, e.g. ``MmBackward0``."""
        return self.op.grad_fn_name(self.attrs)

    @property
    def next_functions(self) -> tuple:
        """``((node, 0), …)`` for each operand that is a graph edge, as PyTorch shows them."""
        hidden = self.op.value_only
        return tuple((edge, 0) for i, edge in enumerate(self.edges) if i not in hidden)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"
