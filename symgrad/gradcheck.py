"""Finite-difference verification: PyTorch's ``gradcheck``/``gradgradcheck`` and a report a person can act on.

Two faces over one numerical core:

* :func:`gradcheck` and :func:`gradgradcheck` follow ``torch.autograd.gradcheck``:
  the same arguments, the same order of checks, the same exceptions and the
  same ``GradcheckError`` messages (``Jacobian mismatch for output 0 with
  respect to input 0, numerical:... analytical:...``), plus one line naming the
  worst element.  The analytical Jacobian is symgrad's compiled symbolic
  gradient, one backward call per output element; the numerical one perturbs
  every input element by ``±eps`` (central differences, evaluated in float64).
* :func:`check_gradients` returns a :class:`GradientReport`: per input the
  largest absolute and relative error, the worst element with the symbolic
  and the numerical derivative side by side, the step used, kinks reported as
  kinks (one-sided differences that disagree) rather than as failures,
  optional Richardson extrapolation, and :meth:`GradientReport.plot` for the
  classic error-versus-step curve.

Inputs are perturbed in place, as PyTorch perturbs ``input.data``: the
function sees the same tensor objects, the version counter does not move, and
every element is restored exactly afterwards.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import dtypes
from . import random as _random
from .backward import backward_source as _backward_source
from .backward import grad as _grad
from .tensor import Tensor, _make

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck", "check_gradients", "GradientReport", "InputCheck",
           "Kink"]

# Texts PyTorch prints, kept verbatim so a search for them finds PyTorch's explanations.
_NONDET_NOTE = """\n
NOTE: If your op relies on non-deterministic operations i.e., it is listed here:
https://pytorch.org/docs/stable/generated/torch.use_deterministic_algorithms.html
this failure might be expected.

If you are adding a new operator, please file an issue and then use one of the
workarounds. The workaround depends on how your test invokes gradcheck/gradgradcheck.
If the test
- manually invokes gradcheck/gradgradcheck, then call gradcheck/gradgradcheck
  with `nondet_tol=<tol>` as a keyword argument.
- is OpInfo-based (e.g., in test_ops_gradients.py), then modify the OpInfo for the test
  to have `gradcheck_nondet_tol=<tol>`.
- is a Module test (e.g., in common_nn.py), then modify the corresponding
  module_test entry to have `gradcheck_nondet_tol=<tol>`
"""

_FAST_FAIL_SLOW_OK = """
Fast gradcheck failed but element-wise differences are small. This means that the
test might've passed in slow_mode!

If you are adding a new operator, please file an issue and then use one of the
workarounds. The workaround depends on how your test invokes gradcheck/gradgradcheck:

If the test
- manually invokes gradcheck/gradgradcheck, then call gradcheck/gradgradcheck
  with `fast_mode=False` as a keyword argument.
- is OpInfo-based (e.g., in test_ops_gradients.py), then modify the OpInfo for the test
  to have `gradcheck_fast_mode=False`
- is a Module test (e.g., in common_nn.py), then modify the corresponding
  module_test entry to have `gradcheck_fast_mode=False`
""".strip()

_BATCHED_NOTE = """
gradcheck or gradgradcheck failed while testing batched gradient computation.
symgrad has no vmap: a batched gradient is checked as what a batched backward must
compute, the vector-Jacobian product of each grad_output on its own (the products
must be linear in grad_output). If you are adding a new operator, call
gradcheck/gradgradcheck with `check_batched_grad=False` to skip this check.
""".strip()

_UNDEFINED_NOTE = ('Please look at "Notes about undefined output gradients" in '
                   '"tools/autograd/derivatives.yaml"')


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` and :func:`gradgradcheck` (a ``RuntimeError``, as PyTorch's).

    >>> issubclass(GradcheckError, RuntimeError)
    True
    """


# ----------------------------------------------------------------- helpers

def _as_tuple(x) -> tuple:
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _is_float_tensor(x) -> bool:
    return isinstance(x, Tensor) and x.dtype.is_floating_point


def _differentiable_outputs(outputs) -> tuple[Tensor, ...]:
    return tuple(o for o in _as_tuple(outputs) if isinstance(o, Tensor) and o.requires_grad)


def _as_tensor(array: np.ndarray, dtype: dtypes.DType) -> Tensor:
    """A fresh tensor holding ``array`` in ``dtype`` (for printing Jacobians as PyTorch does)."""
    return _make(np.array(array, dtype=dtype.numpy), dtype)


def _output_arrays(outputs) -> list[np.ndarray]:
    """float64 copies of the floating outputs (outputs may be views of an input that is about to change)."""
    return [np.array(o._data, dtype=np.float64) for o in _as_tuple(outputs) if _is_float_tensor(o)]


def _element(shape: tuple[int, ...], flat: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _index_text(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, index)) + "]" if index else ""


class _Shift:
    """Add ``delta`` to one element (or, with an array ``delta``, to all) of ``array`` for a ``with`` block.

    The sum is formed in the array's dtype, as PyTorch's ``copy_(orig + v)``;
    the original values come back exactly afterwards, even when the call raises.
    """

    def __init__(self, array: np.ndarray, element, delta) -> None:
        self.array, self.element, self.delta = array, element, delta

    def __enter__(self):
        self.original = np.array(self.array[self.element], copy=True)
        self.array[self.element] = self.original + self.delta
        return self

    def __exit__(self, *exc) -> None:
        self.array[self.element] = self.original


def _writable(t: Tensor) -> np.ndarray:
    """The tensor's array, made writable in place of a read-only one (never a stride-0 broadcast)."""
    if not isinstance(t._data, np.ndarray) or not t._data.flags.writeable:
        t._data = np.array(t._data)
    return t._data


# --------------------------------------------------------- numerical side

def _numerical_jacobians(func, inputs: tuple, index: int, eps: float, n_outputs: list[int]) -> list[np.ndarray]:
    """d(outputs)/d(inputs[index]) by central differences: one (numel_in, numel_out) array per float output."""
    t = inputs[index]
    array = _writable(t)
    jacobians = [np.zeros((t.numel(), size)) for size in n_outputs]
    for k in range(t.numel()):
        element = _element(array.shape, k)
        with _Shift(array, element, -eps):
            before = _output_arrays(func(*inputs))
        with _Shift(array, element, eps):
            after = _output_arrays(func(*inputs))
        for jacobian, a, b in zip(jacobians, before, after):
            _check_same_shape(a, b, eps)
            jacobian[k] = ((b - a) / (2 * eps)).reshape(-1)
    return jacobians


