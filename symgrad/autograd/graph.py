"""The recorded graph: light ``grad_fn`` nodes built by every op on the eager path.

A :class:`Node` stores the op record, its attributes, the graph edges to its
operands' nodes, the operand values and the result it computed (PyTorch's
saved tensors), and the version of every operand at the time.  It builds no
SymPy: ``backward`` turns a whole graph into SymPy only when its structure
has not been compiled before.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np

__all__ = ["Node", "AccumulateGrad", "VersionCounter", "structure_id", "name_value", "value_name"]


class _StructureIds:
    """Small integer ids for node structures, so a node's key is O(1) to build and hash.

    A node's structure is (op, attributes, its operands' structure ids, leaf
    identities and constant shapes); equal ids mean equal graphs below the
    node.  Ids are never reused, so evicting old entries (the table is
    bounded) can only cause a miss, never a false match.
    """

    def __init__(self, maxsize: int = 1 << 16) -> None:
        self._table: OrderedDict = OrderedDict()
        self._next = 0
        self.maxsize = maxsize

    def __call__(self, parts: tuple) -> int:
        found = self._table.get(parts)
        if found is None:
            found = self._table[parts] = self._next
            self._next += 1
            if len(self._table) > self.maxsize:
                self._table.popitem(last=False)
        return found


structure_id = _StructureIds()

# names given with `name=` to tensors that do not require grad, by their array:
# graph nodes hold arrays, not tensors, and generated code should use the name
_NAMED_VALUES: dict[int, tuple] = {}


def name_value(array: np.ndarray, name: str) -> None:
    """Remember ``name`` for ``array`` (as long as the array lives)."""
    key = id(array)
    _NAMED_VALUES[key] = (weakref.ref(array, lambda _, key=key: _NAMED_VALUES.pop(key, None)), name)


def value_name(value) -> str | None:
    """The name given to this array with ``name=``, if any."""
    entry = _NAMED_VALUES.get(id(value))
    return entry[1] if entry is not None and entry[0]() is value else None


class VersionCounter:
    """Counts in-place modifications of a tensor's data (shared by tensors sharing data).

    ``rebased`` is the node of the last in-place op that gave the tensor a new
    ``grad_fn`` (error messages name it, as PyTorch's do).
    """

    __slots__ = ("value", "rebased")

    def __init__(self) -> None:
        self.value = 0
        self.rebased = None


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
                 "result_version", "freed", "retained", "skey", "__weakref__")

    def __init__(self, op, attrs, edges, values, counters, result, result_counter) -> None:
        self.op = op
        self.attrs = attrs
        self.edges = edges            # per operand: Node, AccumulateGrad or None
        self.values = values          # per operand: ndarray or Python scalar
        self.counters = counters      # per operand: VersionCounter or None
        self.result = result
        self.result_counter = result_counter
        self.result_version = result_counter.value
        self.freed = False
        self.retained = None          # weakref to the tensor when retain_grad() was called
        # one pass: the operands' versions now, and this node's structure id
        versions, parts = [], [op.name, attrs]
        for edge, value, counter in zip(edges, values, counters):
            versions.append(0 if counter is None else counter.value)
            if edge is None:
                parts.append((value.shape, value.dtype.char) if type(value) is np.ndarray else type(value))
            elif type(edge) is Node:
                parts.append(edge.skey)
            else:  # a leaf: its identity matters (the same leaf twice is not two leaves)
                parts.append((id(edge), value.shape, value.dtype.char))
        self.versions = tuple(versions)
        self.skey = structure_id(tuple(parts))

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

