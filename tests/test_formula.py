"""Formulas (``symgrad.formula``, ``symgrad.grad_formula``): right, readable, and in every notation.

What is checked, and against what:

* scalar code: ``grad_formula`` equals ``sympy.diff`` of the same function
  written in SymPy (``simplify(a - b) == 0``), for 30+ functions, and again
  for second derivatives taken through ``create_graph=True``;
* tensor programs (the tutorial, matmul chains, broadcasting, reductions,
  softmax/cross-entropy, MLPs …): the tensor-level formula a person reads,
  evaluated with NumPy through ``lambdify`` of ``.sympy()``, reproduces the
  value and the gradient symgrad computes; and the ``elementwise=True``
  expansion equals ``sympy.diff`` of the element-by-element forward formula
  (brute force against the tensor-level reverse mode);
* LaTeX: every equation parses with matplotlib's mathtext (skipped when
  matplotlib is absent), and a few are compared with strings written by hand;
* names: ``name=``, the caller's variables, ``t0, t1, …``, odd names.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

import symgrad
from symgrad.formula import Formula
from symgrad.symbolic import relu, sigmoid, softplus

F64 = symgrad.float64
X = sp.Symbol("x", real=True)


# ----------------------------------------------------------------- helpers


class _SymPyMath:
    """The math functions of the scalar table, on SymPy expressions."""

    exp, log, tanh = sp.exp, sp.log, sp.tanh
    sigmoid, relu, softplus = sigmoid, relu, softplus

    @staticmethod
    def sqrt(x):
        return sp.sqrt(x)


class _TensorMath:
    """The same functions on symgrad tensors."""

    exp, log, tanh, sigmoid, relu = symgrad.exp, symgrad.log, symgrad.tanh, symgrad.sigmoid, symgrad.relu

    @staticmethod
    def softplus(x):
        return symgrad.log(1 + symgrad.exp(x))

    @staticmethod
    def sqrt(x):
        return x ** 0.5


def _mathtext():
    mathtext = pytest.importorskip("matplotlib.mathtext")
    return mathtext.MathTextParser("path")


def assert_latex_parses(formula: Formula) -> None:
    """Every line parses as math; mathtext has no ``cases`` environment, so each case is parsed on its own."""
    parser = _mathtext()
    for_word = r"\text{for}\:"

    def cases(match) -> str:
        for row in match.group(1).split(r"\\"):
            for part in row.split("&"):
                if part.strip():
                    parser.parse("$" + part.replace(for_word, "") + "$")
        return "C"

    for line in formula.latex_lines():
        parser.parse("$" + re.sub(r"\\begin\{cases\}(.*?)\\end\{cases\}", cases, line) + "$")


def assert_same_expression(ours: sp.Expr, theirs: sp.Expr, symbols, at: dict) -> None:
    """Equal as expressions: exactly after expansion, else numerically at the recorded values ``at``
    and at random points (both sides are closed forms; masks like max's ``𝟙(u = ref)`` only at ``at``)."""
    difference = sp.expand(ours - theirs)
    if difference == 0:
        return
    points = [{s: sp.Float(float(at[s])) for s in symbols}]
    if not difference.has(sp.Eq):
        rng = np.random.default_rng(0)
        points += [{s: sp.Float(rng.uniform(0.2, 1.3)) for s in symbols} for _ in range(3)]
    for point in points:
        scale = 1 + abs(complex(theirs.xreplace(point).evalf(30)))
        assert abs(complex(difference.xreplace(point).evalf(30))) < 1e-12 * scale, (ours, theirs)


# ------------------------------------------------------------ scalar calculus

SCALAR_FUNCTIONS = [
    ("x**2", lambda x, m: x ** 2),
    ("x**3 - 2x", lambda x, m: x ** 3 - 2 * x),
    ("1/x", lambda x, m: 1 / x),
    ("x**-2", lambda x, m: x ** -2),
    ("sqrt", lambda x, m: m.sqrt(x)),
    ("x**1.5", lambda x, m: x ** 1.5),
    ("exp", lambda x, m: m.exp(x)),
    ("log", lambda x, m: m.log(x)),
    ("tanh", lambda x, m: m.tanh(x)),
    ("sigmoid", lambda x, m: m.sigmoid(x)),
    ("relu", lambda x, m: m.relu(x)),
    ("x**2*exp(x)", lambda x, m: x ** 2 * m.exp(x)),
    ("tanh(x)*x**2", lambda x, m: m.tanh(x) * x ** 2),
    ("exp(x)/x", lambda x, m: m.exp(x) / x),
    ("log(x)/x", lambda x, m: m.log(x) / x),
    ("x*log(x) - x", lambda x, m: x * m.log(x) - x),
    ("exp(-x**2)", lambda x, m: m.exp(-(x ** 2))),
    ("exp(sin-like)", lambda x, m: m.exp(m.tanh(x))),
    ("tanh(exp(x))", lambda x, m: m.tanh(m.exp(x))),
    ("sigmoid(x)*(1-sigmoid(x))", lambda x, m: m.sigmoid(x) * (1 - m.sigmoid(x))),
    ("log(sigmoid(x))", lambda x, m: m.log(m.sigmoid(x))),
    ("log(1+exp(x))", lambda x, m: m.log(1 + m.exp(x))),
    ("x*sigmoid(x) (swish)", lambda x, m: x * m.sigmoid(x)),
    ("x*tanh(log(1+exp(x))) (mish)", lambda x, m: x * m.tanh(m.log(1 + m.exp(x)))),
    ("(x+1)/(x-3)", lambda x, m: (x + 1) / (x - 3)),
    ("1/(1+x**2)", lambda x, m: 1 / (1 + x ** 2)),
    ("(x**2+1)**3", lambda x, m: (x ** 2 + 1) ** 3),
    ("exp(x)*log(x)", lambda x, m: m.exp(x) * m.log(x)),
    ("x**x", lambda x, m: x ** x),
    ("2**x", lambda x, m: 2 ** x),
    ("relu(x-0.25)*x", lambda x, m: m.relu(x - 0.25) * x),
    ("tanh(x)/(1+exp(-x))", lambda x, m: m.tanh(x) / (1 + m.exp(-x))),
    ("log(x**2+1) - 0.5x", lambda x, m: m.log(x ** 2 + 1) - 0.5 * x),
    ("sigmoid(2x)*3", lambda x, m: m.sigmoid(2 * x) * 3),
]


def _exact(expr: sp.Expr) -> sp.Expr:
    """Python floats as the exact numbers symgrad keeps them as (1.5 -> 3/2)."""
    return sp.nsimplify(expr, rational=True)


def _scalar(value: float = 0.7):
    return symgrad.tensor(value, dtype=F64, requires_grad=True)


def test_there_are_thirty_scalar_functions():
    assert len(SCALAR_FUNCTIONS) >= 30


@pytest.mark.parametrize("label, f", SCALAR_FUNCTIONS, ids=[label for label, _ in SCALAR_FUNCTIONS])
def test_scalar_derivative_equals_sympy_diff(label, f):
    x = _scalar()
    y = f(x, _TensorMath)
    found = symgrad.grad_formula(y, x)
    expected = sp.diff(_exact(f(X, _SymPyMath)), X)
    assert sp.simplify(_exact(found.sympy()) - expected) == 0, (str(found), expected)
    # the formula's value is what backward computes
    (g,) = symgrad.autograd.grad(y, x)
    assert np.allclose(found.evaluate(), g.numpy())


SECOND_DERIVATIVES = [SCALAR_FUNCTIONS[i] for i in (0, 2, 6, 7, 8, 9, 11, 12, 13, 22, 25, 28)]


@pytest.mark.parametrize("label, f", SECOND_DERIVATIVES, ids=[label for label, _ in SECOND_DERIVATIVES])
def test_second_derivative_through_create_graph(label, f):
    x = _scalar()
    (dx,) = symgrad.autograd.grad(f(x, _TensorMath), x, create_graph=True)
    if dx.grad_fn is None:  # a constant first derivative (x**2 -> 2x still has one; guard anyway)
        pytest.skip("first derivative is constant")
    found = symgrad.grad_formula(dx, x)
    assert sp.simplify(_exact(found.sympy()) - sp.diff(_exact(f(X, _SymPyMath)), X, 2)) == 0, str(found)
    (g,) = symgrad.autograd.grad(dx, x)
    assert np.allclose(found.evaluate(), g.numpy())


def test_scalar_code_reads_as_plain_calculus():
    x = _scalar(2.0)
    f = x.tanh() * x ** 2
    assert str(symgrad.formula(f)) == "f = x²·tanh(x)"
    assert str(symgrad.grad_formula(f, x)) == "∂f/∂x = x²·(1 − tanh(x)²) + 2·x·tanh(x)"
    g = x.exp() / x
    assert str(symgrad.grad_formula(g, x)) == "∂g/∂x = (x − 1)·exp(x)/x²"
    s = x.sigmoid()
    assert str(symgrad.grad_formula(s, x)) == "∂s/∂x = (1 − σ(x))·σ(x)"
    r = (x - 0.25).relu()
    assert str(symgrad.grad_formula(r, x)) == "∂r/∂x = 𝟙(x − 0.25 > 0)"


def test_the_issue_example():
    x = _scalar(2.0)
    f = symgrad.sin(x) * x ** 2
    assert str(symgrad.grad_formula(f, x)) == "∂f/∂x = x²·cos(x) + 2·x·sin(x)"


def test_second_derivative_prints_the_same_way():
    x = _scalar(2.0)
    y = x ** 3
    (dx,) = symgrad.autograd.grad(y, x, create_graph=True)
    assert str(symgrad.formula(dx)) == "dx = 3·x²"
    assert str(symgrad.grad_formula(dx, x)) == "∂dx/∂x = 6·x"


# ------------------------------------------------------------------ tutorial


def _tutorial():
    symgrad.manual_seed(0)
    x = symgrad.ones(5)
    y = symgrad.zeros(3)
    w = symgrad.randn(5, 3, requires_grad=True)
    b = symgrad.randn(3, requires_grad=True)
    z = symgrad.matmul(x, w) + b
    loss = symgrad.nn.functional.binary_cross_entropy_with_logits(z, y)
    return x, y, w, b, z, loss


def test_tutorial_formulas_read_like_the_math():
    x, y, w, b, z, loss = _tutorial()
    assert str(symgrad.formula(loss)) == "loss = mean(softplus(z) − y ⊙ z)\n  where z = x·w + b"
    grads = symgrad.grad_formula(loss, [w, b])
    assert str(grads) == ("∂loss/∂w = x ⊗ (σ(z) − y)/3\n"
                          "∂loss/∂b = (σ(z) − y)/3\n"
                          "  where z = x·w + b")
    assert str(symgrad.grad_formula(loss, w)) == "∂loss/∂w = x ⊗ (σ(z) − y)/3\n  where z = x·w + b"
    assert str(symgrad.grad_formula(loss, b, expand=True)) == "∂loss/∂b = (σ(x·w + b) − y)/3"
    assert str(grads[1]) == "∂loss/∂b = (σ(z) − y)/3\n  where z = x·w + b"


def test_tutorial_latex_and_pretty():
    x, y, w, b, z, loss = _tutorial()
    grads = symgrad.grad_formula(loss, [w, b])
    assert grads.latex_lines() == [
        r"\frac{\partial \mathit{loss}}{\partial w} = \frac{x \otimes \left(\sigma\left(z\right) - y\right)}{3}",
        r"\frac{\partial \mathit{loss}}{\partial b} = \frac{\sigma\left(z\right) - y}{3}",
        r"z = x \cdot w + b",
    ]
    assert grads.latex().startswith(r"\begin{aligned}\frac{\partial \mathit{loss}}{\partial w} &= ")
    assert r"\text{where}\quad z &= x \cdot w + b\end{aligned}" in grads.latex()
    assert grads._repr_latex_() == f"$\\displaystyle {grads.latex()}$"
    assert symgrad.formula(loss).latex_lines()[0] == (
        r"\mathit{loss} = \operatorname{mean}\left(\operatorname{softplus}\left(z\right) - y \odot z\right)")
    assert grads[1].pretty() == ("∂loss   σ(z) - y\n"
                                 "───── = ────────\n"
                                 " ∂b        3    \n"
                                 "  where z = x⋅w + b")
    assert "-----" in grads[1].pretty(use_unicode=False)
    assert_latex_parses(grads)
    assert_latex_parses(symgrad.formula(loss))


def test_tutorial_formulas_evaluate_to_what_backward_computes():
    x, y, w, b, z, loss = _tutorial()
    forward = symgrad.formula(loss)
    grads = symgrad.grad_formula(loss, [w, b])
    assert np.allclose(forward.evaluate(), loss.item(), rtol=1e-6)
    loss.backward()
    gw, gb = grads.evaluate()
    assert np.allclose(gw, w.grad.numpy(), rtol=1e-5) and np.allclose(gb, b.grad.numpy(), rtol=1e-5)
    # the same through lambdify of .sympy(), by hand
    expression = grads[0].sympy()
    symbols = sorted(expression.free_symbols, key=lambda s: s.name)
    assert [s.name for s in symbols] == ["b", "w", "x", "y"]
    value = sp.lambdify(symbols, expression, "numpy")(b.detach().numpy(), w.detach().numpy(), x.numpy(), y.numpy())
    assert np.allclose(value, w.grad.numpy(), rtol=1e-5)


def test_tutorial_elementwise_expansion_equals_sympy_diff():
    x, y, w, b, z, loss = _tutorial()
    expanded = symgrad.formula(loss, elementwise=True).sympy()
    grads = symgrad.grad_formula(loss, [w, b], elementwise=True)
    dw, db = grads.sympy()
    assert dw.shape == (5, 3) and db.shape == (3, 1)
    w01, b2 = sp.Symbol("w[0,1]", real=True), sp.Symbol("b[2]", real=True)
    assert sp.simplify(dw[0, 1] - sp.diff(expanded, w01)) == 0
    assert sp.simplify(db[2] - sp.diff(expanded, b2)) == 0
    for i in range(5):
        for j in range(3):
            assert sp.expand(dw[i, j] - sp.diff(expanded, sp.Symbol(f"w[{i},{j}]", real=True))) == 0
    assert str(db[2]) == "(-y[2] + sigmoid(b[2] + w[0,2]*x[0] + w[1,2]*x[1] + w[2,2]*x[2] + w[3,2]*x[3] + " \
                         "w[4,2]*x[4]))/3"
    loss.backward()
    gw, gb = grads.evaluate()
    assert np.allclose(gw, w.grad.numpy(), rtol=1e-5) and np.allclose(gb, b.grad.numpy(), rtol=1e-5)
    assert r"w_{0,0}" in sp.latex(dw) or "w_{0,0}" in grads.latex()


# ------------------------------------------------------------ tensor programs
# Each program builds its inputs with name= (the names survive the builder's
# frame) and returns (output, tensors to differentiate for, every tensor).


def _randn(*shape, name, grad=True):
    return symgrad.randn(*shape, dtype=F64, requires_grad=grad, name=name)


def matmul_chain():
    x = _randn(2, 3, name="x", grad=False)
    A = _randn(3, 3, name="A")
    B = _randn(3, 2, name="B")
    return (x @ A @ B).sum(), [A, B], locals()


def linear_regression():
    X = _randn(4, 2, name="X", grad=False)
    y = _randn(4, name="y", grad=False)
    w = _randn(2, name="w")
    b = _randn(1, name="b")
    return ((X @ w + b - y) ** 2).mean(), [w, b], locals()


def broadcast_outer():
    a = _randn(3, 1, name="a")
    c = _randn(2, name="c")
    return (a * c).sigmoid().sum(), [a, c], locals()


def reductions():
    m = _randn(2, 3, name="m")
    return (m.mean(0) ** 2).sum() + m.sum(1, keepdim=True).relu().sum() + m.mean(), [m], locals()


def softmax_cross_entropy():
    logits = _randn(2, 3, name="logits")
    target = symgrad.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64, name="target")
    e = logits.exp()
    p = e / e.sum(1, keepdim=True)
    return -(target * p.log()).sum() / 2, [logits], locals()