def _check_same_shape(a: np.ndarray, b: np.ndarray, eps: float) -> None:
    if a.shape != b.shape:
        raise AssertionError(f"Expected `func` to return outputs with the same shape when inputs are perturbed "
                             f"by {eps}, but got: shapes {a.shape} and {b.shape}.")


# -------------------------------------------------------- analytical side

def _vjp(output: Tensor, diff_inputs: list[Tensor], seed: np.ndarray) -> tuple:
    """Gradients of ``sum(output * seed)`` with respect to ``diff_inputs`` (None where unused)."""
    return _grad(output, diff_inputs, _as_tensor(seed.reshape(output.shape), output.dtype),
                 retain_graph=True, allow_unused=True)


@dataclass
class _Analytical:
    jacobians: list[np.ndarray]
    types_ok: bool = True
    sizes_ok: bool = True


def _analytical_rows(output: Tensor, diff_inputs: list[Tensor], seeds) -> _Analytical:
    """Stack the vector-Jacobian products of ``seeds`` into columns, as PyTorch does, noting bad sizes/dtypes."""
    seeds = list(seeds)
    result = _Analytical([np.zeros((t.numel(), len(seeds))) for t in diff_inputs])
    for column, seed in enumerate(seeds):
        for i, (t, g) in enumerate(zip(diff_inputs, _vjp(output, diff_inputs, seed))):
            if g is None:
                continue
            if g.shape != t.shape:
                result.sizes_ok = False
                continue
            if g.dtype is not t.dtype:
                result.types_ok = False
            result.jacobians[i][:, column] = g._data.reshape(-1)
    return result


def _unit_seeds(output: Tensor):
    """The standard basis of the output's elements: one Jacobian row each."""
    for j in range(output.numel()):
        seed = np.zeros(output.numel())
        seed[j] = 1.0
        yield seed


def _checked_analytical(output: Tensor, diff_inputs, nondet_tol: float, check_grad_dtypes: bool,
                        seeds_factory) -> list[np.ndarray]:
    """The analytical Jacobians, computed twice (reentrancy), with PyTorch's checks and messages."""
    first = _analytical_rows(output, diff_inputs, seeds_factory())
    second = _analytical_rows(output, diff_inputs, seeds_factory())
    reentrant = all(j1.size == 0 or np.abs(j1 - j2).max() <= nondet_tol
                    for j1, j2 in zip(first.jacobians, second.jacobians))
    if not first.types_ok and check_grad_dtypes:
        raise GradcheckError("Gradient has dtype mismatch")
    if not first.sizes_ok:
        raise GradcheckError("Analytical gradient has incorrect size")
    if not reentrant:
        raise GradcheckError("Backward is not reentrant, i.e., running backward with same input and grad_output "
                             "multiple times gives different values, although analytical gradient matches "
                             f"numerical gradient.The tolerance for nondeterminism was {nondet_tol}."
                             + _NONDET_NOTE)
    return first.jacobians


# ---------------------------------------------------------------- messages

def _allclose(a: np.ndarray, n: np.ndarray, rtol: float, atol: float) -> bool:
    """``torch.allclose(a, n)``: |a - n| <= atol + rtol * |n| everywhere, NaN never close."""
    return bool(np.allclose(a, n, rtol=rtol, atol=atol, equal_nan=False))


def _mismatch_message(analytical, numerical, output_index: int, input_index: int,
                      analytical_dtype: dtypes.DType, numerical_dtype: dtypes.DType) -> str:
    """PyTorch's message: Jacobians printed as PyTorch prints them (in its dtypes), fast-mode scalars as floats."""
    if isinstance(analytical, float):
        shown_n, shown_a = repr(float(numerical)), repr(analytical)
    else:
        shown_n, shown_a = _as_tensor(numerical, numerical_dtype), _as_tensor(analytical, analytical_dtype)
    return (f"Jacobian mismatch for output {output_index:d} with respect to input {input_index:d},\n"
            f"numerical:{shown_n}\nanalytical:{shown_a}\n")


def _worst_line(analytical: np.ndarray, numerical: np.ndarray, atol: float, rtol: float,
                input_shape, output_shape, input_index: int, output_index: int) -> str:
    """The element of the Jacobian that misses the tolerance by most, located in the input and output."""
    tolerance = atol + rtol * np.abs(numerical)
    excess = np.abs(analytical - numerical) - tolerance
    excess = np.where(np.isnan(excess), np.inf, excess)
    row, column = (int(i) for i in np.unravel_index(int(np.argmax(excess)), excess.shape))
    a, n = float(analytical[row, column]), float(numerical[row, column])
    where = (f"d output {output_index}{_index_text(_element(tuple(output_shape), column))} / "
             f"d input {input_index}{_index_text(_element(tuple(input_shape), row))}")
    return (f"worst element: numerical[{row}, {column}] = {n:.6g}, analytical[{row}, {column}] = {a:.6g} "
            f"({where}): |difference| = {abs(a - n):.3g} > atol + rtol * |numerical| = "
            f"{float(tolerance[row, column]):.3g}\n")


# ------------------------------------------------------------ gradcheck

def _check_inputs(inputs: tuple) -> list[int]:
    """PyTorch's input checks: a float32 warning, no stride-0 inputs, at least one input requiring grad."""
    found = []
    for idx, inp in enumerate(inputs):
        if not (isinstance(inp, Tensor) and inp.requires_grad):
            continue
        if inp.dtype is not dtypes.float64:
            warnings.warn(f"Input #{idx} requires gradient and is not a double precision floating point or "
                          "complex. This check will likely fail if all the inputs are not of double precision "
                          "floating point or complex. ", stacklevel=3)
        # NumPy gives empty arrays stride 0; with no elements nothing can overlap (PyTorch's strides are never 0 there)
        if inp._data.size and any(stride == 0 and size > 1 for stride, size in zip(inp._data.strides, inp._data.shape)):
            raise RuntimeError(f"The {idx}th input has a dimension with stride 0. gradcheck only supports inputs "
                               "that are non-overlapping to be able to compute the numerical gradients correctly. "
                               "You should call .contiguous on the input before passing it to gradcheck.")
        found.append(idx)
    if not found:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of them have "
                         "requires_grad=True.")
    return found


