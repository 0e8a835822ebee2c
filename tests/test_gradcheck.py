"""Finite-difference verification: ``gradcheck``/``gradgradcheck`` against PyTorch's, and the report.

* every op passes ``gradcheck`` and ``gradgradcheck`` in float64 (slow and fast
  mode), and PyTorch's ``gradcheck`` agrees on the same functions;
* public functions that appear later are picked up by a generic harness;
* a test op with a deliberately wrong derivative is caught, with PyTorch's
  message (the same text ``torch.autograd.gradcheck`` prints for a custom
  ``autograd.Function`` with the same bug);
* the report's numbers are checked against hand computations.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import sympy as sp

import symgrad
from symgrad.expr import functions
from symgrad.gradcheck import GradcheckError, check_gradients, gradcheck, gradgradcheck
from symgrad.ops.registry import REGISTRY, ElementwiseOp
from symgrad.symbolic.nodes import elementwise
from symgrad.tensor import apply

# ------------------------------------------------------------------ cases
# Each case: a function of the library (symgrad or torch) returning the function to check,
# and its inputs as (shape, domain, requires_grad).  Domains keep inputs inside the op's
# domain and away from kinks; kinks are tested separately.

POS, ANY, AWAY0, TARGET = "pos", "any", "away0", "target"


def _array(shape, domain, rng) -> np.ndarray:
    if domain == POS:
        return rng.uniform(0.5, 2.0, shape)
    if domain == AWAY0:
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 1.5, shape)
    if domain == TARGET:
        return rng.uniform(0.0, 1.0, shape)
    return rng.standard_normal(shape)


def _bce(lib, **kw):
    return lambda z, y, *extra: lib.nn.functional.binary_cross_entropy_with_logits(
        z, y, **{k: e for k, e in zip(kw["extra"], extra)}, reduction=kw.get("reduction", "mean"))


CASES = {
    "add": (lambda lib: lambda a, b: a + b, [((2, 3), ANY, True), ((2, 3), ANY, True)]),
    "add broadcast": (lambda lib: lambda a, b: a + b, [((3, 1), ANY, True), ((4,), ANY, True)]),
    "add alpha": (lambda lib: lambda a, b: lib.add(a, b, alpha=2.5), [((3,), ANY, True), ((3,), ANY, True)]),
    "add scalar": (lambda lib: lambda a: 2.5 + a, [((3,), ANY, True)]),
    "sub": (lambda lib: lambda a, b: a - b, [((2, 3), ANY, True), ((3,), ANY, True)]),
    "rsub": (lambda lib: lambda a: 1.5 - a, [((2, 3), ANY, True)]),
    "mul": (lambda lib: lambda a, b: a * b, [((2, 3), ANY, True), ((2, 3), ANY, True)]),
    "mul constant tensor": (lambda lib: lambda a, b: a * b, [((2, 3), ANY, True), ((2, 3), ANY, False)]),
    "div": (lambda lib: lambda a, b: a / b, [((2, 3), ANY, True), ((2, 3), POS, True)]),
    "rdiv": (lambda lib: lambda a: 2.0 / a, [((3,), POS, True)]),
    "neg": (lambda lib: lambda a: -a, [((2, 3), ANY, True)]),
    "reciprocal": (lambda lib: lambda a: lib.reciprocal(a), [((3,), POS, True)]),
    "pow 2": (lambda lib: lambda a: a ** 2, [((2, 3), ANY, True)]),
    "pow 3": (lambda lib: lambda a: a ** 3, [((2, 3), ANY, True)]),
    "pow 0.5": (lambda lib: lambda a: a ** 0.5, [((2, 3), POS, True)]),
    "pow -1.5": (lambda lib: lambda a: a ** -1.5, [((2, 3), POS, True)]),
    "pow 0": (lambda lib: lambda a: a ** 0 * a, [((3,), ANY, True)]),
    "pow tensor": (lambda lib: lambda a, b: a ** b, [((2, 3), POS, True), ((2, 3), ANY, True)]),
    "rpow": (lambda lib: lambda a: 2.0 ** a, [((2, 3), ANY, True)]),
    "exp": (lambda lib: lambda a: lib.exp(a), [((2, 3), ANY, True)]),
    "log": (lambda lib: lambda a: lib.log(a), [((2, 3), POS, True)]),
    "sigmoid": (lambda lib: lambda a: lib.sigmoid(a), [((2, 3), ANY, True)]),
    "tanh": (lambda lib: lambda a: lib.tanh(a), [((2, 3), ANY, True)]),
    "relu": (lambda lib: lambda a: lib.relu(a), [((2, 3), AWAY0, True)]),
    "sum": (lambda lib: lambda a: a.sum(), [((2, 3), ANY, True)]),
    "sum dim": (lambda lib: lambda a: a.sum(1), [((2, 3), ANY, True)]),
    "sum dims keepdim": (lambda lib: lambda a: a.sum((0, 2), keepdim=True), [((2, 3, 2), ANY, True)]),
    "mean": (lambda lib: lambda a: a.mean(), [((2, 3), ANY, True)]),
    "mean dim keepdim": (lambda lib: lambda a: a.mean(0, keepdim=True), [((2, 3), ANY, True)]),
    "mm": (lambda lib: lambda a, b: lib.mm(a, b), [((2, 3), ANY, True), ((3, 4), ANY, True)]),
    "mv": (lambda lib: lambda a, b: lib.mv(a, b), [((2, 3), ANY, True), ((3,), ANY, True)]),
    "dot": (lambda lib: lambda a, b: lib.dot(a, b), [((3,), ANY, True), ((3,), ANY, True)]),
    "matmul 1d@2d": (lambda lib: lambda a, b: a @ b, [((3,), ANY, True), ((3, 2), ANY, True)]),
    "matmul 2d@1d": (lambda lib: lambda a, b: lib.matmul(a, b), [((2, 3), ANY, True), ((3,), ANY, True)]),
    "matmul 2d@2d": (lambda lib: lambda a, b: a @ b, [((2, 3), ANY, True), ((3, 2), ANY, True)]),
    "squeeze": (lambda lib: lambda a: a.squeeze(), [((1, 3, 1), ANY, True)]),
    "squeeze dim": (lambda lib: lambda a: a.squeeze(0), [((1, 3), ANY, True)]),
    "unsqueeze": (lambda lib: lambda a: a.unsqueeze(1), [((2, 3), ANY, True)]),
    "permute": (lambda lib: lambda a: a.permute(2, 0, 1), [((2, 3, 2), ANY, True)]),
    "transpose .T": (lambda lib: lambda a: a.T, [((2, 3), ANY, True)]),
    "bce mean": (lambda lib: _bce(lib, extra=()), [((4,), ANY, True), ((4,), TARGET, False)]),
    "bce sum": (lambda lib: _bce(lib, extra=(), reduction="sum"), [((4,), ANY, True), ((4,), TARGET, False)]),
    "bce none": (lambda lib: _bce(lib, extra=(), reduction="none"), [((2, 2), ANY, True), ((2, 2), TARGET, False)]),
    "bce weight": (lambda lib: _bce(lib, extra=("weight",)),
                   [((3,), ANY, True), ((3,), TARGET, False), ((3,), POS, False)]),
    "bce pos_weight": (lambda lib: _bce(lib, extra=("pos_weight",)),
                       [((3,), ANY, True), ((3,), TARGET, False), ((3,), POS, False)]),
    "tutorial model": (lambda lib: lambda w, b, x, y: lib.nn.functional.binary_cross_entropy_with_logits(
        lib.matmul(x, w) + b, y), [((5, 3), ANY, True), ((3,), ANY, True), ((5,), ANY, False), ((3,), TARGET, False)]),
    "two outputs": (lambda lib: lambda a, b: (a * b, (a - b).sum()), [((2,), ANY, True), ((2,), ANY, True)]),
}


def _inputs(lib, spec, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    arrays = [_array(shape, domain, rng) for shape, domain, _ in spec]
    return tuple(lib.tensor(a, dtype=lib.float64, requires_grad=grad) for a, (_, _, grad) in zip(arrays, spec))


def _grad_fn_names(outputs) -> set[str]:
    names, stack = set(), [o.grad_fn for o in (outputs if isinstance(outputs, tuple) else (outputs,))]
    while stack:
        node = stack.pop()
        if node is not None:
            names.add(node.name())
            stack.extend(n for n, _ in node.next_functions)
    return names


@pytest.mark.parametrize("name", list(CASES))
def test_every_op_passes_gradcheck_and_gradgradcheck(name):
    make, spec = CASES[name]
    function, inputs = make(symgrad), _inputs(symgrad, spec)
    assert gradcheck(function, inputs)
    assert gradcheck(function, inputs, fast_mode=True)
    assert gradcheck(function, inputs, check_batched_grad=True)
    assert gradgradcheck(function, inputs)


@pytest.mark.parametrize("name", list(CASES))
def test_torch_gradcheck_agrees(name):
    torch = pytest.importorskip("torch")
    make, spec = CASES[name]
    assert torch.autograd.gradcheck(make(torch), _inputs(torch, spec))
    assert gradcheck(make(symgrad), _inputs(symgrad, spec))


def test_the_cases_reach_every_grad_fn_of_the_op_table():
    seen = set()
    for make, spec in CASES.values():
        seen |= _grad_fn_names(make(symgrad)(*_inputs(symgrad, spec)))
    expected = {"AddBackward0", "SubBackward0", "RsubBackward1", "MulBackward0", "DivBackward0", "NegBackward0",
                "ReciprocalBackward0", "PowBackward0", "PowBackward1", "PowBackward2", "ExpBackward0", "LogBackward0",
                "SigmoidBackward0", "TanhBackward0", "ReluBackward0", "SumBackward0", "SumBackward1",
                "MeanBackward0", "MeanBackward1", "MmBackward0", "MvBackward0", "DotBackward0", "SqueezeBackward0",
                "SqueezeBackward1", "SqueezeBackward4", "UnsqueezeBackward0", "PermuteBackward0",
                "BinaryCrossEntropyWithLogitsBackward0"}
    assert expected - seen == set()


def _generic_call(function, rng):
    """Call a public function on generic float64 inputs: one tensor, else two of the same shape."""
    for low, high in ((0.2, 0.8), (1.2, 1.8)):  # inside (0, 1) suits most domains; above 1 the rest
        for arity in (1, 2):
            inputs = tuple(symgrad.tensor(rng.uniform(low, high, (2, 3)), dtype=symgrad.float64,
                                          requires_grad=True) for _ in range(arity))
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    out = function(*inputs)
            except (TypeError, RuntimeError, ValueError, IndexError, NotImplementedError):
                continue
            if isinstance(out, symgrad.Tensor) and out.requires_grad and np.all(np.isfinite(out.detach().numpy())):
                return inputs
    return None


def _generic_names() -> list[str]:
    return sorted(n for n in functions() if n not in RANDOM
                  and _generic_call(functions()[n], np.random.default_rng(1)) is not None)


RANDOM = {"dropout"}  # a new mask per call: finite differences need a fixed seed (tests/test_nn_functional.py)


# Public functions a generic call cannot exercise: comparisons have no gradient; the
# others need particular arguments (shapes, dims, weights; whether a generic call happens to
# fit a shape op depends on the draw) and are finite-difference
# checked in tests/test_ops_*.py and by CASES above.
NEEDS_ARGUMENTS = {
    "eq", "ne", "not_equal", "lt", "less", "le", "less_equal", "gt", "greater", "ge", "greater_equal",
    "addmm", "broadcast_to", "dot", "lerp", "logsumexp", "matmul", "mm", "mv", "outer", "transpose", "where",
    "permute", "unsqueeze", "swapaxes", "swapdims", "reshape", "flatten", "squeeze", "expand_as", "reshape_as",
    "view_as", "bmm", "einsum",
    "nll_loss", "one_hot",  # int64 class indices (no gradient for one_hot): tests/test_ops_losses.py
    "dropout",  # RANDOM
    "gather", "index_select", "narrow", "cumsum",  # an index or a dim: tests/test_ops_indexing.py
}


@pytest.mark.parametrize("name", _generic_names())
def test_every_public_function_passes_gradcheck(name):
    """New ops are checked here as soon as they are exported (a generic call suits elementwise ops)."""
    inputs = _generic_call(functions()[name], np.random.default_rng(1))
    assert gradcheck(functions()[name], inputs)


def test_functions_without_a_generic_call_are_known():
    """Every public function is gradchecked generically or is a known exception (a new op cannot slip by)."""
    assert set(functions()) - set(_generic_names()) <= NEEDS_ARGUMENTS


# ------------------------------------------------------- deliberately wrong


class _WrongDerivative(ElementwiseOp):
    """sin whose forward is right but whose lowering (what is differentiated) is 2*sin: d/dx is off by 2x."""

    def lower(self, inputs, attrs, dtype):
        return elementwise(2 * self.kernel(attrs), inputs, dtype.numpy)


class wrong_cos(sp.Function):  # noqa: N801 - a SymPy function name
    """cos, whose own derivative has the wrong sign (so second derivatives through it are wrong)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sp.sin(self.args[0])

    def _numpycode(self, printer):
        return f"{printer._module_format('numpy.cos')}({printer._print(self.args[0])})"


