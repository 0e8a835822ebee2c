"""Elementwise losses against the PyTorch oracle: every reduction, values, gradients, grad_fn names, errors.

``mse_loss``, ``l1_loss``, ``smooth_l1_loss`` (beta), ``huber_loss`` (delta),
``binary_cross_entropy`` (weight; logs clamped at -100) and ``kl_div``
(``batchmean``, ``log_target``) in float64 (rtol 1e-10) with targets that do
and do not require grad, broadcast targets (with PyTorch's warning), 0-d and
empty inputs; central differences; second derivatives; kinks and extreme
probabilities; PyTorch's errors and warnings for bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _op_oracle import (
    Arg,
    R,
    assert_close,
    check_against_torch,
    check_error_matches_torch,
    check_finite_differences,
    check_second_order,
    check_values_against_torch,
    rng_for,
    seed_like,
    text,
    warnings_of,
)

import symgrad

torch = pytest.importorskip("torch")


def F(lib):
    return lib.nn.functional


def PR(*shape, grad=True):
    """Probabilities in [0.05, 0.95]."""
    return Arg(shape, "prob", grad)


def LP(*shape, grad=True):
    """Log-probabilities."""
    return Arg(shape, "logprob", grad)


LOSSES = {  # name: (call, input domain, target domain)
    "mse": (lambda lib, x, y, **kw: F(lib).mse_loss(x, y, **kw), "real", "real"),
    "l1": (lambda lib, x, y, **kw: F(lib).l1_loss(x, y, **kw), "real", "real"),
    "smooth_l1": (lambda lib, x, y, **kw: F(lib).smooth_l1_loss(x, y, **kw), "real", "real"),
    "smooth_l1_beta": (lambda lib, x, y, **kw: F(lib).smooth_l1_loss(x, y, beta=0.5, **kw), "real", "real"),
    "smooth_l1_beta_0": (lambda lib, x, y, **kw: F(lib).smooth_l1_loss(x, y, beta=0.0, **kw), "real", "real"),
    "huber": (lambda lib, x, y, **kw: F(lib).huber_loss(x, y, **kw), "real", "real"),
    "huber_delta": (lambda lib, x, y, **kw: F(lib).huber_loss(x, y, delta=0.4, **kw), "real", "real"),
    "bce": (lambda lib, x, y, **kw: F(lib).binary_cross_entropy(x, y, **kw), "prob", "prob"),
    "kl_div": (lambda lib, x, y, **kw: F(lib).kl_div(x, y, **kw), "logprob", "prob"),
    "kl_div_log_target": (lambda lib, x, y, **kw: F(lib).kl_div(x, y, log_target=True, **kw), "logprob", "logprob"),
}

OPS: dict[str, tuple] = {}
for _name, (_call, _x, _y) in LOSSES.items():
    _reductions = ("none", "mean", "sum") + (("batchmean",) if _name.startswith("kl") else ())
    for _r in _reductions:
        OPS[f"{_name}_{_r}"] = (lambda lib, x, y, c=_call, r=_r: c(lib, x, y, reduction=r),
                                [Arg((4, 3), _x), Arg((4, 3), _y, False)])
        OPS[f"{_name}_{_r}_target_grad"] = (lambda lib, x, y, c=_call, r=_r: c(lib, x, y, reduction=r),
                                            [Arg((4, 3), _x), Arg((4, 3), _y)])
    OPS[f"{_name}_default"] = (lambda lib, x, y, c=_call: c(lib, x, y), [Arg((5,), _x), Arg((5,), _y, False)])
    OPS[f"{_name}_0d"] = (lambda lib, x, y, c=_call: c(lib, x, y), [Arg((), _x), Arg((), _y)])
    OPS[f"{_name}_empty"] = (lambda lib, x, y, c=_call: c(lib, x, y, reduction="sum"),
                             [Arg((0, 3), _x), Arg((0, 3), _y)])
    if not _name.startswith("bce"):  # binary_cross_entropy refuses other target sizes
        OPS[f"{_name}_broadcast_target"] = (lambda lib, x, y, c=_call: c(lib, x, y, reduction="sum"),
                                            [Arg((4, 3), _x), Arg((3,), _y)])
OPS.update({
    "bce_weight": (lambda lib, x, y, w: F(lib).binary_cross_entropy(x, y, weight=w), [PR(4, 3), PR(4, 3, grad=False),
                                                                                  Arg((4, 3), "pos", False)]),
    "bce_weight_broadcast_sum": (lambda lib, x, y, w: F(lib).binary_cross_entropy(x, y, w, reduction="sum"),
                                 [PR(4, 3), PR(4, 3), Arg((3,), "pos", False)]),
    "bce_weight_none": (lambda lib, x, y, w: F(lib).binary_cross_entropy(x, y, w, reduction="none"),
                        [PR(4, 3), PR(4, 3, grad=False), Arg((4, 1), "pos", False)]),
    "bce_of_sigmoid": (lambda lib, z, y: F(lib).binary_cross_entropy(z.sigmoid(), y), [R(6), PR(6, grad=False)]),
    "kl_div_batchmean_0d": (lambda lib, x, y: F(lib).kl_div(x, y, reduction="batchmean"), [LP(), PR()]),
    "kl_div_batchmean_3d": (lambda lib, x, y: F(lib).kl_div(x, y, reduction="batchmean"), [LP(2, 3, 2), PR(2, 3, 2)]),
    "kl_div_batchmean_broadcast": (lambda lib, x, y: F(lib).kl_div(x, y, reduction="batchmean"),
                                   [LP(3), PR(2, 3)]),
    "mse_in_chain": (lambda lib, w, x, y: F(lib).mse_loss(x * w + 1, y),
                     [R(3), R(4, 3, grad=False), R(4, 3, grad=False)]),
    # empty inputs with the default mean (nan, as torch) and for the logits form (else in tests/test_autograd.py)
    "mse_mean_of_empty": (lambda lib, x, y: F(lib).mse_loss(x, y), [R(0, 3), R(0, 3)]),
    "l1_mean_of_empty": (lambda lib, x, y: F(lib).l1_loss(x, y), [R(0), R(0, grad=False)]),
    "bce_with_logits_empty": (lambda lib, z, y: F(lib).binary_cross_entropy_with_logits(z, y), [R(0, 3), PR(0, 3)]),
    "bce_with_logits_empty_sum_weights": (
        lambda lib, z, y, w, p: F(lib).binary_cross_entropy_with_logits(z, y, w, reduction="sum", pos_weight=p),
        [R(2, 0), PR(2, 0), Arg((0,), "pos", False), Arg((2, 1), "pos", False)]),
})

NOT_FOR_FINITE_DIFFERENCES = {n for n in OPS if "empty" in n}

SECOND_ORDER = ["mse_mean_target_grad", "smooth_l1_sum_target_grad", "smooth_l1_beta_none", "huber_mean",
                "huber_delta_sum_target_grad", "bce_mean_target_grad", "bce_weight", "bce_of_sigmoid",
                "kl_div_batchmean_target_grad", "kl_div_log_target_mean_target_grad", "mse_in_chain"]

# binary_cross_entropy's second derivative: PyTorch's double backward divides by (x+eps)^2 (1-x+eps)^2 with
# eps = 1e-12, symgrad differentiates its first derivative (x-y)/max(x(1-x), eps); for x in [0.05, 0.95] the
# two differ by ~4e-11 relative
RTOL_SECOND = {"bce_mean_target_grad": 1e-9, "bce_weight": 1e-9, "bce_of_sigmoid": 1e-9}


@pytest.mark.parametrize("name", OPS)
def test_loss_matches_torch(name):
    fn, args = OPS[name]
    check_against_torch(torch, name, fn, args)


@pytest.mark.parametrize("name", [n for n in OPS if n not in NOT_FOR_FINITE_DIFFERENCES])
def test_loss_gradient_matches_finite_differences(name):
    fn, args = OPS[name]
    check_finite_differences(name, fn, args)


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivatives_match_torch(name):
    fn, args = OPS[name]
    check_second_order(torch, name, fn, args, rtol=RTOL_SECOND.get(name, 1e-10))


# ============================================================================ kinks and extremes

NAN = math.nan

KINKS = {
    "l1_at_0": (lambda lib, x, y: F(lib).l1_loss(x, y, reduction="none"), [0.5, 0.0, -1.0], [0.5, 0.0, 1.0]),
    "l1_nan": (lambda lib, x, y: F(lib).l1_loss(x, y, reduction="sum"), [NAN, 1.0], [0.0, 0.0]),
    "smooth_l1_at_beta": (lambda lib, x, y: F(lib).smooth_l1_loss(x, y, beta=0.5, reduction="none"),
                          [0.5, 0.0, 0.0, 0.2], [0.0, 0.5, 0.0, 0.2]),
    "smooth_l1_beta_0_at_0": (lambda lib, x, y: F(lib).smooth_l1_loss(x, y, beta=0.0), [0.5, 0.0], [0.5, 1.0]),
    "huber_at_delta": (lambda lib, x, y: F(lib).huber_loss(x, y, delta=0.5, reduction="none"),
                       [0.5, 0.0, 0.0, 0.2], [0.0, 0.5, 0.0, 0.2]),
    "mse_at_0": (lambda lib, x, y: F(lib).mse_loss(x, y, reduction="none"), [0.5, -0.0], [0.5, 0.0]),
    "bce_at_0_and_1": (lambda lib, x, y: F(lib).binary_cross_entropy(x, y, reduction="none"),
                       [0.0, 0.0, 1.0, 1.0, 0.5, 1e-30, 1 - 1e-16], [0.0, 1.0, 0.0, 1.0, 0.3, 0.5, 1.0]),
    "bce_at_0_and_1_mean": (lambda lib, x, y: F(lib).binary_cross_entropy(x, y), [0.0, 1.0, 0.5], [1.0, 0.0, 0.5]),
    "kl_div_target_0_input_grad": (lambda lib, x, t: F(lib).kl_div(x, t.detach(), reduction="none"),
                                   [0.5, -1.0, 0.2], [0.0, 0.3, 1.0]),
    "kl_div_tiny_target": (lambda lib, x, t: F(lib).kl_div(x, t, reduction="sum"), [0.5, -1.0, 0.2],
                           [1e-300, 1e-20, 1.0]),
    "kl_div_log_target_very_negative": (lambda lib, x, t: F(lib).kl_div(x, t, reduction="sum", log_target=True),
                                        [0.5, -1.0], [-1000.0, 0.3]),
}


@pytest.mark.parametrize("name", KINKS)
def test_kinks_follow_torch(name):
    fn, *values = KINKS[name]
    check_values_against_torch(torch, fn, *values)


def test_kl_div_target_gradient_at_target_0_is_finite():
    """Deliberate difference: d/dt [xlogy(t, t) - t*x] at t = 0.

    PyTorch's chain gives ``log(t)`` masked to 0 plus ``t/t`` = 0/0 = nan;
    SymPy cancels ``t/t`` to 1 when it builds the derivative, so symgrad gives
    ``1 - x`` (the masked log term is 0 in both).  Elsewhere they agree (above).
    """
    grads = {}
    for lib in (torch, symgrad):
        x = lib.tensor([0.5, -1.0], dtype=lib.float64)
        t = lib.tensor([0.0, 0.3], dtype=lib.float64, requires_grad=True)
        F(lib).kl_div(x, t, reduction="sum").backward()
        grads[lib.__name__] = t.grad.numpy()
    assert np.isnan(grads["torch"][0]) and grads["symgrad"][0] == 1 - 0.5
    np.testing.assert_allclose(grads["symgrad"][1], grads["torch"][1], rtol=1e-12)


PROBABILITIES = [0.0, 1e-300, 1e-30, 1e-13, 1e-6, 0.3, 1 - 1e-6, 1 - 1e-13, 1 - 1e-16, 1.0]


@pytest.mark.parametrize("target", [0.0, 1.0, 0.25])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_bce_extreme_probabilities_match_torch(target, reduction):
    """Finite losses and gradients at and near 0 and 1, where torch's are (its clamps, reproduced)."""
    def fn(lib, x, y):
        return F(lib).binary_cross_entropy(x, y, reduction=reduction)
    results = check_values_against_torch(torch, fn, PROBABILITIES, [target] * len(PROBABILITIES))
    value, (grad_input, grad_target) = results["symgrad"]
    assert np.isfinite(value).all() and np.isfinite(grad_input).all()


