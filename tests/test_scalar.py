"""The per-element code generator (symgrad.compiler.scalar) against the NumPy one it stands in for."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad


def both(fn, *args, wrt=None):
    """The NumPy and the per-element ``value_and_grad`` of ``fn`` compiled at ``args``."""
    program = symgrad.compile(fn, *args, wrt=wrt)._last.program
    return program.functions["value_and_grad"], program.functions.get("value_and_grad_scalar")


def assert_same(a, b, rtol=1e-13):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert np.shape(x) == np.shape(y) and np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-300, equal_nan=True)


PROGRAMS = {
    "tutorial": (lambda w, b, x, y: symgrad.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y),
                 [np.arange(15.0).reshape(5, 3) / 10, np.ones(3), np.linspace(-1, 1, 5), np.array([0.0, 1.0, 0.5])]),
    "batched matmul": (lambda a, b: (a @ b).tanh().sum(), [np.linspace(-1, 1, 12).reshape(2, 2, 3),
                                                           np.linspace(0, 1, 6).reshape(3, 2)]),
    "reductions": (lambda x: x.softmax(1).sum(0).prod() + x.logsumexp(1).mean() + x.max(1)[0].sum() + x.amin(),
                   [np.array([[1.0, 3.0, 3.0], [-2.0, 0.5, 0.0]])]),
    "transpose and broadcast": (lambda x, y: ((x.T * y).exp() / (1 + x.T.abs())).sum(1).sqrt().sum(),
                                [np.array([[1.0, -2.0], [0.3, 0.4], [2.0, -1.0]]), np.array([0.5, -0.5, 1.0])]),
    "rosenbrock": (lambda x: (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum(),
                   [np.linspace(-2, 2, 10)]),
    "slices, cat, cumsum": (lambda y: (y[:, 1:3].cumsum(1) * y[::2, :2].flip(1).repeat(2, 1)[:3]).sum()
                            + symgrad.cat([y[0], y[2, ::2]]).pow(2).sum() + y[0:0].sum(),
                            [np.linspace(-1, 1, 12).reshape(3, 4)]),
    "kinks": (lambda x: (x.relu() + x.clamp(-0.5, 0.5) + x.abs() + symgrad.maximum(x, -x * 2)).sum(),
              [np.array([-1.0, 0.0, 0.25, 2.0])]),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_unrolled_code_equals_numpy_code(name):
    fn, args = PROGRAMS[name]
    vectorised, scalar = both(fn, *args)
    assert scalar is not None, "expected this graph to be unrolled"
    moved = [a * 1.3 for a in args]
    assert_same(scalar(*moved), vectorised(*moved))


def test_math_errors_fall_back_to_numpy_values():
    fn = lambda x: (x.exp() + (x - 1).log() + 1 / x).sum()  # noqa: E731
    vectorised, scalar = both(fn, np.array([2.0, 3.0]))
    with np.errstate(all="ignore"):
        for x in (np.array([1000.0, 2.0]), np.array([1.0, 2.0]), np.array([0.0, 2.0]), np.array([np.nan, 2.0])):
            assert_same(scalar(x), vectorised(x))


def test_nan_propagates_through_maxima_like_numpy():
    vectorised, scalar = both(lambda x: x.amax(1).sum() + x.max(1)[0].sum(), np.ones((2, 3)))
    x = np.array([[1.0, np.nan, 3.0], [2.0, 2.0, 1.0]])
    assert_same(scalar(x), vectorised(x))


def test_integer_and_mask_arguments():
    vectorised, scalar = both(lambda x, k: (x * k).sum(), np.ones(3), np.array([1, 2, 3]), wrt=0)
    assert scalar is not None
    assert_same(scalar(np.ones(3) * 2, np.array([4, 5, 6])), vectorised(np.ones(3) * 2, np.array([4, 5, 6])))


def test_large_graphs_stay_vectorised():
    assert both(lambda x: (x * x).sum(), np.ones(5000))[1] is None


def test_float32_is_computed_in_double_and_rounded_once():
    fn, args = PROGRAMS["tutorial"]
    args32 = [a.astype(np.float32) for a in args]
    vectorised, scalar = both(fn, *args32)
    unrolled, expected = scalar(*args32), vectorised(*args32)
    assert all(np.asarray(u).dtype == np.float32 for u in unrolled)
    assert_same(unrolled, expected, rtol=2e-6)
    exact = both(fn, *args)[0](*args)  # float64 reference: the unrolled float32 code is at least as close
    for u, e, x in zip(unrolled, expected, exact):
        assert np.abs(np.asarray(u, np.float64) - x).max() <= np.abs(np.asarray(e, np.float64) - x).max() + 1e-7


def test_the_faster_version_is_chosen():
    small = symgrad.compile(lambda x: (x.sin() * x).sum(), np.ones(4))
    large = symgrad.compile(lambda x: (x.sin() * x).sum(), np.ones(1500))
    assert small._last.value_and_grad.__name__ == "value_and_grad_scalar"
    assert large._last.value_and_grad.__name__ == "value_and_grad"
