"""The safe expression parser of ``symgrad diff`` (:mod:`symgrad.expr`), in process.

Accepted expressions evaluate like the same NumPy code; everything outside the
whitelist is refused with one line, before anything is evaluated; user text
never reaches ``eval``/``exec``/``sympify`` (``compile`` is used only by
``ast.parse``, to build a syntax tree).  The installed command is tested in
``tests/test_cli.py``.
"""

from __future__ import annotations

import ast
import builtins
import time

import numpy as np
import pytest
import sympy

import symgrad
from symgrad.expr import MAX_EXPONENT, EvaluationError, ExpressionError, functions, parse


def _t(values):
    return symgrad.tensor(values, dtype=symgrad.float64)


ACCEPTED = [
    # (expression, variables, expected value as a function of the NumPy arrays)
    ("x**2 * exp(-x)", {"x": 1.5}, lambda x: x ** 2 * np.exp(-x)),
    ("2 ** 3 * x - 4 / x", {"x": 2.0}, lambda x: 8 * x - 4 / x),
    ("+x - -x", {"x": 0.25}, lambda x: 2 * x),
    ("sum(sigmoid(x @ w + b))", {"x": [1.0, 2.0], "w": [[0.1, 0.2], [0.3, -0.4]], "b": [0.5, -0.5]},
     lambda x, w, b: np.sum(1 / (1 + np.exp(-(x @ w + b))))),
    ("mean(tanh(w), dim=0, keepdim=True)", {"w": [[0.1, 0.2], [0.3, -0.4]]},
     lambda w: np.tanh(w).mean(0, keepdims=True)),
    ("sum(permute(w, (1, 0)) * w)", {"w": [[1.0, 2.0], [3.0, 4.0]]}, lambda w: np.sum(w.T * w)),
    ("binary_cross_entropy_with_logits(z, y, reduction='sum')", {"z": [0.5, -1.0], "y": [1.0, 0.0]},
     lambda z, y: np.sum(np.logaddexp(0, z) - y * z)),
    ("x ** y", {"x": 1.5, "y": 2.5}, lambda x, y: x ** y),
    ("log(relu(x) + 1)", {"x": [-1.0, 2.0]}, lambda x: np.log(np.maximum(x, 0) + 1)),
    ("1e-3 * x ** 100", {"x": 1.01}, lambda x: 1e-3 * x ** 100),
]


