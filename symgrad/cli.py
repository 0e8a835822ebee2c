"""The ``symgrad`` command (console script and ``python -m symgrad``).

* ``symgrad demo`` — PyTorch's autograd tutorial run with symgrad: its
  ``grad_fn`` chain, gradients, the generated NumPy code and a
  finite-difference check.
* ``symgrad diff EXPR --wrt VARS`` — differentiate an expression typed at the
  shell (parsed by the safe parser of :mod:`symgrad.expr`, never evaluated as
  Python), evaluate it at given or random values, optionally check it.
* ``symgrad check FILE.py:FUNC --inputs SHAPES`` — check a function's
  gradients against finite differences and print the report.

Exit codes: 0 success, 1 a gradient check failed, 2 a usage error (one line
on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import json
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

import symgrad
from symgrad import expr, tutorial
from symgrad.gradcheck import GradcheckError, check_gradients, gradcheck

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2

MAX_ELEMENTS = 100_000  # per --var / --inputs tensor: keeps a typo from allocating gigabytes
MAX_DIMS = 6
CHECK_LIMIT = 5_000  # input elements a finite-difference check perturbs, one by one, before refusing


class UsageError(Exception):
    """A mistake on the command line: printed as one line, exit code 2."""


# ================================================================ helpers

def _heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def _parse_shape(text: str, what: str) -> tuple[int, ...]:
    """``5x3`` -> (5, 3); ``5`` -> (5,); ``scalar``, ``()`` or empty -> ()."""
    text = text.strip().lower()
    if text in ("", "scalar", "()"):
        return ()
    parts = text.replace("*", "x").replace(",", "x").split("x")
    if not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"bad shape {text!r} for {what} (expected e.g. 5, 5x3 or scalar)")
    shape = tuple(int(p) for p in parts)
    if len(shape) > MAX_DIMS or any(s < 1 for s in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise UsageError(f"shape {text!r} for {what} is out of range (dimensions 1 or more, at most {MAX_DIMS} "
                         f"of them, at most {MAX_ELEMENTS} elements)")
    return shape


def _name_value(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"{option} expects NAME=VALUE, got {text!r}")
    if not name.isidentifier() or name.startswith("_"):
        raise UsageError(f"{option}: {name!r} is not a valid variable name")
    return name, value


def _parse_values(text: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``1.5`` fills the shape; ``1,2,3`` lists every element in row-major order."""
    cleaned = text.replace("[", " ").replace("]", " ").replace(",", " ").split()
    if not cleaned or len(cleaned) > MAX_ELEMENTS:
        raise UsageError(f"--at {name}: expected a number or a comma-separated list of numbers")
    try:
        values = np.array([float(v) for v in cleaned], dtype=np.float64)
    except ValueError:
        raise UsageError(f"--at {name}: {text!r} is not a list of numbers") from None
    if not np.all(np.isfinite(values)):
        raise UsageError(f"--at {name}: values must be finite numbers")
    size = math.prod(shape)
    if values.size == 1:
        return np.full(shape, values[0])
    if values.size != size:
        raise UsageError(f"--at {name}: {values.size} values given for shape {_shape_text(shape)} "
                         f"({size} elements)")
    return values.reshape(shape)


def _shape_text(shape) -> str:
    return "scalar" if not shape else "x".join(map(str, shape))