def test_bce_log_is_clamped_at_minus_100():
    for lib in (torch, symgrad):
        loss = F(lib).binary_cross_entropy(lib.tensor([0.0, 1.0], dtype=lib.float64),
                                           lib.tensor([1.0, 0.0], dtype=lib.float64), reduction="none")
        assert loss.tolist() == [100.0, 100.0]


# ============================================================================ dtypes and warnings

DTYPE_CASES = {
    "mse_float32_float64": lambda lib: F(lib).mse_loss(lib.tensor([0.5, 2.0]),
                                                        lib.tensor([1.0, 0.0], dtype=lib.float64)),
    "mse_float64_int": lambda lib: F(lib).mse_loss(lib.tensor([0.5, 2.0], dtype=lib.float64), lib.tensor([1, 0])),
    "l1_int_sum": lambda lib: F(lib).l1_loss(lib.tensor([1, -2]), lib.tensor([3, 3]), reduction="sum"),
    "l1_int_none": lambda lib: F(lib).l1_loss(lib.tensor([1, -2]), lib.tensor([3, 3]), reduction="none"),
    "huber_float32_input": lambda lib: F(lib).huber_loss(lib.tensor([0.5, 2.0]),
                                                        lib.tensor([1.0, 0.1], dtype=lib.float64)),
    "huber_float64_input": lambda lib: F(lib).huber_loss(lib.tensor([0.5, 2.0], dtype=lib.float64),
                                                        lib.tensor([1.0, 0.1])),
    "kl_float32_float64": lambda lib: F(lib).kl_div(lib.tensor([-0.5, -2.0]), lib.tensor([0.3, 0.7], dtype=lib.float64),
                                                   reduction="sum"),
    "smooth_l1_float32": lambda lib: F(lib).smooth_l1_loss(lib.tensor([0.5, 2.0]), lib.tensor([1.0, 0.1])),
    "bce_float32": lambda lib: F(lib).binary_cross_entropy(lib.tensor([0.2, 0.9]), lib.tensor([0.0, 1.0])),
    "mse_empty_mean": lambda lib: F(lib).mse_loss(lib.ones(0), lib.ones(0)),
    "kl_batchmean_empty": lambda lib: F(lib).kl_div(lib.ones(0, 2), lib.ones(0, 2), reduction="batchmean"),
}