def _slow_gradcheck(func, func_out, inputs, outputs, diff_indices, eps, rtol, atol, check_grad_dtypes,
                    nondet_tol) -> None:
    float_outputs = [o for o in _as_tuple(func_out) if _is_float_tensor(o)]
    sizes = [o.numel() for o in float_outputs]
    numerical = [_numerical_jacobians(func, inputs, i, eps, sizes) for i in diff_indices]  # [input][output]
    if not outputs:
        if any(np.any(j != 0) for per_input in numerical for j in per_input):
            raise GradcheckError("Numerical gradient for function expected to be zero")
        return
    per_output = [[numerical[i][k] for i in range(len(diff_indices))]
                  for k, o in enumerate(float_outputs) if o.requires_grad]
    diff_inputs = [inputs[i] for i in diff_indices]
    for out_index, output in enumerate(outputs):
        analytical = _checked_analytical(output, diff_inputs, nondet_tol, check_grad_dtypes,
                                         lambda output=output: _unit_seeds(output))
        for in_index, (a, n) in enumerate(zip(analytical, per_output[out_index])):
            if not _allclose(a, n, rtol, atol):
                t = diff_inputs[in_index]
                raise GradcheckError(
                    _mismatch_message(a, n, out_index, in_index, t.dtype, output.dtype)
                    + _worst_line(a, n, atol, rtol, t.shape, output.shape, in_index, out_index))


def _random_unit(n: int, dtype: dtypes.DType, generator) -> np.ndarray:
    """PyTorch's fast-mode vector: ``rand(n, generator)`` cast to ``dtype``, divided by its norm."""
    vector = _random.uniform((n,), np.float32, generator=generator).astype(dtype.numpy)
    return vector / np.linalg.norm(vector)


def _fast_gradcheck(func, func_out, inputs, outputs, diff_indices, eps, rtol, atol, check_grad_dtypes,
                    nondet_tol) -> None:
    """Random projections: compare v^T J u from finite differences with the symbolic v^T J u.

    The vectors come from a fresh generator with PyTorch's default seed, so
    they are the very vectors ``torch.autograd.gradcheck(fast_mode=True)`` uses.
    """
    generator = _random.Generator()
    all_u = [_random_unit(inputs[i].numel(), inputs[i].dtype, generator) for i in diff_indices]
    all_v = [_random_unit(o.numel(), o.dtype, generator) for o in outputs]
    numerical = [_numerical_jvps(func, inputs, i, u, eps) for i, u in zip(diff_indices, all_u)]
    if not outputs:
        if any(jvp.size and np.abs(jvp).max() > nondet_tol for per_input in numerical for jvp in per_input):
            raise GradcheckError("Numerical gradient for function expected to be zero")
    diff_inputs = [inputs[i] for i in diff_indices]
    analytical = []  # [output][input] scalars v^T J u
    for output, v in zip(outputs, all_v):
        vj = _checked_analytical(output, diff_inputs, nondet_tol, check_grad_dtypes, lambda v=v: [v])
        analytical.append([float(np.dot(row[:, 0], u)) for row, u in zip(vj, all_u)])
    for in_index, jvps in enumerate(numerical):
        for out_index, (v, jvp) in enumerate(zip(all_v, jvps)):
            a, n = analytical[out_index][in_index], float(np.sum(v * jvp))
            adjusted = atol * float(all_u[in_index].sum()) * float(v.sum())
            if not _allclose(np.array(a), np.array(n), rtol, adjusted):
                t, output = diff_inputs[in_index], outputs[out_index]
                raise GradcheckError(
                    _mismatch_message(a, n, out_index, in_index, t.dtype, output.dtype)
                    + _slow_mode_text(func, inputs, diff_indices, in_index, out_index, outputs, eps, rtol, atol))


def _numerical_jvps(func, inputs, index, u, eps) -> list[np.ndarray]:
    """J u for every float output, by central differences along ``eps * u``."""
    array = _writable(inputs[index])
    delta = (eps * u).reshape(array.shape).astype(array.dtype)
    with _Shift(array, ..., -delta):
        before = _output_arrays(func(*inputs))
    with _Shift(array, ..., delta):
        after = _output_arrays(func(*inputs))
    return [((b - a) / (2 * eps)).reshape(-1) for a, b in zip(before, after)]


def _slow_mode_text(func, inputs, diff_indices, in_index, out_index, outputs, eps, rtol, atol) -> str:
    """PyTorch's follow-up to a fast-mode failure: the full Jacobians, recomputed element by element."""
    output = outputs[out_index]
    float_sizes = [o.numel() for o in outputs]
    numerical = _numerical_jacobians(func, inputs, diff_indices[in_index], eps, float_sizes)[out_index]
    diff_inputs = [inputs[i] for i in diff_indices]
    analytical = _analytical_rows(output, diff_inputs, _unit_seeds(output)).jacobians[in_index]
    t = diff_inputs[in_index]
    max_diff = np.abs(numerical - analytical).max() if numerical.size else 0.0
    text = ("\nThe above quantities relating the numerical and analytical jacobians are computed \n"
            "in fast mode. See: https://github.com/pytorch/pytorch/issues/53876 for more background \n"
            "about fast mode. Below, we recompute numerical and analytical jacobians in slow mode:\n\n"
            f"Numerical:\n {_as_tensor(numerical, output.dtype)}\n"
            f"Analytical:\n{_as_tensor(analytical, t.dtype)}\n\n"
            f"The max per-element difference (slow mode) is: {float(max_diff)!r}.\n")
    if _allclose(analytical, numerical, rtol, atol):
        return text + _FAST_FAIL_SLOW_OK
    return text + _worst_line(analytical, numerical, atol, rtol, t.shape, output.shape, in_index, out_index)


def _test_batched_grad(inputs, output: Tensor, output_index: int) -> None:
    """Two grad_outputs at once must give what each gives alone (symgrad's stand-in for PyTorch's vmap check)."""
    diff_inputs = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    seeds = [_random.normal(output.shape, output.dtype.numpy) for _ in range(2)]  # randn_like, global RNG

    def vjp(seed):
        return [np.zeros(t.shape) if g is None else g._data.astype(np.float64)
                for t, g in zip(diff_inputs, _vjp(output, diff_inputs, seed.astype(output.dtype.numpy)))]

    single = [vjp(s) for s in seeds]
    together = vjp(seeds[0] + seeds[1])
    for input_index, t in enumerate(diff_inputs):
        expected = np.stack([single[0][input_index], single[1][input_index]])
        result = np.stack([together[input_index] - single[1][input_index],
                           together[input_index] - single[0][input_index]])
        if not np.allclose(result, expected):
            raise GradcheckError(f"For output {output_index} and input {input_index}:\n\n{_BATCHED_NOTE}\n\n"
                                 f"Got:\n{_as_tensor(result, t.dtype)}\n\nExpected:\n{_as_tensor(expected, t.dtype)}")