def log_sum_exp_loss():
    s = _randn(2, 3, name="s")
    t = symgrad.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=F64, name="t")
    return (s.exp().sum(1).log() - (s * t).sum(1)).mean(), [s], locals()


def mlp_tanh():
    X = _randn(2, 3, name="X", grad=False)
    W1 = _randn(3, 2, name="W1")
    b1 = _randn(2, name="b1")
    W2 = _randn(2, 1, name="W2")
    h = (X @ W1 + b1).tanh()
    return ((h @ W2) ** 2).mean(), [W1, b1, W2], locals()


def mlp_relu_bce():
    X = _randn(3, 2, name="X", grad=False)
    y = symgrad.tensor([1.0, 0.0, 1.0], dtype=F64, name="y")
    W = _randn(2, 2, name="W")
    v = _randn(2, name="v")
    logits = (X @ W).relu() @ v
    return symgrad.nn.functional.binary_cross_entropy_with_logits(logits, y), [W, v], locals()


def division_and_powers():
    u = _randn(3, name="u")
    v = _randn(3, name="v")
    return (u / (1 + v ** 2)).sum() + (u ** 3).mean() + (2.0 / (v.exp() + 1)).sum(), [u, v], locals()


def quadratic_form():
    A = _randn(3, 3, name="A")
    v = _randn(3, name="v")
    return v @ A @ A.T @ v + symgrad.dot(A.mv(v), v), [A, v], locals()


