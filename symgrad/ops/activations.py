"""Activation functions of ``torch.nn.functional``: one elementwise formula each.

Hyper-parameters (``negative_slope``, ``alpha``, ``beta`` …) are attributes:
they shape the formula, and PyTorch saves them on the ``grad_fn`` as numbers.
The kinks are PyTorch's and come out of ``sympy.diff`` of the ``Piecewise``
formulas: ``leaky_relu'(0)`` is the slope and ``elu'(0)`` is ``alpha`` (the
second case holds at 0), ``hardtanh'`` is 0 at its bounds, ``softplus`` is the
identity where ``beta*x > threshold``.  (``relu``, ``sigmoid`` and ``tanh`` are
in :mod:`symgrad.ops.elementwise`.)
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1

from ..symbolic.functions import Select, erf, sigmoid, softplus
from .elementwise import exact_number, not_implemented_for
from .registry import Api, ElementwiseOp

__all__ = ["LEAKY_RELU", "ELU", "GELU", "SILU", "SOFTPLUS", "HARDTANH"]


def _no_inplace(inplace: bool) -> None:
    if inplace:
        raise NotImplementedError("symgrad does not support inplace=True activations yet; use inplace=False")


def _leaky_relu(input, negative_slope=0.01, inplace=False):
    """``input`` where positive, else ``negative_slope * input`` (``LeakyReluBackward0``; the slope at 0).

    >>> import symgrad
    >>> symgrad.nn.functional.leaky_relu(symgrad.tensor([-2.0, 0.0, 3.0]), 0.1)
    tensor([-0.2000,  0.0000,  3.0000])
    """
    _no_inplace(inplace)
    return (input,), (float(negative_slope),)


LEAKY_RELU = ElementwiseOp(
    "leaky_relu", lambda a, slope: sp.Piecewise((a, a > 0), (exact_number(slope) * a, True)), "LeakyReluBackward0",
    check=not_implemented_for("leaky_relu_cpu", floating_only=True), api=Api(_leaky_relu, nn=("leaky_relu",)))


def _elu(input, alpha=1.0, inplace=False):
    """``input`` where positive, else ``alpha * (exp(input) - 1)`` (``EluBackward0``; ``alpha`` at 0).

    >>> import symgrad
    >>> symgrad.nn.functional.elu(symgrad.tensor([-1000.0, 0.0, 2.0]))
    tensor([-1.,  0.,  2.])
    """
    _no_inplace(inplace)
    return (input,), (float(alpha),)


ELU = ElementwiseOp(
    "elu", lambda a, alpha: sp.Piecewise((a, a > 0), (exact_number(alpha) * expm1(a), True)), "EluBackward0",
    check=not_implemented_for("elu_cpu", floating_only=True), api=Api(_elu, nn=("elu",)))


def _gelu_formula(a, approximate):
    if approximate == "tanh":
        inner = sp.sqrt(2 / sp.pi) * (a + sp.Float(0.044715) * a**3)
        return a * (1 + sp.tanh(inner)) / 2
    return a * (1 + erf(a / sp.sqrt(2))) / 2


def _gelu(input, approximate="none"):
    """``input * Φ(input)`` with Φ the normal CDF, or its ``approximate='tanh'`` form (``GeluBackward0``).

    >>> import symgrad
    >>> symgrad.nn.functional.gelu(symgrad.tensor([-1.0, 0.0, 1.0]))
    tensor([-0.1587,  0.0000,  0.8413])
    """
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return (input,), (approximate,)


GELU = ElementwiseOp("gelu", _gelu_formula, "GeluBackward0",
                     check=not_implemented_for("GeluKernelImpl", floating_only=True), api=Api(_gelu, nn=("gelu",)))


def _silu(input, inplace=False):
    """``input * sigmoid(input)``, finite for any input (``SiluBackward0``).

    >>> import symgrad
    >>> symgrad.nn.functional.silu(symgrad.tensor([-1000.0, 0.0, 1000.0]))
    tensor([  -0.,    0., 1000.])
    """
    _no_inplace(inplace)
    return (input,), ()


SILU = ElementwiseOp("silu", lambda a: a * sigmoid(a), "SiluBackward0",
                     check=not_implemented_for("silu_cpu", floating_only=True), api=Api(_silu, nn=("silu",)))


def _softplus_formula(a, beta, threshold):
    beta, threshold = exact_number(beta), exact_number(threshold)
    return sp.Piecewise((a, beta * a > threshold), (softplus(beta * a) / beta, True))


def _softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * input)) / beta``, and ``input`` itself where ``beta * input > threshold``.

    Computed without overflow for any input (``SoftplusBackward0``).

    >>> import symgrad
    >>> symgrad.nn.functional.softplus(symgrad.tensor([-1000.0, 0.0, 1000.0]))
    tensor([0.0000e+00, 6.9315e-01, 1.0000e+03])
    """
    return (input,), (float(beta), float(threshold))


SOFTPLUS = ElementwiseOp("softplus", _softplus_formula, "SoftplusBackward0",
                         check=not_implemented_for("softplus_cpu", floating_only=True),
                         api=Api(_softplus, nn=("softplus",)))


def _hardtanh_formula(a, min_val, max_val):
    lo, hi = exact_number(min_val), exact_number(max_val)
    return Select((lo, a <= lo), (hi, a >= hi), (a, True))  # its gradient is masked, as PyTorch's


def _hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``input`` clamped to ``[min_val, max_val]`` (``HardtanhBackward0``).

    Unlike ``clamp``, the gradient is 0 at the bounds themselves, as in PyTorch.

    >>> import symgrad
    >>> symgrad.nn.functional.hardtanh(symgrad.tensor([-2.0, 0.5, 2.0]))
    tensor([-1.0000,  0.5000,  1.0000])
    """
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    _no_inplace(inplace)
    return (input,), (float(min_val), float(max_val))


HARDTANH = ElementwiseOp("hardtanh", _hardtanh_formula, "HardtanhBackward0", api=Api(_hardtanh, nn=("hardtanh",)))