class sin_bad_second(sp.Function):  # noqa: N801
    """sin with a correct first derivative and a wrong second one."""

    nargs = 1

    def fdiff(self, argindex=1):
        return wrong_cos(self.args[0])

    def _numpycode(self, printer):
        return f"{printer._module_format('numpy.sin')}({printer._print(self.args[0])})"


@pytest.fixture
def wrong_ops():
    """Test-only ops in the op table, removed afterwards."""
    ops = {"first": _WrongDerivative("test_wrong_first_derivative", sp.sin, "SinBackward0", float_result=True),
           "second": ElementwiseOp("test_wrong_second_derivative", sin_bad_second, "SinBackward0",
                                   float_result=True)}
    yield ops
    for op in ops.values():
        REGISTRY.pop(op.name, None)


def _torch_wrong_sin(torch):
    class WrongSin(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin()

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 2 * x.cos()
    return WrongSin.apply


VALUES = [[0.3, -1.2, 2.0], [0.5, 0.1, -0.7]]


def _message(error_type, call) -> str:
    with pytest.raises(error_type) as caught:
        call()
    return str(caught.value)


def test_a_wrong_derivative_is_caught_with_pytorchs_message(wrong_ops):
    x = symgrad.tensor(VALUES, dtype=symgrad.float64, requires_grad=True)
    message = _message(GradcheckError, lambda: gradcheck(lambda t: apply(wrong_ops["first"], (t,)) * 3, (x,)))
    assert message.startswith("Jacobian mismatch for output 0 with respect to input 0,\nnumerical:tensor([[ 2.8660,")
    assert "analytical:tensor([[ 5.7320," in message
    assert message.rstrip().splitlines()[-1] == (
        "worst element: numerical[4, 4] = 2.98501, analytical[4, 4] = 5.97002 (d output 0[1, 1] / d input 0[1, 1]): "
        "|difference| = 2.99 > atol + rtol * |numerical| = 0.003")
    assert gradcheck(lambda t: apply(wrong_ops["first"], (t,)) * 3, (x,), raise_exception=False) is False
    assert isinstance(GradcheckError("x"), RuntimeError)


def test_the_message_is_torchs_plus_the_worst_element(wrong_ops):
    torch = pytest.importorskip("torch")
    ours = _message(GradcheckError, lambda: gradcheck(
        lambda t: apply(wrong_ops["first"], (t,)) * 3,
        (symgrad.tensor(VALUES, dtype=symgrad.float64, requires_grad=True),)))
    theirs = _message(RuntimeError, lambda: torch.autograd.gradcheck(
        lambda t: _torch_wrong_sin(torch)(t) * 3, (torch.tensor(VALUES, dtype=torch.float64, requires_grad=True),)))
    assert ours.replace("symgrad.", "torch.") == theirs + ours.splitlines(keepends=True)[-1]


def _floats(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", text)]


def test_fast_mode_message_matches_torchs(wrong_ops):
    """Same random vectors as PyTorch (its default generator seed): the same projections and text."""
    torch = pytest.importorskip("torch")
    ours = _message(GradcheckError, lambda: gradcheck(
        lambda t: apply(wrong_ops["first"], (t,)) * 3,
        (symgrad.tensor(VALUES, dtype=symgrad.float64, requires_grad=True),), fast_mode=True))
    theirs = _message(RuntimeError, lambda: torch.autograd.gradcheck(
        lambda t: _torch_wrong_sin(torch)(t) * 3, (torch.tensor(VALUES, dtype=torch.float64, requires_grad=True),),
        fast_mode=True))
    ours_lines = ours.replace("symgrad.", "torch.").splitlines()
    theirs_lines = theirs.splitlines()
    assert ours_lines[0] == theirs_lines[0]
    assert len(ours_lines) == len(theirs_lines) + 1  # + the worst element
    for mine, torch_line in zip(ours_lines, theirs_lines):
        if re.search(r"^(numerical|analytical):\d|max per-element", torch_line):
            # v^T J u summed in a different order: equal to the last bits, not to the last digit
            assert _floats(mine) == pytest.approx(_floats(torch_line), rel=1e-12)
        else:
            assert mine == torch_line


def test_two_outputs_name_the_failing_output(wrong_ops):
    torch = pytest.importorskip("torch")
    a = [0.4, -0.9]
    ours = _message(GradcheckError, lambda: gradcheck(
        lambda t: (t * 2, apply(wrong_ops["first"], (t,))), (symgrad.tensor(a, dtype=symgrad.float64,
                                                                             requires_grad=True),)))
    theirs = _message(RuntimeError, lambda: torch.autograd.gradcheck(
        lambda t: (t * 2, _torch_wrong_sin(torch)(t)), (torch.tensor(a, dtype=torch.float64, requires_grad=True),)))
    assert theirs.startswith("Jacobian mismatch for output 1 with respect to input 0")
    assert ours.replace("symgrad.", "torch.").startswith(theirs)


def test_gradgradcheck_catches_a_wrong_second_derivative(wrong_ops):
    x = symgrad.tensor([0.3, -1.2, 2.0], dtype=symgrad.float64, requires_grad=True)
    function = lambda t: apply(wrong_ops["second"], (t,))  # noqa: E731
    assert gradcheck(function, (x,))  # the first derivative is right
    message = _message(GradcheckError, lambda: gradgradcheck(function, (x,)))
    assert message.startswith("Jacobian mismatch for output 0 with respect to input 0,")
    assert "worst element:" in message


def test_gradgradcheck_agrees_with_torch_on_second_derivatives():
    torch = pytest.importorskip("torch")
    for lib in (symgrad, torch):
        lib.manual_seed(0)  # the random grad_outputs come from the global generator, as PyTorch's
        x = lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([[0.5, -0.2], [1.0, 0.3], [-0.4, 0.8]], dtype=lib.float64, requires_grad=True)
        check = gradgradcheck if lib is symgrad else torch.autograd.gradgradcheck
        assert check(lambda x, w, lib=lib: lib.tanh(x @ w) * lib.sigmoid(x @ w), (x, w))


def test_random_grad_outputs_are_torchs():
    torch = pytest.importorskip("torch")
    from symgrad.gradcheck import _random_grad_outputs
    symgrad.manual_seed(5)
    ours = _random_grad_outputs([symgrad.ones(2, 3, dtype=symgrad.float64, requires_grad=True)])[0]
    torch.manual_seed(5)
    theirs = torch.testing.make_tensor((2, 3), dtype=torch.float64, device="cpu", low=-1, high=1)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.numpy())


# ------------------------------------------------------------ edge cases


def test_float32_inputs_warn_like_torch():
    x = symgrad.tensor([0.5, 1.0], requires_grad=True)
    with pytest.warns(UserWarning) as caught:
        gradcheck(lambda t: t * 2, (x,), eps=1e-3, atol=1e-3)
    ours = str(caught[0].message)
    assert ours.startswith("Input #0 requires gradient and is not a double precision floating point or complex.")
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning) as caught:
        torch.autograd.gradcheck(lambda t: t * 2, (torch.tensor([0.5, 1.0], requires_grad=True),), eps=1e-3,
                                 atol=1e-3)
    assert ours == str(caught[0].message)


