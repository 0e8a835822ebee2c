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

from ..grad_mode import is_grad_enabled
from ..symbolic.functions import Select, erf, sigmoid, softplus
from .elementwise import RELU, exact_number, not_implemented_for
from .registry import Api, ElementwiseOp

__all__ = ["LEAKY_RELU", "ELU", "GELU", "SILU", "SOFTPLUS", "HARDTANH",
           "RELU_", "LEAKY_RELU_", "ELU_", "SILU_", "HARDTANH_"]


def _result_saved(needs_grad: tuple[bool, ...]) -> set[int]:
    return {len(needs_grad)}


def _refuse_negative_slope_when_recorded(input, slope: float, what: str) -> None:
    """PyTorch's ``...Backward1`` reads the result, which a negative slope leaves ambiguous, and refuses.

    PyTorch raises in ``backward``; symgrad raises at the call, before anything
    changes (after PyTorch's leaf and view errors, which come first).
    """
    input._check_inplace()
    if slope < 0 and input.requires_grad and is_grad_enabled():
        raise RuntimeError(f"In-place {what} backward calculation is triggered with a negative slope which is not "
                           "supported. This is caused by calling in-place forward function with a negative slope, "
                           "please call out-of-place version instead." + _LEAKY_RELU_ISSUE * (what == "leakyReLu"))


_LEAKY_RELU_ISSUE = (" File an issue at https://github.com/pytorch/pytorch if you do require supporting in-place "
                     "leakRelu backward calculation with negative slope")

# relu(x, inplace=True) is ReluBackward0 saving its result, as the out-of-place op in PyTorch
RELU_ = RELU.inplace_variant(saves=_result_saved)


def _leaky_relu(input, negative_slope=0.01, inplace=False):
    """``input`` where positive, else ``negative_slope * input`` (``LeakyReluBackward0``; the slope at 0).

    ``inplace=True`` overwrites ``input`` (``LeakyReluBackward1`` when recorded).

    >>> import symgrad
    >>> symgrad.nn.functional.leaky_relu(symgrad.tensor([-2.0, 0.0, 3.0]), 0.1)
    tensor([-0.2000,  0.0000,  3.0000])
    """
    if inplace:
        _refuse_negative_slope_when_recorded(input, negative_slope, "leakyReLu")
        return (input,), (float(negative_slope),), LEAKY_RELU_
    return (input,), (float(negative_slope),)


LEAKY_RELU = ElementwiseOp(
    "leaky_relu", lambda a, slope: sp.Piecewise((a, a > 0), (exact_number(slope) * a, True)), "LeakyReluBackward0",
    check=not_implemented_for("leaky_relu_cpu", floating_only=True), api=Api(_leaky_relu, nn=("leaky_relu",)))
LEAKY_RELU_ = LEAKY_RELU.inplace_variant("LeakyReluBackward1", saves=_result_saved)


def _elu(input, alpha=1.0, inplace=False):
    """``input`` where positive, else ``alpha * (exp(input) - 1)`` (``EluBackward0``; ``alpha`` at 0).

    ``inplace=True`` overwrites ``input`` (``EluBackward1`` when recorded).

    >>> import symgrad
    >>> symgrad.nn.functional.elu(symgrad.tensor([-1000.0, 0.0, 2.0]))
    tensor([-1.,  0.,  2.])
    """
    if inplace:
        _refuse_negative_slope_when_recorded(input, alpha, "elu")
        return (input,), (float(alpha),), ELU_
    return (input,), (float(alpha),)


ELU = ElementwiseOp(
    "elu", lambda a, alpha: sp.Piecewise((a, a > 0), (exact_number(alpha) * expm1(a), True)), "EluBackward0",
    check=not_implemented_for("elu_cpu", floating_only=True), api=Api(_elu, nn=("elu",)))
ELU_ = ELU.inplace_variant("EluBackward1", saves=_result_saved)


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
    """``input * sigmoid(input)``, finite for any input (``SiluBackward0``, also with ``inplace=True``).

    >>> import symgrad
    >>> symgrad.nn.functional.silu(symgrad.tensor([-1000.0, 0.0, 1000.0]))
    tensor([  -0.,    0., 1000.])
    """
    return ((input,), (), SILU_) if inplace else ((input,), ())


SILU = ElementwiseOp("silu", lambda a: a * sigmoid(a), "SiluBackward0",
                     check=not_implemented_for("silu_cpu", floating_only=True), api=Api(_silu, nn=("silu",)))
SILU_ = SILU.inplace_variant()  # PyTorch saves a copy of the overwritten input, as _inplace keeps it


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
    """``input`` clamped to ``[min_val, max_val]`` (``HardtanhBackward0``, also with ``inplace=True``).

    Unlike ``clamp``, the gradient is 0 at the bounds themselves, as in PyTorch.

    >>> import symgrad
    >>> symgrad.nn.functional.hardtanh(symgrad.tensor([-2.0, 0.5, 2.0]))
    tensor([-1.0000,  0.5000,  1.0000])
    """
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return ((input,), (float(min_val), float(max_val))) + ((HARDTANH_,) if inplace else ())


HARDTANH = ElementwiseOp("hardtanh", _hardtanh_formula, "HardtanhBackward0", api=Api(_hardtanh, nn=("hardtanh",)))
HARDTANH_ = HARDTANH.inplace_variant()  # saves a copy of the overwritten input, as PyTorch