def shape_ops():
    M = _randn(2, 3, name="M")
    N = _randn(3, 2, name="N")
    P = _randn(3, 2, 1, name="P")
    t = M.unsqueeze(0).permute(2, 1, 0) * P
    return (t.squeeze(2) * N).sum() + (M.T * N).sigmoid().sum(), [M, N, P], locals()


def scalar_constants():
    w = _randn(2, 2, name="w")
    return ((2.0 * w.sigmoid() + 0.5).log() * 0.1 - w / 4).sum(), [w], locals()


def library_softmax():
    logits = _randn(2, 3, name="logits")
    target = symgrad.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64, name="target")
    return -(target * symgrad.log_softmax(logits, 1)).sum() + symgrad.logsumexp(logits, 1).mean(), [logits], locals()


def trigonometry_and_maximum():
    u = _randn(3, name="u")
    return (symgrad.sin(u) * u ** 2).sum() + symgrad.cos(u).amax() + u.abs().max(), [u], locals()


PROGRAMS = [matmul_chain, linear_regression, broadcast_outer, reductions, softmax_cross_entropy, log_sum_exp_loss,
            mlp_tanh, mlp_relu_bce, division_and_powers, quadratic_form, shape_ops, scalar_constants,
            library_softmax, trigonometry_and_maximum]