@pytest.mark.parametrize("name", DTYPE_CASES)
def test_dtype_and_values_match_torch(name):
    out_t, out_s = DTYPE_CASES[name](torch), DTYPE_CASES[name](symgrad)
    assert text(out_s.dtype) == text(out_t.dtype)
    assert tuple(out_s.shape) == tuple(out_t.shape)
    np.testing.assert_allclose(out_s.numpy(), out_t.numpy(), rtol=1e-6, atol=1e-7, equal_nan=True)


WARNINGS = {
    "mse_target_size": lambda lib: F(lib).mse_loss(lib.ones(3), lib.ones(3, 1)),
    "l1_target_size": lambda lib: F(lib).l1_loss(lib.ones(3), lib.ones(1)),
    "smooth_l1_target_size": lambda lib: F(lib).smooth_l1_loss(lib.ones(2, 3), lib.ones(3)),
    "huber_target_size": lambda lib: F(lib).huber_loss(lib.ones(3), lib.ones(2, 3)),
    "kl_div_mean": lambda lib: F(lib).kl_div(lib.ones(3), lib.ones(3)),
    "kl_div_batchmean_silent": lambda lib: F(lib).kl_div(lib.ones(3), lib.ones(3), reduction="batchmean"),
    "mse_legacy_size_average": lambda lib: F(lib).mse_loss(lib.ones(3), lib.ones(3), size_average=False),
    "l1_legacy_reduce": lambda lib: F(lib).l1_loss(lib.ones(3), lib.ones(3), reduce=False),
    "bce_legacy": lambda lib: F(lib).binary_cross_entropy(lib.ones(3) / 2, lib.ones(3), size_average=True),
    "kl_div_legacy": lambda lib: F(lib).kl_div(lib.ones(3), lib.ones(3), reduce=True, size_average=False),
    "bce_with_logits_legacy": lambda lib: F(lib).binary_cross_entropy_with_logits(lib.ones(3), lib.ones(3),
                                                                                  reduce=False),
    "same_size_silent": lambda lib: F(lib).mse_loss(lib.ones(3), lib.ones(3)),
}


