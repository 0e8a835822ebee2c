"""A safe parser for the math expressions typed at ``symgrad diff``.

User text is never given to ``eval``, ``exec``, ``compile`` or ``sympify``.
It is parsed by :func:`ast.parse` (after limits on its length, its nesting and
its characters, so that parsing itself cannot be made to hang or recurse
without bound), then every node of the tree is checked against a whitelist:

* numbers (int and float literals, finite, not huge);
* variable names (declared ones, or any name as an implicit scalar);
* ``+ - * / ** @`` and unary ``-``/``+``; a constant exponent is at most
  :data:`MAX_EXPONENT` in size;
* calls, by bare name, of symgrad's math functions (everything exported by
  :mod:`symgrad.functional` and :mod:`symgrad.nn.functional`, so a new op is
  available as soon as it is exported there), with positional arguments and a
  few keyword arguments (``dim``, ``keepdim``, ``reduction`` …); a tuple of
  integers may be an argument (``permute(w, (1, 0))``);
* subscripts with integer and slice indices, when ``Tensor`` supports
  indexing.

Anything else — attribute access, names starting with ``_``, lambdas,
comprehensions, f-strings, comparisons, starred arguments, ``**kwargs`` —
raises :class:`ExpressionError` with one line saying what and where.  The
checked tree is then evaluated by a small interpreter over symgrad tensors.

>>> import symgrad
>>> from symgrad.expr import parse
>>> e = parse("sum(sigmoid(x @ w + b))", variables={"x", "w", "b"})
>>> e.variables
('x', 'w', 'b')
>>> parse("__import__('os')")
Traceback (most recent call last):
...
symgrad.expr.ExpressionError: names starting with '_' are not allowed: '__import__' (column 1)
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from . import functional as _functional
from .nn import functional as _nn_functional
from .tensor import Tensor

__all__ = ["ExpressionError", "EvaluationError", "Expression", "parse", "functions", "MAX_LENGTH", "MAX_DEPTH",
           "MAX_EXPONENT"]

MAX_LENGTH = 2000  # characters of expression text
MAX_DEPTH = 60  # nesting of the syntax tree (a sum of 60 terms is 60 deep)
MAX_BRACKETS = 30  # nesting of (, [ and {
MAX_NODES = 1000
MAX_EXPONENT = 100  # |p| in x ** p for a constant p
MAX_SEQUENCE = 16  # elements of a tuple argument such as permute's dims

# keyword arguments a call may pass (each function's own signature decides the rest)
KEYWORDS = frozenset({"dim", "keepdim", "reduction", "alpha", "weight", "pos_weight", "exponent", "other",
                      "min", "max", "beta", "threshold", "negative_slope", "p", "eps", "diagonal", "start_dim",
                      "end_dim", "dim0", "dim1", "correction", "unbiased"})

_OPERATORS: dict[type, tuple[str, Callable]] = {
    ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv), ast.Pow: ("**", operator.pow), ast.MatMult: ("@", operator.matmul),
}
_UNARY: dict[type, Callable] = {ast.USub: operator.neg, ast.UAdd: operator.pos}

# why each kind of node is refused, in words a user can act on
_REFUSED = {
    ast.Attribute: "attribute access is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed", ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed", ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not allowed", ast.FormattedValue: "f-strings are not allowed",
    ast.Compare: "comparisons are not allowed", ast.BoolOp: "'and'/'or' are not allowed",
    ast.IfExp: "conditional expressions are not allowed", ast.NamedExpr: "':=' is not allowed",
    ast.Starred: "starred arguments are not allowed", ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed", ast.Await: "await is not allowed", ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed", ast.Slice: "slices are allowed only inside [...]",
    ast.Tuple: "tuples are allowed only as function arguments",
    ast.List: "lists are allowed only as function arguments",
}


class ExpressionError(ValueError):
    """An expression was refused; the message is one line saying why (and where).

    >>> from symgrad.expr import parse
    >>> parse("x.T")
    Traceback (most recent call last):
    ...
    symgrad.expr.ExpressionError: attribute access is not allowed: '.T' (column 2)
    """


class EvaluationError(ValueError):
    """A checked expression failed on its values (shapes that do not fit, a bad argument …)."""


# exported by symgrad.functional but not math on tensors
_NOT_MATH = frozenset({"public_function"})


def functions() -> dict[str, Callable]:
    """The whitelist: symgrad's math functions by bare name (all of ``symgrad.functional`` and ``nn.functional``).

    >>> from symgrad.expr import functions
    >>> {"exp", "matmul", "sum", "binary_cross_entropy_with_logits"} <= set(functions())
    True
    """
    table = {}
    for module in (_functional, _nn_functional):
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name, None)
            if (callable(value) and not name.startswith("_") and name not in _NOT_MATH
                    and not isinstance(value, type) and getattr(value, "__module__", "").startswith("symgrad")):
                table[name] = value
    return table


def _where(node: ast.AST) -> str:
    return f" (column {node.col_offset + 1})" if hasattr(node, "col_offset") else ""


def _refuse(message: str, node: ast.AST | None = None):
    raise ExpressionError(message + (_where(node) if node is not None else ""))


# ------------------------------------------------------------ text limits

# printable ASCII without the backslash (line continuations, escapes), ';' and '#':
# one line of one expression, no look-alike Unicode names
_ALLOWED_CHARACTERS = re.compile(r"[ -~\t]")
_FORBIDDEN_CHARACTERS = "\\;#"


def _check_text(text: str) -> None:
    """Limits checked before the text reaches the parser."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is too long ({len(text)} characters; at most {MAX_LENGTH})")
    bad = next((c for c in text if not _ALLOWED_CHARACTERS.fullmatch(c) or c in _FORBIDDEN_CHARACTERS), None)
    if bad is not None:
        raise ExpressionError(f"character {bad!r} is not allowed (column {text.index(bad) + 1})")
    depth = deepest = 0
    for c in text:
        depth += c in "([{"
        depth -= c in ")]}"
        deepest = max(deepest, depth)
    if deepest > MAX_BRACKETS:
        raise ExpressionError(f"the expression is nested too deeply ({deepest} levels of brackets; "
                              f"at most {MAX_BRACKETS})")