def test_there_are_ten_tensor_programs():
    assert len(PROGRAMS) >= 10


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_tensor_formula_evaluates_to_the_computed_values(program):
    symgrad.manual_seed(3)
    out, wrt, _ = program()
    forward = symgrad.formula(out)
    assert np.allclose(forward.evaluate(), out.item())
    grads = symgrad.grad_formula(out, wrt)
    computed = symgrad.autograd.grad(out, wrt)
    for formula_value, g, t in zip(grads.evaluate() if len(wrt) > 1 else [grads.evaluate()], computed, wrt):
        assert formula_value.shape == tuple(t.shape)
        assert np.allclose(formula_value, g.numpy()), program.__name__
    assert_latex_parses(grads)
    assert_latex_parses(forward)
    if program is not shape_ops:  # which has a genuinely 3-D (3, 2, 1) parameter
        assert "reshape" not in str(grads), str(grads)  # size-1 reshapes are not shown


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_elementwise_expansion_equals_sympy_diff(program):
    symgrad.manual_seed(3)
    out, wrt, _ = program()
    expanded = symgrad.formula(out, elementwise=True).sympy()
    grads = symgrad.grad_formula(out, wrt, elementwise=True)
    results = grads.sympy() if len(wrt) > 1 else (grads.sympy(),)
    for t, result, name in zip(wrt, results, (t._name for t in wrt)):
        elements = np.asarray(result.tolist(), dtype=object).reshape(tuple(t.shape))
        for index in np.ndindex(*t.shape):
            symbol = sp.Symbol(f"{name}[{','.join(map(str, index))}]", real=True)
            assert_same_expression(elements[index], sp.diff(expanded, symbol), expanded.free_symbols, grads.values)
    values = grads.evaluate() if len(wrt) > 1 else [grads.evaluate()]
    for value, g in zip(values, symgrad.autograd.grad(out, wrt)):
        assert np.allclose(value, g.numpy())