@pytest.mark.parametrize("name", WARNINGS)
def test_warnings_match_torch(name):
    assert warnings_of(lambda: WARNINGS[name](symgrad)) == warnings_of(lambda: WARNINGS[name](torch))


def test_warnings_point_at_the_caller():
    import warnings
    for action in (lambda: F(symgrad).mse_loss(symgrad.ones(3), symgrad.ones(1)),
                   lambda: F(symgrad).kl_div(symgrad.ones(3), symgrad.ones(3)),
                   lambda: F(symgrad).mse_loss(symgrad.ones(3), symgrad.ones(3), reduce=False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            action()
        assert [w.filename for w in caught] == [__file__]


# ============================================================================ bad input

ERRORS = {
    # reductions
    "mse_reduction": lambda lib: lambda: F(lib).mse_loss(lib.ones(3), lib.ones(3), reduction="avg"),
    "l1_reduction": lambda lib: lambda: F(lib).l1_loss(lib.ones(3), lib.ones(3), reduction="batchmean"),
    "smooth_l1_reduction": lambda lib: lambda: F(lib).smooth_l1_loss(lib.ones(3), lib.ones(3), reduction=""),
    "huber_reduction": lambda lib: lambda: F(lib).huber_loss(lib.ones(3), lib.ones(3), reduction="avg"),
    "bce_reduction": lambda lib: lambda: F(lib).binary_cross_entropy(lib.ones(3) / 2, lib.ones(3), reduction="avg"),
    "kl_reduction": lambda lib: lambda: F(lib).kl_div(lib.ones(3), lib.ones(3), reduction="avg"),
    # shapes (the broadcast error outranks an invalid reduction, as in PyTorch)
    "mse_shape": lambda lib: lambda: F(lib).mse_loss(lib.ones(3), lib.ones(2)),
    "mse_shape_and_reduction": lambda lib: lambda: F(lib).mse_loss(lib.ones(3), lib.ones(2), reduction="avg"),
    "l1_shape": lambda lib: lambda: F(lib).l1_loss(lib.ones(2, 3), lib.ones(2, 2)),
    "huber_shape": lambda lib: lambda: F(lib).huber_loss(lib.ones(3), lib.ones(4)),
    "bce_target_size": lambda lib: lambda: F(lib).binary_cross_entropy(lib.ones(3) / 2, lib.ones(3, 1)),
    "bce_weight_broadcast": lambda lib: lambda: F(lib).binary_cross_entropy(lib.ones(3) / 2, lib.ones(3),
                                                                             weight=lib.ones(2)),
    "bce_weight_broadcast_2d": lambda lib: lambda: F(lib).binary_cross_entropy(lib.ones(2, 3) / 2, lib.ones(2, 3),
                                                                                weight=lib.ones(4, 3)),
    "bce_weight_larger": lambda lib: lambda: F(lib).binary_cross_entropy(lib.ones(3) / 2, lib.ones(3),
                                                                          weight=lib.ones(2, 3)),
    "kl_shape": lambda lib: lambda: F(lib).kl_div(lib.ones(3), lib.ones(2), reduction="sum"),
    # dtypes
    "mse_int": lambda lib: lambda: F(lib).mse_loss(lib.tensor([1, 2]), lib.tensor([1, 2])),
    "l1_int_mean": lambda lib: lambda: F(lib).l1_loss(lib.tensor([1, 2]), lib.tensor([1, 2])),
    "smooth_l1_int": lambda lib: lambda: F(lib).smooth_l1_loss(lib.tensor([1, 2]), lib.tensor([1, 2])),
    "huber_int": lambda lib: lambda: F(lib).huber_loss(lib.tensor([1, 2]), lib.tensor([1.0, 2.0])),
    "bce_target_dtype": lambda lib: lambda: F(lib).binary_cross_entropy(lib.ones(2) / 2,
                                                                         lib.ones(2, dtype=lib.float64)),
    "bce_int_target": lambda lib: lambda: F(lib).binary_cross_entropy(lib.ones(2, dtype=lib.float64) / 2,
                                                                       lib.tensor([0, 1])),
    "bce_int": lambda lib: lambda: F(lib).binary_cross_entropy(lib.tensor([0, 1]), lib.tensor([0, 1])),
    "kl_int_target": lambda lib: lambda: F(lib).kl_div(lib.ones(2), lib.tensor([0, 1]), reduction="sum"),
    # values and arguments
    "bce_input_range": lambda lib: lambda: F(lib).binary_cross_entropy(lib.tensor([1.5]), lib.tensor([1.0])),
    "bce_negative_input": lambda lib: lambda: F(lib).binary_cross_entropy(lib.tensor([-0.1]), lib.tensor([1.0])),
    "bce_nan_input": lambda lib: lambda: F(lib).binary_cross_entropy(lib.tensor([math.nan]), lib.tensor([1.0])),
    "bce_target_range": lambda lib: lambda: F(lib).binary_cross_entropy(lib.tensor([0.5]), lib.tensor([1.5])),
    "bce_weight_requires_grad": lambda lib: lambda: F(lib).binary_cross_entropy(
        lib.ones(2) / 2, lib.ones(2), weight=lib.ones(2, requires_grad=True)),
    "smooth_l1_negative_beta": lambda lib: lambda: F(lib).smooth_l1_loss(lib.ones(2), lib.ones(2), beta=-1.0),
    "huber_zero_delta": lambda lib: lambda: F(lib).huber_loss(lib.ones(2), lib.ones(2), delta=0.0),
    "huber_negative_delta": lambda lib: lambda: F(lib).huber_loss(lib.ones(2), lib.ones(2), delta=-2.0),
    "requires_grad_int_loss": lambda lib: lambda: F(lib).l1_loss(lib.tensor([1]), lib.tensor([2]),
                                                                  reduction="sum").requires_grad_(),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors_match_torch(name):
    check_error_matches_torch(torch, ERRORS[name])


def test_weight_for_the_pointwise_losses_is_refused_clearly():
    """PyTorch 2.6 added ``weight=`` to mse/l1/huber (a composite with its own mean); not supported yet."""
    x = symgrad.ones(3, requires_grad=True)
    for fn in (F(symgrad).mse_loss, F(symgrad).l1_loss, F(symgrad).huber_loss):
        with pytest.raises(NotImplementedError, match="weight"):
            fn(x, symgrad.zeros(3), weight=symgrad.ones(3))
    assert x.grad is None


def test_failed_range_check_records_nothing():
    p = symgrad.tensor([0.5, 1.5], requires_grad=True)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F(symgrad).binary_cross_entropy(p, symgrad.ones(2))
    assert p.grad is None and p._version_counter.value == 0


# ============================================================================ cross_entropy and nll_loss
# Class-index targets are int64 data (not leaves): each case builds its own inputs.

CLASS_SHAPES = {  # name: (input shape, class-index target shape)
    "2d": ((5, 3), (5,)),
    "unbatched": ((4,), ()),
    "3d": ((2, 3, 4), (2, 4)),
    "4d": ((2, 3, 2, 2), (2, 2, 2)),
    "5d": ((2, 3, 2, 1, 2), (2, 2, 1, 2)),
}
CLASS_OPTIONS = {
    "plain": {},
    "weight": {"weight": True},
    "ignore": {"ignore_index": 1},
    "smoothing": {"label_smoothing": 0.2},
    "all": {"weight": True, "ignore_index": 0, "label_smoothing": 0.3},
}
PROB_OPTIONS = {"plain": {}, "weight": {"weight": True}, "smoothing": {"label_smoothing": 0.15},
                "all": {"weight": True, "label_smoothing": 0.4}}


def class_case(name, x_shape, t_shape, kind):
    """float64 logits, a target (int64 indices, each class present if there are enough; or probabilities), a weight."""
    rng = rng_for(name)
    x = rng.normal(scale=2.0, size=x_shape)
    classes = x_shape[0 if len(x_shape) == 1 else 1]
    if kind == "prob":
        t = rng.dirichlet(np.ones(classes), size=int(np.prod(x_shape)) // classes)
        t = np.moveaxis(t.reshape((x_shape[0],) + x_shape[2:] + (classes,)), -1, 1) if len(x_shape) > 1 else t[0]
    else:
        t = rng.permutation(np.resize(np.arange(classes), int(np.prod(t_shape, dtype=int)))).reshape(t_shape)
    return x, t, rng.uniform(0.5, 2.0, classes)


def run_class_loss(lib, fn_name, x, t, w, options, reduction, seed_name):
    xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
    tt = lib.tensor(t, dtype=lib.float64 if t.dtype.kind == "f" else lib.int64)
    kwargs = {k: v for k, v in options.items() if k != "weight"}
    if options.get("weight"):
        kwargs["weight"] = lib.tensor(w, dtype=lib.float64)
    out = getattr(lib.nn.functional, fn_name)(xt.log_softmax(0 if x.ndim == 1 else 1) if fn_name == "nll_loss" else xt,
                                             tt, reduction=reduction, **kwargs)
    out.backward(lib.tensor(seed_like(seed_name, out), dtype=lib.float64))
    return out, xt.grad


def graph_names(t, depth=12):
    """grad_fn names in depth-first order (a node reached twice listed twice), as the user can walk them."""
    names, stack = [], [(t.grad_fn, 0)]
    while stack:
        node, level = stack.pop()
        if node is None or level > depth:
            continue
        names.append(node.name())
        stack.extend((child, level + 1) for child, _ in reversed(node.next_functions))
    return names


CLASS_CASES = {}
for _shape, (_xs, _ts) in CLASS_SHAPES.items():
    _every_option = _shape in ("2d", "3d", "4d")  # the others: without and with all options at once
    for _opt, _kw in CLASS_OPTIONS.items():
        if not _every_option and _opt not in ("plain", "all"):
            continue
        for _r in ("none", "mean", "sum"):
            CLASS_CASES[f"ce_{_shape}_{_opt}_{_r}"] = ("cross_entropy", _xs, _ts, "index", _kw, _r)
            if _opt in ("plain", "weight", "ignore"):
                CLASS_CASES[f"nll_{_shape}_{_opt}_{_r}"] = ("nll_loss", _xs, _ts, "index", _kw, _r)
    for _opt, _kw in PROB_OPTIONS.items():
        if not _every_option and _opt not in ("plain", "all"):
            continue
        for _r in ("none", "mean", "sum"):
            CLASS_CASES[f"ce_prob_{_shape}_{_opt}_{_r}"] = ("cross_entropy", _xs, _xs, "prob", _kw, _r)


@pytest.mark.parametrize("name", CLASS_CASES)
def test_cross_entropy_and_nll_loss_match_torch(name):
    """Values, dtype, shape, gradient (float64, rtol 1e-10) and the whole chain of grad_fn names."""
    fn_name, x_shape, t_shape, kind, options, reduction = CLASS_CASES[name]
    x, t, w = class_case(name, x_shape, t_shape, kind)
    out_t, grad_t = run_class_loss(torch, fn_name, x, t, w, options, reduction, name)
    out_s, grad_s = run_class_loss(symgrad, fn_name, x, t, w, options, reduction, name)
    assert text(out_s.dtype) == text(out_t.dtype) and tuple(out_s.shape) == tuple(out_t.shape)
    assert_close(out_s.detach().numpy(), out_t.detach().numpy(), what="forward")
    assert_close(grad_s.numpy(), grad_t.numpy(), what="gradient")
    assert graph_names(out_s) == graph_names(out_t)


@pytest.mark.parametrize("name", ["ce_2d_all_mean", "ce_3d_smoothing_none", "ce_prob_2d_all_sum", "nll_4d_weight_mean",
                                  "ce_unbatched_all_sum", "ce_prob_unbatched_all_mean", "nll_5d_plain_none"])
def test_cross_entropy_gradient_matches_finite_differences(name):
    fn_name, x_shape, t_shape, kind, options, reduction = CLASS_CASES[name]
    x, t, w = class_case(name, x_shape, t_shape, kind)
    target = symgrad.tensor(t, dtype=symgrad.float64 if kind == "prob" else symgrad.int64)
    kwargs = {k: v for k, v in options.items() if k != "weight"}
    if options.get("weight"):
        kwargs["weight"] = symgrad.tensor(w, dtype=symgrad.float64)
    fn = getattr(F(symgrad), fn_name)
    xt = symgrad.tensor(x, dtype=symgrad.float64, requires_grad=True)
    assert symgrad.gradcheck(lambda v: fn(v, target, reduction=reduction, **kwargs), (xt,), eps=1e-6, atol=1e-8)


def test_cross_entropy_second_derivative_matches_torch():
    name = "ce_2d_all_mean"
    _, x_shape, t_shape, kind, options, _ = CLASS_CASES[name]
    x, t, w = class_case(name, x_shape, t_shape, kind)
    direction = rng_for(name + "/direction").normal(size=x_shape)
    results = []
    for lib in (torch, symgrad):
        xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        loss = F(lib).cross_entropy(xt, lib.tensor(t), weight=lib.tensor(w, dtype=lib.float64), ignore_index=0,
                                    label_smoothing=0.3)
        (g,) = lib.autograd.grad(loss, (xt,), create_graph=True)
        (hv,) = lib.autograd.grad((g * lib.tensor(direction, dtype=lib.float64)).sum(), (xt,))
        results.append((g.detach().numpy(), hv.numpy()))
    assert_close(results[1][0], results[0][0], what="gradient")
    assert_close(results[1][1], results[0][1], what="Hessian-vector product")


EXTREME_LOGITS = [[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4], [1e4, 1e4, 1e4]]


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"reduction": "none"}], ids=str)
def test_cross_entropy_is_stable_at_extreme_logits(options):
    def fn(lib, x):
        return F(lib).cross_entropy(x, lib.tensor([1, 0, 2, 0]), **options)
    results = check_values_against_torch(torch, fn, EXTREME_LOGITS)
    value, (grad,) = results["symgrad"]
    assert np.isfinite(value).all() and np.isfinite(grad).all()


def test_cross_entropy_probabilities_are_stable_at_extreme_logits():
    def fn(lib, x):
        return F(lib).cross_entropy(x, lib.tensor([[0.2, 0.3, 0.5]] * 4, dtype=lib.float64), reduction="none")
    results = check_values_against_torch(torch, fn, EXTREME_LOGITS)
    assert np.isfinite(results["symgrad"][0]).all()


CLASS_VALUE_CASES = {  # float32 and all-ignored/empty edge cases: values and dtypes
    "float32": lambda lib: F(lib).cross_entropy(lib.tensor([[0.5, -1.0, 2.0]]), lib.tensor([2])),
    "float32_smoothing": lambda lib: F(lib).cross_entropy(lib.tensor([[0.5, -1.0, 2.0]]), lib.tensor([2]),
                                                          label_smoothing=0.1),
    "float32_probabilities": lambda lib: F(lib).cross_entropy(lib.tensor([[0.5, -1.0, 2.0]]),
                                                              lib.tensor([[0.1, 0.2, 0.7]])),
    "mixed_probabilities": lambda lib: F(lib).cross_entropy(lib.tensor([[0.5, -1.0, 2.0]]),
                                                            lib.tensor([[0.1, 0.2, 0.7]], dtype=lib.float64)),
    "all_ignored": lambda lib: F(lib).cross_entropy(lib.ones(2, 3), lib.tensor([-100, -100])),
    "all_ignored_smoothing": lambda lib: F(lib).cross_entropy(lib.ones(2, 3), lib.tensor([-100, -100]),
                                                              label_smoothing=0.1),
    "empty_mean": lambda lib: F(lib).cross_entropy(lib.ones(0, 3), lib.zeros(0, dtype=lib.int64)),
    "empty_sum": lambda lib: F(lib).cross_entropy(lib.ones(0, 3), lib.zeros(0, dtype=lib.int64), reduction="sum"),
    "empty_probabilities": lambda lib: F(lib).cross_entropy(lib.ones(0, 3), lib.ones(0, 3)),
    "empty_spatial_none": lambda lib: F(lib).nll_loss(lib.ones(2, 3, 0), lib.zeros(2, 0, dtype=lib.int64),
                                                      reduction="none"),
    "one_element_target_unbatched": lambda lib: F(lib).nll_loss(lib.tensor([-0.5, -1.0]), lib.tensor([1]),
                                                                reduction="none"),
    "zero_weight": lambda lib: F(lib).nll_loss(lib.tensor([[-0.5, -1.0]]), lib.tensor([1]),
                                               weight=lib.tensor([1.0, 0.0])),
}


@pytest.mark.parametrize("name", CLASS_VALUE_CASES)
def test_cross_entropy_edge_values_match_torch(name):
    out_t, out_s = CLASS_VALUE_CASES[name](torch), CLASS_VALUE_CASES[name](symgrad)
    assert text(out_s.dtype) == text(out_t.dtype) and tuple(out_s.shape) == tuple(out_t.shape)
    np.testing.assert_allclose(out_s.numpy(), out_t.numpy(), rtol=1e-6, equal_nan=True)


def test_changing_targets_compile_the_backward_once():
    """Targets are runtime operands of the generated code, never part of its source."""
    from symgrad.autograd.engine import BACKWARD_CACHE
    rng = rng_for("training loop")
    w = symgrad.tensor(rng.normal(size=(4, 3)), dtype=symgrad.float32, requires_grad=True)
    x = symgrad.tensor(rng.normal(size=(6, 4)), dtype=symgrad.float32)
    weight = symgrad.tensor([1.0, 2.0, 0.5])
    before = BACKWARD_CACHE.info()
    for _ in range(4):
        y = rng.integers(0, 3, size=6)
        w.grad = None
        loss = F(symgrad).cross_entropy(x @ w, symgrad.tensor(y), weight=weight, label_smoothing=0.1)
        loss.backward()
        wt = torch.tensor(w.detach().numpy(), requires_grad=True)
        F(torch).cross_entropy(torch.tensor(x.numpy()) @ wt, torch.tensor(y), weight=torch.tensor(weight.numpy()),
                               label_smoothing=0.1).backward()
        np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-5, atol=1e-7)
    after = BACKWARD_CACHE.info()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 3
    assert "np.equal" in symgrad.backward_source(loss)  # the one-hot selection is computed from the target