def _plain(value):
    """JSON-safe data: arrays as nested lists, non-finite floats as strings."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else str(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def _print_json(data: dict) -> None:
    print(json.dumps(_plain(data), indent=2, ensure_ascii=False))


# ================================================================== demo

def demo(args: argparse.Namespace) -> int:
    """Run the tutorial; show its grad_fn chain, gradients, generated code and a finite-difference check.

    >>> main(["demo"])
    <BLANKLINE>
    == PyTorch's autograd tutorial, run with symgrad ===...
    OK: 18 of 18 derivatives agree with finite differences
    0
    """
    _heading("PyTorch's autograd tutorial, run with symgrad")
    loss = tutorial.run(symgrad)
    leaves = _leaves(loss)
    _heading("The grad_fn chain of loss (what loss.backward() differentiates)")
    for line in _chain_lines(loss.grad_fn, {id(t): name for name, t in leaves}):
        print(line)
    _demo_formulas(loss, leaves)
    _heading("Gradients")
    for name, leaf in leaves:
        print(f"d loss / d {name} = {name}.grad =")
        print(leaf.grad)
    _heading("The NumPy code symgrad generated for loss.backward()")
    print(_tutorial_source())
    _heading("Finite-difference check of the gradients (float64)")
    print(_tutorial_check(leaves))
    return EXIT_OK


def _leaves(loss) -> list[tuple[str, object]]:
    """The tensors ``loss`` depends on, found through ``grad_fn``, named as the tutorial names them."""
    known = {(5, 3): "w", (3,): "b"}
    found, stack, seen = [], [loss.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if variable is not None:
            found.append(variable)
        stack.extend(n for n, _ in reversed(node.next_functions))
    return [(known.get(tuple(t.shape), f"leaf{i}"), t) for i, t in enumerate(found)]


def _chain_lines(node, names: dict, prefix: str = "", last: bool = True, top: bool = True) -> list[str]:
    """The grad_fn graph as a tree: each node above the functions it passes gradients to."""
    label = "None (an input that does not require grad)" if node is None else node.name()
    variable = getattr(node, "variable", None)
    if variable is not None:
        label += f"  -> {names.get(id(variable), 'leaf')}.grad, shape {list(variable.shape)}"
    lines = [label if top else prefix + ("└─ " if last else "├─ ") + label]
    children = [] if node is None else [n for n, _ in node.next_functions]
    inner = "" if top else prefix + ("   " if last else "│  ")
    for i, child in enumerate(children):
        lines += _chain_lines(child, names, inner, i == len(children) - 1, top=False)
    return lines


def _tutorial_model():
    """The tutorial's model rebuilt in the caller's frame (so formulas and code use its names)."""
    symgrad.manual_seed(0)
    x, y = symgrad.ones(5), symgrad.zeros(3)
    w, b = symgrad.randn(5, 3, requires_grad=True), symgrad.randn(3, requires_grad=True)
    z = symgrad.matmul(x, w) + b
    return x, y, w, b, z, symgrad.nn.functional.binary_cross_entropy_with_logits(z, y)


def _tutorial_source() -> str:
    x, y, w, b, z, loss = _tutorial_model()
    return symgrad.backward_source(loss)


def _demo_formulas(loss, leaves) -> None:
    """The tutorial's forward and derivative formulas, and a picture of its graph."""
    _heading("Derivative formulas")
    x, y, w, b, z, loss = _tutorial_model()  # its variable names visible here
    print(symgrad.formula(loss))
    for g in symgrad.grad_formula(loss, [w, b]):
        print(str(g).splitlines()[0])
    try:
        picture = os.path.join(tempfile.gettempdir(), "symgrad-tutorial.png")  # not into the user's directory
        print("graph picture:", symgrad.viz.draw(loss, formulas=True).render(picture))
    except symgrad.viz.GraphvizNotFoundError as error:
        print("graph picture: not rendered:", error)


def _tutorial_check(leaves) -> object:
    """The tutorial's loss as a function of w and b, checked at the tutorial's values in float64."""
    x = symgrad.ones(5, dtype=symgrad.float64)
    y = symgrad.zeros(3, dtype=symgrad.float64)

    def tutorial_loss(w, b):
        return symgrad.nn.functional.binary_cross_entropy_with_logits(symgrad.matmul(x, w) + b, y)

    values = [leaf.detach().double().requires_grad_() for _, leaf in leaves]
    return check_gradients(tutorial_loss, tuple(values), names=[name for name, _ in leaves])


# ================================================================== diff

# The derivative section: readable formulas once `symgrad.grad_formula` exists (issue 4),
# the generated gradient code until then.  Switching is this one line.
_FORMULAS = getattr(symgrad, "grad_formula", None)