def test_mlp_formula_reads_layer_by_layer():
    symgrad.manual_seed(0)
    X = _randn(4, 3, name="X", grad=False)
    W1, b1 = _randn(3, 5, name="W1"), _randn(5, name="b1")
    W2, b2 = _randn(5, 2, name="W2"), _randn(2, name="b2")
    h = (X @ W1 + b1).tanh()
    out = h @ W2 + b2
    loss = (out ** 2).mean()
    assert str(symgrad.formula(loss)) == ("loss = mean(out²)\n"
                                          "  where out = h·W2 + b2\n"
                                          "        h = tanh(X·W1 + b1)")
    assert str(symgrad.grad_formula(loss, [W1, b1, W2, b2])) == (
        "∂loss/∂W1 = Xᵀ·((1 − h²) ⊙ (out·W2ᵀ))/4\n"
        "∂loss/∂b1 = sum₀((1 − h²) ⊙ (out·W2ᵀ))/4\n"
        "∂loss/∂W2 = hᵀ·out/4\n"
        "∂loss/∂b2 = sum₀(out)/4\n"
        "  where h = tanh(X·W1 + b1)\n"
        "        out = h·W2 + b2")


def test_notation_for_products_transposes_and_sums():
    symgrad.manual_seed(0)
    A, v = _randn(3, 3, name="A"), _randn(3, name="v")
    q = v @ A @ A.T @ v
    assert str(symgrad.formula(q)) == "q = v·A·Aᵀ·v"
    assert str(symgrad.grad_formula(q, [A, v])) == "∂q/∂A = 2·v ⊗ (v·A)\n∂q/∂v = 2·v·A·Aᵀ"
    a, c = _randn(4, 1, name="a"), _randn(3, name="c")
    s = (a * c).sigmoid().sum()
    assert str(symgrad.grad_formula(s, c)) == "∂s/∂c = sum₀(a ⊙ (1 − σ(a ⊙ c)) ⊙ σ(a ⊙ c))"
    m = _randn(3, 4, name="m")
    r = m.sum(1, keepdim=True).relu().sum()
    assert str(symgrad.formula(r)) == "r = sum(relu(sum₁(m)))"
    assert str(symgrad.grad_formula(r, m)) == "∂r/∂m = 𝟙(sum₁(m) > 0)"