def test_errors_are_torchs():
    no_grad = _message(ValueError, lambda: gradcheck(lambda t: t * 2, (symgrad.ones(2, dtype=symgrad.float64),)))
    assert no_grad.startswith("gradcheck expects at least one input tensor to require gradient")
    x = symgrad.tensor([0.5, 1.0], dtype=symgrad.float64, requires_grad=True)
    detached = _message(GradcheckError, lambda: gradcheck(lambda t: t.detach() * 2, (x,)))
    assert detached == "Numerical gradient for function expected to be zero"
    with pytest.raises(NotImplementedError, match="forward-mode"):
        gradcheck(lambda t: t, (x,), check_forward_ad=True)
    with pytest.raises(AssertionError, match="check_forward_ad or check_backward_ad"):
        gradcheck(lambda t: t, (x,), check_backward_ad=False)
    torch = pytest.importorskip("torch")
    assert no_grad == _message(ValueError, lambda: torch.autograd.gradcheck(lambda t: t * 2,
                                                                            (torch.ones(2, dtype=torch.float64),)))
    assert detached == _message(RuntimeError, lambda: torch.autograd.gradcheck(
        lambda t: t.detach() * 2, (torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True),)))


def test_inputs_are_restored_exactly_and_versions_unchanged():
    values = np.array([0.1, 1e-3, 123.456, -7.0])
    x = symgrad.from_numpy(values.copy()).requires_grad_()
    version = x._version_counter.value
    assert gradcheck(lambda t: (t * t).sum(), (x,))
    check_gradients(lambda t: (t * t).sum(), (x,))
    np.testing.assert_array_equal(x.detach().numpy(), values)
    assert x._version_counter.value == version


