"""Print scalar SymPy expressions as NumPy source that keeps the input dtype.

Used for every elementwise kernel: the eager forward of an op and the
generated backward code print the same expression with the same printer, so
they cannot drift apart.  Constants print as Python numbers (NumPy treats
them as weakly typed), never as ``np.float64`` scalars that would silently
turn float32 arrays into float64.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from .nodes import arg
from .numpy_helpers import HELPERS, helpers_called

__all__ = ["NumpyKernelPrinter", "kernel_source", "kernel_function", "may_warn", "quiet"]


class NumpyKernelPrinter(NumPyPrinter):
    """SymPy's NumPy printer with ``np.`` names, weak constants and PyTorch's kinks.

    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> NumpyKernelPrinter().doprint(sp.sqrt(2) * sp.exp(x) / x)
    '1.4142135623730951*np.exp(x)/x'
    """

    def __init__(self, settings=None):
        super().__init__({"fully_qualified_modules": True, **(settings or {})})

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            return "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register=False)

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_NumberSymbol(self, expr):
        return repr(float(expr))

    _print_Exp1 = _print_NumberSymbol
    _print_Pi = _print_NumberSymbol

    def _print_Mul(self, expr):
        number, rest = expr.as_coeff_Mul()
        if number.is_Rational and not number.is_Integer and abs(number.p) == 1 and rest != 1:
            # (z - y)/3 reads better than (1/3)*(z - y)
            sign = "-" if number.p < 0 else ""
            return f"{sign}{self.parenthesize(rest, PRECEDENCE['Mul'])}/{number.q}"
        # a purely numeric factor (sqrt(2), pi/3) becomes one Python float
        consts = [f for f in sp.Mul.make_args(rest) if f.is_number]
        if consts:
            number = number * sp.Mul(*consts)
            rest = sp.Mul(*[f for f in sp.Mul.make_args(rest) if not f.is_number])
            if rest == 1:
                return repr(float(number))
            return self._print(sp.Mul(sp.Float(float(number)), *sp.Mul.make_args(rest), evaluate=False))
        return super()._print_Mul(expr)

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if expr.is_number:
            return repr(float(expr))
        if exp == sp.Rational(1, 2):
            return f"{self._module_format('numpy.sqrt')}({self._print(base)})"
        if exp == -sp.Rational(1, 2):
            return f"1/{self._module_format('numpy.sqrt')}({self._print(base)})"
        if exp == -1:
            return f"1/{self.parenthesize(base, PRECEDENCE['Pow'])}"
        if exp.is_Integer:
            return f"{self.parenthesize(base, PRECEDENCE['Pow'])}**{int(exp)}"
        return super()._print_Pow(expr, rational=rational)

    def _print_ComplexInfinity(self, expr):
        # x/0 in a branch (SymPy's zoo): the real limit is an infinity, as NumPy gives for 1/0
        return "np.inf"

    def _print_Heaviside(self, expr):
        # the second argument is the value at 0 (PyTorch's kinks pick it)
        x = self._print(expr.args[0])
        at_zero = self._print(expr.args[1]) if len(expr.args) > 1 else "0.5"
        return f"{self._module_format('numpy.heaviside')}({x}, {at_zero})"

    def _print_Piecewise(self, expr):
        # nested where keeps the dtype of the branches (select() would not)
        result = "np.nan"
        for value, cond in reversed(expr.args):
            if cond == sp.true:
                result = self._print(value)
            else:
                result = f"np.where({self._print(cond)}, {self._print(value)}, {result})"
        return result

    def _print_And(self, expr):
        # pairwise, so operands of different shapes broadcast (logical_and.reduce would not)
        return self._fold("numpy.logical_and", expr.args)

    def _print_Or(self, expr):
        return self._fold("numpy.logical_or", expr.args)

    def _print_Max(self, expr):
        return self._fold("numpy.maximum", expr.args)

    def _print_Min(self, expr):
        return self._fold("numpy.minimum", expr.args)

    def _fold(self, fn, args):
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{self._module_format(fn)}({out}, {self._print(a)})"
        return out

    def _print_Abs(self, expr):
        return f"{self._module_format('numpy.abs')}({self._print(expr.args[0])})"


_PRINTER = NumpyKernelPrinter()


def kernel_source(expr: sp.Expr, names: list[str]) -> str:
    """NumPy source for the kernel ``expr`` (over ``a0 …``) with inputs named ``names``.

    Common factors are pulled out first (``-y/3 + z/3`` prints as ``(z - y)/3``):
    fewer operations, same values up to rounding.  This is done on the named
    expression because SymPy re-distributes numeric factors whenever an
    expression is rebuilt.

    >>> import sympy as sp
    >>> kernel_source(arg(0) * sp.exp(arg(1)), ["x", "y"])
    'x*np.exp(y)'
    >>> kernel_source(arg(0) / 3 - arg(1) / 3, ["z", "y"])
    '(-y + z)/3'
    """
    # printed once per kernel and order of its input names: a chain of 1000 ops repeats a few kernels.
    # Placeholders ranked like the names sort the terms the same way, so the text is what printing
    # with the names would give.
    ranks = sorted(range(len(names)), key=names.__getitem__)
    rank_of = tuple(ranks.index(i) for i in range(len(names)))
    template = _kernel_template(expr, rank_of)
    return _PLACEHOLDER.sub(lambda m: names[ranks[int(m.group(1))]], template)


_PLACEHOLDER = re.compile(r"_K(\d+)_")


@lru_cache(maxsize=8192)
def _kernel_template(expr: sp.Expr, rank_of: tuple[int, ...]) -> str:
    """The kernel printed with input ``i`` named ``_K{rank_of[i]}_``."""
    # zero-padded, so that the placeholders sort like their ranks
    mapping = {arg(i): sp.Symbol(f"_K{rank:04d}_", real=True) for i, rank in enumerate(rank_of)}
    return re.sub(r"_K0*(\d+)_", r"_K\1_", _PRINTER.doprint(sp.factor_terms(expr.xreplace(mapping))))


_QUIET_FUNCTIONS = (sp.Add, sp.Mul, sp.Heaviside, sp.Max, sp.Min, sp.Abs, sp.sign, sp.tanh)


def may_warn(expr: sp.Expr) -> bool:
    """Whether NumPy may emit a floating-point warning evaluating ``expr`` (log(0), 1/0, exp overflow …).

    PyTorch never warns about inf or nan, so code that may is run under
    ``np.errstate(all="ignore")``; code that cannot skips that cost.

    >>> import sympy as sp
    >>> may_warn(arg(0) * arg(1) + 2), may_warn(sp.log(arg(0)))
    (False, True)
    """
    for node in sp.preorder_traversal(expr):
        if node.is_Atom or isinstance(node, _QUIET_FUNCTIONS):
            continue
        if node.is_Pow and node.exp.is_Integer and node.exp > 0:
            continue
        if type(node).__name__ in ("sigmoid", "softplus", "relu"):
            continue  # printed in overflow-free forms
        return True
    return False


def quiet(fn):
    """``fn`` run with NumPy's floating-point warnings off (PyTorch does not warn about inf/nan)."""
    def quiet_fn(*args):
        with np.errstate(all="ignore"):
            return fn(*args)
    return quiet_fn


@lru_cache(maxsize=4096)
def kernel_function(expr: sp.Expr, n: int):
    """A Python function of ``n`` arrays evaluating the kernel (compiled once per kernel).

    >>> import numpy as np, sympy as sp
    >>> kernel_function(sp.exp(arg(0)), 1)(np.zeros(2))
    array([1., 1.])
    """
    names = [f"a{i}" for i in range(n)]
    source = f"def kernel({', '.join(names)}):\n    return {kernel_source(expr, names)}\n"
    namespace = {"np": np, **{name: HELPERS[name] for name in helpers_called(source)}}
    exec(compile(source, f"<symgrad kernel {expr}>", "exec"), namespace)  # noqa: S102 - our own printed source
    return quiet(namespace["kernel"]) if may_warn(expr) else namespace["kernel"]