def _test_backward_mul_by_grad_output(outputs, inputs) -> None:
    """Zero grad_outputs must give zero gradients of the inputs' dtype and size."""
    diff_inputs = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not diff_inputs:
        raise GradcheckError("no Tensors requiring grad found in input")
    if not outputs:
        return
    seeds = [_make(np.zeros(o.shape, o.dtype.numpy), o.dtype) for o in outputs]
    for gi, di in zip(_grad(list(outputs), diff_inputs, seeds, allow_unused=True), diff_inputs):
        if gi is None:
            continue
        if np.any(gi._data != 0):
            raise GradcheckError("backward not multiplied by grad_output")
        if gi.dtype is not di.dtype:
            raise GradcheckError("grad is incorrect type")
        if gi.shape != di.shape:
            raise GradcheckError("grad is incorrect size")


def _test_undefined_backward_mode(func, inputs) -> None:
    """All-undefined output gradients give undefined or zero input gradients.

    symgrad has no undefined-gradient object: an undefined output gradient is
    a zero one, which every symbolic backward handles by construction.
    """
    diff_inputs = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not diff_inputs:
        raise GradcheckError("no Tensors requiring grad found in input")
    outputs = _differentiable_outputs(func(*inputs))
    if not outputs:
        return
    seeds = [_make(np.zeros(o.shape, o.dtype.numpy), o.dtype) for o in outputs]
    try:
        grads = _grad(list(outputs), diff_inputs, seeds, allow_unused=True)
    except RuntimeError as error:
        raise GradcheckError("Expected backward function to handle undefined output grads. " + _UNDEFINED_NOTE) \
            from error
    if any(g is not None and np.any(g._data != 0) for g in grads):
        raise GradcheckError("Expected all input grads to be undefined or zero when all output grads are "
                             "undefined or zero. " + _UNDEFINED_NOTE)


