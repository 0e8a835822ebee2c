"""Autograd: recorded ``grad_fn`` nodes, the backward driver and grad modes."""

from ..grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .engine import (
    BACKWARD_CACHE,
    is_stability_rewrites_enabled,
    last_compiled,
    run_backward,
    set_stability_rewrites,
    stability_rewrites,
)
from .graph import AccumulateGrad, Node, VersionCounter

__all__ = ["BACKWARD_CACHE", "last_compiled", "run_backward", "set_stability_rewrites", "is_stability_rewrites_enabled",
           "stability_rewrites", "enable_grad", "is_grad_enabled",
           "no_grad", "set_grad_enabled", "AccumulateGrad", "Node", "VersionCounter"]
