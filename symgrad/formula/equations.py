"""The object a formula query returns: equations, their shared definitions, and every way to show them.

>>> import sympy as sp
>>> x = sp.Symbol("x", real=True)
>>> f = Formula([(sp.Symbol("f", real=True), x**2 * sp.exp(x))])
>>> f
f = x²·exp(x)
>>> f.latex()
'f = x^{2} e^{x}'
>>> f.sympy()
x**2*exp(x)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import sympy as sp
from sympy.core.parameters import distribute
from sympy.printing.pretty.pretty_symbology import pretty_use_unicode
from sympy.printing.pretty.stringpict import prettyForm

from .printing import latex, pretty_form, text

__all__ = ["Formula"]


class Formula:
    """One or more equations ``lhs = rhs`` and the named intermediates they use (``where z = …``).

    Shows itself as one-line Unicode text (``str``/``repr``), SymPy's 2-D
    form (:meth:`pretty`), LaTeX (:meth:`latex`, and ``_repr_latex_`` for
    Jupyter), and gives the SymPy expressions (:meth:`sympy`) and their
    NumPy values (:meth:`evaluate`).  Indexing gives one equation with the
    definitions it needs.

    ``equations`` and ``definitions`` are lists of ``(symbol or ∂-expression,
    SymPy expression)``; ``shapes`` gives each symbol's tensor shape (products
    of tensors print with ``⊙``), ``latex_names`` its LaTeX, ``values`` its data.
    """

    def __init__(self, equations, definitions=(), *, shapes: dict | None = None,
                 latex_names: dict | None = None, values: dict | None = None, result_shapes=None) -> None:
        self.equations: list[tuple[sp.Basic, sp.Basic]] = list(equations)
        self.definitions: list[tuple[sp.Symbol, sp.Basic]] = list(definitions)
        self.shapes = dict(shapes or {})
        self.latex_names = dict(latex_names or {})
        self.values = dict(values or {})
        self.result_shapes = list(result_shapes or [None] * len(self.equations))

    # ---------------------------------------------------------------- text

    def _lines(self, show) -> list[tuple[str, object, object]]:
        """``(lead, lhs, rhs)`` per line, shown by ``show``: the equations, then the definitions after ``where``."""
        lines = [("", show(lhs), show(rhs)) for lhs, rhs in self.equations]
        for i, (name, expr) in enumerate(self.definitions):
            lines.append(("  where " if i == 0 else "        ", show(name), show(expr)))
        return lines

    def __str__(self) -> str:
        return "\n".join(f"{lead}{lhs} = {rhs}" for lead, lhs, rhs in self._lines(self._text))

    __repr__ = __str__

    def _text(self, expr) -> str:
        return text(expr, self.shapes)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's terminal
        p.text(str(self))

    def pretty(self, use_unicode: bool = True) -> str:
        """SymPy's 2-D picture of the equations (``use_unicode=False``: ASCII only)."""
        blocks = []
        previous = pretty_use_unicode(use_unicode)  # SymPy's pictures read this global while they are built
        try:
            for lead, lhs, rhs in self._lines(lambda e: pretty_form(e, self.shapes, use_unicode)):
                form = prettyForm(*lhs.right(" = ", rhs))
                form = prettyForm(*form.left(lead)) if lead else form
                blocks.append(form.render(wrap_line=False))
        finally:
            pretty_use_unicode(previous)
        return "\n".join(blocks)

    def latex_lines(self) -> list[str]:
        """Each equation and definition as its own LaTeX equation (``lhs = rhs``)."""
        return [f"{lhs} = {rhs}" for _, lhs, rhs in self._lines(self._latex)]

    def latex(self) -> str:
        """LaTeX: one equation as ``lhs = rhs``, several as an ``aligned`` block."""
        lines = self._lines(self._latex)
        if len(lines) == 1:
            return f"{lines[0][1]} = {lines[0][2]}"
        rows = [(r"\text{where}\quad " if lead.strip() else "") + f"{lhs} &= {rhs}" for lead, lhs, rhs in lines]
        return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"

    def _latex(self, expr) -> str:
        return latex(expr, self.shapes, self.latex_names)

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.latex()}$"

    # --------------------------------------------------------------- values

    def sympy(self, expand: bool = True):
        """The right-hand side(s) as SymPy: one expression, or a tuple for several equations.

        ``expand=True`` substitutes the definitions, so the result depends on
        the inputs only (ready for ``lambdify``); ``expand=False`` keeps the
        named intermediates as symbols.
        """
        results = [self._expanded(rhs) if expand else rhs for _, rhs in self.equations]
        return results[0] if len(results) == 1 else tuple(results)

    def _expanded(self, expr):
        definitions = dict(self.definitions)
        for _ in range(len(definitions) + 1):
            if not (getattr(expr, "free_symbols", set()) & definitions.keys()):
                break
            with distribute(False):
                expr = expr.xreplace(definitions)
        return expr

    def evaluate(self):
        """The formula(s) computed with NumPy from the tensors' values (via ``sympy.lambdify``).

        Each result is returned with the shape of what it stands for (a
        formula may write a ``(1, 3)`` row as a vector).
        """
        results = []
        for (_, rhs), shape in zip(self.equations, self.result_shapes):
            expr = self._expanded(rhs)
            symbols = sorted(expr.free_symbols, key=lambda s: s.name)
            missing = [s.name for s in symbols if s not in self.values]
            if missing:
                raise ValueError(f"no values for {', '.join(missing)}")
            fn = sp.lambdify(symbols, expr, "numpy")
            results.append(_fit(np.asarray(fn(*(self.values[s] for s in symbols))), shape))
        return results[0] if len(results) == 1 else tuple(results)

    # ------------------------------------------------------------- access

    def __len__(self) -> int:
        return len(self.equations)

    def __getitem__(self, index: int) -> Formula:
        """Equation ``index`` with only the definitions it uses."""
        lhs, rhs = self.equations[index]
        return Formula([(lhs, rhs)], self._needed(rhs), shapes=self.shapes, latex_names=self.latex_names,
                       values=self.values, result_shapes=[self.result_shapes[index]])

    def __iter__(self) -> Iterator[Formula]:
        return (self[i] for i in range(len(self)))

    def _needed(self, expr) -> list[tuple[sp.Symbol, sp.Basic]]:
        defined = dict(self.definitions)
        needed, stack = set(), [expr]
        while stack:
            for s in getattr(stack.pop(), "free_symbols", set()):
                if s in defined and s not in needed:
                    needed.add(s)
                    stack.append(defined[s])
        return [(s, e) for s, e in self.definitions if s in needed]


def _fit(value: np.ndarray, shape) -> np.ndarray:
    if shape is None or value.shape == tuple(shape):
        return value
    if value.size == int(np.prod(shape)):
        return value.reshape(shape)
    return np.broadcast_to(value, shape)