# ---------------------------------------------------------- options, names


def test_expand_and_max_depth():
    x, y, w, b, z, loss = _tutorial()
    assert str(symgrad.formula(loss, expand=True)) == "loss = mean(softplus(x·w + b) − y ⊙ (x·w + b))"
    assert str(symgrad.formula(loss, expand=["z"])) == str(symgrad.formula(loss, expand=True))
    assert str(symgrad.formula(loss, expand=True, max_depth=1)) == (
        "loss = mean(u2)\n"
        "  where u2 = softplus(b + u1) − y ⊙ (b + u1)\n"
        "        u1 = x·w")
    deep = symgrad.formula(loss, expand=True, max_depth=2)
    assert len(deep.definitions) == 1
    assert np.allclose(deep.evaluate(), loss.item())
    assert deep.sympy(expand=False).free_symbols == {sp.Symbol("u1", real=True)}


def test_names_from_name_variables_and_defaults():
    symgrad.manual_seed(0)
    w = symgrad.randn(2, requires_grad=True, name="weight")
    v = symgrad.randn(2, requires_grad=True)
    out = (w * v).sum() + (symgrad.randn(2, requires_grad=True) ** 2).sum()
    assert str(symgrad.formula(out)) == "out = sum(t0²) + sum(v ⊙ weight)"


def test_odd_names_are_kept_and_escaped():
    lr = symgrad.tensor(0.1, name="learning rate")
    w = symgrad.ones(2, requires_grad=True, name="W₁")
    k = symgrad.ones(2, requires_grad=True, name="50%_{x}")
    loss = ((w * lr) ** 2).sum() + (k * 2).sum()
    f = symgrad.formula(loss)
    assert str(f) == "loss = sum(W₁²·learning rate²) + 2·sum(50%_{x})"
    assert r"\mathrm{learning\ rate}" in f.latex()
    assert r"\mathrm{50\%\_\{x\}}" in f.latex()
    assert_latex_parses(f)
    assert np.allclose(f.evaluate(), loss.item())  # lambdify copes with the names
    assert symgrad.grad_formula(loss, k).evaluate().tolist() == [2.0, 2.0]


def test_duplicate_names_get_suffixes():
    a = symgrad.ones(2, requires_grad=True, name="w")
    b = symgrad.ones(2, requires_grad=True, name="w")
    f = symgrad.formula((a * b).sum())
    assert str(f) == "out = sum(w ⊙ w_1)"


def test_formula_of_nodes_leaves_and_after_backward():
    x, y, w, b, z, loss = _tutorial()
    loss.backward()
    assert str(symgrad.formula(loss.grad_fn)) == str(symgrad.formula(loss))
    assert str(symgrad.formula(z.grad_fn.next_functions[0][0])) == "out = x·w"
    assert str(symgrad.formula(w)) == "w = w"