def test_gradcheck_functions_are_exported():
    assert symgrad.autograd.gradcheck is gradcheck is symgrad.gradcheck
    assert symgrad.autograd.gradgradcheck is gradgradcheck is symgrad.gradgradcheck
    assert symgrad.check_gradients is check_gradients
    assert symgrad.autograd.GradcheckError is GradcheckError


# ---------------------------------------------------------------- report


def test_report_numbers_by_hand():
    """sum(x³) at x = (1, 2), step h: the central difference is exactly 3x² + h², one-sided ones 3x² ± 3xh + h²."""
    h = 1e-3
    x = symgrad.tensor([1.0, 2.0], dtype=symgrad.float64, requires_grad=True)
    report = check_gradients(lambda x: (x ** 3).sum(), (x,), eps=h)
    (check,) = report.inputs
    assert report.ok and check.ok and check.failures == 0 and not check.kinks
    assert check.step == h and check.entries == 2 and check.shape == (2,)
    assert check.max_abs_error == pytest.approx(h ** 2, rel=1e-6)  # the same h² at both elements
    assert check.max_rel_error == pytest.approx(h ** 2 / (3 + h ** 2), rel=1e-6)  # largest at x = 1
    # the worst entry uses the largest share of its tolerance atol + rtol·|numerical|: x[0]
    assert check.worst == (0, (), (0,))
    assert check.symbolic == 3.0 and check.numerical == pytest.approx(3 + h ** 2, rel=1e-12)
    assert check.tolerance == pytest.approx(1e-5 + 1e-3 * (3 + h ** 2))
    assert check.share == pytest.approx(h ** 2 / check.tolerance, rel=1e-6)
    # the error curve at x[0] = 1: central error h², forward error 3h + h²
    curve = dict((s, (c, f)) for s, c, f in report.error_curve(steps=(1e-1, 1e-2)))
    assert curve[1e-1] == pytest.approx((1e-2, 0.31), rel=1e-9)
    assert curve[1e-2] == pytest.approx((1e-4, 0.0301), rel=1e-7)


