"""Tensor-level notation: the SymPy classes a formula is written with.

A formula is an ordinary SymPy expression: elementwise arithmetic stays SymPy
arithmetic over symbols that stand for whole tensors (``y*z`` is the Hadamard
product of two tensors, ``sigmoid(z)`` is σ applied to every element), and
the structural operations are the small :class:`sympy.Function` subclasses
below (matrix product, outer product, transpose, reductions, reshapes).

Each class prints itself in the three notations (``_symgrad_text`` for the
one-line Unicode form, ``_pretty`` for SymPy's 2-D form, ``_latex``) and as
NumPy (``_numpycode``), so ``sympy.lambdify`` of a formula evaluates it: the
formula a person reads is the formula the tests evaluate.  The last argument
of a node is its result shape (a :class:`sympy.Tuple`), so shapes travel with
the expression through ``subs``/``xreplace``.

>>> import sympy as sp
>>> x, w = sp.symbols("x w", real=True)
>>> p = MatProd(x, w, shape_tuple((3,)))
>>> p.shape
(3,)
>>> from symgrad.formula.printing import text
>>> text(p + 1)
'x·w + 1'
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.pretty.stringpict import prettyForm, stringPict

__all__ = [
    "TensorNotation", "MatProd", "Outer", "Hadamard", "Transposed", "Permuted", "SumOver", "MeanOver",
    "Reshaped", "Broadcast", "Full", "Partial", "shape_tuple", "subscript", "superscript", "shape_text",
]

_SUB = str.maketrans("0123456789-", "₀₁₂₃₄₅₆₇₈₉₋")
_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def subscript(text: str) -> str:
    """Digits as Unicode subscripts (other characters unchanged).

    >>> subscript("0,1")
    '₀,₁'
    """
    return text.translate(_SUB)


def superscript(text: str) -> str:
    """Digits and minus as Unicode superscripts.

    >>> superscript("-2")
    '⁻²'
    """
    return text.translate(_SUP)


def shape_tuple(shape) -> sp.Tuple:
    """A shape as the SymPy tuple stored in a node's last argument."""
    return sp.Tuple(*(sp.Integer(int(s)) for s in shape))


def shape_text(shape: tuple[int, ...], times: str = "×") -> str:
    """``(5, 3)`` as ``5×3`` (a scalar shape as ``()``).

    >>> shape_text((5, 3)), shape_text((4,)), shape_text(())
    ('5×3', '4', '()')
    """
    return times.join(map(str, shape)) if shape else "()"


def _ints(t: sp.Tuple) -> tuple[int, ...]:
    return tuple(int(v) for v in t)


# ------------------------------------------------------------ printing helpers
# Each helper takes the printer that is printing, so nested parts keep its settings.


def _text_arg(printer, arg, level: int, equal: bool = True) -> str:
    """``arg`` printed, in parentheses when it binds looser than ``level`` (or as loose, with ``equal``)."""
    return printer.parenthesize(arg, level, strict=not equal)  # SymPy: strict=False also wraps equal levels


def _pretty_arg(printer, arg, level: int, equal: bool = True) -> prettyForm:
    form = printer._print(arg)
    p = precedence(arg)
    if p < level or (equal and p == level):
        form = prettyForm(*form.parens())
    return form


def _latex_arg(printer, arg, level: int, equal: bool = True) -> str:
    return printer.parenthesize(arg, level, strict=not equal)


def _pretty_join(printer, args, separator: str, level: int) -> prettyForm:
    forms = [_pretty_arg(printer, a, level) for a in args]
    result = forms[0]
    for form in forms[1:]:
        result = prettyForm(*stringPict.next(result, separator, form))
    return prettyForm(result.s, result.baseline, binding=prettyForm.MUL)


def _pretty_function(printer, name: str, args) -> prettyForm:
    return printer._helper_print_function(None, args, func_name=name)


class TensorNotation(sp.Function):
    """Base class: a structural tensor operation; its last argument is the result shape."""

    is_commutative = True
    is_real = True
    precedence = PRECEDENCE["Func"]

    @property
    def shape(self) -> tuple[int, ...]:
        return _ints(self.args[-1])

    def _latex(self, printer, exp=None) -> str:
        # SymPy's LaTeX printer passes the exponent of a power of a function (f^{2}(x))
        body = self._latex_body(printer)
        return body if exp is None else rf"\left({body}\right)^{{{exp}}}"

    @property
    def operand(self) -> sp.Expr:
        return self.args[0]

    def _eval_derivative(self, symbol):  # pragma: no cover - formulas are derived by symgrad, not by diff
        raise TypeError(f"{type(self).__name__} is display notation; differentiate with symgrad.grad_formula")


