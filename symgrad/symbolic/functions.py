"""Scalar SymPy functions with numerically stable NumPy forms and PyTorch's kinks.

Each class carries its derivative (``fdiff``), its stable NumPy spelling
(``_numpycode``) and its display forms, so the formula, the derivative and the
generated code all come from one definition.  Why they exist: SymPy's
``log(1 + exp(z))`` differentiates to ``exp(z)/(1 + exp(z))``, which is
``inf/inf`` at z = 1000; SymPy's ``Heaviside(0)`` is 1/2 where PyTorch's
relu'(0) is 0.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, PRECEDENCE_VALUES


def _with_power(function: str, exp: str | None) -> str:
    """LaTeX for ``f(x)`` or, inside a power, ``f(x)^{n}`` (SymPy passes the exponent in)."""
    return function if exp is None else f"{function}^{{{exp}}}"


__all__ = ["sigmoid", "softplus", "relu", "power", "STABLE_FUNCTIONS"]


class sigmoid(sp.Function):  # noqa: N801 - reads like the math
    """The logistic function ``1 / (1 + exp(-x))``, finite for any real x.

    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> sp.diff(sigmoid(x), x)
    (1 - sigmoid(x))*sigmoid(x)
    """

    nargs = 1
    is_real = True

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(1, 2)
        return None

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.exp)._eval_evalf(prec)

    def _numpycode(self, printer):
        # exp(-log(1 + exp(-x))): no overflow for either sign of x
        minus_x = printer._print(-self.args[0])
        return f"{printer._module_format('numpy.exp')}(-{printer._module_format('numpy.logaddexp')}(0, {minus_x}))"

    def _latex(self, printer, exp=None):
        return _with_power(rf"\sigma\left({printer._print(self.args[0])}\right)", exp)

    def _pretty(self, printer):
        return printer._print_Function(self, func_name="σ")

    def _sympystr(self, printer):
        return f"sigmoid({printer._print(self.args[0])})"


class softplus(sp.Function):  # noqa: N801
    """``log(1 + exp(x))`` computed without overflow; its derivative is sigmoid.

    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> sp.diff(softplus(x), x)
    sigmoid(x)
    """

    nargs = 1
    is_real = True

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.log)._eval_evalf(prec)

    def _numpycode(self, printer):
        x = printer._print(self.args[0])
        return f"{printer._module_format('numpy.logaddexp')}(0, {x})"

    def _latex(self, printer, exp=None):
        return _with_power(rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)", exp)


class relu(sp.Function):  # noqa: N801
    """``max(x, 0)`` whose derivative at 0 is 0, as in PyTorch.

    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> sp.diff(relu(x), x)
    Heaviside(x, 0)
    """

    nargs = 1
    is_real = True

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)

    @classmethod
    def eval(cls, x):
        if x.is_number:
            return sp.Max(x, 0)
        return None

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sp.Max(x, 0)

    def _numpycode(self, printer):
        return f"{printer._module_format('numpy.maximum')}({printer._print(self.args[0])}, 0)"

    def _latex(self, printer, exp=None):
        return _with_power(rf"\operatorname{{relu}}\left({printer._print(self.args[0])}\right)", exp)


class power(sp.Function):  # noqa: N801
    """``a ** b`` for a tensor exponent, with PyTorch's derivatives at the kinks.

    PyTorch defines ∂/∂a = 0 where b == 0 (even at a == 0, where b·a^(b-1) is
    0·inf) and ∂/∂b = 0 where a == 0 and b >= 0 (where a^b·log(a) is 0·-inf).
    A number exponent gives a plain SymPy power.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b", real=True)
    >>> power(a, 2)
    a**2
    >>> sp.diff(power(a, b), b)
    Piecewise((0, Eq(a, 0) & (b >= 0)), (log(a)*a**b, True))
    """

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if b.is_Number:
            return a ** b
        return None

    def fdiff(self, argindex=1):
        a, b = self.args
        if argindex == 1:
            return sp.Piecewise((0, sp.Eq(b, 0)), (b * power(a, b - 1), True))
        return sp.Piecewise((0, sp.Eq(a, 0) & (b >= 0)), (power(a, b) * sp.log(a), True))

    def _eval_rewrite_as_Pow(self, a, b, **kwargs):
        return sp.Pow(a, b)

    def _numpycode(self, printer):
        return printer._print(sp.Pow(*self.args, evaluate=False))

    def _sympystr(self, printer):
        return printer._print(sp.Pow(*self.args, evaluate=False))

    def _latex(self, printer, exp=None):
        base = printer._print(sp.Pow(*self.args, evaluate=False))
        return base if exp is None else rf"\left({base}\right)^{{{exp}}}"

    def _pretty(self, printer):
        return printer._print(sp.Pow(*self.args, evaluate=False))


# printed as a**b, so printers must parenthesise it like a power: (x**e)**2, not x**e**2
PRECEDENCE_VALUES["power"] = PRECEDENCE["Pow"]

STABLE_FUNCTIONS = {"sigmoid": sigmoid, "softplus": softplus, "relu": relu, "power": power}
