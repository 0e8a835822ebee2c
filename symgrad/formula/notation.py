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

from ..symbolic.einsum import numpy_einsum_form

__all__ = [
    "TensorNotation", "MatProd", "Outer", "Hadamard", "Transposed", "Permuted", "SumOver", "MeanOver",
    "Reshaped", "Broadcast", "Full", "Partial", "EinsumOf", "einsum_notation", "shape_tuple", "subscript",
    "superscript", "shape_text", "Sliced", "SliceScattered", "Gathered", "ScatterAdded", "Joined", "Cumulative",
    "slices_notation",
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


class EinsumOf(TensorNotation):
    """``einsum('ij,jk->ik', a, b)``: the subscripts (as character codes), the operands, the result shape.

    Build it with :func:`einsum_notation`.
    """

    @property
    def subscripts(self) -> str:
        return "".join(chr(int(c)) for c in self.args[0])

    @property
    def operands(self) -> tuple:
        return self.args[1:-1]

    def _symgrad_text(self, printer) -> str:
        operands = ", ".join(printer._print(x) for x in self.operands)
        return f"einsum({self.subscripts!r}, {operands})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, "einsum", [sp.Symbol(repr(self.subscripts)), *self.operands])

    def _latex_body(self, printer) -> str:
        subscripts = self.subscripts.replace("->", r" \to ")
        operands = ", ".join(printer._print(x) for x in self.operands)
        return rf"\operatorname{{einsum}}_{{{subscripts}}}\left({operands}\right)"

    def _numpycode(self, printer) -> str:
        subscripts, extras = numpy_einsum_form(self.subscripts, self.shape)
        operands = [printer._print(x) for x in self.operands]
        operands += [f"{printer._module_format('numpy.' + kind)}({n})" for kind, n in extras]
        return f"{printer._module_format('numpy.einsum')}({subscripts!r}, {', '.join(operands)})"


def einsum_notation(subscripts: str, operands, shape) -> EinsumOf:
    """The notation for an einsum of ``operands`` with result ``shape``.

    >>> import sympy as sp
    >>> from symgrad.formula.printing import text
    >>> a, b = sp.symbols("a b", real=True)
    >>> text(einsum_notation("ij,jk->ik", [a, b], (2, 4)))
    "einsum('ij,jk->ik', a, b)"
    """
    return EinsumOf(sp.Tuple(*(sp.Integer(ord(c)) for c in subscripts)), *operands, shape_tuple(shape))


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


def slices_notation(slices, shape) -> sp.Tuple:
    """Canonical ``(start, stop, step)`` triples, one per axis, and the shape they slice, as :class:`Sliced` keeps them.

    >>> import sympy as sp
    >>> from symgrad.formula.printing import text
    >>> text(Sliced(sp.Symbol("x"), slices_notation([(1, 3, 1), (0, 5, 1)], (4, 5)), shape_tuple((2, 5))))
    'x[1:3]'
    """
    return sp.Tuple(sp.Tuple(*(sp.Tuple(*(sp.Integer(v) for v in s)) for s in slices)), shape_tuple(shape))


def _slice_label(t: sp.Tuple) -> str:
    """``1:3, ::-1`` for stored triples and the shape they slice (trailing whole axes left out)."""
    slices, shape = t.args
    parts = []
    for (start, stop, step), size in zip((_ints(s) for s in slices), _ints(shape)):
        if step > 0:
            first, last = ("" if start == 0 else str(start)), ("" if stop >= size else str(stop))
        else:
            first, last = ("" if start == size - 1 else str(start)), ("" if stop < 0 else str(stop))
        parts.append(f"{first}:{last}" + ("" if step == 1 else f":{step}"))
    while len(parts) > 1 and parts[-1] == ":":
        parts.pop()
    return ", ".join(parts)


def _numpy_slices(t: sp.Tuple) -> str:
    slices = t.args[0]
    parts = []
    for start, stop, step in (_ints(s) for s in slices):
        parts.append(f"slice({start}, {None if stop < 0 else stop}, {step})")
    return f"({', '.join(parts)},)"


class Sliced(TensorNotation):
    """A basic slice, ``x[1:3, ::-1]``: the operand, its slices (see :func:`slices_notation`), the result shape."""

    precedence = PRECEDENCE["Atom"]

    # a name or a call is indexed as it is; anything looser goes in parentheses
    def _symgrad_text(self, printer) -> str:
        return f"{_text_arg(printer, self.operand, PRECEDENCE['Func'], False)}[{_slice_label(self.args[1])}]"

    def _pretty(self, printer) -> prettyForm:
        form = _pretty_arg(printer, self.operand, PRECEDENCE["Func"], False)
        return prettyForm(*form.right(f"[{_slice_label(self.args[1])}]"))

    def _latex_body(self, printer) -> str:
        return f"{_latex_arg(printer, self.operand, PRECEDENCE['Func'], False)}[{_slice_label(self.args[1])}]"

    def _numpycode(self, printer) -> str:
        return f"({printer._print(self.operand)})[{_numpy_slices(self.args[1])}]"


class SliceScattered(TensorNotation):
    """Zeros with the operand written at a slice (a slice's gradient), ``slice_scatter(g, [1:3], 4×5)``."""

    def _label(self) -> str:
        return f"[{_slice_label(self.args[1])}]"

    def _symgrad_text(self, printer) -> str:
        return f"slice_scatter({printer._print(self.operand)}, {self._label()}, {shape_text(self.shape)})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, "slice_scatter",
                                [self.operand, sp.Symbol(self._label()), sp.Symbol(shape_text(self.shape))])

    def _latex_body(self, printer) -> str:
        return (rf"\operatorname{{slice\_scatter}}_{{{self._label()}}}\left({printer._print(self.operand)}"
                r"\right)")

    def _numpycode(self, printer) -> str:
        zeros = printer._module_format("numpy.zeros")
        return (f"(lambda g, out: (out.__setitem__({_numpy_slices(self.args[1])}, g), out)[1])"
                f"({printer._print(self.operand)}, {zeros}({self.shape}))")