CLASS_ERRORS = {
    "float_target": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0.0, 1.0, 2.0, 1.0])),
    "float_target_nll": lambda lib: lambda: F(lib).nll_loss(lib.ones(4, 3), lib.tensor([0.0, 1.0, 2.0, 1.0])),
    "bool_target": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.ones(4, dtype=lib.bool)),
    "int_probabilities": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.ones(4, 3, dtype=lib.int64)),
    "target_too_large": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0, 5, 2, 7])),
    "target_negative": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0, -1, 2, 1])),
    "target_out_of_range_spatial": lambda lib: lambda: F(lib).cross_entropy(lib.ones(2, 3, 2),
                                                                             lib.tensor([[0, 1], [3, 0]])),
    "target_out_of_range_smoothing": lambda lib: lambda: F(lib).cross_entropy(lib.ones(2, 3), lib.tensor([0, 3]),
                                                                               label_smoothing=0.1),
    "batch_size": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0, 1, 2])),
    "target_dims": lambda lib: lambda: F(lib).nll_loss(lib.ones(4, 3), lib.zeros(4, 1, dtype=lib.int64)),
    "unbatched_target_size": lambda lib: lambda: F(lib).cross_entropy(lib.ones(3), lib.tensor([2, 1])),
    "spatial_target_size": lambda lib: lambda: F(lib).cross_entropy(lib.ones(2, 3, 4),
                                                                     lib.zeros(2, 5, dtype=lib.int64)),
    "4d_target_size": lambda lib: lambda: F(lib).cross_entropy(lib.ones(2, 3, 4, 2),
                                                                lib.zeros(2, 5, 2, dtype=lib.int64)),
    "4d_target_dims": lambda lib: lambda: F(lib).cross_entropy(lib.ones(2, 3, 4, 2), lib.zeros(2, 4, dtype=lib.int64)),
    "0d_input": lambda lib: lambda: F(lib).nll_loss(lib.tensor(1.0), lib.tensor(0)),
    "weight_size": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0, 1, 2, 1]),
                                                            weight=lib.ones(4)),
    "weight_size_4d": lambda lib: lambda: F(lib).nll_loss(lib.ones(2, 3, 4, 2), lib.zeros(2, 4, 2, dtype=lib.int64),
                                                          weight=lib.ones(4)),
    "weight_size_probabilities": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.ones(4, 3) / 3,
                                                                          weight=lib.ones(4)),
    "weight_dtype": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0, 1, 2, 1]),
                                                             weight=lib.ones(3, dtype=lib.float64)),
    "weight_requires_grad": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0, 1, 2, 1]),
                                                                     weight=lib.ones(3, requires_grad=True)),
    "label_smoothing": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0, 1, 2, 1]),
                                                                label_smoothing=1.5),
    "label_smoothing_probabilities": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.ones(4, 3) / 3,
                                                                              label_smoothing=2.0),
    "ignore_index_probabilities": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.ones(4, 3) / 3,
                                                                           ignore_index=1),
    "reduction": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3), lib.tensor([0, 1, 2, 1]), reduction="avg"),
    "reduction_nll": lambda lib: lambda: F(lib).nll_loss(lib.ones(4, 3), lib.tensor([0, 1, 2, 1]), reduction="avg"),
    "int_input": lambda lib: lambda: F(lib).cross_entropy(lib.ones(4, 3, dtype=lib.int64), lib.tensor([0, 1, 2, 1])),
    "int_input_nll": lambda lib: lambda: F(lib).nll_loss(lib.ones(4, 3, dtype=lib.int64), lib.tensor([0, 1, 2, 1])),
}


