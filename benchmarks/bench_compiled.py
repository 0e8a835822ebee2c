"""Compiled value + gradient: symgrad against PyTorch eager, JAX, PyTensor, CasADi, HIPS autograd, NumPy.

One table of ratios to PyTorch eager per value+gradient call, medians of interleaved
rounds measured in this same run, for the workloads of issue 5:

    W1  the tutorial model: x 5, w 5x3, b 3, binary_cross_entropy_with_logits (float32)
    W2  logistic regression: X 10000x100, w 100, BCE-with-logits (float64)
    W3  MLP 784-256-10, batch 256, tanh hidden layer, cross-entropy (float32)
    W4  Rosenbrock on a vector of 10: sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2) (float64)
    W5  200 steps of y = sin(y)*1.01 + 0.1*y*y (1000 ops) on a vector of 1000, loss sum(y) (float64)

plus the build seconds of every system that has a build step (first call included), the
"cheap-gradient" ratio of symgrad (compiled value+grad / compiled forward alone) on W2, W3, W5,
and a build-time scaling run: W5-like chains of 10, 100 and 1000 ops, each built in a fresh
process (trace + derive + generate + first call).

Every system's value and gradients are checked against PyTorch's before anything is timed.
Peers that are not importable are skipped with a note; none is a dependency of symgrad.

    python benchmarks/bench_compiled.py                  # full run, a few minutes
    python benchmarks/bench_compiled.py --quick          # smoke run: few rounds, chains of 10 and 100 ops
    python benchmarks/bench_compiled.py --json out.json  # also write every number to a JSON file
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmark this checkout, not whatever symgrad is installed
    sys.path.insert(0, str(REPO))

SEED = 0
# per value+gradient call, symgrad compiled / PyTorch eager (issue 5)
TARGETS = {"W1": 0.08, "W2": 0.55, "W3": 0.95, "W4": 0.04, "W5": 0.30}
BUILD_TARGETS = {"W3": 0.1, "chain 1000": 0.5}  # seconds
CHEAP_GRADIENT_TARGET = 3.0  # compiled value+grad at most 3x the compiled forward alone
CHEAP_GRADIENT_WORKLOADS = ("W2", "W3", "W5")
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-8}
DEFAULTS = {"rounds": 21, "round_ms": 40.0, "chain_ops": "10,100,1000"}
QUICK = {"rounds": 3, "round_ms": 10.0, "chain_ops": "10,100"}
CHAIN_LENGTH = 1000  # vector length of the build-scaling chains, as in W5
OPS_PER_STEP = 5  # sin, *1.01, y*y, *0.1, +


class SystemUnavailableError(Exception):
    """A system cannot run a workload here (not installed, feature missing); the reason is reported."""


# =========================================================================== workloads


@dataclass
class Problem:
    """One workload's data: the arguments in order, which of them are differentiated, fixed settings."""

    names: tuple[str, ...]
    arrays: tuple[np.ndarray, ...]
    wrt: tuple[int, ...]
    settings: dict[str, Any] = field(default_factory=dict)  # passed to every loss as keywords

    @property
    def params(self) -> tuple[np.ndarray, ...]:
        return tuple(self.arrays[i] for i in self.wrt)


@dataclass
class Workload:
    key: str
    title: str
    dtype: np.dtype
    make: Callable[[np.random.Generator, bool], Problem]  # (rng, tiny) -> Problem
    torchlike: Callable  # (lib, *args, **settings): torch and symgrad share PyTorch's API
    arraylike: Callable  # (ns, *args, **settings): JAX, HIPS autograd, PyTensor through a small adapter
    casadi: Callable  # (ca, problem) -> (ca.Function, inputs as DM)
    by_hand: Callable | None = None  # (*arrays) -> (value, grads): hand-written NumPy


def _bce_torchlike(lib, z, y):
    return lib.nn.functional.binary_cross_entropy_with_logits(z, y)


def _bce_arraylike(ns, z, y):
    return ns.xp.mean(ns.softplus(z) - y * z)  # = torch's (1-y)*z + log(1+exp(-z)), averaged


def _softplus_np(z):
    return np.logaddexp(z.dtype.type(0), z)


def _sigmoid_np(z, softplus_z):
    return np.exp(z - softplus_z)  # reuses the forward's softplus, cannot overflow


def _softplus_ca(ca, z):
    return ca.fmax(z, 0) + ca.log1p(ca.exp(-ca.fabs(z)))  # stable log(1 + exp(z))


# --- W1: the tutorial model


def make_w1(rng, tiny):
    x = np.ones(5, dtype=np.float32)
    y = np.zeros(3, dtype=np.float32)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    return Problem(("x", "y", "w", "b"), (x, y, w, b), wrt=(2, 3))


def w1_torchlike(lib, x, y, w, b):
    return _bce_torchlike(lib, lib.matmul(x, w) + b, y)


def w1_arraylike(ns, x, y, w, b):
    return _bce_arraylike(ns, x @ w + b, y)


def w1_casadi(ca, p):
    x, y, w, b = p.arrays
    xs, ys, ws, bs = (ca.SX.sym(n, *_ca_shape(a)) for n, a in zip(p.names, p.arrays))
    z = ca.mtimes(xs.T, ws) + bs.T
    loss = ca.sum2(_softplus_ca(ca, z) - ys.T * z) / y.size
    f = ca.Function("w1", [xs, ys, ws, bs], [loss, ca.gradient(loss, ws), ca.gradient(loss, bs)])
    return f, [ca.DM(a.astype(np.float64)) for a in p.arrays]


def w1_by_hand(x, y, w, b):
    z = x @ w + b
    sp = _softplus_np(z)
    loss = np.mean(sp - y * z)
    dz = (_sigmoid_np(z, sp) - y) / np.float32(y.size)
    return loss, (np.outer(x, dz), dz)