def _validate_flags(check_forward_ad, check_backward_ad, check_batched_grad, check_batched_forward_grad) -> None:
    if not (check_forward_ad or check_backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad to be True")
    if check_batched_grad and not check_backward_ad:
        raise AssertionError("Setting check_batched_grad=True requires check_backward_ad to be True")
    if check_batched_forward_grad and not check_forward_ad:
        raise AssertionError("Setting check_batched_forward_grad=True requires check_forward_ad to be True")
    if check_forward_ad:
        raise NotImplementedError("symgrad has no forward-mode AD: check_forward_ad=True is not supported")


def gradcheck(func: Callable[..., Tensor | Sequence[Tensor]], inputs: Tensor | Sequence, *, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False, masked: bool | None = None) -> bool:
    """Compare symgrad's gradients with central finite differences, as ``torch.autograd.gradcheck``.

    Every input that requires grad is perturbed element by element by ``±eps``;
    the resulting numerical Jacobian must satisfy ``|analytical - numerical| <=
    atol + rtol * |numerical|`` against the Jacobian symgrad's compiled
    backward gives, one output element (row) at a time.  ``fast_mode``
    compares random projections ``vᵀJu`` instead (the vectors PyTorch uses).
    Returns ``True``, or raises :class:`GradcheckError` (``False`` with
    ``raise_exception=False``).  Use float64 inputs: float32 ones draw
    PyTorch's warning and will likely fail.

    >>> import symgrad
    >>> x = symgrad.tensor([0.5, 1.5], dtype=symgrad.float64, requires_grad=True)
    >>> symgrad.autograd.gradcheck(lambda t: (t.sigmoid() * t).sum(), (x,))
    True
    """
    del masked  # dense tensors only: nothing is unspecified
    _validate_flags(check_forward_ad, check_backward_ad, check_batched_grad, check_batched_forward_grad)
    try:
        _gradcheck(func, inputs, eps, atol, rtol, nondet_tol, check_undefined_grad, check_grad_dtypes,
                   check_batched_grad, fast_mode)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _gradcheck(func, inputs, eps, atol, rtol, nondet_tol, check_undefined_grad, check_grad_dtypes,
               check_batched_grad, fast_mode) -> None:
    tupled = _as_tuple(inputs)
    diff_indices = _check_inputs(tupled)
    func_out = func(*tupled)
    outputs = _differentiable_outputs(func_out)
    check = _fast_gradcheck if fast_mode else _slow_gradcheck
    check(func, func_out, tupled, outputs, diff_indices, eps, rtol, atol, check_grad_dtypes, nondet_tol)
    if check_batched_grad:
        for i, o in enumerate(outputs):
            _test_batched_grad(tupled, o, i)
    _test_backward_mul_by_grad_output(outputs, tupled)
    if check_undefined_grad:
        _test_undefined_backward_mode(func, tupled)


def _random_grad_outputs(outputs) -> tuple[Tensor, ...]:
    """``make_tensor(low=-1, high=1, requires_grad=True)`` per output: uniform from the global generator."""
    made = []
    for o in outputs:
        dtype = o.dtype if o.dtype.is_floating_point else dtypes.float64
        values = _random.uniform(o.shape, dtype.numpy) * 2 - 1
        t = _make(np.array(values, dtype=dtype.numpy), dtype)
        t._requires_grad = True
        made.append(t)
    return tuple(made)


def gradgradcheck(func: Callable[..., Tensor | Sequence[Tensor]], inputs: Tensor | Sequence,
                  grad_outputs: Tensor | Sequence | None = None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False, masked: bool = False) -> bool:
    """Check second derivatives, as ``torch.autograd.gradcheck.gradgradcheck``.

    Runs :func:`gradcheck` on the function ``(inputs, grad_outputs) ->
    autograd.grad(func(inputs), inputs, grad_outputs, create_graph=True)``:
    the gradients symgrad derives symbolically are differentiated again and
    compared with finite differences of the first gradients.  Missing
    ``grad_outputs`` are drawn uniformly from [-1, 1) with the global
    generator (the same numbers PyTorch draws after the same ``manual_seed``).

    >>> import symgrad
    >>> x = symgrad.tensor([0.5, 1.5], dtype=symgrad.float64, requires_grad=True)
    >>> symgrad.autograd.gradgradcheck(lambda t: (t.tanh() * t).sum(), (x,))
    True
    """
    del gen_non_contig_grad_outputs  # NumPy layouts do not change symgrad's results
    if not (check_fwd_over_rev or check_rev_over_rev):
        raise AssertionError("Expected at least one of check_fwd_over_rev or check_rev_over_rev to be True")
    if check_undefined_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_undefined_grad=True requires check_rev_over_rev to be True")
    if check_batched_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_batched_grad=True requires check_rev_over_rev to be True")
    tupled_inputs = _as_tuple(inputs)
    if grad_outputs is None:
        tupled_grad_outputs = _random_grad_outputs(_differentiable_outputs(func(*tupled_inputs)))
    else:
        tupled_grad_outputs = _as_tuple(grad_outputs)
    num_outputs = len(tupled_grad_outputs)
    diff_input_indices = {i for i, x in enumerate(tupled_inputs) if isinstance(x, Tensor) and x.requires_grad}

    def new_func(*args):
        input_args = args[:-num_outputs] if num_outputs else args
        outputs = _differentiable_outputs(func(*input_args))
        diff_input_args = [x for i, x in enumerate(input_args) if i in diff_input_indices]
        grad_inputs = _grad(list(outputs), diff_input_args, list(args[-num_outputs:]) if num_outputs else None,
                            create_graph=True, allow_unused=True)
        return tuple(g for g in grad_inputs if g is not None)

    return gradcheck(new_func, tupled_inputs + tupled_grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol, check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad, fast_mode=fast_mode,
                     check_forward_ad=check_fwd_over_rev, check_backward_ad=check_rev_over_rev, masked=masked)


# ================================================================== report

class _TensorProblem:
    """A function of tensors: outputs by calling it, Jacobians from symgrad's compiled backward.

    Works on float64 copies of the inputs, so the caller's tensors are never touched.
    """

    def __init__(self, func, inputs: tuple, names: list[str]) -> None:
        self.func = func
        self.converted = [names[i] for i, x in enumerate(inputs) if _is_float_tensor(x) and x.dtype is not
                          dtypes.float64]
        requested = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
        self.checked = requested or [i for i, x in enumerate(inputs) if _is_float_tensor(x)]
        self.inputs = tuple(self._copy(x, i in self.checked, names[i]) for i, x in enumerate(inputs))
        self.arrays = [x._data if isinstance(x, Tensor) else None for x in self.inputs]
        self.source: str | None = None

    @staticmethod
    def _copy(x, checked: bool, name: str):
        if not _is_float_tensor(x):
            return x
        t = _make(np.array(x._data, dtype=np.float64), dtypes.float64)
        t._requires_grad = checked
        t._name = name  # names the leaf in the generated code
        return t

    def outputs(self) -> list[np.ndarray]:
        return _output_arrays(self.func(*self.inputs))

    def jacobians(self) -> list[list[np.ndarray]]:
        """[output][checked input] arrays of shape (numel_in, numel_out)."""
        outs = [o for o in _as_tuple(self.func(*self.inputs)) if _is_float_tensor(o)]
        diff_inputs = [self.inputs[i] for i in self.checked]
        result = []
        for o in outs:
            if o.requires_grad:
                result.append(_analytical_rows(o, diff_inputs, _unit_seeds(o)).jacobians)
            else:  # not connected to any checked input: its derivative is zero
                result.append([np.zeros((t.numel(), o.numel())) for t in diff_inputs])
        self.source = _source(outs[0]) if len(outs) == 1 and outs[0].numel() == 1 and outs[0].grad_fn else None
        return result


def _source(output: Tensor) -> str:
    """The generated backward of a scalar output (a function of its own, so no local names leak into it)."""
    return _backward_source(output)


class _ValueAndGradProblem:
    """A compiled function: NumPy arrays in, ``(value, gradients)`` out, gradients of the checked inputs."""

    def __init__(self, func, inputs: tuple, names: list[str]) -> None:
        self.func, self.converted, self.source = func, [], getattr(func, "source", None)
        requested = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
        self.checked = requested or [i for i, x in enumerate(inputs) if _is_float_array(x)]
        self.arrays = [np.array(_raw(x), dtype=np.float64) if _is_float_array(x) else None for x in inputs]
        self.inputs = tuple(a if a is not None else x for a, x in zip(self.arrays, inputs))

    def outputs(self) -> list[np.ndarray]:
        value, _ = self.func(*self.inputs)
        return [np.array(_raw(value), dtype=np.float64)]

    def jacobians(self) -> list[list[np.ndarray]]:
        value, grads = self.func(*self.inputs)
        if np.size(_raw(value)) != 1:
            raise ValueError("a (value, gradients) function must return a scalar value")
        grads = list(grads)
        if len(grads) != len(self.checked):
            raise ValueError(f"the function returned {len(grads)} gradients for {len(self.checked)} checked inputs")
        return [[np.array(_raw(g), dtype=np.float64).reshape(-1, 1) for g in grads]]


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


def _is_float_array(x) -> bool:
    return _is_float_tensor(x) or (isinstance(x, np.ndarray | float) and np.asarray(x).dtype.kind == "f")


def _is_value_and_grad(result) -> bool:
    """``(value, gradients)`` of arrays: what a compiled function returns (tensor functions return tensors)."""
    return (isinstance(result, tuple) and len(result) == 2 and not isinstance(result[0], Tensor)
            and isinstance(result[1], list | tuple) and not any(isinstance(g, Tensor) for g in result[1]))


def _input_names(func, inputs: tuple, names) -> list[str]:
    if names is not None:
        if len(names) != len(inputs):
            raise ValueError(f"names has {len(names)} entries for {len(inputs)} inputs")
        return [str(n) for n in names]
    try:
        parameters = [p.name for p in inspect.signature(func).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        parameters = []
    if len(parameters) >= len(inputs):
        return parameters[:len(inputs)]
    return [f"input {i}" for i in range(len(inputs))]


@dataclass
class Kink:
    """A Jacobian entry where the one-sided differences disagree: the function has a corner there.

    The symbolic value is accepted when it lies between the one-sided
    derivatives (PyTorch's convention picks one of them, e.g. relu'(0) = 0).
    """

    output: int
    output_element: tuple[int, ...]
    input_element: tuple[int, ...]
    left: float
    right: float
    symbolic: float


@dataclass
class InputCheck:
    """The verdict on one input: errors over its smooth entries, the worst one, its kinks."""

    name: str
    position: int
    shape: tuple[int, ...]
    step: float
    entries: int
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst: tuple[int, tuple[int, ...], tuple[int, ...]] | None = None  # (output, output element, input element)
    symbolic: float = math.nan
    numerical: float = math.nan
    tolerance: float = math.nan
    share: float = math.nan  # |symbolic - numerical| / tolerance at the worst entry (above 1: a failure)
    failures: int = 0
    kinks: list[Kink] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failures == 0

    @property
    def status(self) -> str:
        if self.failures:
            return "FAIL"
        return "ok (kink)" if self.kinks else "ok"

    def worst_text(self, output_names: list[str]) -> str:
        if self.worst is None:
            return "-"
        out, out_element, in_element = self.worst
        target = f"{self.name}{_index_text(in_element)}"
        return target if len(output_names) == 1 and not out_element else \
            f"{output_names[out]}{_index_text(out_element)} / {target}"

    def to_dict(self) -> dict:
        return {"name": self.name, "position": self.position, "shape": list(self.shape), "step": self.step,
                "entries": self.entries, "max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error,
                "worst": None if self.worst is None else {"output": self.worst[0],
                                                          "output_element": list(self.worst[1]),
                                                          "input_element": list(self.worst[2])},
                "symbolic": self.symbolic, "numerical": self.numerical, "tolerance": self.tolerance,
                "share_of_tolerance": self.share,
                "failures": self.failures, "status": self.status,
                "kinks": [{"output": k.output, "output_element": list(k.output_element),
                           "input_element": list(k.input_element), "left": k.left, "right": k.right,
                           "symbolic": k.symbolic} for k in self.kinks]}


class _Samples:
    """Outputs of the function with one element of one input moved by ``delta``, evaluated once each, on demand."""

    def __init__(self, problem, position: int) -> None:
        self.problem, self.array = problem, problem.arrays[position]
        self.base = [o.reshape(-1) for o in problem.outputs()]
        self._cache: dict[tuple[int, float], list[np.ndarray]] = {}

    def at(self, k: int, delta: float) -> list[np.ndarray]:
        key = (k, delta)
        if key not in self._cache:
            with _Shift(self.array, _element(self.array.shape, k), delta):
                self._cache[key] = [o.reshape(-1) for o in self.problem.outputs()]
        return self._cache[key]

    def central(self, out: int, h: float, rows) -> np.ndarray:
        return np.array([(self.at(k, h)[out] - self.at(k, -h)[out]) / (2 * h) for k in rows])

    def gap(self, out: int, h: float, rows) -> np.ndarray:
        """Right minus left one-sided difference: about h·f'' where smooth, a jump that stays at a kink."""
        return np.array([(self.at(k, h)[out] - 2 * self.base[out] + self.at(k, -h)[out]) / h for k in rows])

    def one_sided(self, out: int, h: float, rows) -> tuple[np.ndarray, np.ndarray]:
        left = np.array([(self.base[out] - self.at(k, -h)[out]) / h for k in rows])
        right = np.array([(self.at(k, h)[out] - self.base[out]) / h for k in rows])
        return left, right


def _numerical(samples: _Samples, out: int, step: float, richardson: bool) -> np.ndarray:
    """Central differences (numel_in, numel_out), or their Richardson extrapolation from ``step`` and ``step/2``."""
    rows = range(samples.array.size)
    central = samples.central(out, step, rows)
    if richardson:
        central = (4 * samples.central(out, step / 2, rows) - central) / 3  # cancels the h² term
    return central.reshape(samples.array.size, -1)


def _kinks(samples: _Samples, out: int, step: float, a: np.ndarray, bad: np.ndarray, atol: float, rtol: float):
    """Which bad entries are kinks: one-sided differences that disagree, and keep disagreeing at half the step.

    Where the function is smooth the gap between them shrinks with the step
    (it is about step·f''), so a large step's truncation error is not taken
    for a kink; at a corner it stays.  The symbolic value must lie between
    the one-sided values (PyTorch's convention picks one of them).
    """
    kink = np.zeros_like(bad)
    rows = [k for k in range(bad.shape[0]) if bad[k].any()]
    if not rows:
        return kink, None, None
    left, right = samples.one_sided(out, step, rows)
    gap, half_gap = right - left, samples.gap(out, step / 2, rows)
    scale = atol + rtol * np.maximum(np.abs(left), np.abs(right))
    stays = (np.abs(gap) > scale) & (np.abs(half_gap) > 0.75 * np.abs(gap))
    tolerance = atol + rtol * np.abs(a[rows])
    between = (a[rows] >= np.minimum(left, right) - tolerance) & (a[rows] <= np.maximum(left, right) + tolerance)
    kink[rows] = bad[rows] & stays & between
    full_left, full_right = np.zeros_like(a), np.zeros_like(a)
    full_left[rows], full_right[rows] = left, right
    return kink, full_left, full_right


def _check_input(problem, slot: int, name: str, analytical, step, richardson, atol, rtol,
                 output_shapes) -> InputCheck:
    """Classify every Jacobian entry of one input: agrees, kink, or failure."""
    position = problem.checked[slot]
    samples = _Samples(problem, position)
    shape = tuple(samples.array.shape)
    check = InputCheck(name, position, shape, step, entries=0)
    best_excess = -math.inf
    for out, per_input in enumerate(analytical):
        a = per_input[slot]
        n = _numerical(samples, out, step, richardson)
        tolerance = atol + rtol * np.abs(n)
        bad = ~(np.abs(a - n) <= tolerance)
        kink, left, right = _kinks(samples, out, step, a, bad, atol, rtol)
        check.entries += a.size
        check.failures += int(np.count_nonzero(bad & ~kink))
        for k, j in zip(*np.nonzero(kink)):
            check.kinks.append(Kink(out, _element(output_shapes[out], int(j)), _element(shape, int(k)),
                                    float(left[k, j]), float(right[k, j]), float(a[k, j])))
        best_excess = _record_worst(check, a, n, tolerance, ~kink, out, output_shapes[out], shape, best_excess)
    return check


def _record_worst(check: InputCheck, a, n, tolerance, smooth, out, output_shape, input_shape, best) -> float:
    """Fold one output's errors into ``check``; the worst entry uses the largest share of its tolerance."""
    if not smooth.any():
        return best
    difference = np.where(smooth, np.abs(a - n), 0.0)
    difference = np.where(np.isnan(difference), np.inf, difference)
    scale = np.maximum(np.abs(a), np.abs(n))
    relative = np.divide(difference, scale, out=np.zeros_like(difference), where=scale > 0)
    relative = np.where(np.isinf(difference), np.inf, relative)
    check.max_abs_error = max(check.max_abs_error, float(difference.max()))
    check.max_rel_error = max(check.max_rel_error, float(relative.max()))
    share = np.divide(difference, tolerance, out=np.where(difference > 0, np.inf, 0.0), where=tolerance > 0)
    excess = np.where(smooth, share, -np.inf)
    k, j = (int(i) for i in np.unravel_index(int(np.argmax(excess)), excess.shape))
    if excess[k, j] > best:
        check.worst = (out, _element(output_shape, j), _element(input_shape, k))
        check.symbolic, check.numerical = float(a[k, j]), float(n[k, j])
        check.tolerance = float(tolerance[k, j])
        check.share = float(excess[k, j])
        return float(excess[k, j])
    return best


_CURVE_STEPS = tuple(10.0 ** -e for e in np.arange(1, 12.25, 0.25))


class GradientReport:
    """The result of :func:`check_gradients`: one :class:`InputCheck` per checked input.

    ``str(report)`` is a table; ``report.ok`` the verdict; ``report.source``
    the generated backward code that was checked (for a scalar output);
    ``report.plot(path)`` draws the error-versus-step curve of the worst entry.

    >>> import symgrad
    >>> x = symgrad.tensor([1.0, 2.0], dtype=symgrad.float64, requires_grad=True)
    >>> report = symgrad.check_gradients(lambda x: (x ** 3).sum(), (x,), eps=1e-3)
    >>> report.ok, report.inputs[0].worst, round(report.inputs[0].max_abs_error, 9)
    (True, (0, (), (0,)), 1e-06)
    """

    def __init__(self, problem, checks: list[InputCheck], output_shapes, atol, rtol, richardson, func_name) -> None:
        self._problem = problem
        self.inputs = checks
        self.output_shapes = [tuple(s) for s in output_shapes]
        self.atol, self.rtol, self.richardson = atol, rtol, richardson
        self.function = func_name
        self.source: str | None = problem.source
        self.converted = list(problem.converted)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.inputs)

    @property
    def output_names(self) -> list[str]:
        return ["out"] if len(self.output_shapes) == 1 else [f"out{i}" for i in range(len(self.output_shapes))]

    def worst_input(self) -> InputCheck:
        """The input whose worst entry uses the largest share of its tolerance.

        >>> import symgrad
        >>> x, y = (symgrad.tensor([v], dtype=symgrad.float64, requires_grad=True) for v in (1.0, 2.0))
        >>> symgrad.check_gradients(lambda x, y: (x ** 3 + y ** 3).sum(), (x, y), eps=0.01).worst_input().name
        'x'
        """
        return max(self.inputs, key=lambda c: -math.inf if c.worst is None else c.share)

    def error_curve(self, steps: Sequence[float] = _CURVE_STEPS) -> list[tuple[float, float, float]]:
        """``(step, central-difference error, forward-difference error)`` at the worst entry of the worst input.

        The error is measured against the symbolic derivative: it falls as
        step² (central) or step (forward) while truncation dominates, then
        rises as round-off/step once the step is too small.

        >>> import symgrad
        >>> x = symgrad.tensor([1.0], dtype=symgrad.float64, requires_grad=True)
        >>> report = symgrad.check_gradients(lambda x: (x ** 3).sum(), (x,))
        >>> [(h, round(c, 6), round(f, 6)) for h, c, f in report.error_curve(steps=(0.1, 0.01))]
        [(0.1, 0.01, 0.31), (0.01, 0.0001, 0.0301)]
        """
        check = self.worst_input()
        if check.worst is None:
            return []
        out, out_element, in_element = check.worst
        array = self._problem.arrays[check.position]
        flat_out = int(np.ravel_multi_index(out_element, self.output_shapes[out])) if out_element else 0
        base = self._problem.outputs()[out].reshape(-1)[flat_out]
        curve = []
        for h in steps:
            with _Shift(array, in_element, h):
                plus = self._problem.outputs()[out].reshape(-1)[flat_out]
            with _Shift(array, in_element, -h):
                minus = self._problem.outputs()[out].reshape(-1)[flat_out]
            curve.append((float(h), float(abs((plus - minus) / (2 * h) - check.symbolic)),
                          float(abs((plus - base) / h - check.symbolic))))
        return curve

    def plot(self, path: str | Path = "gradient_check.png") -> Path:
        """Draw the error of finite differences against the step (1e-1 … 1e-12) and save it as a PNG.

        Needs matplotlib (``pip install 'symgrad[plot]'``); returns the path written.

        >>> import os, tempfile, symgrad
        >>> x = symgrad.tensor([0.5], dtype=symgrad.float64, requires_grad=True)
        >>> report = symgrad.check_gradients(lambda x: x.exp().sum(), (x,))
        >>> path = os.path.join(tempfile.mkdtemp(), "error.png")
        >>> try:
        ...     print(report.plot(path).name)
        ... except ImportError:  # matplotlib is the optional 'plot' extra
        ...     print("error.png")
        error.png
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as error:
            raise ImportError("GradientReport.plot() needs matplotlib: pip install 'symgrad[plot]' "
                              "(or pip install matplotlib)") from error
        curve = self.error_curve()
        if not curve:
            raise ValueError("nothing to plot: no input has a smooth Jacobian entry")
        check = self.worst_input()
        figure = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(figure)
        _draw_curve(figure.add_subplot(), curve, check, self)
        figure.tight_layout()
        path = Path(path)
        figure.savefig(path, dpi=100)
        return path

    def __str__(self) -> str:
        return "\n".join(_report_lines(self))

    def __repr__(self) -> str:
        return f"<GradientReport ok={self.ok} inputs={[c.name for c in self.inputs]}>"

    def to_dict(self) -> dict:
        """Plain data (for ``json.dumps``).

        >>> import symgrad
        >>> x = symgrad.tensor([0.5], dtype=symgrad.float64, requires_grad=True)
        >>> data = symgrad.check_gradients(lambda x: x.exp().sum(), (x,)).to_dict()
        >>> data["ok"], data["inputs"][0]["name"], data["inputs"][0]["status"]
        (True, 'x', 'ok')
        """
        return {"ok": self.ok, "function": self.function, "atol": self.atol, "rtol": self.rtol,
                "richardson": self.richardson, "outputs": [list(s) for s in self.output_shapes],
                "converted_to_float64": self.converted, "inputs": [c.to_dict() for c in self.inputs]}


def _draw_curve(axes, curve, check: InputCheck, report: GradientReport) -> None:
    steps = [h for h, _, _ in curve]
    floor = 1e-18  # an exact difference has error 0, which a log axis cannot show
    axes.loglog(steps, [max(c, floor) for _, c, _ in curve], "o-", label="central difference", markersize=3)
    axes.loglog(steps, [max(f, floor) for _, _, f in curve], "s--", label="forward difference", markersize=3,
                alpha=0.7)
    axes.axvline(check.step, color="grey", linestyle=":", label=f"step used ({check.step:g})")
    axes.axhline(check.tolerance, color="red", linestyle=":", label="tolerance atol + rtol·|numerical|")
    axes.invert_xaxis()
    axes.set_xlabel("step h  (truncation error ∝ h² / h on the left, round-off ∝ 1/h on the right)")
    axes.set_ylabel("|finite difference − symbolic|")
    entry = check.worst_text(report.output_names)
    axes.set_title(f"Finite-difference error at {entry}")
    axes.legend(fontsize="small")
    axes.grid(True, which="major", alpha=0.3)


def _report_lines(report: GradientReport) -> list[str]:
    method = "Richardson-extrapolated central differences" if report.richardson else "central differences"
    outputs = ", ".join(str(s) if s else "scalar" for s in report.output_shapes)
    lines = [f"Gradient check of {report.function}: {method} in float64, atol={report.atol:g}, "
             f"rtol={report.rtol:g}; output shape {outputs}"]
    header = ["input", "shape", "step", "max abs err", "max rel err", "worst entry", "symbolic", "numerical",
              "status"]
    rows = [[c.name, str(c.shape), f"{c.step:g}", f"{c.max_abs_error:.2e}", f"{c.max_rel_error:.2e}",
             c.worst_text(report.output_names), _number(c.symbolic), _number(c.numerical), c.status]
            for c in report.inputs]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    for c in report.inputs:
        lines += [_kink_line(c, k, report.output_names) for k in c.kinks[:5]]
        if len(c.kinks) > 5:
            lines.append(f"  ... and {len(c.kinks) - 5} more kinks in {c.name}")
    if report.converted:
        lines.append(f"note: converted to float64 for the check: {', '.join(report.converted)}")
    total = sum(c.entries for c in report.inputs)
    failures = sum(c.failures for c in report.inputs)
    kinks = sum(len(c.kinks) for c in report.inputs)
    verdict = "OK" if report.ok else "FAILED"
    lines.append(f"{verdict}: {total - failures - kinks} of {total} derivatives agree with finite differences"
                 + (f", {kinks} at kinks" if kinks else "") + (f", {failures} disagree" if failures else ""))
    return lines


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.6g}"


def _kink_line(check: InputCheck, kink: Kink, output_names: list[str]) -> str:
    where = f"{check.name}{_index_text(kink.input_element)}"
    if len(output_names) > 1 or kink.output_element:
        where = f"{output_names[kink.output]}{_index_text(kink.output_element)} / {where}"
    return (f"  kink at {where}: left derivative {kink.left:.6g}, right derivative {kink.right:.6g}, "
            f"symbolic {kink.symbolic:.6g} (a one-sided value: accepted)")


def check_gradients(func: Callable, inputs, *, eps: float | None = None, atol: float = 1e-5, rtol: float = 1e-3,
                    richardson: bool = False, names: Sequence[str] | None = None) -> GradientReport:
    """Check symgrad's symbolic gradients against finite differences and return a readable report.

    ``func`` takes the ``inputs`` (tensors; those with ``requires_grad`` are
    checked, or every float tensor when none requires grad) and returns a
    tensor or a tuple of tensors.  It may also be a compiled function that
    takes arrays and returns ``(value, gradients)``.  Everything is evaluated
    in float64 on copies of the inputs.  ``eps`` is the step (default 1e-6,
    or 1e-3 with ``richardson=True``, which extrapolates central differences
    at ``eps`` and ``eps/2`` to cancel their leading error).  An entry where
    the one-sided differences disagree is reported as a kink, not a failure,
    when the symbolic value lies between them.

    >>> import symgrad
    >>> x = symgrad.tensor([0.0, 2.0], requires_grad=True)
    >>> report = symgrad.check_gradients(lambda x: (x.relu() * x).sum(), (x,))
    >>> report.ok, report.inputs[0].max_abs_error < 1e-6
    (True, True)
    >>> print(report)  # doctest: +NORMALIZE_WHITESPACE
    Gradient check of <lambda>: central differences in float64, atol=1e-05, rtol=0.001; output shape scalar
    input  shape  step   max abs err  max rel err  worst entry  symbolic  numerical  status
    x      (2,)   1e-06  ...          ...          x[...]       ...       ...        ok
    note: converted to float64 for the check: x
    OK: 2 of 2 derivatives agree with finite differences
    """
    inputs = _as_tuple(inputs)
    labels = _input_names(func, inputs, names)
    problem = _make_problem(func, inputs, labels)
    if not problem.checked:
        raise ValueError("check_gradients needs at least one floating-point input to check")
    step = eps if eps is not None else (1e-3 if richardson else 1e-6)
    analytical = problem.jacobians()
    output_shapes = [o.shape for o in problem.outputs()]
    checks = [_check_input(problem, slot, labels[position], analytical, step, richardson, atol, rtol, output_shapes)
              for slot, position in enumerate(problem.checked)]
    return GradientReport(problem, checks, output_shapes, atol, rtol, richardson, _function_name(func))


def _make_problem(func, inputs: tuple, labels: list[str]):
    tensor_problem = _TensorProblem(func, inputs, labels)
    result = func(*tensor_problem.inputs)
    if _is_value_and_grad(result):
        return _ValueAndGradProblem(func, inputs, labels)
    if not all(isinstance(o, Tensor) for o in _as_tuple(result)):
        raise TypeError("check_gradients: func must return a tensor, a tuple of tensors, or (value, gradients) "
                        f"arrays; it returned {type(result).__name__}")
    return tensor_problem


def _function_name(func) -> str:
    return getattr(func, "__name__", None) or type(func).__name__
