"""Compiled gradients for scripts: ``compile``, ``grad``, ``value_and_grad``, ``jacobian``, ``hessian``.

A Python function written with symgrad ops is *traced* once per argument
signature (shapes, dtypes, Python-number values): it runs eagerly on copies
of the example arguments, the recorded graph becomes one generated NumPy
module (:mod:`symgrad.compiler.program`), and every later call with the same
signature runs that module only — no graph, no Python per op.

The trace is checked: the function is traced again at two moved copies of
its arguments (floats scaled toward and away from zero element by element,
integers permuted; a copy at which the function raises is skipped), and a
program whose recorded operations or captured constants change with the
argument values (Python ``if`` on tensor values, ``.item()``,
random numbers, NumPy work on an argument outside symgrad) is rejected with
an error that names the op, instead of compiling something that is only right
at the example point.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from . import dtypes
from .autograd.engine import _Plan
from .backward import _accumulator
from .compiler.cache import CompileCache
from .compiler.codegen import python_name
from .compiler.program import Program, SlotRole, build_program
from .grad_mode import _state as grad_state
from .grad_mode import enable_grad
from .ops.registry import REGISTRY, reference_recipe
from .symbolic.nodes import TensorSymbol
from .tensor import Tensor, _make

__all__ = ["compile", "CompiledFunction", "grad", "value_and_grad", "jacobian", "hessian"]

_ARRAY_TYPES = (np.ndarray, Tensor, np.generic)


def compile(fn, *example_args, wrt=None, stable: bool = True, optimize: bool = True,  # noqa: A001
            cache_size: int = 16) -> CompiledFunction:
    """Trace ``fn`` at ``example_args`` and compile its value and gradients to NumPy.

    ``wrt`` selects the arguments to differentiate (indices or parameter names);
    by default those example tensors that require grad, else every floating
    argument.  ``stable`` applies the stability rewrites (``log(1 + exp(x))``
    becomes ``softplus(x)``, …) before deriving; ``optimize=False`` skips the
    optimisation passes (for comparison).  The result is called with
    NumPy arrays (or tensors) and returns ``(value, gradients)``.

    >>> import numpy as np, symgrad
    >>> f = symgrad.compile(lambda w, x: (x @ w).tanh().sum(), np.ones(3), np.ones((2, 3)))
    >>> value, (grad_w, grad_x) = f(np.zeros(3), np.ones((2, 3)))
    >>> float(value), grad_w
    (0.0, array([2., 2., 2.]))
    """
    compiled = CompiledFunction(fn, wrt=wrt, stable=stable, optimize=optimize, cache_size=cache_size)
    compiled.trace(*example_args)
    return compiled


@dataclass
class _Entry:
    """One compiled signature: its program, what to differentiate, and the trace (for formulas)."""

    program: Program
    wrt: tuple[int, ...]
    signature: tuple
    output: Tensor
    inputs: list
    value_and_grad: object
    forward: object
    fast: object = None  # ``fast(*args)``: the call for arrays of exactly this signature, else _MISS

    def __post_init__(self):
        if self.fast is None:
            self.fast = _fast_call(self.signature, self.value_and_grad, self.program.aliases["value_and_grad"])


def _faster(functions: dict, name: str, values: list):
    """The NumPy function ``name`` or its per-element version, whichever runs faster at ``values``.

    Measured, not guessed: the crossover depends on the graph (a tiny vector can
    meet a 100x100 matrix) and on the machine.
    """
    vectorised, scalar = functions[name], functions.get(f"{name}_scalar")
    if scalar is None:
        return vectorised
    with np.errstate(all="ignore"):
        times = {f: min(_seconds(f, values) for _ in range(3)) for f in (vectorised, scalar)}
    return min(times, key=times.get)


def _seconds(function, values, calls: int = 10) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function(*values)
    return time.perf_counter() - start


_MISS = object()


def _fast_call(signature, function, aliases):
    """A generated ``fast(*args)``: type, shape and dtype checks unrolled, then the compiled call.

    Per call it costs a few attribute reads per argument, where the general path
    (:meth:`CompiledFunction._entry`) builds a signature tuple.
    """
    if any(s[0] == "static" for s in signature):  # Python numbers: the general path compares their values
        return CompiledFunction._fast
    names = [f"a{i}" for i in range(len(signature))]
    unwrap = "".join(f"        if type({n}) is Tensor:\n            {n} = {n}._data\n" for n in names)
    checks = " and ".join(f"type({n}) is ndarray and {n}.shape == {s[0]!r} and {n}.dtype is dtype_{i}"
                          for i, (n, s) in enumerate(zip(names, signature)))
    grads = "".join(f"r[{k}].copy(), " if alias else f"r[{k}], " for k, alias in enumerate(aliases[1:], 1))
    source = (f"def fast(*args):\n"
              f"    if len(args) == {len(names)}:\n"
              f"        {', '.join(names)}{',' if len(names) == 1 else ''} = args\n"
              f"{unwrap}"
              f"        if {checks or 'True'}:\n"
              f"            r = function({', '.join(names)})\n"
              f"            return r[0], ({grads})\n"
              f"    return MISS\n")
    namespace = {"ndarray": np.ndarray, "Tensor": Tensor, "function": function, "MISS": _MISS,
                 **{f"dtype_{i}": np.dtype(s[1]) for i, s in enumerate(signature)}}
    exec(source, namespace)  # noqa: S102 - generated here from shapes and dtype codes
    return namespace["fast"]


class CompiledFunction:
    """A function compiled per argument signature; ``f(*args)`` returns ``(value, gradients)``.

    ``.source`` is the generated module (NumPy only), ``.save(path)`` writes it,
    ``.formulas`` shows the derivative formulas, ``.cache_info()`` counts traces.
    """

    _hessian = False

    def __init__(self, fn, *, wrt=None, stable: bool = True, optimize: bool = True, cache_size: int = 16) -> None:
        if not callable(fn):
            raise TypeError(f"symgrad.compile() expects a callable, got {type(fn).__name__}")
        self.fn, self.stable, self.optimize, self._wrt = fn, stable, optimize, wrt
        self._cache = CompileCache(maxsize=cache_size)
        self._last: _Entry | None = None
        self._names = _parameter_names(fn)

    # ---------------------------------------------------------------- calls

    def __call__(self, *args):
        """``(value, (grad, …))`` at ``args`` (NumPy arrays or tensors), one gradient per ``wrt`` argument."""
        result = self._fast(*args)  # generated for the last signature: checks it and calls the module
        if result is not _MISS:
            return result
        entry = self._entry(args)
        out = entry.value_and_grad(*_values(args, entry.signature))
        return out[0], tuple(_owned(g) for g in out[1:])

    @staticmethod
    def _fast(*args):
        return _MISS

    def forward(self, *args) -> np.ndarray:
        """The value alone (the compiled forward pass).

        >>> import numpy as np, symgrad
        >>> float(symgrad.compile(lambda x: (x * x).sum(), np.ones(2)).forward(np.array([1., 2.])))
        5.0
        """
        entry = self._entry(args)
        return entry.forward(*_values(args, entry.signature))[0]

    def vjp(self, *args, seed) -> tuple[np.ndarray, ...]:
        """Gradients of ``sum(fn(*args) * seed)``: one row of a Jacobian per basis ``seed``."""
        entry = self._entry(args)
        vjp = entry.program.functions["vjp"]
        return tuple(_owned(g) for g in vjp(*_values(args, entry.signature), np.asarray(seed)))

    def trace(self, *args) -> CompiledFunction:
        """Trace and compile for the signature of ``args`` now (calls do it on first use)."""
        self._entry(args)
        return self

    # ---------------------------------------------------------------- inspection

    @property
    def source(self) -> str:
        """The generated stand-alone module of the most recent signature."""
        return self._require_entry().program.source

    def save(self, path: str | os.PathLike) -> str:
        """Write ``.source`` to ``path`` (large constants to ``path`` with ``.npz``); returns the path.

        The module imports NumPy only: ``value_and_grad(…)``, ``forward(…)`` and
        ``vjp(…, seed)`` run without symgrad installed.
        """
        entry = self._require_entry()
        path = os.fspath(path)
        if not path.endswith(".py"):
            raise ValueError(f"save() writes a Python module: the path must end with .py, got {path!r}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(entry.program.source)
        if entry.program.constants:
            np.savez(path.removesuffix(".py") + ".npz", **entry.program.constants)
        return path

    @property
    def formulas(self):
        """The derivative formulas of the traced function (:func:`symgrad.grad_formula`)."""
        from .formula import grad_formula

        entry = self._require_entry()
        names = {n: t for t, n in zip(entry.inputs, self._names_for(len(entry.inputs))) if isinstance(t, Tensor)}
        return grad_formula(entry.output, [entry.inputs[i] for i in entry.wrt], names=names)

    def cache_info(self):
        """Hits, misses (one trace each) and size of this function's signature cache."""
        return self._cache.info()

    def __repr__(self) -> str:
        name = getattr(self.fn, "__name__", "function")
        return f"<symgrad.compile of {name}: {self._cache.info().currsize} signature(s)>"

    # ---------------------------------------------------------------- tracing

    def _require_entry(self) -> _Entry:
        if self._last is None:
            raise RuntimeError("nothing compiled yet: call the compiled function (or .trace) with arguments first")
        return self._last

    def _entry(self, args) -> _Entry:
        last = self._last
        signature = _signature(args)
        if last is not None and last.signature == signature:
            return last
        entry = self._cache.get_or_build(signature, lambda: self._build(args, signature))
        self._last = entry
        self._fast = entry.fast
        return entry

    def _names_for(self, n: int) -> list[str]:
        taken: set[str] = set()
        return [python_name(self._names[i] if i < len(self._names) else f"arg{i}", taken) for i in range(n)]

    def _build(self, args, signature) -> _Entry:
        wrt = _wrt_indices(self._wrt, args, self._names)
        if self._wrt is None:  # chosen once, from the first example arguments: later signatures keep it
            self._wrt = tuple(wrt)
        first = _trace(self.fn, args, wrt)
        for moved in _moved_traces(self.fn, args, wrt):
            _check_same_program(first, moved)
        names = self._names_for(len(args))
        symbols = [TensorSymbol(n, first.inputs[i].shape, first.inputs[i]._data.dtype.name, "input")
                   if isinstance(first.inputs[i], Tensor) else None for i, n in enumerate(names)]
        stabilize = _stability_pass() if self.stable else None
        program = build_program(first.plan.key, first.roles, symbols, wrt=list(wrt), node_names=first.node_names,
                                stabilize=stabilize, hessian=self._hessian, passes=self.optimize,
                                doc=getattr(self.fn, "__name__", "the function"))
        values = _values(args, signature)
        functions = program.functions
        return _Entry(program, tuple(wrt), signature, first.output, first.inputs,
                      _faster(functions, "value_and_grad", values), _faster(functions, "forward", values))