# --- w2: logistic regression


def make_w2(rng, tiny):
    n, d = (40, 5) if tiny else (10000, 100)
    x = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d) / np.sqrt(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ w_true))).astype(np.float64)
    w = 0.1 * rng.standard_normal(d)
    return Problem(("x", "y", "w"), (x, y, w), wrt=(2,))


def w2_torchlike(lib, x, y, w):
    return _bce_torchlike(lib, lib.matmul(x, w), y)


def w2_arraylike(ns, x, y, w):
    return _bce_arraylike(ns, x @ w, y)


def w2_casadi(ca, p):
    x, y, w = p.arrays
    xs, ys, ws = (ca.MX.sym(n, *_ca_shape(a)) for n, a in zip(p.names, p.arrays))
    z = ca.mtimes(xs, ws)
    loss = ca.sum1(_softplus_ca(ca, z) - ys * z) / y.size
    f = ca.Function("w2", [xs, ys, ws], [loss, ca.gradient(loss, ws)])
    return f, [ca.DM(a) for a in p.arrays]


def w2_by_hand(x, y, w):
    z = x @ w
    sp = _softplus_np(z)
    loss = np.mean(sp - y * z)
    dz = (_sigmoid_np(z, sp) - y) / y.size
    return loss, (dz @ x,)


# --- W3: MLP with a tanh hidden layer and cross-entropy


def make_w3(rng, tiny):
    n, d, hidden, classes = (8, 12, 6, 3) if tiny else (256, 784, 256, 10)
    x = rng.random((n, d), dtype=np.float32)
    labels = rng.integers(0, classes, n).astype(np.int64)
    w1 = (rng.standard_normal((d, hidden)) / np.sqrt(d)).astype(np.float32)
    b1 = (0.1 * rng.standard_normal(hidden)).astype(np.float32)
    w2 = (rng.standard_normal((hidden, classes)) / np.sqrt(hidden)).astype(np.float32)
    b2 = (0.1 * rng.standard_normal(classes)).astype(np.float32)
    return Problem(("x", "labels", "w1", "b1", "w2", "b2"), (x, labels, w1, b1, w2, b2), wrt=(2, 3, 4, 5))


def w3_torchlike(lib, x, labels, w1, b1, w2, b2):
    h = lib.tanh(lib.matmul(x, w1) + b1)
    return lib.nn.functional.cross_entropy(lib.matmul(h, w2) + b2, labels)


def w3_arraylike(ns, x, labels, w1, b1, w2, b2):
    h = ns.xp.tanh(x @ w1 + b1)
    logp = ns.log_softmax(h @ w2 + b2)
    return -ns.xp.mean(logp[ns.xp.arange(labels.shape[0]), labels])


def w3_casadi(ca, p):
    x, labels, w1, b1, w2, b2 = p.arrays
    n, classes = x.shape[0], w2.shape[1]
    onehot = np.zeros((n, classes))
    onehot[np.arange(n), labels] = 1.0  # CasADi has no integer indexing by data: labels enter as a one-hot matrix
    xs, ys_onehot = ca.MX.sym("x", *x.shape), ca.MX.sym("Y", n, classes)
    w1s, b1s, w2s, b2s = (ca.MX.sym(nm, *_ca_shape(a)) for nm, a in zip(p.names[2:], p.arrays[2:]))
    h = ca.tanh(ca.mtimes(xs, w1s) + ca.repmat(b1s.T, n, 1))
    logits = ca.mtimes(h, w2s) + ca.repmat(b2s.T, n, 1)
    # MX has no row-wise max to shift by; these logits are O(1), so the unshifted form is exact enough
    lse = ca.log(ca.sum2(ca.exp(logits)))
    loss = (ca.sum1(lse) - ca.sum1(ca.sum2(ys_onehot * logits))) / n
    grads = [ca.gradient(loss, s) for s in (w1s, b1s, w2s, b2s)]
    f = ca.Function("w3", [xs, ys_onehot, w1s, b1s, w2s, b2s], [loss, *grads])
    inputs = [x, onehot, w1, b1, w2, b2]
    return f, [ca.DM(a.astype(np.float64)) for a in inputs]


def w3_by_hand(x, labels, w1, b1, w2, b2):
    n = x.shape[0]
    rows = np.arange(n)
    h = np.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(total[:, 0]) - shifted[rows, labels])
    dlogits = exp / total
    dlogits[rows, labels] -= 1
    dlogits /= np.float32(n)
    dh = (dlogits @ w2.T) * (1 - h * h)
    return loss, (x.T @ dh, dh.sum(axis=0), h.T @ dlogits, dlogits.sum(axis=0))


# --- W4: Rosenbrock


def make_w4(rng, tiny):
    return Problem(("x",), (rng.uniform(-2.0, 2.0, 10),), wrt=(0,))


