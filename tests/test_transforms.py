"""symgrad.compile / grad / value_and_grad / jacobian / hessian against the eager facade and PyTorch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import symgrad
import symgrad.nn.functional as F

RTOL = 1e-10


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- workloads (small sizes of the benchmark's)


def functions(F):
    """The benchmark's workloads written against ``F`` (symgrad's or PyTorch's ``nn.functional``)."""

    def tutorial(w, b, x, y):
        z = x @ w + b
        return F.binary_cross_entropy_with_logits(z, y)

    def logistic(w, X, y):
        return F.binary_cross_entropy_with_logits(X @ w, y)

    def mlp(W1, b1, W2, b2, X, onehot):
        h = (X @ W1 + b1).tanh()
        logp = F.log_softmax(h @ W2 + b2, dim=1)
        return -(onehot * logp).sum() / X.shape[0]

    def chain(y):
        for _ in range(20):
            y = y.sin() * 1.01 + 0.1 * y * y
        return y.sum()

    return {"tutorial": tutorial, "logistic": logistic, "mlp": mlp, "chain": chain}


FUNCTIONS = functions(F)
tutorial = FUNCTIONS["tutorial"]


def workloads():
    """name -> (function, arguments, differentiated argument indices)."""
    r = rng(1)
    onehot = np.eye(4)[r.integers(0, 4, 6)]
    arguments = {
        "tutorial": ([r.normal(size=(5, 3)), r.normal(size=3), np.ones(5), np.zeros(3)], (0, 1)),
        "logistic": ([r.normal(size=7), r.normal(size=(20, 7)), r.integers(0, 2, 20) * 1.0], (0,)),
        "mlp": ([r.normal(size=(8, 5)) * 0.3, r.normal(size=5), r.normal(size=(5, 4)) * 0.3, r.normal(size=4),
                 r.normal(size=(6, 8)), onehot], (0, 1, 2, 3)),
        "chain": ([r.normal(size=10) * 0.5], (0,)),
    }
    return {name: (FUNCTIONS[name], args, wrt) for name, (args, wrt) in arguments.items()}


def eager(fn, args, wrt):
    """Value and gradients through the facade's backward()."""
    tensors = [symgrad.tensor(a, requires_grad=i in wrt) for i, a in enumerate(args)]
    out = fn(*tensors)
    out.backward()
    return out.item(), [tensors[i].grad.numpy() for i in wrt]


def torch_value_and_grads(name, args, wrt):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF

    tensors = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(args)]
    out = functions(TF)[name](*tensors)
    out.backward()
    return out.item(), [tensors[i].grad.numpy() for i in wrt]


@pytest.mark.parametrize("name", list(workloads()))
def test_compiled_workload_matches_eager_and_torch(name):
    fn, args, wrt = workloads()[name]
    compiled = symgrad.compile(fn, *args, wrt=wrt)
    moved = [a * 1.1 if a.dtype.kind == "f" and i in wrt else a for i, a in enumerate(args)]  # not the trace point
    value, grads = compiled(*moved)
    expected_value, expected_grads = eager(fn, moved, wrt)
    torch_value, torch_grads = torch_value_and_grads(name, moved, wrt)
    np.testing.assert_allclose(value, expected_value, rtol=RTOL)
    np.testing.assert_allclose(value, torch_value, rtol=RTOL)
    for g, e, t in zip(grads, expected_grads, torch_grads):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=1e-14)
        np.testing.assert_allclose(g, t, rtol=RTOL, atol=1e-14)


def test_forward_alone_is_the_value():
    fn, args, wrt = workloads()["mlp"]
    compiled = symgrad.compile(fn, *args, wrt=wrt)
    assert compiled.forward(*args) == pytest.approx(compiled(*args)[0], rel=1e-14)
    assert "def forward(" in compiled.source


def test_float32_workload_keeps_float32():
    fn, args, wrt = workloads()["mlp"]
    args32 = [a.astype(np.float32) for a in args]
    value, grads = symgrad.compile(fn, *args32, wrt=wrt)(*args32)
    assert np.asarray(value).dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    _, expected = eager(fn, args, wrt)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- arguments, wrt, caching


def test_default_wrt_is_every_float_argument_or_those_requiring_grad():
    x, y = np.ones(3), np.arange(3.0)
    _, grads = symgrad.compile(lambda x, y: (x * y).sum(), x, y)(x, y)
    assert len(grads) == 2
    tx = symgrad.tensor(x, requires_grad=True)
    _, grads = symgrad.compile(lambda x, y: (x * y).sum(), tx, y)(x, y)
    np.testing.assert_array_equal(grads[0], y)
    assert len(grads) == 1


