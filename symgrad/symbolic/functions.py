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


__all__ = ["sigmoid", "softplus", "relu", "power", "Select", "erf", "atan2", "maximum", "minimum", "sign", "Abs",
           "clamp", "floor_divide", "trunc_divide", "xlogy", "bce", "BCE_EPSILON", "STABLE_FUNCTIONS"]


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
    Select((1, x > 0), (0, True))
    """

    nargs = 1
    is_real = True

    def fdiff(self, argindex=1):
        # a mask that selects the gradient, as PyTorch's: relu(x).sqrt() has gradient 0, not nan, at x < 0
        return Select((1, self.args[0] > 0), (0, True))

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

class erf(sp.erf):  # noqa: N801
    """SymPy's error function, printed to NumPy as the ``erf`` helper (NumPy has none).

    Its derivative is SymPy's; see :func:`symgrad.symbolic.numpy_helpers.erf` for the NumPy form.

    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> sp.diff(erf(x), x)
    2*exp(-x**2)/sqrt(pi)
    """

    def _numpycode(self, printer):
        return f"erf({printer._print(self.args[0])})"


class atan2(sp.atan2):  # noqa: N801
    """SymPy's ``atan2(y, x)`` whose derivatives are 0 at the origin, as PyTorch's (not 0/0).

    >>> import sympy as sp
    >>> y, x = sp.symbols("y x", real=True)
    >>> sp.diff(atan2(y, x), y)
    Piecewise((0, Eq(x**2 + y**2, 0)), (x/(x**2 + y**2), True))
    """

    def fdiff(self, argindex=1):
        y, x = self.args
        return sp.Piecewise((0, sp.Eq(x**2 + y**2, 0)), (super().fdiff(argindex), True))


class Select(sp.Piecewise):
    """A ``Piecewise`` whose derivatives *select* the incoming gradient, as PyTorch's masks do.

    PyTorch's backward of ``where``, ``clamp``, ``hardtanh``, ``maximum`` …
    is ``where(mask, grad, 0)``, not ``grad * mask``: an infinite or NaN
    gradient arriving where the mask is 0 gives 0, not NaN.  A derivative
    containing ``Select`` has the gradient folded into its cases by
    :mod:`symgrad.derive` (``Piecewise((g, c), (0, True))``); an ordinary
    ``Piecewise`` derivative multiplies (``pow``'s masked derivative, as PyTorch's).

    >>> import sympy as sp
    >>> x, c = sp.symbols("x c", real=True)
    >>> type(sp.diff(Select((x, c > 0), (2 * x, True)), x)).__name__
    'Select'
    """

    # printed as a Piecewise by every printer (SymPy's printers skip the parent's
    # _print_ method for a Function subclass with another name)
    def _print_as_piecewise(self, printer, **kwargs):
        method = getattr(printer, "_print_Piecewise", None)
        return method(self, **kwargs) if method is not None else printer._print_Function(self, **kwargs)

    _numpycode = _sympystr = _latex = _pretty = _print_as_piecewise


class maximum(sp.Function):  # noqa: N801
    """``torch.maximum``: NaN propagates; the derivative is PyTorch's: 1/2 at ties (±inf included), 0 where
    the other is larger, else 1 (at NaN too).  (SymPy's ``Max`` would give ``Heaviside(a - b)``: the same
    1/2 at finite ties, but NaN at ``inf == inf`` and at NaN.)

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b", real=True)
    >>> sp.diff(maximum(a, b), a)
    Select((1/2, Eq(a, b)), (0, a < b), (1, True))
    """

    nargs = 2
    _smaller = staticmethod(sp.Lt)
    _numpy = "numpy.maximum"

    @classmethod
    def eval(cls, a, b):
        if a == b:
            return a
        if a.is_number and b.is_number:
            return sp.Max(a, b) if cls is maximum else sp.Min(a, b)
        return None

    def fdiff(self, argindex=1):
        a, b = self.args if argindex == 1 else self.args[::-1]
        return Select((sp.S.Half, sp.Eq(a, b)), (0, self._smaller(a, b)), (1, True))

    def _numpycode(self, printer):
        a, b = (printer._print(x) for x in self.args)
        return f"{printer._module_format(self._numpy)}({a}, {b})"


class minimum(maximum):  # noqa: N801
    """``torch.minimum``, with PyTorch's derivative (1/2 at ties, 0 where the other is smaller, else 1).

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b", real=True)
    >>> sp.diff(minimum(a, b), b)
    Select((1/2, Eq(a, b)), (0, a < b), (1, True))
    """

    _smaller = staticmethod(sp.Gt)
    _numpy = "numpy.minimum"


class sign(sp.Function):  # noqa: N801
    """PyTorch's ``sign``: -1, 0 or 1, and 0 for NaN; its derivative is 0 everywhere (0 included).

    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> sp.diff(sign(x), x), sign(-2.5)
    (0, -1)
    """

    nargs = 1
    is_real = True

    @classmethod
    def eval(cls, x):
        if x.is_number:
            return sp.sign(x)
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    def _numpycode(self, printer):
        return f"{printer._module_format('numpy.sign')}({printer._module_format('numpy.nan_to_num')}" \
               f"({printer._print(self.args[0])}))"


class Abs(sp.Abs):
    """``|x|`` whose derivative is PyTorch's ``sgn``: ``sign(x)``, 0 at 0 and at NaN.

    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> sp.diff(Abs(x), x)
    sign(x)
    """

    def fdiff(self, argindex=1):
        return sign(self.args[0])

    def _eval_derivative(self, s):
        return self.args[0].diff(s) * sign(self.args[0])


class clamp(sp.Function):  # noqa: N801
    """``min(max(x, lo), hi)`` as ``torch.clamp`` (``hi`` wins when lo > hi); ``lo``/``hi`` may be ∓oo.

    The derivatives follow PyTorch: ``x`` receives the gradient where
    lo <= x <= hi (bounds included), ``lo`` where x < lo < hi, ``hi`` where
    x > hi or hi < lo.

    >>> import sympy as sp
    >>> x, lo = sp.symbols("x lo", real=True)
    >>> sp.diff(clamp(x, lo, sp.oo), x)
    Select((1, lo <= x), (0, True))
    """

    nargs = 3

    def fdiff(self, argindex=1):
        x, lo, hi = self.args
        if argindex == 1:
            condition = (x >= lo) & (x <= hi)
        elif argindex == 2:
            condition = (x < lo) & (lo < hi)
        else:
            condition = (x > hi) | (hi < lo)
        return Select((1, condition), (0, True))

    def _numpycode(self, printer):
        x, lo, hi = self.args
        out = printer._print(x)
        if lo != -sp.oo:
            out = f"{printer._module_format('numpy.maximum')}({out}, {printer._print(lo)})"
        if hi != sp.oo:
            out = f"{printer._module_format('numpy.minimum')}({out}, {printer._print(hi)})"
        return out


class floor_divide(sp.Function):  # noqa: N801
    """``floor(a / b)`` (Python's ``//``; ``div(rounding_mode='floor')``): its derivative is 0, as in PyTorch.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b", real=True)
    >>> sp.diff(floor_divide(a, b), a)
    0
    """

    nargs = 2

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    def _numpycode(self, printer):
        a, b = (printer._print(x) for x in self.args)
        return f"{printer._module_format('numpy.floor_divide')}({a}, {b})"


class trunc_divide(sp.Function):  # noqa: N801
    """``a / b`` rounded toward zero (``div(rounding_mode='trunc')``): its derivative is 0, as in PyTorch."""

    nargs = 2

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    def _numpycode(self, printer):
        a = printer.parenthesize(self.args[0], PRECEDENCE["Mul"])
        b = printer.parenthesize(self.args[1], PRECEDENCE["Mul"], strict=True)
        return f"{printer._module_format('numpy.trunc')}({a}/{b})"


class xlogy(sp.Function):  # noqa: N801
    """``x*log(y)``, 0 where x == 0 (NaN where y is NaN), with ``torch.xlogy``'s derivatives.

    PyTorch's ∂/∂x is ``log(y)`` but 0 where x == 0 and y <= 0; ∂/∂y is ``x/y``.

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y", real=True)
    >>> sp.diff(xlogy(x, y), x)
    Piecewise((0, Eq(x, 0) & (y <= 0)), (log(y), True))
    """

    nargs = 2

    def fdiff(self, argindex=1):
        x, y = self.args
        if argindex == 1:
            return sp.Piecewise((0, sp.Eq(x, 0) & (y <= 0)), (sp.log(y), True))
        return x / y

    def _numpycode(self, printer):
        x, y = (printer._print(a) for a in self.args)
        np_ = printer._module_format
        return (f"{np_('numpy.where')}(({x} == 0) & ~{np_('numpy.isnan')}({y}), 0, "
                f"{printer.parenthesize(self.args[0], PRECEDENCE['Mul'])}*{np_('numpy.log')}({y}))")


# PyTorch's clamp of the BCE gradient's denominator (a float constant, 1e-12 in single precision)
BCE_EPSILON = sp.Float(9.999999960041972e-13)


class bce(sp.Function):  # noqa: N801
    """Binary cross-entropy of a probability ``x`` and target ``y``, as ``F.binary_cross_entropy``.

    ``-(y*log(x) + (1-y)*log(1-x))`` with each log clamped at -100, so that
    x = 0 or 1 gives a finite loss.  The derivatives are PyTorch's:
    ∂/∂x is ``(x - y) / (x(1 - x))`` — what ``sympy.diff`` gives for the
    unclamped formula — with the denominator clamped at ``BCE_EPSILON``;
    ∂/∂y is ``log(1-x) - log(x)`` (``-logit(x)``), unclamped.

    >>> import sympy as sp
    >>> x, y = sp.symbols("x y", real=True)
    >>> plain = -(y*sp.log(x) + (1 - y)*sp.log(1 - x))
    >>> unclamped = [bce(x, y).diff(v).replace(sp.Max, lambda *a: x*(1 - x)) for v in (x, y)]
    >>> [sp.simplify(d - plain.diff(v)) for d, v in zip(unclamped, (x, y))]
    [0, 0]
    """

    nargs = 2

    def fdiff(self, argindex=1):
        x, y = self.args
        if argindex == 1:
            return (x - y) / sp.Max(x * (1 - x), BCE_EPSILON)
        return sp.log(1 - x) - sp.log(x)

    def _eval_rewrite_as_log(self, x, y, **kwargs):
        return -(y * sp.Max(sp.log(x), -100) + (1 - y) * sp.Max(sp.log(1 - x), -100))

    def _numpycode(self, printer):
        np_ = printer._module_format
        x = printer.parenthesize(self.args[0], PRECEDENCE["Mul"])
        y = printer.parenthesize(self.args[1], PRECEDENCE["Mul"])
        # PyTorch's expression, term for term; parenthesised, as printers treat a function call as an atom
        return (f"(({y} - 1)*{np_('numpy.maximum')}({np_('numpy.log1p')}(-{x}), -100) - "
                f"{y}*{np_('numpy.maximum')}({np_('numpy.log')}({printer._print(self.args[0])}), -100))")

    def _latex(self, printer, exp=None):
        x, y = (printer._print(a) for a in self.args)
        return _with_power(rf"\operatorname{{bce}}\left({x}, {y}\right)", exp)


STABLE_FUNCTIONS = {"sigmoid": sigmoid, "softplus": softplus, "relu": relu, "power": power, "erf": erf, "atan2": atan2,
                    "maximum": maximum, "minimum": minimum,
                    "sign": sign, "Abs": Abs, "clamp": clamp, "floor_divide": floor_divide,
                    "trunc_divide": trunc_divide, "xlogy": xlogy, "bce": bce}