def diff(args: argparse.Namespace) -> int:
    """Differentiate EXPR with respect to --wrt at --at (or random) values.

    >>> main(["diff", "x * y ** 2", "--wrt", "y", "--at", "x=3", "--at", "y=2", "--json"])
    {...
      "gradients": {
        "y": 12.0
      },...
    0
    """
    _refuse_unavailable(args)
    shapes = _declared_shapes(args.var)
    parsed = expr.parse(args.expression, variables=shapes if shapes else None)
    if not parsed.variables:
        raise UsageError("the expression has no variables to differentiate")
    shapes = {name: shapes.get(name, ()) for name in (*shapes, *parsed.variables)}
    wrt = _wrt(args.wrt, parsed, shapes)
    tensors = _point(shapes, wrt, args.at, args.seed)
    function = _expression_function(parsed, list(tensors))
    with _quiet_numpy():
        value, scalar, note = _value(parsed, tensors)
        grads = _gradients(scalar, [tensors[n] for n in wrt])
        derivative = _derivative_text(scalar, [tensors[n] for n in wrt], args.latex)
        report = _check_expression(function, tensors, args) if args.check else None
    result = {"expression": str(parsed), "variables": {n: list(s) for n, s in shapes.items()}, "wrt": wrt,
              "point": {n: t.detach().numpy() for n, t in tensors.items()}, "value": value.detach().numpy(),
              "gradients": {n: g.detach().numpy() for n, g in zip(wrt, grads)}, "derivative": derivative,
              "note": note}
    if args.code:
        result["code"] = symgrad.backward_source(scalar) if scalar.grad_fn is not None else None
    if report is not None:
        result["check"] = report.to_dict()
    if args.emit:
        result["emitted"] = _emit(function, tensors, args.emit)
    if args.json:
        _print_json(result)
    else:
        _print_diff(result, report)
    return EXIT_OK if report is None or report.ok else EXIT_CHECK_FAILED


def _refuse_unavailable(args: argparse.Namespace) -> None:
    """Options that cannot work (a feature missing in this version, a bad path): refuse before any work."""
    if args.emit and not args.emit.endswith(".py"):
        raise UsageError(f"--emit writes a Python module: the path must end with .py, got {args.emit!r}")
    if args.latex and _FORMULAS is None:
        raise UsageError("--latex is not available yet: it needs symgrad.grad_formula (derivative formulas), "
                         "which this version of symgrad does not have")


