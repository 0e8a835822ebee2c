"""The three notations of a formula: one-line Unicode text, SymPy's 2-D pretty form, LaTeX.

All three share two rules that make tensor formulas read like the math:

* a product of two or more *tensors* (more than one element) is a Hadamard
  product and prints with ``⊙``; a number or a scalar times a tensor prints
  as ordinary multiplication;
* the terms of a sum print positive terms first and larger terms first
  (``x·w + b``, ``σ(z) − y``), instead of SymPy's canonical order.

Shapes come from the formula: each symbol's shape is passed in the
``shapes`` setting, and each :mod:`notation <symgrad.formula.notation>` node
carries its own.

>>> import sympy as sp
>>> y, z = sp.symbols("y z", real=True)
>>> text(-y * z + sp.exp(z), shapes={y: (3,), z: (3,)})
'exp(z) − y ⊙ z'
>>> text(-y * z + sp.exp(z))                       # scalars: ordinary products
'exp(z) − y·z'
>>> latex_name("loss"), latex_name("w1"), latex_name("learning rate")
('\\\\mathit{loss}', 'w_{1}', '\\\\mathrm{learning\\\\ rate}')
"""

from __future__ import annotations

import keyword

import numpy as np
import sympy as sp
from sympy.core.function import _coeff_isneg
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.pretty_symbology import greek_unicode
from sympy.printing.pretty.stringpict import prettyForm
from sympy.printing.str import StrPrinter

from .notation import Hadamard, TensorNotation, superscript

__all__ = ["text", "pretty_form", "latex", "latex_name", "shape_of", "TextPrinter", "FormulaPrettyPrinter",
           "FormulaLatexPrinter"]


def shape_of(expr, shapes: dict) -> tuple[int, ...]:
    """The NumPy shape ``expr`` evaluates to: broadcasting over its tensor parts.

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> shape_of(sp.exp(a) + b, {a: (5, 1), b: (3,)})
    (5, 3)
    """
    if isinstance(expr, TensorNotation):
        return expr.shape
    if expr in shapes:
        return shapes[expr]
    parts = [shape_of(a, shapes) for a in getattr(expr, "args", ()) if isinstance(a, sp.Basic)]
    parts = [p for p in parts if p]
    if not parts:
        return ()
    try:
        return tuple(np.broadcast_shapes(*parts))
    except ValueError:
        return max(parts, key=len)


def _tree_size(expr) -> int:
    return sum(1 for _ in sp.preorder_traversal(expr))


class _FormulaPrinting:
    """What the three printers share: term order, Hadamard products, PyTorch-style kinks."""

    _settings: dict

    def _shape(self, expr) -> tuple[int, ...]:
        return shape_of(expr, self._settings["shapes"])

    def _is_tensor(self, expr) -> bool:
        return int(np.prod(self._shape(expr))) > 1

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)
        # positive terms first, then larger terms first (stable: ties keep SymPy's order)
        return sorted(terms, key=lambda t: (_coeff_isneg(t), -_tree_size(t)))

    def _hadamard(self, expr):
        """``expr`` rewritten with its tensor factors in one :class:`Hadamard`, or None."""
        factors = expr.as_ordered_factors()
        tensors = [f for f in factors if not _in_denominator(f) and self._is_tensor(f)]
        if len(tensors) < 2:
            return None
        rest = [f for f in factors if not any(f is t for t in tensors)]
        return sp.Mul(*rest, Hadamard(*tensors))

    def _print_Mul(self, expr):  # noqa: N802 - SymPy's printer dispatch
        shown = self._hadamard(expr)
        if shown is not None:
            return self._print(shown)
        return super()._print_Mul(expr)


def _in_denominator(factor) -> bool:
    return factor.is_Pow and factor.exp.is_number and bool(factor.exp.is_extended_negative)


def _indicator(expr) -> sp.Basic | None:
    """The condition of ``Piecewise((1, condition), (0, True))``, written ``𝟙(condition)``; else None."""
    (first, condition), *rest = expr.args
    if first == 1 and len(rest) == 1 and rest[0][0] == 0 and rest[0][1] == sp.true:
        return condition
    return None


def _heaviside_condition(expr) -> sp.Basic | None:
    """``Heaviside(x, 0)`` is the indicator of ``x > 0`` (PyTorch's relu'), ``Heaviside(x, 1)`` of ``x ≥ 0``."""
    x, *rest = expr.args
    h0 = rest[0] if rest else None
    if h0 == 0:
        return sp.StrictGreaterThan(x, 0, evaluate=False)
    if h0 == 1:
        return sp.GreaterThan(x, 0, evaluate=False)
    return None