def test_gradients_with_respect_to_intermediates_constants_and_unused_tensors():
    x, y, w, b, z, loss = _tutorial()
    assert str(symgrad.grad_formula(loss, z)) == "∂loss/∂z = (σ(z) − y)/3\n  where z = x·w + b"
    dx = symgrad.grad_formula(loss, x)
    assert str(dx) == "∂loss/∂x = (σ(z) − y)·wᵀ/3\n  where z = x·w + b"
    unused = symgrad.ones(2, requires_grad=True)
    assert str(symgrad.grad_formula(loss, unused)) == "∂loss/∂unused = 0"
    assert np.allclose(symgrad.grad_formula(loss, unused).evaluate(), 0)


def test_default_wrt_is_every_leaf_that_requires_grad():
    x, y, w, b, z, loss = _tutorial()
    assert [lhs.args[1].name for lhs, _ in symgrad.grad_formula(loss).equations] == ["w", "b"]


def test_non_scalar_outputs_need_elementwise_for_the_jacobian():
    v = symgrad.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    y = v.exp() * v.sum()
    with pytest.raises(RuntimeError, match="scalar output"):
        symgrad.grad_formula(y, v)
    jacobian = symgrad.grad_formula(y, v, elementwise=True).sympy()
    v0, v1 = sp.symbols("v[0] v[1]", real=True)
    expected = sp.Matrix([[sp.exp(v0) * (v0 + v1) + sp.exp(v0), sp.exp(v0)],
                          [sp.exp(v1), sp.exp(v1) * (v0 + v1) + sp.exp(v1)]])
    assert sp.simplify(jacobian - expected) == sp.zeros(2, 2)


def test_hessian_through_create_graph_elementwise():
    v = symgrad.tensor([0.5, -1.0], dtype=F64, requires_grad=True)
    f = (v ** 3).sum() + (v * v).sum() * v.sum()
    (g,) = symgrad.autograd.grad(f, v, create_graph=True)
    hessian = symgrad.grad_formula(g, v, elementwise=True)
    v0, v1 = sp.symbols("v[0] v[1]", real=True)
    F = v0 ** 3 + v1 ** 3 + (v0 ** 2 + v1 ** 2) * (v0 + v1)
    assert sp.simplify(hessian.sympy() - sp.hessian(F, (v0, v1))) == sp.zeros(2, 2)
    rows = [symgrad.autograd.grad((g * symgrad.tensor(e, dtype=F64)).sum(), v, retain_graph=True)[0].numpy()
            for e in ([1.0, 0.0], [0.0, 1.0])]
    assert np.allclose(hessian.evaluate(), np.array(rows))


def test_elementwise_refuses_large_tensors():
    w = symgrad.ones(40, 40, requires_grad=True)
    with pytest.raises(ValueError, match="too large"):
        symgrad.formula(w.sum(), elementwise=True)


def test_floats_print_shortest_and_formula_object_api():
    w = symgrad.ones(2, requires_grad=True, name="w")
    f = symgrad.formula((w * 0.1).sum())
    assert str(f) == "out = 0.1·sum(w)"
    assert repr(f) == str(f)
    assert len(f) == 1 and [str(e) for e in f] == [str(f)]
    assert isinstance(f.sympy(), sp.Expr)
    assert "0.1" in f.pretty()


def test_names_argument_for_tensors_out_of_reach():
    """Code that only holds the loss (the ``symgrad demo`` command) names what it can reach."""

    def model():
        symgrad.manual_seed(0)
        x, y = symgrad.ones(5), symgrad.zeros(3)
        w, b = symgrad.randn(5, 3, requires_grad=True), symgrad.randn(3, requires_grad=True)
        return symgrad.nn.functional.binary_cross_entropy_with_logits(symgrad.matmul(x, w) + b, y), w, b

    value, first, second = model()
    # unnamed constants still read as vectors: the row view matmul records is shown as the whole input
    assert str(symgrad.grad_formula(value, [first, second])) == (
        "∂value/∂first = t0 ⊗ (σ(t0·first + second) − t1)/3\n∂value/∂second = (σ(t0·first + second) − t1)/3")
    names = {"loss": value, "w": first, "b": second}
    assert str(symgrad.grad_formula(value, first, names=names)) == "∂loss/∂w = t0 ⊗ (σ(t0·w + b) − t1)/3"
    assert '"w\\n(5, 3)"' in symgrad.viz.draw(value, names=names).source
    with pytest.raises(TypeError, match="should map to a Tensor"):
        symgrad.formula(value, names={"w": 3})