def _parse_tree(text: str) -> ast.Expression:
    try:
        return ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        column = f" (column {error.offset})" if error.offset else ""
        raise ExpressionError(f"invalid syntax: {error.msg}{column}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("the expression cannot be parsed (too complex)") from None


def _check_shape_of_tree(tree: ast.Expression) -> None:
    """Depth and size limits, computed without recursion (the tree may be arbitrarily deep)."""
    stack, count = [(tree.body, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
        if count > MAX_NODES:
            raise ExpressionError(f"the expression is too large (more than {MAX_NODES} parts)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


# --------------------------------------------------------- the whitelist

class _Checker:
    """Walks the tree once, refusing any node outside the whitelist; collects variables and functions."""

    def __init__(self, variables: Collection[str] | None, table: Mapping[str, Callable]) -> None:
        self.declared, self.table = variables, table
        self.variables: list[str] = []
        self.called: list[str] = []

    def expression(self, node: ast.AST) -> None:
        method = getattr(self, f"_{type(node).__name__.lower()}", None)
        if method is None:
            _refuse(_REFUSED.get(type(node), f"{type(node).__name__} is not allowed"), node)
        method(node)

    def _attribute(self, node: ast.Attribute) -> None:
        column = node.value.end_col_offset + 1  # where the dot is
        raise ExpressionError(f"attribute access is not allowed: '.{node.attr}' (column {column})")

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "complex numbers" if isinstance(value, complex) else f"{type(value).__name__} values"
            _refuse(f"{kind} are not allowed here", node)
        if (abs(value) >= 10 ** 300) if isinstance(value, int) else not math.isfinite(value):
            _refuse("number out of range", node)

    def _name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("_"):
            _refuse(f"names starting with '_' are not allowed: {name!r}", node)
        if name in self.table:
            _refuse(f"function {name!r} used as a value; call it: {name}(...)", node)
        if self.declared is not None and name not in self.declared:
            _refuse(f"undeclared variable {name!r}", node)
        if name not in self.variables:
            self.variables.append(name)

    def _binop(self, node: ast.BinOp) -> None:
        if type(node.op) not in _OPERATORS:
            _refuse(f"operator {_op_text(node.op)!r} is not allowed (allowed: + - * / ** @)", node)
        if isinstance(node.op, ast.Pow):
            exponent = _literal_number(node.right)
            if exponent is not None and abs(exponent) > MAX_EXPONENT:
                _refuse(f"exponent too large: {exponent:g} (at most {MAX_EXPONENT} in size)", node.right)
        self.expression(node.left)
        self.expression(node.right)

    def _unaryop(self, node: ast.UnaryOp) -> None:
        if type(node.op) not in _UNARY:
            _refuse(f"operator {_op_text(node.op)!r} is not allowed (allowed: unary - and +)", node)
        self.expression(node.operand)

    def _call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                self._attribute(node.func)
            _refuse("only functions called by their name are allowed", node)
        name = node.func.id
        if name.startswith("_"):
            _refuse(f"names starting with '_' are not allowed: {name!r}", node.func)
        if name not in self.table:
            _refuse(f"unknown function {name!r} (known: {', '.join(sorted(self.table))})", node.func)
        self.called.append(name)
        for argument in node.args:
            self._argument(argument)
        for keyword in node.keywords:
            self._keyword(keyword, node)

    def _argument(self, node: ast.AST) -> None:
        if isinstance(node, ast.Tuple | ast.List):
            if len(node.elts) > MAX_SEQUENCE:
                _refuse(f"too many elements ({len(node.elts)}; at most {MAX_SEQUENCE})", node)
            for element in node.elts:
                self.expression(element)
        else:
            self.expression(node)

    def _keyword(self, keyword: ast.keyword, call: ast.Call) -> None:
        if keyword.arg is None:
            _refuse("'**' arguments are not allowed", keyword.value)
        if keyword.arg.startswith("_") or keyword.arg not in KEYWORDS:
            _refuse(f"keyword argument {keyword.arg!r} is not allowed", keyword.value)
        value = keyword.value
        if isinstance(value, ast.Constant) and isinstance(value.value, bool):
            return
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            if not re.fullmatch(r"[a-z][a-z_]{0,19}", value.value):
                _refuse(f"string argument {value.value[:20]!r} is not allowed", value)
            return
        self._argument(value)

    def _subscript(self, node: ast.Subscript) -> None:
        if not hasattr(Tensor, "__getitem__"):
            _refuse("indexing (x[...]) is not supported by this version of symgrad", node)
        self.expression(node.value)
        index = node.slice
        for part in index.elts if isinstance(index, ast.Tuple) else [index]:
            if isinstance(part, ast.Slice):
                for bound in (part.lower, part.upper, part.step):
                    if bound is not None and _literal_int(bound) is None:
                        _refuse("slice bounds must be integers", bound)
            elif _literal_int(part) is None:
                _refuse("indices must be integers or slices", part)


def _op_text(op: ast.AST) -> str:
    return {ast.Mod: "%", ast.FloorDiv: "//", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
            ast.BitAnd: "&", ast.BitXor: "^", ast.Not: "not", ast.Invert: "~"}.get(type(op), type(op).__name__)


def _literal_number(node: ast.AST) -> float | None:
    """The value of ``3``, ``-2.5``, ``+1`` written literally, else None."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        try:
            return sign * float(node.value)
        except OverflowError:
            return math.inf
    return None


def _literal_int(node: ast.AST) -> int | None:
    value = _literal_number(node)
    inner = node.operand if isinstance(node, ast.UnaryOp) else node
    if value is None or not isinstance(getattr(inner, "value", None), int):
        return None
    return int(value)


# ------------------------------------------------------------ evaluation

@dataclass(frozen=True)
class Expression:
    """A checked expression: its variables (in order of appearance), the functions it calls, and its tree."""

    text: str
    tree: ast.Expression
    variables: tuple[str, ...]
    calls: tuple[str, ...]

    def __str__(self) -> str:
        return ast.unparse(self.tree.body)

    def evaluate(self, values: Mapping[str, object]):
        """Compute the expression with symgrad on ``values`` (a tensor or number per variable).

        >>> import symgrad
        >>> from symgrad.expr import parse
        >>> parse("2 * x ** 3").evaluate({"x": symgrad.tensor(2.0)})
        tensor(16.)
        """
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise EvaluationError(f"no value for {', '.join(missing)}")
        return _Evaluator(values, functions()).value(self.tree.body)


class _Evaluator:
    """Evaluates a tree that :class:`_Checker` accepted; errors become one-line :class:`EvaluationError`."""

    def __init__(self, values: Mapping[str, object], table: Mapping[str, Callable]) -> None:
        self.values, self.table = values, table

    def value(self, node: ast.AST):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.values[node.id]
        if isinstance(node, ast.Tuple | ast.List):
            return tuple(self.value(e) for e in node.elts)
        try:
            return self._compute(node)
        except (EvaluationError, ExpressionError):
            raise
        except (ArithmeticError, RuntimeError, ValueError, TypeError, IndexError, NotImplementedError) as error:
            raise EvaluationError(f"{_short(node)}: {_one_line(error)}") from None

    def _compute(self, node: ast.AST):
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.value(node.operand))
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left), self.value(node.right)
            return _binary(node.op, left, right, node)
        if isinstance(node, ast.Call):
            args = [self.value(a) for a in node.args]
            kwargs = {k.arg: self.value(k.value) for k in node.keywords}
            return self.table[node.func.id](*args, **kwargs)
        if isinstance(node, ast.Subscript):
            return self.value(node.value)[_index(node.slice)]
        raise EvaluationError(f"cannot evaluate {type(node).__name__}")  # unreachable after checking


def _binary(op: ast.operator, left, right, node: ast.AST):
    """Apply ``op``; plain numbers are folded with guards so no literal can make Python compute for ever."""
    numbers = (int, float)
    if isinstance(op, ast.Pow):
        if isinstance(right, numbers) and not isinstance(left, numbers) and abs(right) > MAX_EXPONENT:
            raise ExpressionError(f"exponent too large: {right:g} (at most {MAX_EXPONENT} in size){_where(node)}")
        if isinstance(left, numbers) and isinstance(right, numbers):
            return _number_power(left, right)
    result = _OPERATORS[type(op)][1](left, right)
    if isinstance(result, float) and not math.isfinite(result):
        raise EvaluationError(f"{_short(node)}: number out of range")
    return result


def _number_power(base, exponent):
    """Number ** number in floating point (an integer power of integers could take unbounded time)."""
    try:
        result = float(base) ** float(exponent)
    except OverflowError:
        raise EvaluationError("number out of range") from None
    except ZeroDivisionError:
        raise EvaluationError("0 cannot be raised to a negative power") from None
    if isinstance(result, complex) or not math.isfinite(result):
        raise EvaluationError("number out of range (or complex)")
    return result


def _index(node: ast.AST):
    if isinstance(node, ast.Tuple):
        return tuple(_index(e) for e in node.elts)
    if isinstance(node, ast.Slice):
        return slice(*(None if b is None else _literal_int(b) for b in (node.lower, node.upper, node.step)))
    return _literal_int(node)


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def parse(text: str, *, variables: Collection[str] | None = None) -> Expression:
    """Check ``text`` against the whitelist and return an :class:`Expression`, or raise :class:`ExpressionError`.

    ``variables``: the declared names; every name must be one of them.  With
    ``None``, any name that is not a function is a variable (an implicit scalar).

    >>> from symgrad.expr import parse
    >>> parse("exp(-x) * y").variables
    ('x', 'y')
    >>> parse("x % 2")
    Traceback (most recent call last):
    ...
    symgrad.expr.ExpressionError: operator '%' is not allowed (allowed: + - * / ** @) (column 1)
    """
    _check_text(text)
    tree = _parse_tree(text)
    _check_shape_of_tree(tree)
    checker = _Checker(None if variables is None else set(variables), functions())
    checker.expression(tree.body)
    return Expression(text, tree, tuple(checker.variables), tuple(checker.called))