class TextPrinter(_FormulaPrinting, StrPrinter):
    """One-line Unicode: ``x²·σ(x)``, ``y ⊙ z``, ``(σ(z) − y)/3``, ``wᵀ``, ``sum₀(a)``."""

    printmethod = "_symgrad_text"
    _default_settings = {**StrPrinter._default_settings, "shapes": {}}

    def _print_Add(self, expr, order=None):  # noqa: N802
        parts = []
        for i, term in enumerate(self._as_ordered_terms(expr, order=order)):
            negative = _coeff_isneg(term)
            shown = self.parenthesize(-term if negative else term, PRECEDENCE["Add"], strict=not negative)
            if i == 0:
                parts.append(("−" if negative else "") + shown)
            else:
                parts.append((" − " if negative else " + ") + shown)
        return "".join(parts)

    def _print_Mul(self, expr):  # noqa: N802
        shown = self._hadamard(expr)
        if shown is not None:
            return self._print(shown)
        if _coeff_isneg(expr):
            return "−" + self.parenthesize(-expr, PRECEDENCE["Mul"], strict=True)
        numer, denom = _fraction_parts(expr)
        # SymPy's parenthesize: strict=True wraps only looser parts, strict=False equal ones too
        top = "·".join(self.parenthesize(f, PRECEDENCE["Mul"], strict=True) for f in numer) or "1"
        if not denom:
            return top
        if len(denom) == 1:
            return f"{top}/{self.parenthesize(denom[0], PRECEDENCE['Mul'], strict=False)}"
        return f"{top}/({self._print(sp.Mul(*denom))})"  # a product itself: tensors join with ⊙

    def _print_Pow(self, expr, rational=False):  # noqa: N802
        base, exponent = expr.args
        if exponent is sp.S.Half:
            shown = self._print(base)
            return f"√{shown}" if base.is_Atom else f"√({shown})"
        if exponent.is_Rational and exponent.is_negative:
            return "1/" + self.parenthesize(sp.Pow(base, -exponent), PRECEDENCE["Mul"], strict=False)
        shown = self.parenthesize(base, PRECEDENCE["Pow"], strict=False)
        if exponent.is_Integer:
            return shown + superscript(str(exponent))
        power = self._print(exponent)
        return f"{shown}^{power}" if exponent.is_Atom and not _coeff_isneg(exponent) else f"{shown}^({power})"

    def _print_Integer(self, expr):  # noqa: N802
        return str(int(expr)).replace("-", "−")

    def _print_Rational(self, expr):  # noqa: N802
        return f"{expr.p}/{expr.q}".replace("-", "−")

    def _print_Float(self, expr):  # noqa: N802
        return repr(float(expr)).replace("-", "−")

    def _print_sigmoid(self, expr):
        return f"σ({self._print(expr.args[0])})"

    def _print_power(self, expr):
        return self._print(sp.Pow(*expr.args, evaluate=False))

    def _print_Heaviside(self, expr):  # noqa: N802
        condition = _heaviside_condition(expr)
        if condition is None:
            return f"θ({self._print(expr.args[0])})"
        return f"𝟙({self._print(condition)})"

    def _print_Piecewise(self, expr):  # noqa: N802
        condition = _indicator(expr)
        if condition is not None:
            return f"𝟙({self._print(condition)})"
        parts = [f"{self._print(v)} if {self._print(c)}" for v, c in expr.args if c != sp.true]
        otherwise = [self._print(v) for v, c in expr.args if c == sp.true]
        return "(" + "; ".join(parts + [f"{v} otherwise" for v in otherwise]) + ")"

    def _print_And(self, expr):  # noqa: N802
        return " ∧ ".join(self.parenthesize(a, PRECEDENCE["And"], strict=True) for a in expr.args)

    def _print_Or(self, expr):  # noqa: N802
        return " ∨ ".join(self.parenthesize(a, PRECEDENCE["Or"], strict=True) for a in expr.args)

    def _print_Abs(self, expr):  # noqa: N802
        return f"|{self._print(expr.args[0])}|"

    def _print_Relational(self, expr):  # noqa: N802
        symbol = {"==": "=", "!=": "≠", ">=": "≥", "<=": "≤"}.get(expr.rel_op, expr.rel_op)
        return f"{self._print(expr.lhs)} {symbol} {self._print(expr.rhs)}"

    def _print_MatrixBase(self, expr):  # noqa: N802
        return self._print(sp.Array(expr.tolist()))

    def _print_NDimArray(self, expr):  # noqa: N802
        def nested(value):
            if isinstance(value, list):
                return "[" + ", ".join(nested(v) for v in value) + "]"
            return self._print(value)
        return nested(expr.tolist()) if expr.rank() else self._print(expr[()])


def _fraction_parts(expr) -> tuple[list, list]:
    """Split a positive product into numerator and denominator factors."""
    coeff, rest = expr.as_coeff_Mul()
    numer, denom = [], []
    if coeff.is_Rational:
        if coeff.p != 1:
            numer.append(sp.Integer(coeff.p))
        if coeff.q != 1:
            denom.append(sp.Integer(coeff.q))
    elif coeff != 1:
        numer.append(coeff)
    for factor in rest.as_ordered_factors() if rest != 1 else ():
        if _in_denominator(factor) and factor.is_commutative:
            denom.append(sp.Pow(factor.base, -factor.exp))
        else:
            numer.append(factor)
    return numer, denom