def _declared_shapes(specs: list[str]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    functions = expr.functions()
    for spec in specs:
        name, text = _name_value(spec, "--var")
        if name in shapes:
            raise UsageError(f"--var {name} is declared twice")
        if name in functions:
            raise UsageError(f"--var {name}: {name!r} is the name of a function")
        shapes[name] = _parse_shape(text, f"--var {name}")
    return shapes


def _wrt(text: str | None, parsed: expr.Expression, shapes: dict) -> list[str]:
    if text is None:
        return list(parsed.variables)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--wrt expects a comma-separated list of variables")
    for name in names:
        if name not in shapes:
            raise UsageError(f"undeclared variable {name!r} in --wrt (the variables are: "
                             f"{', '.join(shapes)})")
    return list(dict.fromkeys(names))


def _point(shapes: dict, wrt: list[str], at: list[str], seed: int) -> dict:
    """A float64 tensor per variable: the --at values, else standard normal samples from ``seed``."""
    given = {}
    for spec in at:
        name, text = _name_value(spec, "--at")
        if name not in shapes:
            raise UsageError(f"undeclared variable {name!r} in --at (the variables are: {', '.join(shapes)})")
        given[name] = _parse_values(text, name, shapes[name])
    symgrad.manual_seed(seed)
    tensors = {}
    for name, shape in shapes.items():
        sample = symgrad.randn(*shape, dtype=symgrad.float64).numpy()
        values = given.get(name, sample)
        tensors[name] = symgrad.tensor(values, dtype=symgrad.float64, requires_grad=name in wrt, name=name)
    return tensors


def _expression_function(parsed: expr.Expression, names: list[str]):
    """The expression as a Python function of its variables' tensors (what --check and --emit use)."""
    def expression(*tensors):
        result = parsed.evaluate(dict(zip(names, tensors)))
        if not isinstance(result, symgrad.Tensor):
            raise UsageError("the expression does not depend on any variable")
        return result.sum() if result.numel() != 1 else result
    expression.__name__ = "f"
    # named parameters: the emitted module reads def value_and_grad(x, w), not (arg0, arg1)
    expression.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    return expression


def _value(parsed: expr.Expression, tensors: dict):
    """The expression's value, and the scalar to differentiate: itself, or its sum (with a note saying so)."""
    value = parsed.evaluate(dict(tensors))
    if not isinstance(value, symgrad.Tensor):
        raise UsageError("the expression does not depend on any variable")
    if not value.dtype.is_floating_point:
        raise UsageError("the expression does not give floating-point values")
    if value.numel() == 1:
        return value, value, None
    return value, value.sum(), (f"f has shape {_shape_text(tuple(value.shape))}: the derivatives shown are those "
                                "of sum(f)")


def _gradients(value, wrt_tensors: list) -> list:
    if not value.requires_grad:
        return [symgrad.zeros_like(t) for t in wrt_tensors]
    grads = symgrad.autograd.grad(value, wrt_tensors, allow_unused=True, retain_graph=True)
    return [symgrad.zeros_like(t) if g is None else g for g, t in zip(grads, wrt_tensors)]


def _derivative_text(value, wrt_tensors: list, latex: bool) -> dict:
    """Readable formulas (``symgrad.grad_formula``) when available, else the generated gradient code."""
    if value.grad_fn is None:
        if value.requires_grad:  # f is one of the variables itself
            return {"kind": "formulas", "text": "\n".join(
                f"∂f/∂{getattr(t, '_name', None) or 'x'} = {1 if t is value else 0}" for t in wrt_tensors)}
        return {"kind": "constant", "text": "the expression does not depend on the variables: every derivative is 0"}
    if _FORMULAS is None:
        return {"kind": "generated code", "text": symgrad.backward_source(value)}
    formulas = [_FORMULAS(value, t, names={"f": value}) for t in wrt_tensors]
    out = {"kind": "formulas", "text": "\n".join(str(f) for f in formulas)}
    if latex:
        out["latex"] = "\n".join(f.latex() for f in formulas)
    return out


def _check_expression(function, tensors: dict, args: argparse.Namespace):
    size = sum(t.numel() for t in tensors.values() if t.requires_grad)
    if size > CHECK_LIMIT:
        raise UsageError(f"--check perturbs every input element one by one: {size} elements is too many "
                         f"(at most {CHECK_LIMIT})")
    return check_gradients(function, tuple(tensors.values()), names=list(tensors), eps=args.eps,
                           atol=args.atol, rtol=args.rtol, richardson=args.richardson)


def _emit(function, tensors: dict, path: str) -> str:
    compiled = symgrad.compile(function, *tensors.values())
    compiled.save(path)
    return str(path)


@contextlib.contextmanager
def _quiet_numpy():
    """NumPy's overflow warnings would print multi-line tracebacks-like text; results show inf/nan instead."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _print_diff(result: dict, report) -> None:
    _heading("Expression")
    print(f"f = {result['expression']}")
    shapes = ", ".join(f"{n}: {_shape_text(s)}" for n, s in result["variables"].items())
    print(f"variables: {shapes}; derivatives with respect to {', '.join(result['wrt'])}")
    _heading("Point (seeded random values unless given with --at)")
    for name, values in result["point"].items():
        print(f"{name} = {_array_text(values)}")
    print(f"f = {_array_text(result['value'])}")
    if result["note"]:
        print(f"note: {result['note']}")
    derivative = result["derivative"]
    if derivative["kind"] == "formulas":
        _heading("Derivative formulas")
    else:
        _heading("Derivative: the generated NumPy gradient code")
    print(derivative["text"])
    if "latex" in derivative:
        _heading("LaTeX")
        print(derivative["latex"])
    _heading("Gradients at the point")
    for name, g in result["gradients"].items():
        print(f"df/d{name} = {_array_text(g)}")
    if result.get("code") and derivative["kind"] == "formulas":
        _heading("Generated NumPy code")
        print(result["code"])
    if report is not None:
        _heading("Finite-difference check")
        print(report)
    if result.get("emitted"):
        print(f"\nwrote {result['emitted']}")


def _array_text(values) -> str:
    """A float64 array printed as symgrad prints tensors, without the dtype suffix."""
    return str(symgrad.tensor(np.asarray(values), dtype=symgrad.float64)).replace(", dtype=symgrad.float64", "")


# ================================================================= check

def check(args: argparse.Namespace) -> int:
    """Check FILE.py:FUNC's gradients at random inputs of the given shapes.

    >>> main(["check", "no_such_file.py:loss", "--inputs", "3"])  # the errors are one line on stderr
    2
    """
    function = _load_function(args.target)
    shapes = [_parse_shape(s, "--inputs") for spec in args.inputs for s in _split_shapes(spec)]
    symgrad.manual_seed(args.seed)
    inputs = tuple(symgrad.randn(*shape, dtype=symgrad.float64, requires_grad=True) for shape in shapes)
    if sum(t.numel() for t in inputs) > CHECK_LIMIT:
        raise UsageError(f"the check perturbs every input element one by one: at most {CHECK_LIMIT} elements")
    name = args.target.rpartition(":")[2]
    report = _run_user(lambda: check_gradients(function, inputs, eps=args.eps, atol=args.atol, rtol=args.rtol,
                                               richardson=args.richardson), name)
    torch_style = _run_user(lambda: _gradcheck_verdict(function, inputs), name) if args.gradcheck else None
    plot = _plot(report, args.plot) if args.plot else None
    if args.json:
        _print_json({**report.to_dict(), "source": report.source, "gradcheck": torch_style, "plot": plot})
    else:
        print(report)
        if args.code and report.source:
            _heading("The generated NumPy code that was checked")
            print(report.source)
        if torch_style is not None:
            print(f"\ngradcheck (PyTorch's criterion): {torch_style}")
        if plot:
            print(f"\nerror-versus-step plot written to {plot}")
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def _split_shapes(spec: str) -> list[str]:
    return spec.split(",")  # "5x3,3" is two shapes, as "5x3 3" is


def _load_function(target: str):
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise UsageError(f"expected FILE.py:FUNCTION, got {target!r}")
    path = Path(path_text)
    if path.suffix != ".py" or not path.is_file():
        raise UsageError(f"no Python file {path_text!r}")
    spec = importlib.util.spec_from_file_location(f"_symgrad_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # the user's own file: running it is the point of this command
    except Exception as error:  # noqa: BLE001 - any failure of user code becomes one line
        raise UsageError(f"could not load {path_text}: {type(error).__name__}: {_one_line(error)}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise UsageError(f"{path_text} has no function {name!r}")
    return function


def _run_user(action, name: str):
    try:
        with _quiet_numpy():
            return action()
    except UsageError:
        raise
    except Exception as error:  # noqa: BLE001 - the user's function failed: say so in one line
        raise UsageError(f"{name} raised {type(error).__name__}: {_one_line(error)}") from None


def _gradcheck_verdict(function, inputs) -> str:
    try:
        gradcheck(function, inputs)
    except GradcheckError as error:
        return "FAILED\n" + str(error).rstrip()
    return "passed"


def _plot(report, path: str) -> str:
    try:
        return str(report.plot(path))
    except ImportError as error:
        raise UsageError(str(error)) from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# ================================================================ parser

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_DIFF_EXAMPLES = """examples:
  symgrad diff "x**2 * exp(-x)" --wrt x --at x=1.5
  symgrad diff "sum(sigmoid(x @ w + b))" --var x=5 --var w=5x3 --var b=3 --wrt w,b --check
  symgrad diff "mean(tanh(w) * w)" --var w=2x3 --at w=0.5 --json

The expression may use numbers, variables, + - * / ** @, unary minus, and symgrad's math
functions by name (exp, log, sigmoid, tanh, relu, sum, mean, matmul, ...). Without --var every
name is a scalar; with --var every name must be declared. A non-scalar expression is summed."""

_CHECK_EXAMPLES = """examples:
  symgrad check model.py:loss --inputs 5x3 3
  symgrad check model.py:loss --inputs 5x3,3 --richardson --plot error.png

FUNC receives float64 tensors (standard normal, --seed) of the given shapes, all requiring grad,
and returns a tensor. Exit code 1 when a gradient disagrees with finite differences."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``symgrad`` command and its subcommands.

    >>> build_parser().parse_args(["diff", "x**2", "--at", "x=3"]).at
    ['x=3']
    """
    parser = _Parser(prog="symgrad", formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Symbolic-to-numeric differentiation with PyTorch's autograd API.",
                     epilog="examples:\n  symgrad demo\n  symgrad diff \"x**2 * exp(-x)\" --wrt x --at x=1.5\n"
                            "  symgrad check model.py:loss --inputs 5x3 3\n\n"
                            "Run symgrad COMMAND --help for each command's options.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo_parser = commands.add_parser(
        "demo", help="run the autograd tutorial and show the generated gradient code",
        description="Run PyTorch's autograd tutorial (one linear layer, BCE-with-logits loss) with symgrad, then "
                    "show its grad_fn chain, gradients, the NumPy code generated for its gradient and a "
                    "finite-difference check.", epilog="example: symgrad demo")
    demo_parser.set_defaults(handler=demo)
    _add_diff_parser(commands)
    _add_check_parser(commands)
    return parser


def _add_check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed of the random values (default 0)")
    p.add_argument("--eps", type=float, default=None,
                   help="finite-difference step (default 1e-6, or 1e-3 with --richardson)")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    p.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")
    p.add_argument("--richardson", action="store_true", help="extrapolate central differences at eps and eps/2")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _add_diff_parser(commands) -> None:
    p = commands.add_parser("diff", help="differentiate an expression",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="Differentiate EXPR, evaluate it and its gradients at a point, optionally\n"
                                        "check them against finite differences.", epilog=_DIFF_EXAMPLES)
    p.add_argument("expression", metavar="EXPR", help="the expression, e.g. \"sum(sigmoid(x @ w + b))\"")
    p.add_argument("--wrt", metavar="VARS", help="comma-separated variables to differentiate by (default: all)")
    p.add_argument("--var", metavar="NAME=SHAPE", action="append", default=[],
                   help="declare a tensor variable, e.g. w=5x3 (repeatable); SHAPE 'scalar' for a scalar")
    p.add_argument("--at", metavar="NAME=VALUES", action="append", default=[],
                   help="values of a variable: one number, or all elements comma-separated (repeatable)")
    p.add_argument("--latex", action="store_true", help="also print the derivative formulas as LaTeX")
    p.add_argument("--code", action="store_true", help="also print the generated NumPy gradient code")
    p.add_argument("--check", action="store_true", help="check against finite differences (exit 1 on failure)")
    p.add_argument("--emit", metavar="FILE.py", help="write a stand-alone NumPy module (needs symgrad.compile)")
    _add_check_options(p)
    p.set_defaults(handler=diff)


def _add_check_parser(commands) -> None:
    p = commands.add_parser("check", help="check a Python function's gradients against finite differences",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="Load FILE.py, call FUNC on random float64 tensors of the given shapes and\n"
                                        "compare symgrad's gradients with finite differences.",
                            epilog=_CHECK_EXAMPLES)
    p.add_argument("target", metavar="FILE.py:FUNC", help="the file and the function in it")
    p.add_argument("--inputs", metavar="SHAPES", nargs="+", required=True,
                   help="one shape per argument: 5x3 3 (or 5x3,3); 'scalar' for a 0-d tensor")
    p.add_argument("--code", action="store_true", help="also print the generated gradient code that was checked")
    p.add_argument("--plot", metavar="FILE.png", help="write the error-versus-step plot (needs matplotlib)")
    p.add_argument("--gradcheck", action="store_true", help="also run symgrad.gradcheck (PyTorch's criterion)")
    _add_check_options(p)
    p.set_defaults(handler=check)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``symgrad`` console script and ``python -m symgrad``; returns the exit code.

    >>> main(["diff", "exp(2 * x)", "--at", "x=0"])
    <BLANKLINE>
    == Expression ===...
    df/dx = tensor(2.)
    0
    """
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="replace")  # never die on a terminal that cannot show '∂'
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    prog = f"symgrad {args.command}"
    try:
        return args.handler(args)
    except (UsageError, expr.ExpressionError, expr.EvaluationError) as error:
        kind = "invalid expression: " if isinstance(error, expr.ExpressionError) else ""
        print(f"{prog}: error: {kind}{error}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - never a traceback: one line, and a way to see more
        if os.environ.get("SYMGRAD_DEBUG"):
            raise
        print(f"{prog}: error: {type(error).__name__}: {_one_line(error)} (set SYMGRAD_DEBUG=1 for a traceback)",
              file=sys.stderr)
    return EXIT_USAGE