def test_richardson_removes_the_h_squared_term():
    x = symgrad.tensor([1.0, 2.0], dtype=symgrad.float64, requires_grad=True)
    plain = check_gradients(lambda x: (x ** 3).sum(), (x,), eps=0.1)
    extrapolated = check_gradients(lambda x: (x ** 3).sum(), (x,), eps=0.1, richardson=True)
    assert plain.inputs[0].max_abs_error == pytest.approx(0.01, rel=1e-9)  # h²: beyond atol + rtol·3 at x = 1,
    assert not plain.ok and plain.inputs[0].failures == 1  # within atol + rtol·12 at x = 2
    assert extrapolated.ok and extrapolated.inputs[0].max_abs_error < 1e-12  # exact for a cubic
    assert check_gradients(lambda x: (x ** 3).sum(), (x,), richardson=True).inputs[0].step == 1e-3


def test_kinks_are_reported_not_failed():
    x = symgrad.tensor([-1.0, 0.0, 2.0], dtype=symgrad.float64, requires_grad=True)
    report = check_gradients(lambda x: symgrad.relu(x).sum(), (x,))
    (check,) = report.inputs
    assert report.ok and check.failures == 0
    assert len(check.kinks) == 1
    kink = check.kinks[0]
    assert kink.input_element == (1,) and (kink.left, kink.right, kink.symbolic) == pytest.approx((0, 1, 0))
    assert check.status == "ok (kink)"
    assert "kink at x[1]: left derivative 0, right derivative 1, symbolic 0 (a one-sided value: accepted)" \
        in str(report)
    # a large step on a smooth function is a truncation error, not a kink: the gap halves with the step
    big = check_gradients(lambda x: (x ** 3).sum(), (symgrad.tensor([2.0], dtype=symgrad.float64,
                                                                   requires_grad=True),), eps=0.5)
    assert not big.ok and not big.inputs[0].kinks


