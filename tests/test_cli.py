"""The installed ``symgrad`` command, run in subprocesses: demo, diff, check, errors and injection attempts.

Every command of this file runs once, in parallel, in a module-scoped
fixture (a subprocess costs about half a second, mostly importing SymPy);
the tests then read the results.  Every run has a timeout, so a command that
hangs fails the test instead of the test run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import symgrad
from symgrad import cli, expr

TIMEOUT = 60

MODEL = '''\
import symgrad

def loss(w, b):
    x = symgrad.ones(5, dtype=symgrad.float64)
    return symgrad.nn.functional.binary_cross_entropy_with_logits(symgrad.matmul(x, w) + b,
                                                                  symgrad.zeros(3, dtype=symgrad.float64))

def raises(x):
    raise ValueError("bad input\\nsecond line")

def not_a_tensor(x):
    return 3

NOT_CALLABLE = 1
'''


def _script() -> str:
    """The installed ``symgrad`` console script of this interpreter's environment."""
    candidate = Path(sysconfig.get_path("scripts")) / ("symgrad.exe" if os.name == "nt" else "symgrad")
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("symgrad")
    assert found, "the symgrad console script is not installed (pip install -e .)"
    return found


# ------------------------------------------------------------ the runs

def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


# (expression, options, expected gradients as a function of the point's arrays)
DIFFS = {
    "x**2 exp(-x)": ("x**2 * exp(-x)", ["--at", "x=1.5"], lambda x: {"x": (2 * x - x ** 2) * np.exp(-x)}),
    "tanh(x) x": ("tanh(x) * x", ["--at", "x=0.7"], lambda x: {"x": np.tanh(x) + x * (1 - np.tanh(x) ** 2)}),
    "sigmoid": ("sigmoid(x)", ["--at", "x=-3"], lambda x: {"x": _sigmoid(x) * (1 - _sigmoid(x))}),
    "two scalars": ("x * y + y ** 3", ["--wrt", "x,y", "--at", "x=2", "--at", "y=-1"],
                    lambda x, y: {"x": y, "y": x + 3 * y ** 2}),
    "rpow": ("2 ** x", ["--at", "x=1.5"], lambda x: {"x": np.log(2) * 2 ** x}),
    "pow tensor": ("x ** y", ["--at", "x=1.5", "--at", "y=2.5"],
                   lambda x, y: {"x": y * x ** (y - 1), "y": x ** y * np.log(x)}),
    "implicit scalars wrt one": ("a * b - a / b", ["--wrt", "a", "--seed", "3"], lambda a, b: {"a": b - 1 / b}),
    "tutorial-like": ("sum(sigmoid(x @ w + b))", ["--var", "x=5", "--var", "w=5x3", "--var", "b=3", "--wrt", "w,b"],
                      lambda x, w, b: {"w": np.outer(x, _sigmoid(x @ w + b) * (1 - _sigmoid(x @ w + b))),
                                       "b": _sigmoid(x @ w + b) * (1 - _sigmoid(x @ w + b))}),
    "mean tanh": ("mean(tanh(w) * w)", ["--var", "w=2x3", "--at", "w=0.5"],
                  lambda w: {"w": (np.tanh(w) + w * (1 - np.tanh(w) ** 2)) / 6}),
    "dot": ("dot(u, v)", ["--var", "u=3", "--var", "v=3", "--at", "u=1,2,3", "--at", "v=4,5,6"],
            lambda u, v: {"u": v, "v": u}),
    "sum exp": ("sum(exp(x))", ["--var", "x=4", "--at", "x=0,1,2,3"], lambda x: {"x": np.exp(x)}),
    "bce": ("binary_cross_entropy_with_logits(z, y)", ["--var", "z=3", "--var", "y=3", "--at", "y=0,1,0",
                                                       "--wrt", "z"],
            lambda z, y: {"z": (_sigmoid(z) - y) / 3}),
    "quadratic form": ("x @ A @ x", ["--var", "x=3", "--var", "A=3x3", "--wrt", "x"],
                       lambda x, a: {"x": (a + a.T) @ x}),
    "vector valued": ("sigmoid(x)", ["--var", "x=3"], lambda x: {"x": _sigmoid(x) * (1 - _sigmoid(x))}),
    "keyword dim": ("sum(x * x, dim=0)", ["--var", "x=2x3"], lambda x: {"x": 2 * x}),
    "permute": ("sum(permute(w, (1, 0)) @ v)", ["--var", "w=2x3", "--var", "v=2"],
                lambda w, v: {"w": np.outer(v, np.ones(3)), "v": w.sum(1)}),
}