class _Product(TensorNotation):
    """A binary product of tensors, printed infix with ``symbol``."""

    precedence = PRECEDENCE["Mul"]
    text_symbol = "·"
    pretty_symbol = "⋅"  # SymPy's 2-D form writes products with the dot operator
    latex_symbol = r"\cdot"

    def _symgrad_text(self, printer) -> str:
        a, b = self.args[:2]
        return f"{self._left(printer, a, _text_arg)}{self.text_symbol}{_text_arg(printer, b, self.precedence)}"

    def _left(self, printer, a, helper):
        # products of one kind associate: (a·b)·c reads a·b·c
        return helper(printer, a, self.precedence, equal=not isinstance(a, type(self)))

    def _pretty(self, printer) -> prettyForm:
        a, b = self.args[:2]
        left = self._left(printer, a, _pretty_arg)
        right = _pretty_arg(printer, b, self.precedence)
        form = prettyForm(*stringPict.next(left, self.pretty_symbol, right))
        return prettyForm(form.s, form.baseline, binding=prettyForm.MUL)

    def _latex_body(self, printer) -> str:
        a, b = self.args[:2]
        return f"{self._left(printer, a, _latex_arg)} {self.latex_symbol} {_latex_arg(printer, b, self.precedence)}"


class MatProd(_Product):
    """Matrix product with NumPy's rules for 1-D operands (vector·matrix, matrix·vector, dot)."""

    def _numpycode(self, printer) -> str:
        a, b = (printer._print(x) for x in self.args[:2])
        return f"{printer._module_format('numpy.matmul')}({a}, {b})"


class Outer(_Product):
    """Outer product of two vectors: ``(x ⊗ g)[i, j] = x[i]·g[j]``."""

    text_symbol = pretty_symbol = " ⊗ "
    latex_symbol = r"\otimes"

    def _numpycode(self, printer) -> str:
        a, b = (printer._print(x) for x in self.args[:2])
        return f"{printer._module_format('numpy.multiply.outer')}({a}, {b})"


class Hadamard(sp.Function):
    """Elementwise product of tensors, ``y ⊙ z``.

    Formulas keep elementwise products as SymPy ``Mul`` (so ``simplify``
    works on them); printers rewrite a product of two or more tensors to this
    class only to show it.
    """

    is_commutative = True
    is_real = True
    precedence = PRECEDENCE["Mul"]

    def _symgrad_text(self, printer) -> str:
        return " ⊙ ".join(_text_arg(printer, a, self.precedence) for a in self.args)

    def _pretty(self, printer) -> prettyForm:
        return _pretty_join(printer, self.args, " ⊙ ", self.precedence)

    def _latex(self, printer, exp=None) -> str:
        body = r" \odot ".join(_latex_arg(printer, a, self.precedence) for a in self.args)
        return body if exp is None else rf"\left({body}\right)^{{{exp}}}"

    def _numpycode(self, printer) -> str:
        return "*".join(f"({printer._print(a)})" for a in self.args)


class Transposed(TensorNotation):
    """The transpose of a matrix, ``wᵀ``."""

    precedence = PRECEDENCE["Pow"]

    def _symgrad_text(self, printer) -> str:
        return _text_arg(printer, self.operand, PRECEDENCE["Pow"]) + "ᵀ"

    def _pretty(self, printer) -> prettyForm:
        form = _pretty_arg(printer, self.operand, PRECEDENCE["Pow"])
        return form ** prettyForm("T")

    def _latex_body(self, printer) -> str:
        return f"{_latex_arg(printer, self.operand, PRECEDENCE['Pow'])}^{{\\top}}"

    def _numpycode(self, printer) -> str:
        return f"{printer._module_format('numpy.transpose')}({printer._print(self.operand)})"


class Permuted(TensorNotation):
    """Axes reordered: output axis i is input axis ``perm[i]``."""

    @property
    def perm(self) -> tuple[int, ...]:
        return _ints(self.args[1])

    def _label(self) -> str:
        return ", ".join(map(str, self.perm))

    def _symgrad_text(self, printer) -> str:
        return f"permute({printer._print(self.operand)}, ({self._label()}))"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, f"permute₍{subscript(self._label())}₎", [self.operand])

    def _latex_body(self, printer) -> str:
        return rf"\operatorname{{permute}}_{{({self._label()})}}\left({printer._print(self.operand)}\right)"

    def _numpycode(self, printer) -> str:
        return f"{printer._module_format('numpy.transpose')}({printer._print(self.operand)}, {self.perm})"