class FormulaPrettyPrinter(_FormulaPrinting, PrettyPrinter):
    """SymPy's 2-D Unicode (or ASCII) form, with ``⊙`` and PyTorch's kinks."""

    _default_settings = {**PrettyPrinter._default_settings, "shapes": {}, "wrap_line": False}

    def _print_Piecewise(self, expr):  # noqa: N802
        condition = _indicator(expr)
        if condition is None:
            return super()._print_Piecewise(expr)
        form = self._print(condition)
        return prettyForm(*prettyForm(*form.parens()).left("𝟙" if self._use_unicode else "1"))

    def _print_Float(self, expr):  # noqa: N802
        return prettyForm(repr(float(expr)))

    def _print_Heaviside(self, expr):  # noqa: N802
        condition = _heaviside_condition(expr)
        if condition is None:
            return super()._print_Heaviside(expr)
        form = self._print(condition)
        return prettyForm(*prettyForm(*form.parens()).left("𝟙" if self._use_unicode else "1"))


class FormulaLatexPrinter(_FormulaPrinting, LatexPrinter):
    """LaTeX with ``\\odot``, ``\\otimes``, ``^{\\top}`` and readable multi-letter names."""

    _default_settings = {**LatexPrinter._default_settings, "shapes": {}}

    def _print_Piecewise(self, expr):  # noqa: N802
        condition = _indicator(expr)
        if condition is None:
            return super()._print_Piecewise(expr)
        return rf"\mathbb{{1}}\left({self._print(condition)}\right)"

    def _print_Float(self, expr):  # noqa: N802
        shown = repr(float(expr))
        if "e" not in shown:
            return shown
        mantissa, exponent = shown.split("e")
        return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"

    def _print_Heaviside(self, expr, exp=None):  # noqa: N802
        condition = _heaviside_condition(expr)
        if condition is None:
            return super()._print_Heaviside(expr, exp)
        shown = rf"\mathbb{{1}}\left({self._print(condition)}\right)"
        return f"{shown}^{{{exp}}}" if exp else shown


def text(expr, shapes: dict | None = None) -> str:
    """``expr`` as one line of Unicode math.

    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> text(x**2 * sp.tanh(x) + 2 * x / 3)
    'x²·tanh(x) + 2·x/3'
    """
    return TextPrinter({"shapes": shapes or {}}).doprint(expr)


def pretty_form(expr, shapes: dict | None = None, use_unicode: bool = True) -> prettyForm:
    """``expr`` as SymPy's 2-D picture (a ``prettyForm``; ``str()`` of its ``render()`` is the text)."""
    printer = FormulaPrettyPrinter({"shapes": shapes or {}, "use_unicode": use_unicode})
    return printer._print(expr)


def latex(expr, shapes: dict | None = None, names: dict | None = None) -> str:
    """``expr`` as LaTeX; ``names`` maps symbols to their LaTeX spelling.

    >>> import sympy as sp
    >>> y, z = sp.symbols("y z", real=True)
    >>> latex(y * z, shapes={y: (3,), z: (3,)})
    'y \\\\odot z'
    """
    return FormulaLatexPrinter({"shapes": shapes or {}, "symbol_names": names or {}}).doprint(expr)


_GREEK = {letter: word for word, letter in greek_unicode.items() if word.isalpha()}

_LATEX_SPECIAL = {"\\": r"\backslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "%": r"\%",
                  "#": r"\#", "_": r"\_", "^": r"\hat{}", "~": r"\sim{}", " ": r"\ "}


def latex_name(name: str) -> str:
    """The LaTeX spelling of a tensor's name.

    Single letters (with digit or ``_`` subscripts) and Greek names read as
    SymPy writes them; longer identifiers are set upright-italic as one word
    (``\\mathit{loss}``, not a product l·o·s·s); anything else (spaces, symbols)
    is escaped inside ``\\mathrm``.

    >>> latex_name("alpha"), latex_name("θ1"), latex_name("grad_w"), latex_name("50%")
    ('\\\\alpha', '\\\\theta_{1}', '\\\\mathit{grad}_{w}', '\\\\mathrm{50\\\\%}')
    """
    if name[:1] in _GREEK and (len(name) == 1 or name[1:].isdigit()):
        name = _GREEK[name[0]] + name[1:]  # θ reads \theta, θ1 reads \theta_{1}
    if name.isidentifier() and name.isascii() and not keyword.iskeyword(name):
        base, sups, subs = split_super_sub(name)
        rendered = sp.latex(sp.Symbol(base))
        if len(base) > 1 and rendered == base:
            rendered = rf"\mathit{{{base}}}"
        for sup in sups:
            rendered += f"^{{{sup}}}"
        for sub in subs:
            rendered += f"_{{{sub}}}"
        return rendered
    escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in name)
    return rf"\mathrm{{{escaped}}}"
