"""Names for the tensors in a formula: ``name=``, else the caller's variables, else ``t0, t1, …``.

A recorded node keeps its operands' *arrays*, not the tensors, so names are
found by the identity of the data: the calling frame's variables are indexed
by the ``id`` of their tensor's array (as the facade names generated code),
and by its memory address for views (``matmul`` of a 1-D input records a
row view of it, which must still read as ``x``).  A tensor that is no longer
held by a variable is looked up among the live tensors referring to the
array (for ``name=``).  Names that are not identifiers are kept as written;
duplicates get a suffix.
"""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tensor import Tensor

__all__ = ["CallerNames", "Owner", "NameTable", "caller_frame"]

_OWN_FILES = {str(p) for p in Path(__file__).parent.glob("*.py")} | {str(Path(__file__).parents[1] / "viz.py")}


def caller_frame():
    """The innermost frame outside the formula and picture modules (the user's code)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename in _OWN_FILES:
        frame = frame.f_back
    return frame


@dataclass(frozen=True)
class Owner:
    """A tensor that holds an array (directly or as a reshaped view), and the name it goes by."""

    tensor: Tensor
    name: str | None
    view: bool = False  # the array is a reshape of the tensor's data


def _address(array: np.ndarray) -> tuple | None:
    if not array.flags.c_contiguous:
        return None
    return array.__array_interface__["data"][0], array.size, array.dtype.str


class CallerNames:
    """The tensors held by a frame's variables, found by their data (locals win over globals).

    >>> import symgrad
    >>> w = symgrad.ones(3)
    >>> names = CallerNames(sys._getframe())
    >>> names.owner(w._data).name
    'w'
    >>> names.owner(w._data.reshape(1, 3)).view
    True
    """

    def __init__(self, frame, explicit: dict | None = None) -> None:
        self._by_id: dict[int, list[tuple[str, Tensor]]] = {}
        self._by_address: dict[tuple, list[tuple[str, Tensor]]] = {}
        # names given to formula(..., names={"w": w}): they outrank name= and variables
        self._explicit = {id(t): name for name, t in (explicit or {}).items()}
        for name, tensor in (explicit or {}).items():
            if not isinstance(tensor, Tensor):
                raise TypeError(f"names: {name!r} should map to a Tensor, not {type(tensor).__name__}")
            self._add(name, tensor)
        if frame is None:
            return
        for scope in (frame.f_locals, frame.f_globals):
            for var, obj in list(scope.items()):
                if isinstance(obj, Tensor) and not var.startswith("_"):
                    self._add(var, obj)

    def name_of(self, tensor: Tensor) -> str | None:
        """An input tensor's name: given in ``names``, else ``name=``, else the variable holding it."""
        return self._explicit.get(id(tensor)) or tensor._name or self.variable_of(tensor)

    def output_name(self, tensor: Tensor) -> str | None:
        """The name of the tensor a formula is about: given in ``names``, else its variable."""
        return self._explicit.get(id(tensor)) or self.variable_of(tensor)

    def _add(self, var: str, tensor: Tensor) -> None:
        self._by_id.setdefault(id(tensor._data), []).append((var, tensor))
        address = _address(tensor._data)
        if address is not None:
            self._by_address.setdefault(address, []).append((var, tensor))

    def variable_of(self, tensor: Tensor) -> str | None:
        """The variable holding ``tensor`` itself (or, failing that, a tensor sharing its data)."""
        found = self._by_id.get(id(tensor._data), [])
        for var, t in found:
            if t is tensor:
                return var
        return found[0][0] if found else None

    def result_name(self, array: np.ndarray, node) -> str | None:
        """The variable holding the tensor a recorded ``node`` produced (its result ``array``)."""
        found = self._by_id.get(id(array), [])
        for var, t in found:
            if t._grad_fn is node:
                return var
        return None

    def owner(self, array: np.ndarray) -> Owner | None:
        """Who holds a constant operand's array: a variable's tensor, a view of one, or a live tensor."""
        for var, tensor in self._by_id.get(id(array), []):
            return Owner(tensor, self._explicit.get(id(tensor)) or tensor._name or var)
        address = _address(array)
        for var, tensor in self._by_address.get(address, []) if address else []:
            return Owner(tensor, self._explicit.get(id(tensor)) or tensor._name or var, view=True)
        return _live_owner(array)


def _live_owner(array: np.ndarray) -> Owner | None:
    """A live tensor holding ``array`` (or the array it views), for its ``name=``."""
    candidates = [array] if array.base is None else [array, array.base]
    for candidate in candidates:
        for ref in gc.get_referrers(candidate):
            if isinstance(ref, Tensor) and ref._name:
                same = ref._data is array
                if same or _address(ref._data) == _address(array):
                    return Owner(ref, ref._name, view=not same)
    return None


class NameTable:
    """Hands out unique display names: preferred names first, then ``t0, t1, …`` for the rest.

    >>> table = NameTable()
    >>> table.claim("w"), table.claim("w"), table.fresh("t")
    ('w', 'w_1', 't0')
    """

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self._counters: dict[str, int] = {}

    def claim(self, name: str) -> str:
        """``name`` itself if free, else ``name_1``, ``name_2`` …"""
        name = name if name else "t"
        candidate, k = name, 0
        while candidate in self.taken:
            k += 1
            candidate = f"{name}_{k}"
        self.taken.add(candidate)
        return candidate

    def fresh(self, prefix: str, start: int = 0) -> str:
        """The next unused ``{prefix}{n}``."""
        n = self._counters.get(prefix, start)
        while f"{prefix}{n}" in self.taken:
            n += 1
        self._counters[prefix] = n + 1
        self.taken.add(f"{prefix}{n}")
        return f"{prefix}{n}"