def test_a_wrong_derivative_fails_the_report(wrong_ops):
    x = symgrad.tensor([0.3, -1.2], dtype=symgrad.float64, requires_grad=True)
    report = check_gradients(lambda t: apply(wrong_ops["first"], (t,)).sum(), (x,))
    (check,) = report.inputs
    assert not report.ok and check.failures == 2 and check.status == "FAIL"
    at = [0.3, -1.2][check.worst[2][0]]
    assert check.symbolic == pytest.approx(2 * np.cos(at)) and check.numerical == pytest.approx(np.cos(at))
    assert "FAILED: 0 of 2 derivatives agree with finite differences, 2 disagree" in str(report)


def test_report_text_and_json():
    w = symgrad.tensor([[0.5, -0.2], [1.0, 0.3]], dtype=symgrad.float64, requires_grad=True)
    b = symgrad.tensor([0.1, -0.1], requires_grad=True)  # float32: checked in float64, with a note

    def model(w, b):
        return symgrad.sigmoid(w @ b).sum()

    report = check_gradients(model, (w, b))
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == ("Gradient check of model: central differences in float64, atol=1e-05, rtol=0.001; "
                        "output shape scalar")
    assert lines[1].split() == ["input", "shape", "step", "max", "abs", "err", "max", "rel", "err", "worst",
                                "entry", "symbolic", "numerical", "status"]
    assert lines[2].startswith("w ") and lines[3].startswith("b ")
    assert "note: converted to float64 for the check: b" in text
    assert lines[-1] == "OK: 6 of 6 derivatives agree with finite differences"
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and [i["name"] for i in data["inputs"]] == ["w", "b"]
    assert report.source.startswith("import numpy as np") and "def backward(" in report.source
    assert b.dtype is symgrad.float32  # the caller's tensor is untouched