class Gathered(TensorNotation):
    """``gather₁(x, i)``: NumPy's ``take_along_axis`` of the operand at integer index ``i`` along an axis.

    Arguments: operand, index, axis, the index's exact shape (the text leaves
    out its size-1 axes; the NumPy form restores them), result shape.
    """

    @property
    def axis(self) -> int:
        return int(self.args[2])

    def _index_code(self, printer) -> str:
        return f"{printer._module_format('numpy.reshape')}({printer._print(self.args[1])}, {_ints(self.args[3])})"

    def _symgrad_text(self, printer) -> str:
        operand, index = (printer._print(a) for a in self.args[:2])
        return f"gather{subscript(str(self.axis))}({operand}, {index})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, "gather" + subscript(str(self.axis)), list(self.args[:2]))

    def _latex_body(self, printer) -> str:
        operand, index = (printer._print(a) for a in self.args[:2])
        return rf"\operatorname{{gather}}_{{{self.axis}}}\left({operand}, {index}\right)"

    def _numpycode(self, printer) -> str:
        operand, index = printer._print(self.operand), self._index_code(printer)
        return f"{printer._module_format('numpy.take_along_axis')}({operand}, {index}, {self.axis})"


class ScatterAdded(Gathered):
    """``scatter_add₀(g, i)``: zeros of the result shape with ``g`` added at index ``i`` along an axis
    (repeated indices accumulate; the gradient of :class:`Gathered`, with the same arguments)."""

    def _symgrad_text(self, printer) -> str:
        operand, index = (printer._print(a) for a in self.args[:2])
        return f"scatter_add{subscript(str(self.axis))}({operand}, {index})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, "scatter_add" + subscript(str(self.axis)), list(self.args[:2]))

    def _latex_body(self, printer) -> str:
        operand, index = (printer._print(a) for a in self.args[:2])
        return rf"\operatorname{{scatter\_add}}_{{{self.axis}}}\left({operand}, {index}\right)"

    def _numpycode(self, printer) -> str:
        operand, index = printer._print(self.operand), self._index_code(printer)
        add_at, indices = printer._module_format("numpy.add.at"), printer._module_format("numpy.indices")
        spread, zeros = printer._module_format("numpy.broadcast_to"), printer._module_format("numpy.zeros")
        positions = (f"tuple({spread}(i, g.shape) if d == {self.axis} else p "
                     f"for d, p in enumerate({indices}(g.shape, sparse=True)))")
        return f"(lambda g, i, out: ({add_at}(out, {positions}, g), out)[1])({operand}, {index}, {zeros}({self.shape}))"


class Joined(TensorNotation):
    """``cat(a, b)``: tensors joined along an axis (``cat₁(a, b)`` along axis 1)."""

    @property
    def axis(self) -> int:
        return int(self.args[0])

    @property
    def operands(self) -> tuple:
        return self.args[1:-1]

    def _name(self) -> str:
        return "cat" if self.axis == 0 else "cat" + subscript(str(self.axis))

    def _symgrad_text(self, printer) -> str:
        return f"{self._name()}({', '.join(printer._print(a) for a in self.operands)})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, self._name(), list(self.operands))

    def _latex_body(self, printer) -> str:
        operands = ", ".join(printer._print(a) for a in self.operands)
        return rf"\operatorname{{cat}}_{{{self.axis}}}\left({operands}\right)"

    def _numpycode(self, printer) -> str:
        operands = ", ".join(printer._print(a) for a in self.operands)
        return f"{printer._module_format('numpy.concatenate')}(({operands},), {self.axis})"


class Cumulative(TensorNotation):
    """``cumsum₀(x)``: cumulative sums along an axis."""

    @property
    def axis(self) -> int:
        return int(self.args[1])

    def _symgrad_text(self, printer) -> str:
        return f"cumsum{subscript(str(self.axis))}({printer._print(self.operand)})"

    def _pretty(self, printer) -> prettyForm:
        return _pretty_function(printer, "cumsum" + subscript(str(self.axis)), [self.operand])

    def _latex_body(self, printer) -> str:
        return rf"\operatorname{{cumsum}}_{{{self.axis}}}\left({printer._print(self.operand)}\right)"

    def _numpycode(self, printer) -> str:
        return f"{printer._module_format('numpy.cumsum')}({printer._print(self.operand)}, {self.axis})"


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