def _stability_pass():
    try:
        from .compiler.stability import stabilize
    except ImportError:  # pragma: no cover - the pass is optional while it is being written
        return None
    return stabilize


# ---------------------------------------------------------------- arguments


def _parameter_names(fn) -> list[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _is_array(a) -> bool:
    return isinstance(a, _ARRAY_TYPES)


def _data(a) -> np.ndarray:
    return a._data if isinstance(a, Tensor) else np.asarray(a)


def _signature(args) -> tuple:
    """The cache key: shape and dtype of each array argument, the value of any other."""
    out = []
    for a in args:
        if _is_array(a):
            data = _data(a)
            out.append((data.shape, data.dtype.char))
        else:
            out.append(("static", type(a), a))
    return tuple(out)


def _values(args, signature) -> list:
    """The arrays of ``args`` in the compiled function's parameter order (Python numbers are baked in)."""
    return [a._data if isinstance(a, Tensor) else np.asarray(a) for a, s in zip(args, signature) if s[0] != "static"]


def _owned(g):
    # a gradient may be an argument itself (d(x·1)/dx = 1 broadcast, or a view): callers may mutate results
    return g if type(g) is np.ndarray and g.flags.writeable and g.base is None else np.array(g)


def _wrt_indices(wrt, args, names: list[str]) -> list[int]:
    floating = [i for i, a in enumerate(args) if _is_array(a) and _data(a).dtype.kind == "f"]
    if wrt is None:
        chosen = [i for i in floating if isinstance(args[i], Tensor) and args[i].requires_grad]
        return chosen or floating
    items = [wrt] if isinstance(wrt, int | str) else list(wrt)
    out = []
    for w in items:
        index = names.index(w) if isinstance(w, str) and w in names else w
        if not isinstance(index, int):
            raise ValueError(f"wrt: {w!r} is not a parameter of the function (parameters: {', '.join(names)})")
        if not -len(args) <= index < len(args):
            raise IndexError(f"wrt: argument index {index} out of range for {len(args)} arguments")
        index %= len(args)
        if index not in floating:
            raise TypeError(f"wrt: argument {index} is not a floating point array (only floating point arguments "
                            "can be differentiated)")
        out.append(index)
    return out


def _perturbed(args, low: float, high: float) -> list:
    """The arguments moved away from the example point: floats scaled by factors in [low, high]
    element by element (signs kept), integers and masks permuted (class indices stay valid)."""
    rng = np.random.default_rng(0)
    out = []
    for a in args:
        if not _is_array(a):
            out.append(a)
            continue
        data = _data(a)
        if data.dtype.kind == "f":
            moved = data * rng.uniform(low, high, size=data.shape).astype(data.dtype)
        else:
            moved = rng.permutation(data.reshape(-1)).reshape(data.shape)
        out.append(moved)
    return out


# scaled toward zero first (probabilities stay probabilities, positive values positive), then away from it
_MOVES = ((0.8, 0.95), (1.05, 1.25))


def _moved_traces(fn, args, wrt) -> list[_Trace]:
    """Traces at moved arguments (toward and away from zero); a move where the function raises is skipped."""
    traces = []
    for low, high in _MOVES:
        try:
            traces.append(_trace(fn, _perturbed(args, low, high), wrt))
        except Exception:  # noqa: BLE001 - the function's own domain errors at a moved point
            continue
    if not traces:
        warnings.warn(f"symgrad.compile: {getattr(fn, '__name__', 'the function')} raised at every moved copy of "
                      "its example arguments, so the trace could not be checked for value-dependent behaviour",
                      RuntimeWarning, stacklevel=5)
    return traces


# ---------------------------------------------------------------- one trace


@dataclass
class _Trace:
    plan: _Plan
    roles: list
    output: Tensor
    inputs: list
    node_names: list


def _trace(fn, args, wrt) -> _Trace:
    inputs = [_traced_input(a, i in wrt) if _is_array(a) else a for i, a in enumerate(args)]
    # the other arguments are recorded too (without requiring grad, which some operands refuse):
    # the program recomputes everything from its arguments
    grad_state.traced = frozenset(id(t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and i not in wrt)
    try:
        with enable_grad():
            output, frame_locals = _call_recording_locals(fn, inputs)
    finally:
        grad_state.traced = None
    output = _scalar_output(output, fn)
    targets = [_accumulator(inputs[i]) for i in wrt]
    plan = _Plan([output._grad_fn], [None], targets)
    roles = _slot_roles(plan, inputs)
    names = _node_names(plan, frame_locals)
    return _Trace(plan, roles, output, inputs, names)


def _traced_input(a, differentiated: bool) -> Tensor:
    data = np.array(_data(a))  # a copy of its own: the trace finds the argument by this array's identity
    tensor = _make(data, dtypes.from_numpy_dtype(data.dtype))
    return tensor.requires_grad_(True) if differentiated else tensor


def _call_recording_locals(fn, inputs):
    """``fn(*inputs)`` and the local variables of its frame at return (names for the generated code)."""
    captured: dict = {}
    code = getattr(fn, "__code__", None)
    previous = sys.getprofile()
    if previous is not None:  # a profiler is running: leave it alone (the names are only cosmetic)
        return fn(*inputs), captured

    def profile(frame, event, arg):
        if event == "return" and frame.f_code is code:
            captured.update(frame.f_locals)

    sys.setprofile(profile if code is not None else previous)
    try:
        output = fn(*inputs)
    finally:
        sys.setprofile(previous)
    return output, captured


def _scalar_output(output, fn) -> Tensor:
    if not isinstance(output, Tensor):
        raise TypeError(f"symgrad.compile: {getattr(fn, '__name__', 'the function')} must return a Tensor, "
                        f"got {type(output).__name__}")
    if not output.dtype.is_floating_point:
        raise TypeError(f"symgrad.compile: the function's result must be floating point, got {output.dtype}")
    if output._grad_fn is None:  # the result is an argument itself or a constant: record an identity op
        output = output * 1 if output.requires_grad else output + _make(np.zeros((), output._data.dtype),
                                                                        output.dtype).requires_grad_(True)
    return output


def _slot_roles(plan: _Plan, inputs) -> list[SlotRole]:
    by_array = {id(t._data): i for i, t in enumerate(inputs) if isinstance(t, Tensor)}
    roles = []
    for (kind, _, _), value, accessor in zip(plan.key[1], plan.values, plan.accessors):
        if kind in ("leaf", "const") and by_array.get(id(value)) is not None and _data(inputs[by_array[id(value)]]) \
                is value:
            roles.append(SlotRole("arg", by_array[id(value)]))
        elif kind == "const" and reference_recipe(value) is not None:
            roles.append(SlotRole("reference", value=reference_recipe(value)))
        elif kind in ("const", "scalar", "leaf"):
            roles.append(SlotRole("constant", value=value, index=accessor[1] if accessor[0] == "value" else -1))
        else:
            roles.append(SlotRole("unused"))
    return roles


def _node_names(plan: _Plan, frame_locals: dict) -> list:
    by_array = {id(v._data): k for k, v in frame_locals.items() if isinstance(v, Tensor) and not k.startswith("_")}
    return [by_array.get(id(node.result)) for node in plan.order]


def _check_same_program(first: _Trace, second: _Trace) -> None:
    """Reject a trace that is only right at the example point (see the module docstring)."""
    nodes = first.plan.key[0]
    if first.plan.key[0] != second.plan.key[0] or first.plan.key[2:] != second.plan.key[2:]:
        raise RuntimeError(
            "symgrad.compile: the function records different operations for different argument values "
            "(Python control flow on tensor values, or shapes that depend on values); use symgrad.where or "
            "masks instead, or call the function eagerly")
    for r1, r2 in zip(first.roles, second.roles):
        if r1.kind != r2.kind or r1.index != r2.index and r1.kind == "arg":
            raise RuntimeError("symgrad.compile: the function reads its arguments differently at different values")
        if r1.kind == "constant" and not _same_value(r1.value, r2.value):
            op = nodes[r1.index][0] if r1.index >= 0 else "an op"
            raise RuntimeError(
                f"symgrad.compile: an operand of {REGISTRY[op].grad_fn_name(nodes[r1.index][1])} depends on the "
                "arguments but was computed outside the recorded graph (NumPy work on an argument, .item(), "
                "an integer computation, or random numbers); pass it to the function as an argument instead")


def _same_value(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    return a == b or (a != a and b != b)


# ---------------------------------------------------------------- JAX-like transforms


def value_and_grad(fn, argnums: int | tuple[int, ...] = 0, *, stable: bool = True, cache_size: int = 16):
    """``fn`` -> a function returning ``(value, gradient)`` (a tuple of gradients for a tuple ``argnums``).

    Compiled per argument signature, as :func:`compile`.

    >>> import numpy as np, symgrad
    >>> value, gradient = symgrad.value_and_grad(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
    >>> float(value), gradient
    (9.0, array([ 3., 12.]))
    """
    compiled = CompiledFunction(fn, wrt=argnums, stable=stable, cache_size=cache_size)

    def value_and_gradient(*args):
        value, grads = compiled(*args)
        return value, grads if isinstance(argnums, tuple | list) else grads[0]

    return _wrapped(value_and_gradient, fn, compiled, "value_and_grad")


def grad(fn, argnums: int | tuple[int, ...] = 0, *, stable: bool = True, cache_size: int = 16):
    """``fn`` (scalar-valued) -> its gradient function (a tuple of gradients for a tuple ``argnums``).

    >>> import numpy as np, symgrad
    >>> symgrad.grad(lambda x: (x.sin() * 2).sum())(np.zeros(2))
    array([2., 2.])
    """
    inner = value_and_grad(fn, argnums, stable=stable, cache_size=cache_size)

    def gradient(*args):
        return inner(*args)[1]

    return _wrapped(gradient, fn, inner.compiled, "grad")


def jacobian(fn, argnums: int | tuple[int, ...] = 0, *, stable: bool = True, cache_size: int = 16):
    """``fn`` -> its Jacobian function: shape ``out.shape + arg.shape`` per argument.

    >>> import numpy as np, symgrad
    >>> symgrad.jacobian(lambda x: x * x)(np.array([1.0, 3.0]))
    array([[2., 0.],
           [0., 6.]])
    """
    compiled = CompiledFunction(fn, wrt=argnums, stable=stable, cache_size=cache_size)

    def jac(*args):
        entry = compiled._entry(args)
        values = _values(args, entry.signature)
        out = entry.output
        rows = [entry.program.functions["vjp"](*values, _basis(out.shape, k, out._data.dtype))
                for k in range(int(np.prod(out.shape, dtype=np.int64)))]
        results = []
        for j, i in enumerate(entry.wrt):
            shape = entry.inputs[i].shape
            stacked = np.stack([r[j] for r in rows]) if rows else np.zeros((0, *shape), entry.inputs[i]._data.dtype)
            results.append(stacked.reshape(tuple(out.shape) + tuple(shape)))
        return tuple(results) if isinstance(argnums, tuple | list) else results[0]

    return _wrapped(jac, fn, compiled, "jacobian")


def hessian(fn, argnums: int = 0, *, stable: bool = True, cache_size: int = 16):
    """``fn`` (scalar-valued) -> its Hessian function: shape ``arg.shape + arg.shape``.

    Reverse over reverse: Hessian-vector products of the symbolic gradient,
    one per basis vector, in one compiled module.

    >>> import numpy as np, symgrad
    >>> symgrad.hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    if not isinstance(argnums, int):
        raise TypeError("hessian: argnums must be one int (the Hessian of one argument)")
    compiled = _HessianFunction(fn, wrt=argnums, stable=stable, cache_size=cache_size)

    def hess(*args):
        entry = compiled._entry(args)
        values = _values(args, entry.signature)
        (i,) = entry.wrt
        shape = tuple(entry.inputs[i].shape)
        dtype = entry.inputs[i]._data.dtype
        if entry.output.numel() != 1:
            raise RuntimeError(f"hessian: the function must return one number, got shape {tuple(entry.output.shape)}")
        hvp = entry.program.functions["hvp"]
        n = int(np.prod(shape, dtype=np.int64))
        rows = [hvp(*values, _basis(shape, k, dtype))[0] for k in range(n)]
        return (np.stack(rows) if rows else np.zeros((0,), dtype)).reshape(shape + shape)

    return _wrapped(hess, fn, compiled, "hessian")


class _HessianFunction(CompiledFunction):
    _hessian = True  # also compile Hessian-vector products


def _basis(shape, k: int, dtype) -> np.ndarray:
    e = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=dtype)
    e[k] = 1
    return e.reshape(shape)


def _wrapped(function, fn, compiled: CompiledFunction, kind: str):
    function.__name__ = f"{kind}_{getattr(fn, '__name__', 'function')}"
    function.__doc__ = f"{kind} of {getattr(fn, '__name__', 'a function')}, compiled by symgrad."
    function.compiled = compiled
    return function
