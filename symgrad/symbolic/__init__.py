"""Tensor-level SymPy nodes and the stable scalar functions they use."""

from .einsum import Einsum, einsum
from .functions import STABLE_FUNCTIONS, power, relu, sigmoid, softplus
from .nodes import (
    BroadcastTo,
    Elementwise,
    Fill,
    MatMul,
    Permute,
    Reshape,
    Sum,
    TensorExpr,
    TensorSymbol,
    arg,
    broadcast_shapes,
    broadcast_to,
    elementwise,
    fill,
    matmul,
    permute,
    reduce_sum,
    replace_nodes,
    reshape,
    topological_order,
    unbroadcast,
)

__all__ = [
    "STABLE_FUNCTIONS", "power", "relu", "sigmoid", "softplus", "BroadcastTo", "Elementwise", "Fill",
    "MatMul", "Permute", "Reshape", "Sum", "TensorExpr", "TensorSymbol", "arg",
    "broadcast_shapes", "broadcast_to", "elementwise", "fill", "matmul", "permute",
    "reduce_sum", "replace_nodes", "reshape", "topological_order", "unbroadcast",
]
__all__ += ["Einsum", "einsum"]
