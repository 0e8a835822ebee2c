"""``nn.functional.one_hot`` and ``dropout`` against PyTorch.

``dropout``'s masks come from symgrad's generator drawn as PyTorch's CPU
``bernoulli_`` draws them, so after the same seed they are PyTorch's masks;
the gradient is the mask, ``grad_fn`` ``MulBackward0`` with one edge.
``one_hot``: values, dtype and PyTorch's errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _op_oracle import check_error_matches_torch, text

import symgrad

torch = pytest.importorskip("torch")


def F(lib):
    return lib.nn.functional


# ============================================================================ dropout

DROPOUT_CASES = [((6,), 0.5, "float32"), ((3, 4, 5), 0.1, "float32"), ((7, 9), 0.9, "float64"),
                 ((40, 50), 0.3, "float64"), ((2, 0), 0.5, "float32")]


@pytest.mark.parametrize("shape, p, dtype", DROPOUT_CASES)
def test_dropout_masks_values_and_gradients_match_torch_after_the_same_seed(shape, p, dtype):
    results = {}
    for lib in (torch, symgrad):
        lib.manual_seed(7)
        x = lib.tensor(np.linspace(-2, 2, math.prod(shape)).reshape(shape), dtype=getattr(lib, dtype),
                       requires_grad=True)
        y = F(lib).dropout(x, p)
        y.sum().backward()
        after = lib.randn(3)  # the generator continues where PyTorch's does
        results[lib.__name__] = (y.detach().numpy().copy(), x.grad.numpy().copy(), after.numpy(),
                                 None if y.grad_fn is None else y.grad_fn.name(), text(y.dtype))
    for s, t in zip(results["symgrad"], results["torch"]):
        if isinstance(s, np.ndarray):
            np.testing.assert_array_equal(s, t)
        else:
            assert s == t


def test_dropout_records_one_edge_like_torch():
    for lib in (torch, symgrad):
        y = F(lib).dropout(lib.ones(4, requires_grad=True), 0.5)
        edges = [None if f is None else f.name() for f, _ in y.grad_fn.next_functions]
        assert (y.grad_fn.name(), edges) == ("MulBackward0", ["torch::autograd::AccumulateGrad", None])


def test_dropout_without_training_or_with_p_0_returns_the_input_itself():
    for lib in (torch, symgrad):
        x = lib.ones(3, requires_grad=True)
        assert F(lib).dropout(x, 0.3, training=False) is x
        assert F(lib).dropout(x, 0.0) is x
        assert F(lib).dropout(x, 0.3, training=False, inplace=True) is x


def test_dropout_with_p_1_multiplies_by_zero_like_torch():
    outputs = []
    for lib in (torch, symgrad):
        x = lib.tensor([math.inf, 1.0, -2.0], dtype=lib.float64, requires_grad=True)
        y = F(lib).dropout(x, 1.0)
        y.sum().backward()
        outputs.append((y.detach().numpy().tolist(), x.grad.numpy().tolist(), y.grad_fn.name()))
    assert str(outputs[0]) == str(outputs[1])  # nan compares by its text


def test_dropout_is_reproducible_with_manual_seed_and_differs_without():
    symgrad.manual_seed(3)
    first = F(symgrad).dropout(symgrad.ones(100), 0.5).numpy()
    second = F(symgrad).dropout(symgrad.ones(100), 0.5).numpy()
    symgrad.manual_seed(3)
    again = F(symgrad).dropout(symgrad.ones(100), 0.5).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)
    assert set(np.unique(first)) == {0.0, 2.0}


def test_dropout_inplace_matches_torch():
    results = []
    for lib in (torch, symgrad):
        lib.manual_seed(1)
        w = lib.ones(8, dtype=lib.float64, requires_grad=True)
        h = w * 3
        out = F(lib).dropout(h, 0.25, inplace=True)
        assert out is h
        out.sum().backward()
        results.append((h.detach().numpy().copy(), w.grad.numpy().copy(), h.grad_fn.name()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]


def test_dropout_gradient_matches_finite_differences():
    def fn(x):
        symgrad.manual_seed(5)  # the same mask on every evaluation
        return F(symgrad).dropout(x, 0.4) * x
    x = symgrad.tensor(np.linspace(-1, 1, 6), dtype=symgrad.float64, requires_grad=True)
    assert symgrad.gradcheck(fn, (x,))


DROPOUT_ERRORS = {
    "p_above_1": lambda lib: lambda: F(lib).dropout(lib.ones(3), 1.5),
    "p_negative": lambda lib: lambda: F(lib).dropout(lib.ones(3), -0.1),
    "inplace_leaf": lambda lib: lambda: F(lib).dropout(lib.ones(3, requires_grad=True), 0.5, inplace=True),
    "integer_input": lambda lib: lambda: F(lib).dropout(lib.ones(3, dtype=lib.int64), 0.5),
}


@pytest.mark.parametrize("name", DROPOUT_ERRORS)
def test_dropout_errors_match_torch(name):
    check_error_matches_torch(torch, DROPOUT_ERRORS[name])


def test_failed_inplace_dropout_changes_nothing():
    x = symgrad.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        F(symgrad).dropout(x, 0.5, inplace=True)
    assert x.tolist() == [1.0, 1.0, 1.0] and x._version_counter.value == 0 and x.grad is None


# ============================================================================ one_hot

ONE_HOT_CASES = {
    "vector": lambda lib: F(lib).one_hot(lib.tensor([0, 2, 1])),
    "num_classes": lambda lib: F(lib).one_hot(lib.tensor([0, 2, 1]), 5),
    "matrix": lambda lib: F(lib).one_hot(lib.tensor([[0, 3], [1, 1]]), num_classes=4),
    "0d": lambda lib: F(lib).one_hot(lib.tensor(2), 3),
    "empty_with_num_classes": lambda lib: F(lib).one_hot(lib.zeros(0, dtype=lib.int64), 3),
    "empty_2d": lambda lib: F(lib).one_hot(lib.zeros(2, 0, dtype=lib.int64), 2),
}


@pytest.mark.parametrize("name", ONE_HOT_CASES)
def test_one_hot_matches_torch(name):
    out_t, out_s = ONE_HOT_CASES[name](torch), ONE_HOT_CASES[name](symgrad)
    assert text(out_s.dtype) == text(out_t.dtype) == "symgrad.int64"
    assert tuple(out_s.shape) == tuple(out_t.shape)
    np.testing.assert_array_equal(out_s.numpy(), out_t.numpy())
    assert not out_s.requires_grad


ONE_HOT_ERRORS = {
    "negative": lambda lib: lambda: F(lib).one_hot(lib.tensor([0, -2, 1]), 5),
    "negative_and_too_large": lambda lib: lambda: F(lib).one_hot(lib.tensor([0, -2, 7])),
    "too_large": lambda lib: lambda: F(lib).one_hot(lib.tensor([0, 2, 7]), 5),
    "num_classes_too_small": lambda lib: lambda: F(lib).one_hot(lib.tensor([0, 2]), 2),
    "num_classes_0": lambda lib: lambda: F(lib).one_hot(lib.tensor([[0, 2], [1, 1]]), num_classes=0),
    "num_classes_negative": lambda lib: lambda: F(lib).one_hot(lib.tensor([0, 1]), num_classes=-2),
    "float_input": lambda lib: lambda: F(lib).one_hot(lib.tensor([0.0, 2.0])),
    "bool_input": lambda lib: lambda: F(lib).one_hot(lib.tensor([True])),
    "empty_without_num_classes": lambda lib: lambda: F(lib).one_hot(lib.zeros(0, dtype=lib.int64)),
}


@pytest.mark.parametrize("name", ONE_HOT_ERRORS)
def test_one_hot_errors_match_torch(name):
    check_error_matches_torch(torch, ONE_HOT_ERRORS[name])