def test_wrt_by_name_and_bad_wrt():
    f = lambda weight, data: (weight * data).sum()  # noqa: E731
    _, (g,) = symgrad.compile(f, np.ones(2), np.array([3.0, 4.0]), wrt="data")(np.ones(2), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(g, [1.0, 1.0])
    with pytest.raises(ValueError, match="not a parameter"):
        symgrad.compile(f, np.ones(2), np.ones(2), wrt="bias")
    with pytest.raises(TypeError, match="not a floating point"):
        symgrad.compile(lambda x, i: (x * i).sum(), np.ones(2), np.arange(2), wrt=1)
    with pytest.raises(IndexError):
        symgrad.compile(f, np.ones(2), np.ones(2), wrt=5)


def test_cache_hits_on_same_signature_and_retraces_on_new_shapes():
    compiled = symgrad.compile(lambda x: (x.exp() * x).sum(), np.ones(3))
    for k in range(5):
        compiled(np.full(3, float(k)))
    assert compiled.cache_info().misses == 1
    value, (g,) = compiled(np.zeros((2, 2)))
    assert compiled.cache_info().misses == 2 and g.shape == (2, 2)
    compiled(np.zeros(3, dtype=np.float32))
    assert compiled.cache_info().misses == 3
    compiled(np.ones(3))
    assert compiled.cache_info().misses == 3  # the first signature is still cached


def test_cache_is_bounded():
    compiled = symgrad.CompiledFunction(lambda x: x.sum(), cache_size=2)
    for n in range(1, 5):
        compiled(np.ones(n))
    assert compiled.cache_info().currsize == 2


def test_python_numbers_are_baked_in_and_part_of_the_signature():
    compiled = symgrad.compile(lambda x, k: (x * k).sum(), np.ones(2), 3.0, wrt=0)
    assert compiled(np.ones(2), 3.0)[1][0].tolist() == [3.0, 3.0]
    assert compiled(np.ones(2), 5.0)[1][0].tolist() == [5.0, 5.0]
    assert compiled.cache_info().misses == 2


def test_integer_arguments_are_runtime_inputs():
    def f(x, mask):
        return (x * mask).sum()
    compiled = symgrad.compile(f, np.ones(4), np.array([1, 0, 1, 0]), wrt=0)
    _, (g,) = compiled(np.ones(4), np.array([0, 1, 1, 1]))
    np.testing.assert_array_equal(g, [0, 1, 1, 1])
    assert compiled.cache_info().misses == 1


def test_reference_operands_are_recomputed():
    def f(x):
        return (x.softmax(1) ** 2).sum() + x.logsumexp(1).sum() + x.max(1)[0].sum() + x.amax(0).sum() + x.max()
    r = rng(3)
    compiled = symgrad.compile(f, r.normal(size=(3, 4)))
    x = r.normal(size=(3, 4)) * 3
    value, (g,) = compiled(x)
    expected_value, (expected,) = eager(f, [x], (0,))
    np.testing.assert_allclose(value, expected_value, rtol=RTOL)
    np.testing.assert_allclose(g, expected, rtol=RTOL)


# ---------------------------------------------------------------- programs that cannot be compiled


def test_value_dependent_control_flow_is_rejected():
    def f(x):
        return x.sum() if (x.sum() > 1).item() else (x * x).sum()
    with pytest.raises(RuntimeError, match="different operations for different argument values"):
        symgrad.compile(f, np.full(3, 0.33))


@pytest.mark.parametrize("make", [
    lambda x: (x * symgrad.randn(3)).sum(),
    lambda x: (x * float(x.sum())).sum(),
    lambda x: (x * symgrad.tensor(np.sort(x.detach().numpy()))).sum(),
])
def test_values_computed_outside_the_graph_are_rejected(make):
    with pytest.raises(RuntimeError, match="computed outside the recorded graph"):
        symgrad.compile(make, np.array([0.5, -1.0, 2.0]))


def test_constants_of_the_function_are_fine():
    table = np.arange(100.0).reshape(10, 10)
    compiled = symgrad.compile(lambda x: (x @ symgrad.tensor(table)).sum(), np.ones(10))
    _, (g,) = compiled(np.zeros(10))
    np.testing.assert_array_equal(g, table.sum(1))


def test_result_must_be_a_float_tensor():
    with pytest.raises(TypeError, match="must return a Tensor"):
        symgrad.compile(lambda x: 3.0, np.ones(2))
    with pytest.raises(TypeError, match="floating point"):
        symgrad.compile(lambda x, i: i.sum(), np.ones(2), np.arange(2), wrt=0)


def test_identity_and_constant_functions():
    value, (g,) = symgrad.compile(lambda x: x, np.array(2.0))(np.array(3.0))
    assert float(value) == 3.0 and float(g) == 1.0
    value, (g,) = symgrad.compile(lambda x: symgrad.tensor(4.0), np.ones(2))(np.ones(2))
    assert float(value) == 4.0 and g.tolist() == [0.0, 0.0]


# ---------------------------------------------------------------- source, save, formulas


def test_source_reads_like_the_program():
    compiled = symgrad.compile(tutorial, *workloads()["tutorial"][1], wrt=(0, 1))
    source = compiled.source
    assert "def value_and_grad(w, b, x, y):" in source
    assert "z = " in source  # the user's intermediate names
    assert "import symgrad" not in source and "from symgrad" not in source
    body = source.split("def value_and_grad")[1].split("def vjp")[0]
    assert body.count("@") == 2  # x @ w once in the forward, once for grad_w: the forward is reused


def run_standalone(module_path, code: str) -> str:
    script = textwrap.dedent(f"""
        import sys, importlib.util
        sys.modules["symgrad"] = None  # symgrad is not importable here
        spec = importlib.util.spec_from_file_location("generated", {str(module_path)!r})
        generated = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(generated)
        import numpy as np
    """) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": ""}).stdout


def test_saved_module_runs_without_symgrad(tmp_path):
    fn, args, wrt = workloads()["mlp"]
    compiled = symgrad.compile(fn, *args, wrt=wrt)
    path = compiled.save(tmp_path / "mlp_grad.py")
    arrays = tmp_path / "args.npz"
    np.savez(arrays, *args)
    out = run_standalone(path, f"""
        a = np.load({str(arrays)!r})
        args = [a[f"arr_{{i}}"] for i in range(len(a.files))]
        value, *grads = generated.value_and_grad(*args)
        np.save({str(tmp_path / 'grads.npy')!r}, np.concatenate([g.ravel() for g in grads]))
        print(float(value))
    """)
    value, grads = compiled(*args)  # possibly the per-element version: equal up to rounding
    assert float(out) == pytest.approx(float(value), rel=1e-13)
    np.testing.assert_allclose(np.load(tmp_path / "grads.npy"), np.concatenate([g.ravel() for g in grads]),
                               rtol=1e-12, atol=1e-15)


def test_large_constants_are_saved_beside_the_module(tmp_path):
    table = rng(4).normal(size=(30, 30))
    compiled = symgrad.compile(lambda x: ((x @ symgrad.tensor(table)) ** 2).sum(), np.ones(30))
    path = compiled.save(tmp_path / "big.py")
    assert (tmp_path / "big.npz").exists() and len(compiled.source) < 5000
    out = run_standalone(path, "print(float(generated.forward(np.ones(30))[0]))")
    assert float(out) == pytest.approx(float(compiled.forward(np.ones(30))), rel=1e-13)


def test_save_needs_a_python_path(tmp_path):
    compiled = symgrad.compile(lambda x: x.sum(), np.ones(2))
    with pytest.raises(ValueError, match=r"\.py"):
        compiled.save(tmp_path / "module.txt")
    with pytest.raises(RuntimeError, match="nothing compiled yet"):
        _ = symgrad.CompiledFunction(lambda x: x.sum()).source


def test_formulas_of_the_tutorial():
    compiled = symgrad.compile(tutorial, *workloads()["tutorial"][1], wrt=(0, 1))
    text = str(compiled.formulas)
    assert "w" in text and "σ" in text


# ---------------------------------------------------------------- JAX-like transforms vs torch.func


def test_grad_and_value_and_grad_argnums():
    f = lambda a, b: (a.sin() * b).sum()  # noqa: E731
    a, b = rng(5).normal(size=3), rng(6).normal(size=3)
    np.testing.assert_allclose(symgrad.grad(f)(a, b), np.cos(a) * b, rtol=1e-15)
    value, (ga, gb) = symgrad.value_and_grad(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(value, (np.sin(a) * b).sum(), rtol=1e-15)
    np.testing.assert_allclose(gb, np.sin(a), rtol=1e-15)
    assert symgrad.grad(f, argnums=1).compiled.cache_info().misses == 0  # traced on first call only


def test_jacobian_matches_torch():
    torch = pytest.importorskip("torch")
    x = rng(7).normal(size=(2, 3))
    jac = symgrad.jacobian(lambda x: (x.exp() @ x.T).tanh())(x)
    expected = torch.autograd.functional.jacobian(lambda t: (t.exp() @ t.T).tanh(), torch.tensor(x))
    assert jac.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(jac, expected.numpy(), rtol=RTOL, atol=1e-15)


def test_hessian_matches_torch():
    torch = pytest.importorskip("torch")
    x = rng(8).normal(size=4)
    hess = symgrad.hessian(lambda x: (x.sigmoid() * x.sum() + x ** 3).sum())(x)
    expected = torch.autograd.functional.hessian(lambda t: (t.sigmoid() * t.sum() + t ** 3).sum(), torch.tensor(x))
    np.testing.assert_allclose(hess, expected.numpy(), rtol=RTOL, atol=1e-14)
    with pytest.raises(RuntimeError, match="one number"):
        symgrad.hessian(lambda x: x * 2)(x)


def test_compiled_calls_accept_tensors():
    compiled = symgrad.compile(lambda x: (x * x).sum(), np.ones(2))
    value, (g,) = compiled(symgrad.tensor([1.0, 2.0]))
    assert float(value) == 5.0 and g.tolist() == [2.0, 4.0]
