"""A bounded LRU cache of compiled functions, keyed by graph structure, with counters."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["CompileCache", "CacheInfo"]


@dataclass(frozen=True)
class CacheInfo:
    """Counters of a :class:`CompileCache` (like ``functools.lru_cache``'s)."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


class CompileCache:
    """Least-recently-used mapping from a structural key to a compiled object.

    >>> cache = CompileCache(maxsize=2)
    >>> cache.get_or_build("k", lambda: 42), cache.get_or_build("k", lambda: 0)
    (42, 42)
    >>> cache.info()
    CacheInfo(hits=1, misses=1, maxsize=2, currsize=1)
    """

    def __init__(self, maxsize: int = 256) -> None:
        self._entries: OrderedDict = OrderedDict()
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self.on_clear: list = []  # callables run by clear() (caches layered on this one)

    def get_or_build(self, key, build):
        entry = self._entries.get(key)
        if entry is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return entry
        self.misses += 1
        entry = build()
        self._entries[key] = entry
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return entry

    def info(self) -> CacheInfo:
        return CacheInfo(self.hits, self.misses, self.maxsize, len(self._entries))

    def clear(self) -> None:
        """Forget every entry and reset the counters."""
        self._entries.clear()
        self.hits = self.misses = 0
        for hook in self.on_clear:
            hook()

    def resize(self, maxsize: int) -> None:
        """Change the bound, evicting the least recently used entries if needed."""
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        while len(self._entries) > maxsize:
            self._entries.popitem(last=False)
