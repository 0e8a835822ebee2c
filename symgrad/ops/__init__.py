"""The op table: every op declared once (see :mod:`symgrad.ops.registry`)."""

from . import activations, elementwise, indexing, linalg, losses, reductions, shape, structural
from .registry import REGISTRY, ElementwiseOp, Op, StructuralOp

__all__ = ["REGISTRY", "ElementwiseOp", "Op", "StructuralOp", "elementwise", "losses", "structural",
           "linalg", "reductions", "shape", "activations", "indexing"]