class _Reduction(TensorNotation):
    """A reduction over ``axes`` (an empty tuple: over every axis); ``keepdim`` keeps them as size 1."""

    name = "sum"
    numpy_name = "numpy.sum"

    @property
    def axes(self) -> tuple[int, ...]:
        return _ints(self.args[1])

    @property
    def keepdim(self) -> bool:
        return bool(self.args[2])

    def _axes_label(self) -> str:
        return ",".join(map(str, self.axes))

    def _symgrad_text(self, printer) -> str:
        return f"{self.name}{subscript(self._axes_label())}({printer._print(self.operand)})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, self.name + subscript(self._axes_label()), [self.operand])

    def _latex_body(self, printer) -> str:
        axes = f"_{{{self._axes_label()}}}" if self.axes else ""
        return rf"\operatorname{{{self.name}}}{axes}\left({printer._print(self.operand)}\right)"

    def _numpycode(self, printer) -> str:
        axis = "None" if not self.axes else str(self.axes)
        return (f"{printer._module_format(self.numpy_name)}({printer._print(self.operand)}, axis={axis}, "
                f"keepdims={self.keepdim})")


class SumOver(_Reduction):
    """Sum over axes: ``sum₀(a)`` sums axis 0; ``sum(a)`` sums every element."""


class MeanOver(_Reduction):
    """Mean over axes, ``mean₀(a)``; ``mean(a)`` of every element."""

    name = "mean"
    numpy_name = "numpy.mean"


class Reshaped(TensorNotation):
    """The same elements in another shape (shown only where the shape change is not just size-1 axes)."""

    def _symgrad_text(self, printer) -> str:
        return f"reshape({printer._print(self.operand)}, {shape_text(self.shape)})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, "reshape", [self.operand, sp.Symbol(shape_text(self.shape))])

    def _latex_body(self, printer) -> str:
        shape = shape_text(self.shape, r" \times ")
        return rf"\operatorname{{reshape}}_{{{shape}}}\left({printer._print(self.operand)}\right)"

    def _numpycode(self, printer) -> str:
        return f"{printer._module_format('numpy.reshape')}({printer._print(self.operand)}, {self.shape})"


class Broadcast(TensorNotation):
    """A tensor repeated along new or size-1 axes (NumPy ``broadcast_to``)."""

    def _symgrad_text(self, printer) -> str:
        return f"broadcast({printer._print(self.operand)}, {shape_text(self.shape)})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, "broadcast", [self.operand, sp.Symbol(shape_text(self.shape))])

    def _latex_body(self, printer) -> str:
        shape = shape_text(self.shape, r" \times ")
        return rf"\operatorname{{broadcast}}_{{{shape}}}\left({printer._print(self.operand)}\right)"

    def _numpycode(self, printer) -> str:
        return f"{printer._module_format('numpy.broadcast_to')}({printer._print(self.operand)}, {self.shape})"


class Full(TensorNotation):
    """A constant tensor, ``𝟏`` (all ones) or ``c·𝟏``, where a product needs a real tensor."""

    precedence = PRECEDENCE["Mul"]

    def _scaled(self, ones: str, printer, joiner: str) -> str:
        value = self.operand
        return ones if value == 1 else f"{printer.parenthesize(value, PRECEDENCE['Mul'])}{joiner}{ones}"

    def _symgrad_text(self, printer) -> str:
        return self._scaled("𝟏", printer, "·")

    def _pretty(self, printer) -> prettyForm:
        return prettyForm(self._scaled("𝟏", printer, "⋅"), binding=prettyForm.MUL)

    def _latex_body(self, printer) -> str:
        return self._scaled(r"\mathbf{1}", printer, " ")

    def _numpycode(self, printer) -> str:
        return f"{printer._module_format('numpy.full')}({self.shape}, {printer._print(self.operand)})"


class Partial(sp.Expr):
    """The left-hand side ``∂f/∂x`` of a derivative formula (display only)."""

    is_commutative = True

    def __new__(cls, of: sp.Symbol, wrt: sp.Symbol):
        return sp.Expr.__new__(cls, of, wrt)

    def _symgrad_text(self, printer) -> str:
        of, wrt = (printer._print(a) for a in self.args)
        return f"∂{of}/∂{wrt}"

    def _pretty(self, printer) -> prettyForm:
        of, wrt = (prettyForm(*printer._print(a).left("∂")) for a in self.args)
        return of / wrt

    def _latex(self, printer) -> str:
        of, wrt = (printer._print(a) for a in self.args)
        return rf"\frac{{\partial {of}}}{{\partial {wrt}}}"