ERRORS = {
    # name: (arguments, a piece of the one-line message)
    "syntax": (["diff", "x +"], "invalid expression: invalid syntax"),
    "unknown function": (["diff", "foo(x)"], "invalid expression: unknown function 'foo'"),
    "shape mismatch": (["diff", "x @ w", "--var", "x=4", "--var", "w=5x3"],
                       "x @ w: mat1 and mat2 shapes cannot be multiplied (1x4 and 5x3)"),
    "broadcast mismatch": (["diff", "sum(x + y)", "--var", "x=3", "--var", "y=4"],
                           "The size of tensor a (3) must match the size of tensor b (4)"),
    "undeclared in expression": (["diff", "x + y", "--var", "x=3"], "undeclared variable 'y'"),
    "undeclared in --wrt": (["diff", "x", "--wrt", "z"], "undeclared variable 'z' in --wrt"),
    "undeclared in --at": (["diff", "x", "--at", "z=1"], "undeclared variable 'z' in --at"),
    "bad shape": (["diff", "x", "--var", "x=5q"], "bad shape '5q' for --var x"),
    "zero dimension": (["diff", "x", "--var", "x=0"], "is out of range"),
    "huge shape": (["diff", "sum(x)", "--var", "x=100000x100000"], "is out of range"),
    "declared twice": (["diff", "x", "--var", "x=3", "--var", "x=2"], "--var x is declared twice"),
    "function as variable": (["diff", "exp", "--var", "exp=3"], "'exp' is the name of a function"),
    "--var syntax": (["diff", "x", "--var", "x"], "--var expects NAME=VALUE"),
    "--at not numbers": (["diff", "x", "--at", "x=abc"], "--at x: 'abc' is not a list of numbers"),
    "--at count": (["diff", "sum(x)", "--var", "x=3", "--at", "x=1,2"], "2 values given for shape 3"),
    "--at nan": (["diff", "x", "--at", "x=nan"], "values must be finite numbers"),
    "no variables": (["diff", "2 + 3"], "the expression has no variables"),
    "evaluation": (["diff", "sum(x, dim=3)", "--var", "x=2x2"], "sum(x, dim=3): Dimension out of range"),
    "--emit not .py": (["diff", "x", "--emit", "out.txt"], "--emit writes a Python module: the path must end with .py"),
    "too many to check": (["diff", "sum(x)", "--var", "x=100x100", "--check"], "is too many"),
    "unknown option": (["diff", "x", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    "missing expression": (["diff"], "the following arguments are required: EXPR"),
    "unknown command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "check: no file": (["check", "missing.py:f", "--inputs", "3"], "no Python file 'missing.py'"),
    "check: no colon": (["check", "model.py", "--inputs", "3"], "expected FILE.py:FUNCTION"),
    "check: no function": (["check", "model.py:nope", "--inputs", "3"], "model.py has no function 'nope'"),
    "check: not callable": (["check", "model.py:NOT_CALLABLE", "--inputs", "3"], "has no function 'NOT_CALLABLE'"),
    "check: raises": (["check", "model.py:raises", "--inputs", "3"], "raises raised ValueError: bad input second line"),
    "check: not a tensor": (["check", "model.py:not_a_tensor", "--inputs", "3"], "raised TypeError"),
    "check: wrong arity": (["check", "model.py:loss", "--inputs", "5x3"], "missing 1 required positional argument"),
    "check: bad shape": (["check", "model.py:loss", "--inputs", "5y3", "3"], "bad shape '5y3' for --inputs"),
    "check: no inputs": (["check", "model.py:loss"], "the following arguments are required: --inputs"),
}
# each kind of error runs through the installed script; the other variants run in process (same code)
SUBPROCESS_ERRORS = {"syntax", "unknown function", "shape mismatch", "undeclared in expression", "bad shape",
                     "--at not numbers", "evaluation", "--emit not .py", "--latex", "unknown option", "check: no file",
                     "check: raises"}
if not hasattr(symgrad, "grad_formula"):
    ERRORS["--latex"] = (["diff", "x", "--latex"], "--latex is not available yet: it needs symgrad.grad_formula")

MARKER = "INJECTED"  # a file any executed injection would create in the working directory
INJECTIONS = [
    f"__import__('os').system('touch {MARKER}')",
    "__import__('os')",
    f"open('{MARKER}', 'w')",
    f"exec(\"open('{MARKER}', 'w')\")",
    "x.__class__.__bases__[0].__subclasses__()",
    f"lambda: open('{MARKER}', 'w')",
    f"[open('{MARKER}', 'w') for c in 'ab']",
    f"f'{{open(\"{MARKER}\", \"w\")}}'",
    "globals()['__builtins__']",
    f"x if open('{MARKER}', 'w') else x",
    "(y := __import__('os'))",
    "exp(*[x])",
    f"sum(x, dim=__import__('os').system('touch {MARKER}'))",
    "x ** 9 ** 9",
    "x * 9 ** 9 ** 9 ** 9",
    "(" * 5000 + "x" + ")" * 5000,
    "-" * 1500 + "x",
    "x" + " + x" * 3000,
    "sum(" * 100 + "x" + ")" * 100,
    f"x; open('{MARKER}', 'w')",
    f"x\nopen('{MARKER}', 'w')",
    "\u0435xp(x)",
]
OPTION_INJECTIONS = [
    ["diff", "x", "--at", f"x=__import__('os').system('touch {MARKER}')"],
    ["diff", "x", "--var", "x=__import__('os')"],
]


def _commands() -> dict[str, list[str]]:
    commands = {"demo": ["demo"], "help": ["--help"], "diff help": ["diff", "--help"],
                "check help": ["check", "--help"], "no command": []}
    commands.update({f"diff {name}": ["diff", text, *options, "--json"] for name, (text, options, _) in DIFFS.items()})
    commands.update({
        "diff text": ["diff", "sum(sigmoid(x @ w + b))", "--var", "x=5", "--var", "w=5x3", "--var", "b=3",
                      "--wrt", "w,b", "--check", "--code"],
        "check fails: large step": ["diff", "x**3", "--at", "x=2", "--check", "--eps", "0.5"],
        "check fails: strict tolerance": ["diff", "sum(exp(x))", "--var", "x=3", "--check", "--atol", "0",
                                          "--rtol", "1e-15", "--json"],
        "check kink": ["diff", "relu(x)", "--at", "x=0", "--check"],
        "check richardson": ["diff", "x**3", "--at", "x=2", "--check", "--eps", "0.5", "--richardson"],
        "check model": ["check", "model.py:loss", "--inputs", "5x3", "3", "--code", "--gradcheck"],
        "check model json": ["check", "model.py:loss", "--inputs", "5x3,3", "--json"],
        "check plot": ["check", "model.py:loss", "--inputs", "5x3", "3", "--plot", "error.png"],
        "diff emit": ["diff", "sum(log(1 + exp(x)) * w)", "--var", "x=3", "--var", "w=3", "--emit", "softplus.py"],
    })
    commands.update({f"error {name}": args for name, (args, _) in ERRORS.items() if name in SUBPROCESS_ERRORS})
    commands.update({f"injection {i}": ["diff", text] for i, text in enumerate(INJECTIONS)})
    commands.update({f"option injection {i}": args for i, args in enumerate(OPTION_INJECTIONS)})
    return commands


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every command of this file, run once with the installed script (in parallel)."""
    workdir = tmp_path_factory.mktemp("cli")
    (workdir / "model.py").write_text(MODEL)
    script = _script()
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}

    def run(args):
        return subprocess.run([script, *args], capture_output=True, text=True, encoding="utf-8", cwd=workdir,
                              timeout=TIMEOUT, check=False, env=env)

    commands = _commands()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(commands, pool.map(run, commands.values())))
    results["workdir"] = workdir
    return results


def _one_error_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---------------------------------------------------------------- demo

def test_demo_has_every_section(runs):
    result = runs["demo"]
    assert result.returncode == 0, result.stderr
    out = result.stdout
    headings = ["PyTorch's autograd tutorial, run with symgrad", "The grad_fn chain of loss", "Gradients",
                "The NumPy code symgrad generated for loss.backward()",
                "Finite-difference check of the gradients (float64)"]
    positions = [out.index(f"== {h}") for h in headings]
    assert positions == sorted(positions)
    assert "loss = tensor(0.6819, grad_fn=<BinaryCrossEntropyWithLogitsBackward0>)" in out
    assert "│  │  └─ MmBackward0" in out and "AccumulateGrad  -> w.grad, shape [5, 3]" in out
    assert "d loss / d b = b.grad =\ntensor([0.2661, 0.1179, 0.0027])" in out
    assert "def backward(" in out
    assert "OK: 18 of 18 derivatives agree with finite differences" in out
    assert result.stderr == ""


def test_help_for_every_command_has_examples(runs):
    for name in ("help", "diff help", "check help"):
        assert runs[name].returncode == 0
        assert "example" in runs[name].stdout
    assert "symgrad diff \"sum(sigmoid(x @ w + b))\" --var x=5" in runs["diff help"].stdout
    assert runs["no command"].returncode == 2 and "usage: symgrad" in runs["no command"].stdout


# ---------------------------------------------------------------- diff

@pytest.mark.parametrize("name", list(DIFFS))
def test_diff_gradients_match_the_math(runs, name):
    result = runs[f"diff {name}"]
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    point = {k: np.asarray(v, dtype=float) for k, v in data["point"].items()}
    expected = DIFFS[name][2](*point.values())
    assert set(data["gradients"]) == set(expected)
    for variable, gradient in expected.items():
        np.testing.assert_allclose(data["gradients"][variable], gradient, rtol=1e-10, atol=1e-12)
    assert data["derivative"]["text"]


def test_diff_reports_values_shapes_and_notes(runs):
    data = json.loads(runs["diff vector valued"].stdout)
    assert data["variables"] == {"x": [3]} and len(data["value"]) == 3
    assert data["note"] == "f has shape 3: the derivatives shown are those of sum(f)"
    dot = json.loads(runs["diff dot"].stdout)
    assert dot["value"] == 32.0 and dot["point"] == {"u": [1.0, 2.0, 3.0], "v": [4.0, 5.0, 6.0]}
    implicit = json.loads(runs["diff implicit scalars wrt one"].stdout)
    assert implicit["variables"] == {"a": [], "b": []} and implicit["wrt"] == ["a"]


def test_diff_text_output(runs):
    result = runs["diff text"]
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("Expression", "Point", "Derivative", "Gradients at the point", "Finite-difference check"):
        assert f"== {heading}" in out
    assert "f = sum(sigmoid(x @ w + b))" in out
    assert "variables: x: 5, w: 5x3, b: 3; derivatives with respect to w, b" in out
    assert "def backward(" in out
    assert "OK: 18 of 18 derivatives agree with finite differences" in out


def test_diff_is_seeded(runs):
    first = json.loads(runs["diff tutorial-like"].stdout)["point"]
    symgrad.manual_seed(0)  # the default --seed
    x = symgrad.randn(5, dtype=symgrad.float64)
    np.testing.assert_array_equal(first["x"], x.numpy())


def test_check_fails_where_it_must(runs):
    big_step = runs["check fails: large step"]
    assert big_step.returncode == 1, big_step.stderr
    assert "FAILED: 0 of 1 derivatives agree with finite differences, 1 disagree" in big_step.stdout
    assert "x      ()     0.5   2.50e-01" in big_step.stdout  # h² = 0.25: truncation error, not a kink
    strict = runs["check fails: strict tolerance"]
    assert strict.returncode == 1 and json.loads(strict.stdout)["check"]["ok"] is False
    kink = runs["check kink"]
    assert kink.returncode == 0 and "ok (kink)" in kink.stdout
    assert "kink at x: left derivative 0, right derivative 1, symbolic 0" in kink.stdout
    richardson = runs["check richardson"]
    assert richardson.returncode == 0 and "Richardson-extrapolated" in richardson.stdout


def test_check_fails_on_a_wrong_derivative_in_process(monkeypatch, capsys):
    """A function with a deliberately wrong derivative, injected into the whitelist: --check exits 1."""
    import sympy as sp

    from symgrad.ops.registry import REGISTRY, ElementwiseOp
    from symgrad.symbolic.nodes import elementwise
    from symgrad.tensor import apply

    class Wrong(ElementwiseOp):
        def lower(self, inputs, attrs, dtype):
            return elementwise(2 * self.kernel(attrs), inputs, dtype.numpy)

    op = Wrong("test_cli_wrong_sin", sp.sin, "SinBackward0", float_result=True)
    try:
        table = {**expr.functions(), "wrongsin": lambda t: apply(op, (t,))}
        monkeypatch.setattr(expr, "functions", lambda: table)
        assert cli.main(["diff", "wrongsin(x)", "--at", "x=0.5", "--check"]) == 1
        assert "FAILED: 0 of 1 derivatives agree" in capsys.readouterr().out
        assert cli.main(["diff", "sigmoid(x)", "--at", "x=0.5", "--check"]) == 0
    finally:
        REGISTRY.pop(op.name, None)


def test_diff_emit_writes_a_module_that_runs_without_symgrad(runs):
    result = runs["diff emit"]
    assert result.returncode == 0, result.stderr
    assert "wrote softplus.py" in result.stdout
    module = runs["workdir"] / "softplus.py"
    assert "def value_and_grad(x, w):" in module.read_text()
    script = ("import sys, importlib.util\n"
              "sys.modules['symgrad'] = None\n"
              f"spec = importlib.util.spec_from_file_location('m', {str(module)!r})\n"
              "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
              "import numpy as np\n"
              "value, gx, gw = m.value_and_grad(np.array([0., 1., 800.]), np.array([1., 2., 3.]))\n"
              "print(float(value), gx.tolist(), gw.tolist())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    out = out.split(" ", 1)
    x, w = np.array([0.0, 1.0, 800.0]), np.array([1.0, 2.0, 3.0])
    softplus = np.logaddexp(0, x)
    assert float(out[0]) == pytest.approx(float((softplus * w).sum()), rel=1e-15)
    gx, gw = json.loads("[" + out[1].replace("] [", "], [") + "]")
    np.testing.assert_allclose(gx, w / (1 + np.exp(-x)), rtol=1e-15)  # finite at 800: the stable rewrite
    np.testing.assert_allclose(gw, softplus, rtol=1e-15)


# ---------------------------------------------------------------- check

def test_check_command(runs):
    result = runs["check model"]
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Gradient check of loss: central differences in float64")
    assert "OK: 18 of 18 derivatives agree with finite differences" in out
    assert "== The generated NumPy code that was checked" in out and "def backward(" in out
    assert "gradcheck (PyTorch's criterion): passed" in out
    data = json.loads(runs["check model json"].stdout)
    assert data["ok"] is True and [i["shape"] for i in data["inputs"]] == [[5, 3], [3]]


def test_check_plot(runs):
    result = runs["check plot"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "needs matplotlib" in _one_error_line(result)
        return
    assert result.returncode == 0, result.stderr
    assert (runs["workdir"] / "error.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("name", list(ERRORS))
def test_every_error_is_one_line_with_exit_code_2(runs, name, monkeypatch, capsys):
    if name in SUBPROCESS_ERRORS:
        line = _one_error_line(runs[f"error {name}"])
    else:
        monkeypatch.chdir(runs["workdir"])
        try:
            code = cli.main(ERRORS[name][0])
        except SystemExit as exit_:  # argparse's errors
            code = exit_.code
        captured = capsys.readouterr()
        line = _one_error_line(subprocess.CompletedProcess([], code, captured.out, captured.err))
    assert line.startswith("symgrad")
    assert ERRORS[name][1] in line


@pytest.mark.parametrize("index", range(len(INJECTIONS)))
def test_injection_attempts_are_refused_without_running(runs, index):
    line = _one_error_line(runs[f"injection {index}"])
    assert line.startswith("symgrad diff: error: ")
    assert not (runs["workdir"] / MARKER).exists()


@pytest.mark.parametrize("index", range(len(OPTION_INJECTIONS)))
def test_injection_through_options_is_refused(runs, index):
    _one_error_line(runs[f"option injection {index}"])
    assert not (runs["workdir"] / MARKER).exists()


def test_python_m_symgrad_runs_the_same_command():
    result = subprocess.run([sys.executable, "-m", "symgrad", "diff", "__import__('os')"], capture_output=True,
                            text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("symgrad diff: error: invalid expression: names starting with '_' are not "
                                     "allowed: '__import__' (column 1)")
