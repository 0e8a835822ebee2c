"""``symgrad.nn``: the ``functional`` namespace of neural-network operations."""

from . import functional

__all__ = ["functional"]