def test_compiled_value_and_grad_functions():
    """A compiled function (arrays in, (value, gradients) out) is checked the same way."""
    def good(x, y):
        return float(np.sum(x ** 2 * y)), (2 * x * y, x ** 2)

    def bad(x, y):
        return float(np.sum(x ** 2 * y)), (3 * x * y, x ** 2)

    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.3, -0.2])
    report = check_gradients(good, (x, y))
    assert report.ok and [c.name for c in report.inputs] == ["x", "y"]
    assert not check_gradients(bad, (x, y)).ok
    assert check_gradients(bad, (x, y)).inputs[1].ok


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    x = symgrad.tensor([0.3, 1.7], dtype=symgrad.float64, requires_grad=True)
    report = check_gradients(lambda x: (symgrad.exp(x) * x).sum(), (x,))
    path = report.plot(tmp_path / "error.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    steps = [s for s, _, _ in report.error_curve()]
    assert steps[0] == pytest.approx(1e-1) and steps[-1] == pytest.approx(1e-12)


def test_plot_without_matplotlib_says_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    report = check_gradients(lambda x: x.exp().sum(), (symgrad.tensor([0.5], dtype=symgrad.float64,
                                                                       requires_grad=True),))
    with pytest.raises(ImportError, match=r"pip install 'symgrad\[plot\]'"):
        report.plot("never.png")