@pytest.mark.parametrize("name", CLASS_ERRORS)
def test_cross_entropy_errors_match_torch(name):
    check_error_matches_torch(torch, CLASS_ERRORS[name])


def test_failed_target_check_changes_nothing():
    x = symgrad.ones(4, 3, requires_grad=True)
    target = symgrad.tensor([0, 5, 2, 1])
    with pytest.raises(IndexError, match="Target 5 is out of bounds."):
        F(symgrad).cross_entropy(x, target).backward()
    assert x.grad is None and x._version_counter.value == 0 and target.tolist() == [0, 5, 2, 1]


def test_legacy_reduction_flags_warn_as_torch():
    for fn in ("cross_entropy", "nll_loss"):
        def action(lib, fn=fn):
            return lambda: getattr(F(lib), fn)(lib.ones(2, 3), lib.tensor([0, 1]), size_average=False)
        assert warnings_of(action(symgrad)) == warnings_of(action(torch))


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.25, "reduction": "sum"}], ids=str)
def test_cross_entropy_probability_target_gradient_matches_torch(options):
    rng = rng_for(f"probability target gradient {options}")
    x, p = rng.normal(size=(3, 4)), rng.dirichlet(np.ones(4), size=3)
    grads = []
    for lib in (torch, symgrad):
        xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        pt = lib.tensor(p, dtype=lib.float64, requires_grad=True)
        F(lib).cross_entropy(xt, pt, **options).backward()
        grads.append((xt.grad.numpy(), pt.grad.numpy()))
    for ours, theirs in zip(grads[1], grads[0]):
        assert_close(ours, theirs)