def _rosenbrock(sum_, x):
    return sum_(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def w4_torchlike(lib, x):
    return _rosenbrock(lib.sum, x)


def w4_arraylike(ns, x):
    return _rosenbrock(ns.xp.sum, x)


def w4_casadi(ca, p):
    xs = ca.SX.sym("x", p.arrays[0].size)
    loss = _rosenbrock(ca.sum1, xs)
    return ca.Function("w4", [xs], [loss, ca.gradient(loss, xs)]), [ca.DM(p.arrays[0])]


# --- W5: a long elementwise chain


def make_w5(rng, tiny, steps=None, n=None):
    steps = steps if steps is not None else (5 if tiny else 200)
    n = n if n is not None else (7 if tiny else 1000)
    return Problem(("y",), (rng.uniform(-1.0, 1.0, n),), wrt=(0,), settings={"steps": steps})


def _chain(sin, y, steps):
    for _ in range(steps):
        y = sin(y) * 1.01 + 0.1 * y * y
    return y


def w5_torchlike(lib, y, steps):
    return lib.sum(_chain(lib.sin, y, steps))


def w5_arraylike(ns, y, steps):
    return ns.xp.sum(_chain(ns.xp.sin, y, steps))


def w5_casadi(ca, p):
    ys = ca.MX.sym("y", p.arrays[0].size)
    loss = ca.sum1(_chain(ca.sin, ys, p.settings["steps"]))
    return ca.Function("w5", [ys], [loss, ca.gradient(loss, ys)]), [ca.DM(p.arrays[0])]


def _ca_shape(a: np.ndarray) -> tuple[int, int]:
    return (a.shape[0], a.shape[1]) if a.ndim == 2 else (a.size, 1)  # CasADi vectors are columns


WORKLOADS = {
    "W1": Workload("W1", "tutorial model x 5, w 5x3, b 3, BCE-with-logits, float32", np.dtype(np.float32),
                   make_w1, w1_torchlike, w1_arraylike, w1_casadi, w1_by_hand),
    "W2": Workload("W2", "logistic regression X 10000x100, float64", np.dtype(np.float64),
                   make_w2, w2_torchlike, w2_arraylike, w2_casadi, w2_by_hand),
    "W3": Workload("W3", "MLP 784-256-10, batch 256, tanh, cross-entropy, float32", np.dtype(np.float32),
                   make_w3, w3_torchlike, w3_arraylike, w3_casadi, w3_by_hand),
    "W4": Workload("W4", "Rosenbrock on 10, float64", np.dtype(np.float64),
                   make_w4, w4_torchlike, w4_arraylike, w4_casadi),
    "W5": Workload("W5", "200 steps of y = sin(y)*1.01 + 0.1*y*y on 1000, sum(y), float64", np.dtype(np.float64),
                   make_w5, w5_torchlike, w5_arraylike, w5_casadi),
}


# =========================================================================== systems


@dataclass
class Runner:
    """One system set up for one workload.

    ``call`` is what is timed: one value+gradient evaluation in the system's own
    types (no conversion to NumPy).  ``result`` returns ``(value, grads)`` as NumPy
    arrays for verification.  ``enter`` runs untimed before each of its rounds.
    """

    call: Callable[[], object]
    result: Callable[[], tuple[np.ndarray, tuple[np.ndarray, ...]]]
    build_seconds: float | None = None
    enter: Callable[[], None] = lambda: None
    forward: Callable[[], object] | None = None  # symgrad compiled: the forward alone


@dataclass
class System:
    key: str
    label: str
    build: Callable[[Workload, Problem], Runner]
    has_build_step: bool = False
    symgrad: bool = False


def _import(name: str):
    if importlib.util.find_spec(name) is None:
        raise SystemUnavailableError(f"{name} not installed")
    return importlib.import_module(name)


def _timed_build(make: Callable[[], Any], first_call: Callable[[Any], Any]) -> tuple[Any, float]:
    """Build, then call once; seconds for both together (what a user waits for before the first result)."""
    t0 = time.perf_counter()
    built = make()
    first_call(built)
    return built, time.perf_counter() - t0


_PRIMED: set[str] = set()


def _prime(key: str, build_trivial: Callable[[], None]) -> None:
    """Pay a library's one-time costs (imports, backend start-up) on a throw-away function, once per process."""
    if key not in _PRIMED:
        build_trivial()
        _PRIMED.add(key)


# --- PyTorch eager and the symgrad facade share the API


def _eager_runner(lib, work: Workload, p: Problem, as_data, as_param) -> Runner:
    args = [as_param(a) if i in p.wrt else as_data(a) for i, a in enumerate(p.arrays)]
    params = [args[i] for i in p.wrt]

    def forward_backward():
        loss = work.torchlike(lib, *args, **p.settings)
        loss.backward()
        return loss

    def zero_grads():
        for t in params:
            t.grad = None  # optimizer.zero_grad() default (set_to_none=True)

    def call():
        forward_backward()
        zero_grads()

    def result():
        loss = forward_backward()
        out = np.array(loss.detach().numpy()), tuple(np.array(t.grad.numpy()) for t in params)
        zero_grads()
        return out

    return Runner(call, result)


_TORCH_DEFAULT_THREADS: list[int] = []  # PyTorch's default intra-op thread count, read once before any change


def _torch_default_threads(torch) -> int:
    if not _TORCH_DEFAULT_THREADS:
        _TORCH_DEFAULT_THREADS.append(torch.get_num_threads())
    return _TORCH_DEFAULT_THREADS[0]


def build_torch(work: Workload, p: Problem, threads: int | None = None) -> Runner:
    """PyTorch eager with its default thread count (the reference), or with ``threads`` threads."""
    torch = _import("torch")
    threads = threads or _torch_default_threads(torch)
    torch.set_num_threads(threads)
    runner = _eager_runner(torch, work, p, torch.from_numpy, lambda a: torch.tensor(a, requires_grad=True))
    runner.enter = lambda: torch.set_num_threads(threads)
    return runner


def build_torch_one_thread(work: Workload, p: Problem) -> Runner:
    return build_torch(work, p, threads=1)


def restore_torch_threads() -> None:
    if _TORCH_DEFAULT_THREADS:
        import torch

        torch.set_num_threads(_TORCH_DEFAULT_THREADS[0])


def build_symgrad_eager(work: Workload, p: Problem) -> Runner:
    import symgrad

    return _eager_runner(symgrad, work, p, symgrad.from_numpy, lambda a: symgrad.tensor(a, requires_grad=True))


def _symgrad_compile(symgrad, fn, arrays: Sequence[np.ndarray], wrt: Sequence[int]):
    """``symgrad.compile`` at example tensors; the ones in ``wrt`` require grad, which selects them."""
    examples = [symgrad.tensor(a, requires_grad=True) if i in wrt else symgrad.from_numpy(a)
                for i, a in enumerate(arrays)]
    return symgrad.compile(fn, *examples, wrt=tuple(wrt))


def _prime_symgrad(symgrad) -> None:
    def trivial(a):
        return symgrad.sum(symgrad.sin(a) * a)

    x = np.linspace(0.1, 0.3, 3)
    _symgrad_compile(symgrad, trivial, [x], [0])(x)


def build_symgrad_compiled(work: Workload, p: Problem) -> Runner:
    import symgrad

    if not hasattr(symgrad, "compile"):
        raise SystemUnavailableError("symgrad.compile not available")
    _prime("symgrad", lambda: _prime_symgrad(symgrad))

    def fn(*args):
        return work.torchlike(symgrad, *args, **p.settings)

    arrays = p.arrays
    cf, seconds = _timed_build(lambda: _symgrad_compile(symgrad, fn, arrays, p.wrt), lambda c: c(*arrays))

    def result():
        value, grads = cf(*arrays)
        if len(grads) != len(p.wrt):
            raise SystemUnavailableError(f"symgrad.compile returned {len(grads)} gradients, expected {len(p.wrt)}")
        return np.asarray(value), tuple(np.asarray(g) for g in grads)

    forward = (lambda: cf.forward(*arrays)) if hasattr(cf, "forward") else None
    return Runner(lambda: cf(*arrays), result, build_seconds=seconds, forward=forward)


# --- JAX


def _import_jax():
    jax = _import("jax")
    jax.config.update("jax_enable_x64", True)  # W2, W4, W5 are float64; float32 inputs stay float32
    return jax


def _jax_ns(jax):
    import jax.numpy as jnp

    return SimpleNamespace(xp=jnp, softplus=jax.nn.softplus, log_softmax=lambda z: jax.nn.log_softmax(z, axis=-1))


def build_jax(work: Workload, p: Problem) -> Runner:
    jax = _import_jax()
    ns = _jax_ns(jax)

    def prime():
        g = jax.jit(jax.value_and_grad(lambda a: ns.xp.sum(ns.xp.sin(a) * a)))
        jax.block_until_ready(g(ns.xp.linspace(0.1, 0.3, 3)))

    _prime("jax", prime)
    args = [jax.device_put(a) for a in p.arrays]

    def loss(*a):
        return work.arraylike(ns, *a, **p.settings)

    f, seconds = _timed_build(lambda: jax.jit(jax.value_and_grad(loss, argnums=p.wrt)),
                              lambda g: jax.block_until_ready(g(*args)))

    def call():
        return jax.block_until_ready(f(*args))

    def result():
        value, grads = call()
        return np.asarray(value), tuple(np.asarray(g) for g in grads)

    return Runner(call, result, build_seconds=seconds)


# --- PyTensor


def _pytensor_ns():
    import pytensor.tensor as pt
    from pytensor.tensor.special import log_softmax

    return SimpleNamespace(xp=pt, softplus=pt.softplus, log_softmax=lambda z: log_softmax(z, axis=-1))


def _pytensor_function(work: Workload, p: Problem):
    import pytensor
    import pytensor.tensor as pt

    ns = _pytensor_ns()
    inputs = [pt.tensor(name=n, dtype=str(a.dtype), shape=a.shape) for n, a in zip(p.names, p.arrays)]
    loss = work.arraylike(ns, *inputs, **p.settings)
    grads = pytensor.grad(loss, [inputs[i] for i in p.wrt])
    return pytensor.function(inputs, [loss, *grads])


def build_pytensor(work: Workload, p: Problem) -> Runner:
    _import("pytensor")

    def prime():
        trivial = Workload("prime", "", np.dtype(np.float64), None, None,
                           lambda ns, a: ns.xp.sum(ns.xp.sin(a) * a), None)
        x = np.linspace(0.1, 0.3, 3)
        _pytensor_function(trivial, Problem(("a",), (x,), (0,)))(x)

    _prime("pytensor", prime)
    arrays = p.arrays
    f, seconds = _timed_build(lambda: _pytensor_function(work, p), lambda g: g(*arrays))

    def result():
        value, *grads = f(*arrays)
        return np.asarray(value), tuple(np.asarray(g) for g in grads)

    return Runner(lambda: f(*arrays), result, build_seconds=seconds)


# --- CasADi


def build_casadi(work: Workload, p: Problem) -> Runner:
    ca = _import("casadi")

    def prime():
        x = ca.MX.sym("x", 3)
        loss = ca.sum1(ca.sin(x) * x)
        ca.Function("prime", [x], [loss, ca.gradient(loss, x)])(ca.DM([0.1, 0.2, 0.3]))

    _prime("casadi", prime)
    (f, inputs), seconds = _timed_build(lambda: work.casadi(ca, p), lambda built: built[0](*built[1]))

    def result():
        value, *grads = f(*inputs)
        # CasADi computes in float64 only; cast back so the results have the workload's dtype
        return (np.asarray(value, dtype=work.dtype).reshape(()),
                tuple(np.asarray(g, dtype=work.dtype).reshape(prm.shape) for g, prm in zip(grads, p.params)))

    return Runner(lambda: f(*inputs), result, build_seconds=seconds)


# --- HIPS autograd


def build_autograd(work: Workload, p: Problem) -> Runner:
    autograd = _import("autograd")
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    ns = SimpleNamespace(xp=anp, softplus=lambda z: anp.logaddexp(0, z),
                         log_softmax=lambda z: z - logsumexp(z, axis=-1, keepdims=True))

    def loss(*a):
        return work.arraylike(ns, *a, **p.settings)

    f = autograd.value_and_grad(loss, argnum=p.wrt)
    arrays = p.arrays

    def result():
        value, grads = f(*arrays)
        return np.asarray(value), tuple(np.asarray(g) for g in grads)

    return Runner(lambda: f(*arrays), result)


# --- hand-written NumPy


def build_numpy(work: Workload, p: Problem) -> Runner:
    if work.by_hand is None:
        raise SystemUnavailableError(f"no hand-written gradient for {work.key} (W1-W3 only)")
    by_hand, arrays = work.by_hand, p.arrays

    def result():
        value, grads = by_hand(*arrays)
        return np.asarray(value), tuple(np.asarray(g) for g in grads)

    return Runner(lambda: by_hand(*arrays), result)


SYSTEMS = {s.key: s for s in [
    System("symgrad", "symgrad compiled", build_symgrad_compiled, has_build_step=True, symgrad=True),
    System("symgrad-eager", "symgrad eager facade (backward)", build_symgrad_eager, symgrad=True),
    System("torch", "PyTorch eager (fwd + backward)", build_torch),
    System("torch-1thread", "PyTorch eager, 1 thread", build_torch_one_thread),
    System("jax", "JAX jit(value_and_grad)", build_jax, has_build_step=True),
    System("pytensor", "PyTensor function(grad)", build_pytensor, has_build_step=True),
    System("casadi", "CasADi Function (SX/MX)", build_casadi, has_build_step=True),
    System("autograd", "HIPS autograd value_and_grad", build_autograd),
    System("numpy", "NumPy hand-written", build_numpy),
]}
REFERENCE = "torch"  # ratios are to PyTorch eager; without PyTorch, only verification (against the facade)
FALLBACK_REFERENCE = "symgrad-eager"
FORWARD_KEY = "symgrad-forward"
FORWARD_LABEL = "symgrad compiled, forward only"


# =========================================================================== verification and timing


def compare(ref: tuple, got: tuple, dtype: np.dtype) -> str | None:
    """None when ``got`` = (value, grads) matches ``ref``; otherwise what differs.

    Tolerance: ``rtol`` for the dtype, and an absolute floor of ``rtol`` times the array's
    largest entry, so near-zero entries of a gradient are not judged by their own size.
    """
    rtol = RTOL[dtype]
    pairs = [("value", ref[0], got[0])]
    if len(ref[1]) != len(got[1]):
        return f"{len(got[1])} gradients, expected {len(ref[1])}"
    pairs += [(f"grad {i}", r, g) for i, (r, g) in enumerate(zip(ref[1], got[1]))]
    for what, r, g in pairs:
        r = np.asarray(r, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if r.shape != g.shape:
            return f"{what}: shape {g.shape}, expected {r.shape}"
        atol = rtol * float(np.max(np.abs(r))) if r.size else 0.0
        if not np.allclose(g, r, rtol=rtol, atol=atol):
            err = np.abs(g - r)
            return f"{what}: max abs error {err.max():.3g} (rtol {rtol:g}, atol {atol:.3g})"
    return None


def _time_calls(call: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n


@dataclass
class Timed:
    key: str
    label: str
    call: Callable[[], object]
    enter: Callable[[], None]
    calls_per_round: int = 1
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def calibrate(timed: Timed, round_seconds: float) -> None:
    """Untimed warm-up (at least 3 calls and about one round's time), then the calls per round."""
    timed.enter()
    calls, t0 = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < round_seconds:
        timed.call()
        calls += 1
    per_call = (time.perf_counter() - t0) / calls
    timed.calls_per_round = max(1, round(round_seconds / per_call))


def run_rounds(systems: list[Timed], rounds: int) -> None:
    """Interleaved rounds A B C A B C ...; each round starts with a short untimed warm-up of its system.

    The warm-up (a quarter of a round, at least one call) wakes the system's own thread pools and lets
    the previous system's spinning threads go idle before the clock starts.
    """
    for _ in range(rounds):
        for s in systems:
            s.enter()
            for _ in range(max(1, s.calls_per_round // 4)):
                s.call()
            s.times.append(_time_calls(s.call, s.calls_per_round))


# =========================================================================== one workload


@dataclass
class WorkloadResult:
    key: str
    reference: str  # the system every other one is verified against
    medians: dict[str, float] = field(default_factory=dict)  # seconds per call
    mins: dict[str, float] = field(default_factory=dict)
    calls_per_round: dict[str, int] = field(default_factory=dict)
    build_seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # system -> reason
    mismatched: dict[str, str] = field(default_factory=dict)  # system -> what differs
    verified: list[str] = field(default_factory=list)
    noisy: list[str] = field(default_factory=list)

    def ratio(self, key: str) -> float | None:
        ref = self.medians.get(REFERENCE) if self.reference == REFERENCE else None
        return self.medians[key] / ref if ref and key in self.medians else None


def reference_for(system_keys: list[str]) -> str:
    torch_here = REFERENCE in system_keys and importlib.util.find_spec("torch") is not None
    return REFERENCE if torch_here else FALLBACK_REFERENCE


def run_workload(work: Workload, system_keys: list[str], args) -> WorkloadResult:
    reference_key = reference_for(system_keys)
    system_keys = system_keys if reference_key in system_keys else [reference_key, *system_keys]
    res = WorkloadResult(work.key, reference_key)
    problem = work.make(np.random.default_rng(SEED), args.tiny)
    # the reference first, compiled systems next: their builds are timed before the others run anything
    order = [reference_key] + [k for k in system_keys if k != reference_key and SYSTEMS[k].has_build_step]
    order += [k for k in system_keys if k not in order]
    runners: dict[str, Runner] = {}
    for key in order:
        try:
            runners[key] = SYSTEMS[key].build(work, problem)
        except SystemUnavailableError as why:
            res.skipped[key] = str(why)
        except Exception as error:  # a peer or a symgrad feature in progress: report, keep going
            res.skipped[key] = f"error while building: {type(error).__name__}: {error}"
    if reference_key not in runners:
        res.skipped.setdefault(reference_key, "reference system not available")
        return res
    reference = runners[reference_key].result()
    for key, runner in list(runners.items()):
        if runner.build_seconds is not None:
            res.build_seconds[key] = runner.build_seconds
        if key == reference_key:
            continue
        try:
            runner.enter()
            problem_text = compare(reference, runner.result(), work.dtype)
        except SystemUnavailableError as why:
            res.skipped[key] = str(why)
            del runners[key]
            continue
        except Exception as error:
            res.skipped[key] = f"error on first call: {type(error).__name__}: {error}"
            del runners[key]
            continue
        if problem_text:
            res.mismatched[key] = problem_text
            del runners[key]
        else:
            res.verified.append(key)

    timed = [Timed(k, SYSTEMS[k].label, runners[k].call, runners[k].enter) for k in system_keys if k in runners]
    sg = runners.get("symgrad")
    if sg is not None and sg.forward is not None and work.key in CHEAP_GRADIENT_WORKLOADS:
        timed.append(Timed(FORWARD_KEY, FORWARD_LABEL, sg.forward, sg.enter))
    round_seconds = args.round_ms / 1000
    for t in timed:
        calibrate(t, round_seconds)
    gc.collect()
    run_rounds(timed, args.rounds)
    for t in timed:
        res.medians[t.key] = t.median
        res.mins[t.key] = min(t.times)
        res.calls_per_round[t.key] = t.calls_per_round
        slow = [x for x in t.times if x > 1.5 * t.median]
        if slow:
            res.noisy.append(f"{work.key} {t.label}: {len(slow)} of {len(t.times)} rounds over 1.5x its median "
                             f"(worst {max(slow) / t.median:.1f}x)")
    return res


# =========================================================================== build-time scaling (fresh processes)


def chain_build_seconds(system: str, ops: int) -> float:
    """Build seconds of a W5-like chain of ``ops`` ops in this process (after priming the library)."""
    work = WORKLOADS["W5"]
    problem = make_w5(np.random.default_rng(SEED), False, steps=max(1, ops // OPS_PER_STEP), n=CHAIN_LENGTH)
    runner = SYSTEMS[system].build(work, problem)
    return runner.build_seconds


def build_worker(system: str, ops: int) -> int:
    try:
        out = {"seconds": chain_build_seconds(system, ops)}
    except SystemUnavailableError as why:
        out = {"skipped": str(why)}
    except Exception as error:
        out = {"skipped": f"error: {type(error).__name__}: {error}"}
    print(json.dumps(out))
    return 0


def run_chain_scaling(systems: list[str], ops_list: list[int], timeout: float) -> dict[str, dict[int, Any]]:
    """Each (system, ops) in a fresh process, so no cache of an earlier build can help."""
    results: dict[str, dict[int, Any]] = {}
    for system in systems:
        results[system] = {}
        for ops in ops_list:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--build-worker", system, str(ops)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
                lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
                out = json.loads(lines[-1]) if lines else {
                    "skipped": f"worker failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"}
            except subprocess.TimeoutExpired:
                out = {"skipped": f"over {timeout:.0f} s"}
            results[system][ops] = out.get("seconds", out.get("skipped"))
    return results


# =========================================================================== report


def _cpu_model() -> str:
    from benchmarks.machine import cpu_model  # the repository root is on sys.path (see the top of this file)

    return cpu_model()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_describe() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "symgrad"], cwd=REPO, capture_output=True,
                               text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "git: unknown"
    return f"git {head}" + (", symgrad/ has uncommitted changes" if dirty else "")


def machine_info() -> dict[str, Any]:
    import sympy

    import symgrad

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {"python": f"{platform.python_version()} ({platform.python_implementation()})",
                "numpy": np.__version__, "sympy": sympy.__version__,
                "symgrad": f"{symgrad.__version__} from {Path(symgrad.__file__).parent} ({_git_describe()})"}
    for dist in ("torch", "jax", "jaxlib", "pytensor", "casadi", "autograd"):
        versions[dist] = _version(dist) or "not installed"
    if importlib.util.find_spec("torch") is not None:
        import torch

        versions["torch"] += (f" (intra-op threads {torch.get_num_threads()}, "
                              f"inter-op {torch.get_num_interop_threads()})")
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cpu": _cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable,
            "os": platform.platform(), "load_average_start": list(os.getloadavg()), "versions": versions}


def header_lines(info: dict[str, Any], args) -> list[str]:
    v = info["versions"]
    load = " ".join(f"{x:.2f}" for x in info["load_average_start"])
    return [
        "symgrad compiled-gradient benchmark: one value + gradient per call, ratio to PyTorch eager",
        f"date      {info['date']}",
        f"cpu       {info['cpu']} ({info['logical_cores']} logical cores, {info['usable_cores']} usable)",
        f"load avg  {load} (1, 5, 15 min, at start)",
        f"os        {info['os']}",
        f"python    {v['python']}; numpy {v['numpy']}; sympy {v['sympy']}",
        f"torch     {v['torch']}",
        f"peers     jax {v['jax']} (jaxlib {v['jaxlib']}); pytensor {v['pytensor']}; casadi {v['casadi']}; "
        f"autograd {v['autograd']}",
        f"symgrad   {v['symgrad']}",
        f"timing    {args.rounds} interleaved rounds of ~{args.round_ms:g} ms per system, each after a short untimed "
        "warm-up of that system; medians; time.perf_counter, gc enabled" + (" [--tiny sizes]" if args.tiny else ""),
        "threads   " + (f"limited to {os.environ[THREADS_MARKER]} (OMP/OpenBLAS/MKL/XLA)"
                        if THREADS_MARKER in os.environ else "every library's default"),
    ]


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}" if r >= 0.1 else f"{r:.3f}"


def _fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:.1f}" if us < 1000 else f"{us:,.0f}"


def _fmt_s(seconds: Any) -> str:
    return f"{seconds:.3f}" if isinstance(seconds, float) else "-"


def _markdown(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def _cell(res: WorkloadResult, key: str, value: str) -> str:
    if key in res.mismatched:
        return "MISMATCH"
    if key in res.skipped or key not in res.medians:
        return "-"
    return value


def ratio_table(results: list[WorkloadResult], system_keys: list[str]) -> list[str]:
    best: dict[str, str] = {}
    for res in results:
        peers = {k: res.ratio(k) for k in res.medians if not SYSTEMS.get(k, SYSTEMS["symgrad"]).symgrad}
        if peers:
            best[res.key] = min(peers, key=peers.get)
    rows = [["ratio to PyTorch eager (** best peer)"] + [r.key for r in results]]
    for key in system_keys:
        row = [SYSTEMS[key].label]
        for res in results:
            text = _fmt_ratio(res.ratio(key))
            row.append(_cell(res, key, f"**{text}**" if best.get(res.key) == key else text))
        rows.append(row)
    rows.append(["target: symgrad compiled <="] + [f"{TARGETS[r.key]:.2f}" for r in results])
    rows.append(["PyTorch eager, us per call"]
                + [_fmt_us(r.medians[REFERENCE]) if REFERENCE in r.medians else "-" for r in results])
    return _markdown(rows)


def absolute_table(results: list[WorkloadResult], system_keys: list[str]) -> list[str]:
    rows = [["median us per call (min)"] + [r.key for r in results]]
    for key, label in [(k, SYSTEMS[k].label) for k in system_keys] + [(FORWARD_KEY, FORWARD_LABEL)]:
        row = [label]
        for res in results:
            if key in res.medians:
                row.append(f"{_fmt_us(res.medians[key])} ({_fmt_us(res.mins[key])})")
            else:
                row.append(_cell(res, key, "-"))
        rows.append(row)
    return _markdown(rows)


def build_table(results: list[WorkloadResult], system_keys: list[str]) -> list[str]:
    keys = [k for k in system_keys if SYSTEMS[k].has_build_step]
    rows = [["build seconds (construct + first call)"] + [r.key for r in results]]
    for key in keys:
        rows.append([SYSTEMS[key].label] + [_cell(r, key, _fmt_s(r.build_seconds.get(key))) for r in results])
    return _markdown(rows)


def chain_table(chains: dict[str, dict[int, Any]], ops_list: list[int]) -> list[str]:
    rows = [["build seconds, chain of N ops (fresh process)"] + [f"{n} ops" for n in ops_list] + ["s per op (last)"]]
    for key, per_ops in chains.items():
        last = per_ops.get(ops_list[-1])
        per_op = f"{last / ops_list[-1] * 1e3:.2f} ms" if isinstance(last, float) else "-"
        rows.append([SYSTEMS[key].label] + [_fmt_s(per_ops.get(n)) for n in ops_list] + [per_op])
    return _markdown(rows)


def verdict_lines(results: list[WorkloadResult], chains: dict[str, dict[int, Any]]) -> list[str]:
    lines = []
    for res in results:
        r = res.ratio("symgrad")
        if r is None:
            continue
        target = TARGETS[res.key]
        lines.append(f"{res.key}: symgrad compiled {r:.3f}x PyTorch eager, target <= {target:.2f}: "
                     + ("met" if r <= target else f"missed by {r / target:.2f}x"))
    for res in results:
        fwd, full = res.medians.get(FORWARD_KEY), res.medians.get("symgrad")
        if fwd and full:
            ratio = full / fwd
            lines.append(f"{res.key}: cheap-gradient ratio symgrad compiled value+grad / forward = {ratio:.2f}, "
                         f"target <= {CHEAP_GRADIENT_TARGET:g}: " + ("met" if ratio <= CHEAP_GRADIENT_TARGET
                                                                      else f"missed by {ratio / 3:.2f}x"))
    w3 = next((r.build_seconds.get("symgrad") for r in results if r.key == "W3"), None)
    if w3 is not None:
        lines.append(f"W3: symgrad build {w3:.3f} s, target <= {BUILD_TARGETS['W3']} s: "
                     + ("met" if w3 <= BUILD_TARGETS["W3"] else f"missed by {w3 / BUILD_TARGETS['W3']:.2f}x"))
    chain = chains.get("symgrad", {}).get(1000)
    if isinstance(chain, float):
        t = BUILD_TARGETS["chain 1000"]
        lines.append(f"chain of 1000 ops: symgrad build {chain:.3f} s, target <= {t} s: "
                     + ("met" if chain <= t else f"missed by {chain / t:.2f}x"))
    return lines


def note_lines(results: list[WorkloadResult], chains: dict[str, dict[int, Any]]) -> list[str]:
    notes = []
    for res in results:
        if res.verified:
            names = ", ".join(SYSTEMS[k].label for k in res.verified)
            notes.append(f"{res.key} value and every gradient agree with {SYSTEMS[res.reference].label} at rtol "
                         f"{RTOL[WORKLOADS[res.key].dtype]:g}: {names}")
    for res in results:
        for key, why in res.mismatched.items():
            notes.append(f"{res.key} {SYSTEMS[key].label}: MISMATCH with {SYSTEMS[res.reference].label}, "
                         f"not timed: {why}")
    skipped: dict[tuple[str, str], list[str]] = {}
    for res in results:
        for key, why in res.skipped.items():
            skipped.setdefault((key, why), []).append(res.key)
    for (key, why), where in skipped.items():
        notes.append(f"skipped {SYSTEMS[key].label} on {','.join(where)}: {why}")
    for key, per_ops in chains.items():
        for ops, value in per_ops.items():
            if not isinstance(value, float):
                notes.append(f"chain {ops} ops, {SYSTEMS[key].label}: {value}")
    if any("casadi" in r.medians for r in results):
        notes.append("CasADi computes in float64 only (W1 and W3 are float32 for every other system); "
                     "SX for W1, W4, MX for W2, W3, W5 and the chains")
    if any("torch-1thread" in r.medians for r in results):
        threads = _TORCH_DEFAULT_THREADS[0] if _TORCH_DEFAULT_THREADS else "default"
        notes.append(f"ratios are to PyTorch eager with its default intra-op thread count ({threads}); the 1-thread "
                     "row is for comparison (when another process keeps a core busy, multi-threaded PyTorch waits "
                     "for it)")
    if any("pytensor" in r.build_seconds for r in results):
        import pytensor

        notes.append(f"PyTensor mode {pytensor.config.mode}, cxx {pytensor.config.cxx or 'none'}; its on-disk cache "
                     f"of compiled C code ({pytensor.config.compiledir}) persists across runs, so a first-ever "
                     "build is slower than the one shown")
    for res in results:
        notes.extend(res.noisy)
    notes.append(f"load avg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return notes


def to_json(info, results: list[WorkloadResult], chains, ops_list, args) -> dict[str, Any]:
    return {
        "machine": info, "settings": {"rounds": args.rounds, "round_ms": args.round_ms, "tiny": args.tiny},
        "workloads": {r.key: {"title": WORKLOADS[r.key].title, "median_seconds": r.medians, "min_seconds": r.mins,
                              "ratio_to_torch": {k: r.ratio(k) for k in r.medians},
                              "calls_per_round": r.calls_per_round, "build_seconds": r.build_seconds,
                              "verified": r.verified, "skipped": r.skipped, "mismatched": r.mismatched,
                              "target_ratio": TARGETS[r.key]} for r in results},
        "chain_build_seconds": {k: {str(n): v for n, v in per.items()} for k, per in chains.items()},
        "chain_ops": ops_list,
    }


# =========================================================================== entry point


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK['rounds']} rounds of ~{QUICK['round_ms']:g} ms, "
                             f"chains of {QUICK['chain_ops']} ops")
    parser.add_argument("--rounds", type=int, help=f"interleaved timing rounds (default {DEFAULTS['rounds']})")
    parser.add_argument("--round-ms", type=float,
                        help=f"target milliseconds per system per round (default {DEFAULTS['round_ms']:g})")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of W1..W5")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated subset of {','.join(SYSTEMS)} (torch is the reference)")
    parser.add_argument("--chain-ops", help="comma-separated chain lengths for the build-time scaling run "
                                            f"(default {DEFAULTS['chain_ops']}; empty string: skip it)")
    parser.add_argument("--chain-timeout", type=float, default=600.0, help="seconds per chain build (default 600)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (for the test suite), not the issue's")
    parser.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    parser.add_argument("--threads", type=int,
                        help="run in a child process with OMP/OpenBLAS/MKL/XLA limited to this many threads "
                             "(default: every library's own default)")
    parser.add_argument("--build-worker", nargs=2, metavar=("SYSTEM", "OPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.workload_keys = [w for w in args.workloads.split(",") if w]
    args.system_keys = [s for s in args.systems.split(",") if s]
    bad = [w for w in args.workload_keys if w not in WORKLOADS] + [s for s in args.system_keys if s not in SYSTEMS]
    if bad:
        parser.error(f"unknown workload or system: {', '.join(bad)}")
    args.chain_ops_list = [int(n) for n in args.chain_ops.split(",") if n.strip()]
    if args.rounds < 1 or args.round_ms <= 0:
        parser.error("--rounds must be >= 1 and --round-ms > 0")
    return args


THREADS_MARKER = "SYMGRAD_BENCH_THREADS"


def thread_limited_env(threads: int) -> dict[str, str]:
    """The environment that caps every library's thread pool; it must be set before they are imported."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", THREADS_MARKER):
        env[var] = str(threads)
    if threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    return env


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.build_worker:
        return build_worker(args.build_worker[0], int(args.build_worker[1]))
    if args.threads is not None and os.environ.get(THREADS_MARKER) != str(args.threads):
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
        return subprocess.run(cmd, env=thread_limited_env(args.threads), check=False).returncode
    info = machine_info()
    for line in header_lines(info, args):
        print(line, flush=True)
    if reference_for(args.system_keys) != REFERENCE:
        print("note: PyTorch eager is not measured, so there are no ratios; the symgrad eager facade is the "
              "verification reference")
    if info["load_average_start"][0] > 0.5:
        print(f"warning: load average {info['load_average_start'][0]:.2f} at start: another process is busy, and "
              "multi-threaded libraries (PyTorch, BLAS, XLA) slow down most; rerun on an idle machine")

    try:
        results = [run_workload(WORKLOADS[w], args.system_keys, args) for w in args.workload_keys]
    finally:
        restore_torch_threads()
    chain_systems = [k for k in args.system_keys if SYSTEMS[k].has_build_step]
    chains = run_chain_scaling(chain_systems, args.chain_ops_list, args.chain_timeout) if args.chain_ops_list else {}

    print()
    for line in ratio_table(results, args.system_keys):
        print(line)
    print()
    for line in absolute_table(results, args.system_keys):
        print(line)
    print()
    for line in build_table(results, args.system_keys):
        print(line)
    if chains:
        print()
        for line in chain_table(chains, args.chain_ops_list):
            print(line)
    print()
    for line in verdict_lines(results, chains):
        print(line)
    for line in note_lines(results, chains):
        print(f"note: {line}")
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(info, results, chains, args.chain_ops_list, args), indent=2))
        print(f"wrote {args.json}")
    if any(r.mismatched for r in results):
        print("FAILED: some system disagrees with the reference (see the MISMATCH notes)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