@pytest.mark.parametrize("text, values, expected", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_expressions_evaluate_like_numpy(text, values, expected):
    parsed = parse(text, variables=set(values))
    assert set(parsed.variables) == set(values)
    result = parsed.evaluate({k: _t(v) for k, v in values.items()})
    arrays = [np.asarray(values[name], dtype=float) for name in values]
    np.testing.assert_allclose(result.numpy(), expected(*arrays), rtol=1e-12)


def test_variables_in_order_and_calls_recorded():
    parsed = parse("exp(b) * a + log(a)")
    assert parsed.variables == ("b", "a") and parsed.calls == ("exp", "log")
    assert str(parsed) == "exp(b) * a + log(a)"


def test_the_whitelist_is_symgrads_math_functions():
    table = functions()
    assert {"exp", "log", "sigmoid", "tanh", "relu", "sum", "mean", "matmul", "mm", "mv", "dot", "permute",
            "squeeze", "unsqueeze", "binary_cross_entropy_with_logits"} <= set(table)
    assert all(not name.startswith("_") for name in table)
    assert not {"eval", "exec", "open", "getattr", "public_function", "tensor", "manual_seed"} & set(table)


# Each: (expression, the start of the one-line message).  None of them gets evaluated.
REFUSED = [
    ("__import__('os').system('echo pwned')", "attribute access is not allowed: '.system'"),
    ("__import__('os')", "names starting with '_' are not allowed: '__import__'"),
    ("x.__class__", "attribute access is not allowed: '.__class__'"),
    ("().__class__.__bases__", "attribute access is not allowed"),
    ("open('/etc/passwd')", "unknown function 'open'"),
    ("eval('1')", "unknown function 'eval'"),
    ("exec('import os')", "unknown function 'exec'"),
    ("getattr(x, 'a')", "unknown function 'getattr'"),
    ("globals()", "unknown function 'globals'"),
    ("breakpoint()", "unknown function 'breakpoint'"),
    ("lambda: 1", "lambda is not allowed"),
    ("[c for c in x]", "comprehensions are not allowed"),
    ("{k: 1 for k in x}", "comprehensions are not allowed"),
    ("f'{x}'", "f-strings are not allowed"),
    ("x if y else z", "conditional expressions are not allowed"),
    ("x < y", "comparisons are not allowed"),
    ("x and y", "'and'/'or' are not allowed"),
    ("(y := 2)", "':=' is not allowed"),
    ("exp(*x)", "starred arguments are not allowed"),
    ("exp(**x)", "'**' arguments are not allowed"),
    ("exp(x, foo=1)", "keyword argument 'foo' is not allowed"),
    ("exp(x, reduction='__class__')", "string argument '__class__' is not allowed"),
    ("exp(x, dim=__import__('os'))", "names starting with '_' are not allowed"),
    ("x ** 1000", f"exponent too large: 1000 (at most {MAX_EXPONENT} in size)"),
    ("x ** -1e6", "exponent too large"),
    ("1e999 * x", "number out of range"),
    ("1" * 400 + " * x", "number out of range"),
    ("x; import os", "character ';' is not allowed"),
    ("x # comment", "character '#' is not allowed"),
    ("x\n__import__('os')", "character '\\n' is not allowed"),
    ("x \\\n + 1", "character '\\\\' is not allowed"),
    ("\u0435xp(x)", "character 'е' is not allowed"),  # a Cyrillic look-alike
    ("import os", "invalid syntax"),
    ("x +", "invalid syntax"),
    ("", "the expression is empty"),
    ("x % 2", "operator '%' is not allowed"),
    ("x // 2", "operator '//' is not allowed"),
    ("~x", "operator '~' is not allowed"),
    ("not x", "operator 'not' is not allowed"),
    ("1j * x", "complex numbers are not allowed"),
    ("'text'", "str values are not allowed"),
    ("None", "NoneType values are not allowed"),
    ("exp", "function 'exp' used as a value"),
    ("exp(x)(x)", "only functions called by their name are allowed"),
    ("{1: 2}", "dicts are not allowed"),
    ("(x, x)", "tuples are allowed only as function arguments"),
    ("x[y]", "indices must be integers or slices"),
    ("(" * 40 + "x" + ")" * 40, "the expression is nested too deeply (40 levels of brackets"),
    ("-" * 1500 + "x", "the expression is nested too deeply (more than 60 levels)"),
    ("x" + "+x" * 1000, "the expression is too long"),
    ("+".join(["x"] * 500), "the expression is nested too deeply"),
]


@pytest.mark.parametrize("text, message", REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_refused_with_one_line(text, message):
    start = time.perf_counter()
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert time.perf_counter() - start < 1.0


def test_declared_variables_are_required():
    with pytest.raises(ExpressionError, match=r"^undeclared variable 'y' \(column 5\)$"):
        parse("x + y", variables={"x"})
    assert parse("x + y").variables == ("x", "y")  # undeclared names are implicit scalars


def test_evaluation_errors_name_the_failing_part():
    parsed = parse("sum(x @ w)", variables={"x", "w"})
    with pytest.raises(EvaluationError, match=r"^x @ w: mat1 and mat2 shapes cannot be multiplied \(1x4 and 5x3\)$"):
        parsed.evaluate({"x": symgrad.ones(4), "w": symgrad.ones(5, 3)})
    with pytest.raises(EvaluationError, match="number out of range"):
        parse("x * 9 ** 9 ** 9 ** 9").evaluate({"x": _t(1.0)})
    with pytest.raises(ExpressionError, match="exponent too large: 3.8742e\\+08"):
        parse("x ** 9 ** 9").evaluate({"x": _t(1.0)})  # a folded constant exponent is limited too
    with pytest.raises(EvaluationError, match="1 / 0: division by zero"):
        parse("x + 1 / 0").evaluate({"x": _t(1.0)})
    with pytest.raises(EvaluationError, match="no value for y"):
        parse("x + y").evaluate({"x": _t(1.0)})


def test_huge_integer_powers_are_computed_in_floating_point_not_for_ever():
    start = time.perf_counter()
    with pytest.raises(EvaluationError):
        parse("x * 2 ** 2 ** 2 ** 2 ** 2 ** 2").evaluate({"x": _t(1.0)})
    assert time.perf_counter() - start < 1.0


def test_user_text_never_reaches_eval_exec_or_sympify(monkeypatch):
    """Only ast.parse compiles, and only to a syntax tree; nothing else runs the text."""
    real_compile = builtins.compile
    texts = []

    def guarded_compile(source, filename, mode, flags=0, *args, **kwargs):
        if isinstance(source, str) and not flags & ast.PyCF_ONLY_AST:
            texts.append(source)
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError(f"called with {args!r}")

    real_sympify = sympy.sympify

    def guarded_sympify(value, *args, **kwargs):
        if isinstance(value, str):
            raise AssertionError(f"sympify of text {value!r}")
        return real_sympify(value, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", guarded_compile)
    monkeypatch.setattr(sympy, "sympify", guarded_sympify)
    for text, values, _ in ACCEPTED:
        parse(text).evaluate({k: _t(v) for k, v in values.items()})
    assert not [t for t in texts if any(a[0] in t for a in ACCEPTED)]
