"""Reductions and the softmax family against the PyTorch oracle.

prod, var, std, amax, amin, max, min, logsumexp, softmax, log_softmax, norm,
linalg.vector_norm, linalg.norm and linalg.matrix_norm: forward values,
``grad_fn`` graphs and gradients (float64, rtol 1e-10) on several shapes
(0-d, empty, negative dims, tuples of dims, keepdim), finite differences
wherever the function is differentiable, second derivatives for the smooth
ones, PyTorch's conventions at kinks (zeros of prod, ties of max/min, the
zero vector of norm, constant input of std), extreme inputs (±1000, ±inf)
and PyTorch's errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ops_oracle import (
    NZ,
    Case,
    R,
    V,
    check_against_torch,
    check_error_changes_nothing,
    check_finite_differences,
    check_same_error,
    check_second_derivatives,
    text,
)

import symgrad

INF = float("inf")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def vector_norm(lib, *args, **kwargs):
    return lib.linalg.vector_norm(*args, **kwargs)


CASES = {
    # ---- prod: exp(sum(log|x|)) of the nonzero entries times the zero entries
    "prod_all": Case(lambda lib, a: a.prod(), [NZ(2, 3)], second=True),
    "prod_dim": Case(lambda lib, a: a.prod(1), [NZ(2, 3, 2)], second=True),
    "prod_dim_negative_keepdim": Case(lambda lib, a: a.prod(-1, keepdim=True), [NZ(3, 4)], second=True),
    "prod_fn": Case(lambda lib, a: lib.prod(a, 0), [NZ(3, 2)]),
    "prod_0d": Case(lambda lib, a: a.prod(), [NZ()]),
    "prod_0d_dim": Case(lambda lib, a: a.prod(0), [NZ()]),
    "prod_many_negatives": Case(lambda lib, a: a.prod(), [V([-1.5, -0.5, 2.0, -1.25, -3.0, 0.75, -1.0])]),
    "prod_one_zero": Case(lambda lib, a: a.prod(), [V([2.0, 0.0, -3.0, 1.5])], second=True),
    "prod_two_zeros": Case(lambda lib, a: a.prod(), [V([0.0, 2.0, 0.0, -3.0])], second=True),
    "prod_three_zeros": Case(lambda lib, a: a.prod(), [V([0.0, 0.0, 5.0, 0.0])], second=True),
    "prod_zeros_per_row": Case(lambda lib, a: a.prod(1),
                               [V([[1.5, -2.0, 3.0], [0.0, 2.0, -1.0], [0.0, 4.0, 0.0]])], second=True),
    "prod_empty": Case(lambda lib, a: a.prod(), [R(0)]),
    "prod_empty_dim": Case(lambda lib, a: a.prod(1), [R(2, 0)]),
    # ---- var and std
    "var_all": Case(lambda lib, a: a.var(), [R(3, 4)], second=True),
    "var_dim": Case(lambda lib, a: a.var(1), [R(3, 4)], second=True),
    "var_dims_tuple": Case(lambda lib, a: a.var((0, 2)), [R(2, 3, 4)]),
    "var_negative_keepdim": Case(lambda lib, a: a.var(-1, keepdim=True), [R(2, 3, 4)]),
    "var_correction_0": Case(lambda lib, a: a.var(0, correction=0), [R(3, 4)]),
    "var_correction_2": Case(lambda lib, a: a.var(correction=2), [R(5)]),
    "var_unbiased_false": Case(lambda lib, a: a.var(1, False), [R(3, 4)]),
    "var_unbiased_positional": Case(lambda lib, a: a.var(False), [R(3, 4)]),
    "var_fn": Case(lambda lib, a: lib.var(a, dim=0), [R(3, 4)]),
    "std_all": Case(lambda lib, a: a.std(), [R(3, 4)], second=True),
    "std_dim": Case(lambda lib, a: a.std(0), [R(3, 4)], second=True),
    "std_dims_keepdim": Case(lambda lib, a: a.std((0, 1), keepdim=True), [R(2, 3, 4)]),
    "std_correction_0": Case(lambda lib, a: a.std(-1, correction=0), [R(3, 4)]),
    "std_fn": Case(lambda lib, a: lib.std(a, 1, keepdim=True), [R(2, 3)]),
    "std_constant_input": Case(lambda lib, a: a.std(1), [V([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])], fd=False),
    "std_0d": Case(lambda lib, a: a.std(correction=0), [R()], fd=False),
    # ---- amax / amin: ties share the gradient evenly
    "amax_all": Case(lambda lib, a: a.amax(), [R(3, 4)]),
    "amax_dim": Case(lambda lib, a: a.amax(1), [R(3, 4)]),
    "amax_dims_tuple": Case(lambda lib, a: a.amax((0, 2)), [R(2, 3, 4)]),
    "amax_negative_keepdim": Case(lambda lib, a: a.amax(-1, keepdim=True), [R(2, 3, 4)]),
    "amax_fn": Case(lambda lib, a: lib.amax(a, dim=0), [R(3, 4)]),
    "amax_0d": Case(lambda lib, a: a.amax(), [R()]),
    "amin_all": Case(lambda lib, a: a.amin(), [R(3, 4)]),
    "amin_dims_keepdim": Case(lambda lib, a: a.amin((-1, 0), keepdim=True), [R(2, 3, 4)]),
    "amin_fn": Case(lambda lib, a: lib.amin(a, 1), [R(3, 4)]),
    "amax_ties": Case(lambda lib, a: a.amax(1), [V([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [5.0, -1.0, 4.0]])],
                      fd=False),
    "amax_ties_all": Case(lambda lib, a: a.amax(), [V([[1.0, 3.0], [3.0, 0.0]])], fd=False),
    "amax_ties_tuple": Case(lambda lib, a: a.amax((0, 2)), [V([[[1.0, 4.0], [0.0, 0.0]], [[4.0, 4.0], [0.0, -1.0]]])],
                            fd=False),
    "amin_ties": Case(lambda lib, a: a.amin(0), [V([[1.0, -3.0], [1.0, 2.0], [4.0, -3.0]])], fd=False),
    "amax_infinite": Case(lambda lib, a: a.amax(1), [V([[INF, 1.0], [-INF, -INF], [-INF, 2.0]])], fd=False),
    # ---- max / min: whole tensor (ties share), along a dim (the returned index takes it all)
    "max_all": Case(lambda lib, a: a.max(), [R(3, 4)]),
    "min_all": Case(lambda lib, a: lib.min(a), [R(3, 4)]),
    "max_0d": Case(lambda lib, a: a.max(), [R()]),
    "max_ties": Case(lambda lib, a: a.max(), [V([1.0, 3.0, 3.0, -3.0])], fd=False),
    "min_ties": Case(lambda lib, a: a.min(), [V([[0.0, 2.0], [0.0, 3.0]])], fd=False),
    "max_dim": Case(lambda lib, a: a.max(1).values, [R(3, 4)]),
    "max_dim_keepdim": Case(lambda lib, a: lib.max(a, -1, keepdim=True)[0], [R(2, 3, 4)]),
    "max_dim_ties": Case(lambda lib, a: a.max(0).values, [V([[1.0, 3.0], [1.0, 3.0], [0.0, 3.0]])], fd=False),
    "min_dim": Case(lambda lib, a: a.min(dim=0).values, [R(3, 4)]),
    "min_dim_ties": Case(lambda lib, a: a.min(1)[0], [V([[2.0, 1.0, 1.0], [-1.0, 5.0, -1.0]])], fd=False),
    "max_dim_0d": Case(lambda lib, a: a.max(0).values, [R()]),
    "max_of_two_tensors": Case(lambda lib, a, b: lib.max(a, b), [R(2, 3), R(3)]),
    "min_of_two_tensors": Case(lambda lib, a, b: a.min(b), [R(3), R(2, 3)]),
    "max_dim_infinite": Case(lambda lib, a: a.max(1).values, [V([[-INF, 5.0], [INF, INF]])], fd=False),
    # ---- logsumexp, stable at the extremes
    "logsumexp_dim": Case(lambda lib, a: a.logsumexp(1), [R(3, 4)], second=True),
    "logsumexp_dims_tuple": Case(lambda lib, a: a.logsumexp((0, 2)), [R(2, 3, 4)], second=True),
    "logsumexp_negative_keepdim": Case(lambda lib, a: a.logsumexp(-1, keepdim=True), [R(2, 3)]),
    "logsumexp_fn": Case(lambda lib, a: lib.logsumexp(a, 0), [R(3, 4)]),
    "logsumexp_0d": Case(lambda lib, a: a.logsumexp(0), [R()]),
    "logsumexp_extreme": Case(lambda lib, a: a.logsumexp(1), [V([[1000.0, -1000.0, 999.0], [-1e4, -1e4, -1e4]])],
                              second=True),
    "logsumexp_infinite": Case(lambda lib, a: a.logsumexp(1), [V([[-INF, 0.0], [-INF, -INF], [INF, 0.0]])],
                               fd=False),
    "logsumexp_empty": Case(lambda lib, a: a.logsumexp(0), [R(0, 3)]),
    # ---- softmax, log_softmax
    "softmax_last": Case(lambda lib, a: a.softmax(-1), [R(3, 4)], second=True),
    "softmax_dim0": Case(lambda lib, a: a.softmax(0), [R(3, 4)], second=True),
    "softmax_3d_middle": Case(lambda lib, a: a.softmax(1), [R(2, 3, 4)]),
    "softmax_fn": Case(lambda lib, a: lib.softmax(a, 1), [R(2, 3)]),
    "softmax_nn": Case(lambda lib, a: lib.nn.functional.softmax(a, dim=-1), [R(2, 3)]),
    "softmax_0d": Case(lambda lib, a: a.softmax(0), [R()]),
    "softmax_empty": Case(lambda lib, a: a.softmax(1), [R(0, 3)]),
    # through float32 and back: the gradient crosses a float32 conversion, which torch rounds
    # (and finite differences cannot resolve)
    "softmax_dtype": Case(lambda lib, a: a.float().softmax(0, dtype=lib.float64), [R(4)], fd=False,
                          rtol=1e-6, atol=1e-7),
    "softmax_extreme": Case(lambda lib, a: a.softmax(1), [V([[1000.0, -1000.0, 0.0], [1e4, 1e4, -1e4]])],
                            second=True),
    "softmax_infinite": Case(lambda lib, a: a.softmax(1), [V([[-INF, 0.0, 1.0], [-INF, -INF, -INF]])], fd=False),
    "log_softmax_last": Case(lambda lib, a: a.log_softmax(-1), [R(3, 4)], second=True),
    "log_softmax_dim0": Case(lambda lib, a: a.log_softmax(0), [R(3, 4)], second=True),
    "log_softmax_3d": Case(lambda lib, a: a.log_softmax(2), [R(2, 3, 4)]),
    "log_softmax_fn": Case(lambda lib, a: lib.log_softmax(a, 0), [R(3)]),
    "log_softmax_nn": Case(lambda lib, a: lib.nn.functional.log_softmax(a, 1), [R(2, 3)]),
    "log_softmax_0d": Case(lambda lib, a: a.log_softmax(-1), [R()]),
    "log_softmax_dtype": Case(lambda lib, a: lib.log_softmax(a.float(), 0, dtype=lib.float64), [R(4)], fd=False,
                              rtol=1e-6, atol=1e-7),
    "log_softmax_extreme": Case(lambda lib, a: a.log_softmax(1), [V([[1000.0, -1000.0, 0.0], [1e4, 1e4, -1e4]])],
                                second=True),
    "log_softmax_infinite": Case(lambda lib, a: a.log_softmax(1), [V([[-INF, 0.0, 1.0]])], fd=False),
    # ---- norms (LinalgVectorNormBackward0)
    "norm": Case(lambda lib, a: a.norm(), [R(3, 4)], second=True),
    "norm_dim": Case(lambda lib, a: a.norm(dim=1), [R(3, 4)], second=True),
    "norm_keepdim": Case(lambda lib, a: a.norm(dim=-1, keepdim=True), [R(2, 3, 4)]),
    "norm_fn": Case(lambda lib, a: lib.norm(a, dim=(0, 1)), [R(2, 3, 4)]),
    "norm_fro": Case(lambda lib, a: a.norm("fro"), [R(3, 4)]),
    "norm_p1": Case(lambda lib, a: a.norm(p=1, dim=0), [NZ(3, 4)]),
    "norm_p3": Case(lambda lib, a: a.norm(p=3, dim=0), [R(3, 4)], second=True),
    "norm_p_half": Case(lambda lib, a: a.norm(0.5), [NZ(5)], second=True),
    "norm_p_minus_one": Case(lambda lib, a: a.norm(-1), [NZ(5)], second=True),
    "norm_inf": Case(lambda lib, a: a.norm(INF, dim=1), [R(3, 4)]),
    "norm_minus_inf": Case(lambda lib, a: a.norm(-INF), [NZ(5)]),
    "vector_norm": Case(lambda lib, a: vector_norm(lib, a), [R(2, 3)], second=True),
    "vector_norm_dims": Case(lambda lib, a: vector_norm(lib, a, 2, (0, 2), True), [R(2, 3, 4)]),
    "vector_norm_ord1": Case(lambda lib, a: vector_norm(lib, a, ord=1, dim=-1), [NZ(2, 3)]),
    "vector_norm_0d": Case(lambda lib, a: vector_norm(lib, a), [NZ()]),
    "vector_norm_empty": Case(lambda lib, a: vector_norm(lib, a, dim=1), [R(2, 0)]),
    "norm_zero_vector": Case(lambda lib, a: a.norm(), [V([0.0, 0.0, 0.0])], fd=False),
    "norm_zero_rows": Case(lambda lib, a: a.norm(dim=1), [V([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])], fd=False),
    "norm_p3_zero_vector": Case(lambda lib, a: a.norm(3), [V([0.0, 0.0])], fd=False),
    "norm_p1_zero_vector": Case(lambda lib, a: a.norm(1), [V([0.0, 0.0])], fd=False),
    "norm_inf_zero_vector": Case(lambda lib, a: a.norm(INF), [V([0.0, 0.0])], fd=False),
    "norm_p_half_zero_entries": Case(lambda lib, a: a.norm(0.5), [V([0.0, 2.0, 0.0, 3.0])], fd=False),
    "norm_inf_ties": Case(lambda lib, a: a.norm(INF), [V([1.0, 3.0, 3.0, -3.0])], fd=False),
    "norm_minus_inf_ties": Case(lambda lib, a: vector_norm(lib, a, -INF), [V([-1.0, 2.0, 1.0])], fd=False),
    # ---- linalg.norm / matrix_norm
    "linalg_norm_vector": Case(lambda lib, a: lib.linalg.norm(a), [R(4)], second=True),
    "linalg_norm_matrix": Case(lambda lib, a: lib.linalg.norm(a), [R(3, 4)]),
    "linalg_norm_3d": Case(lambda lib, a: lib.linalg.norm(a), [R(2, 3, 4)]),
    "linalg_norm_ord1": Case(lambda lib, a: lib.linalg.norm(a, 1), [NZ(4)]),
    "linalg_norm_ord_inf": Case(lambda lib, a: lib.linalg.norm(a, INF), [R(4)]),
    "linalg_norm_fro": Case(lambda lib, a: lib.linalg.norm(a, "fro"), [R(3, 4)]),
    "linalg_norm_dim": Case(lambda lib, a: lib.linalg.norm(a, dim=1, keepdim=True), [R(3, 4)]),
    "linalg_norm_dim_pair": Case(lambda lib, a: lib.linalg.norm(a, dim=(0, 2)), [R(2, 3, 4)]),
    "linalg_norm_ord3_dim": Case(lambda lib, a: lib.linalg.norm(a, 3, dim=0), [R(3, 4)]),
    "matrix_norm": Case(lambda lib, a: lib.linalg.matrix_norm(a), [R(2, 3, 4)]),
    "matrix_norm_ord1": Case(lambda lib, a: lib.linalg.matrix_norm(a, 1), [NZ(2, 3, 4)]),
    "matrix_norm_ord_minus1_keepdim": Case(lambda lib, a: lib.linalg.matrix_norm(a, -1, keepdim=True), [NZ(3, 4)]),
    "matrix_norm_inf_dims": Case(lambda lib, a: lib.linalg.matrix_norm(a, INF, dim=(2, 0)), [NZ(2, 3, 4)]),
    "matrix_norm_minus_inf": Case(lambda lib, a: lib.linalg.matrix_norm(a, -INF), [NZ(3, 4)]),
    "linalg_norm_matrix_ord_inf": Case(lambda lib, a: lib.linalg.norm(a, INF), [NZ(3, 4)]),
    "matrix_norm_ord1_ties": Case(lambda lib, a: lib.linalg.matrix_norm(a, 1), [V([[1.0, -2.0], [-3.0, 2.0]])],
                                  fd=False),
    # ---- 0-d and empty inputs of every reduction (sum and mean are otherwise in tests/test_autograd.py)
    "sum_0d_dim": Case(lambda lib, a: a.sum(0), [R()]),
    "sum_empty_dim": Case(lambda lib, a: a.sum(0), [R(0, 3)], fd=False),
    "sum_empty_all": Case(lambda lib, a: a.sum(), [R(2, 0)], fd=False),
    "mean_0d": Case(lambda lib, a: a.mean(), [R()]),
    "mean_0d_dim_keepdim": Case(lambda lib, a: a.mean(0, keepdim=True), [R()]),
    "mean_empty_all": Case(lambda lib, a: a.mean(), [R(0, 3)], fd=False),  # nan, as torch
    "mean_empty_dim": Case(lambda lib, a: a.mean(0), [R(0, 3)], fd=False),
    "mean_over_nonempty_dim_of_empty": Case(lambda lib, a: a.mean(1), [R(0, 3)], fd=False),
    "var_empty": Case(lambda lib, a: a.var(1), [R(0, 3)], fd=False),
    "std_empty": Case(lambda lib, a: a.std(0), [R(0, 3)], fd=False),
    "amax_empty": Case(lambda lib, a: a.amax(1), [R(0, 3)], fd=False),
    "amin_0d": Case(lambda lib, a: a.amin(), [R()]),
    "amin_empty": Case(lambda lib, a: a.amin(-1, keepdim=True), [R(2, 0, 3)], fd=False),
    "min_0d": Case(lambda lib, a: a.min(), [R()]),
    "max_dim_empty": Case(lambda lib, a: a.max(1).values, [R(0, 3)], fd=False),
    "min_dim_0d": Case(lambda lib, a: a.min(0).values, [R()]),
    "min_dim_empty": Case(lambda lib, a: a.min(1, keepdim=True)[0], [R(0, 3)], fd=False),
    "prod_empty_other_dim": Case(lambda lib, a: a.prod(1), [R(0, 3)], fd=False),
}


VARIANCE_OF_ONE = {"0d": ((), lambda x: x.var()), "rows": ((1, 3), lambda x: x.var(0)),
                   "columns": ((2, 1), lambda x: x.std(1)),
                   # the zero gradient's kernel printed as a constant once lost its (1, 3) shape
                   "reshaped": ((3,), lambda x: x.reshape(1, 3).var(0))}


@pytest.mark.parametrize("name", VARIANCE_OF_ONE)
def test_variance_without_degrees_of_freedom_has_zero_gradient_unlike_torch(name, torch):
    """One element per variance: the value is nan as in PyTorch, but x - mean(x) simplifies to 0 symbolically,
    so the gradient is 0 where PyTorch's 2 (x - mean) / 0 is nan (docs/ops.md, Differences from PyTorch)."""
    shape, fn = VARIANCE_OF_ONE[name]
    values = np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)
    results = {}
    for lib in (torch, symgrad):
        x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = fn(x)
        out.sum().backward()
        results[lib.__name__] = (out.detach().numpy(), x.grad.numpy())
    (value_s, grad_s), (value_t, grad_t) = results["symgrad"], results["torch"]
    assert np.isnan(value_t).all() and np.isnan(value_s).all() and value_s.shape == value_t.shape
    assert np.isnan(grad_t).all()
    np.testing.assert_array_equal(grad_s, np.zeros(shape))


@pytest.mark.parametrize("name", CASES)
def test_reduction_matches_torch(name, torch):
    check_against_torch(torch, name, CASES[name])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.fd])
def test_reduction_gradient_matches_finite_differences(name):
    check_finite_differences(name, CASES[name])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.second])
def test_reduction_second_derivatives_match_torch(name, torch):
    check_second_derivatives(torch, name, CASES[name])


# --------------------------------------------------------- beyond the table


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_along_a_dim_return_torchs_indices(largest, keepdim, torch):
    values = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0], [-4.0, 0.0, -4.0]])
    results = []
    for lib in (torch, symgrad):
        x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        out = (x.max if largest else x.min)(1, keepdim=keepdim)
        values_out, indices = out
        assert out.values is values_out and out.indices is indices
        results.append((values_out.detach().numpy(), indices.numpy(), text(indices.dtype)))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    assert results[1][2] == results[0][2] == "symgrad.int64"


@pytest.mark.parametrize("name", ["var", "std"])
def test_no_degrees_of_freedom_warns_like_torch(name, torch):
    for lib in (torch, symgrad):
        with pytest.warns(UserWarning, match=rf"{name}\(\): degrees of freedom is <= 0"):
            value = getattr(lib.tensor([1.0, 2.0], dtype=lib.float64), name)(correction=3)
        assert value.item() == INF


def test_softmax_without_dim_warns_and_picks_torchs_dim(torch):
    data = np.arange(6.0).reshape(2, 3)
    results = []
    for lib in (torch, symgrad):
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
            results.append(lib.nn.functional.softmax(lib.tensor(data)).numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)


@pytest.mark.parametrize("fn", [lambda lib, t: t.prod(), lambda lib, t: t.prod(1), lambda lib, t: t.amax(0),
                                lambda lib, t: t.max(), lambda lib, t: t.min(1).values,
                                lambda lib, t: t.logsumexp(1)],
                         ids=["prod", "prod_dim", "amax", "max", "min_dim", "logsumexp"])
def test_integer_inputs_give_torchs_dtype_and_values(fn, torch):
    data = np.array([[3, -2, 5], [4, 1, 0]])
    results = [fn(lib, lib.tensor(data)) for lib in (torch, symgrad)]
    assert text(results[1].dtype) == text(results[0].dtype)
    np.testing.assert_allclose(results[1].numpy(), results[0].numpy(), rtol=1e-6)


def test_prod_of_large_integers_is_exact(torch):
    data = np.array([3, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47])
    assert symgrad.tensor(data).prod().item() == torch.tensor(data).prod().item() == int(np.prod(data))


def test_softmax_saves_its_input_unlike_torch():
    """Deliberate difference: the backward recomputes the normalisation from the input (PyTorch reads only
    the saved result), so modifying the input in place before backward is an error here."""
    w = symgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = w * 1
    y = x.softmax(0)
    x.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_amax_backward_twice_needs_retain_graph(torch):
    for lib in (torch, symgrad):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        y = w.amax()
        y.backward()
        with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
            y.backward()


def test_reference_operands_are_not_graph_edges(torch):
    """amax/max/logsumexp/softmax pass their forward's maximum to the lowering as a hidden constant."""
    for fn in (lambda t: t.amax(), lambda t: t.max(), lambda t: t.max(0).values, lambda t: t.logsumexp(0),
               lambda t: t.softmax(0), lambda t: t.norm(INF)):
        edges = []
        for lib in (torch, symgrad):
            out = fn(lib.tensor([1.0, 3.0], requires_grad=True))
            edges.append([f.name() for f, _ in out.grad_fn.next_functions])
        assert edges[1] == edges[0] == ["torch::autograd::AccumulateGrad"]


def test_norm_p0_counts_nonzeros_with_zero_gradient(torch):
    """Deliberate difference: the count of nonzeros has derivative 0 everywhere; torch leaves ``.grad``
    None, symgrad accumulates zeros (its backward always returns a gradient for a reached leaf)."""
    values = [0.0, 2.0, 0.0, -1.0]
    results = []
    for lib in (torch, symgrad):
        x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        out = x.norm(0)
        assert out.grad_fn.name() == "LinalgVectorNormBackward0"
        out.backward()
        results.append((out.item(), x.grad))
    assert results[1][0] == results[0][0] == 2.0
    assert results[0][1] is None
    np.testing.assert_array_equal(results[1][1].numpy(), np.zeros(4))


@pytest.mark.parametrize("call", [lambda: symgrad.linalg.matrix_norm(symgrad.ones(2, 2), 2),
                                  lambda: symgrad.linalg.norm(symgrad.ones(2, 2), "nuc"),
                                  lambda: symgrad.ones(2, 2).norm("nuc")], ids=["spectral", "nuclear", "norm_nuc"])
def test_norms_needing_singular_values_are_refused(call):
    """Not supported (PyTorch computes them with an SVD): a clear NotImplementedError, not a wrong value."""
    with pytest.raises(NotImplementedError, match="not supported"):
        call()


def test_gradients_keep_float32(torch):
    for fn in (lambda t: t.prod(), lambda t: t.std(0), lambda t: t.amax(), lambda t: t.logsumexp(0),
               lambda t: t.softmax(0), lambda t: t.norm()):
        x = symgrad.tensor([1.0, -2.0, 3.0], requires_grad=True)
        out = fn(x)
        out.backward(symgrad.ones_like(out))
        assert out.dtype is x.grad.dtype is symgrad.float32


# -------------------------------------------------------------- bad input

ERRORS = {
    "prod_dim_out_of_range": lambda lib: lib.zeros(2, 3).prod(2),
    "var_integer": lambda lib: lib.tensor([1, 2, 3]).var(),
    "std_integer": lambda lib: lib.tensor([1, 2, 3]).std(0),
    "var_dim_out_of_range": lambda lib: lib.zeros(2, 3).var(5),
    "var_duplicate_dims": lambda lib: lib.zeros(2, 3).var((0, 0)),
    "amax_empty_dim": lambda lib: lib.zeros(0, 3).amax(0),
    "amin_empty_all": lambda lib: lib.zeros(0).amin(),
    "amax_duplicate_dims": lambda lib: lib.zeros(2, 3).amax((1, 1)),
    "amax_dim_out_of_range": lambda lib: lib.zeros(2, 3).amax(-3),
    "max_empty": lambda lib: lib.zeros(0).max(),
    "max_dim_out_of_range": lambda lib: lib.max(lib.zeros(2, 3), 2),
    "min_dim_empty": lambda lib: lib.zeros(2, 0).min(1),
    "logsumexp_dim_out_of_range": lambda lib: lib.zeros(2, 3).logsumexp(2),
    "logsumexp_duplicate_dims": lambda lib: lib.zeros(2, 3).logsumexp((0, -2)),
    "softmax_dim_out_of_range": lambda lib: lib.zeros(3, 4).softmax(2),
    "log_softmax_dim_out_of_range": lambda lib: lib.nn.functional.log_softmax(lib.zeros(3), -2),
    "softmax_integer": lambda lib: lib.tensor([1, 2, 3]).softmax(0),
    "log_softmax_integer": lambda lib: lib.tensor([[1, 2, 3]]).log_softmax(0),
    "norm_integer": lambda lib: lib.tensor([1, 2, 3]).norm(),
    "vector_norm_integer": lambda lib: lib.linalg.vector_norm(lib.tensor([1, 2, 3])),
    "vector_norm_string_ord": lambda lib: lib.linalg.vector_norm(lib.zeros(3), "fro"),
    "vector_norm_inf_empty": lambda lib: lib.linalg.vector_norm(lib.zeros(0), INF),
    "vector_norm_dim_out_of_range": lambda lib: lib.linalg.vector_norm(lib.zeros(3), dim=1),
    "linalg_norm_ord_3d": lambda lib: lib.linalg.norm(lib.zeros(2, 3, 4), 2),
    "linalg_norm_fro_vector": lambda lib: lib.linalg.norm(lib.zeros(3), "fro"),
    "matrix_norm_vector": lambda lib: lib.linalg.matrix_norm(lib.zeros(3)),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_input_raises_like_torch(name, torch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_same_error(torch, ERRORS[name])


BAD_CALLS = {
    "sum_dim_out_of_range": lambda lib, a: a.sum(2),
    "mean_integer_dtype": lambda lib, a: a.mean(dtype=lib.int64),
    "var_duplicate_dims": lambda lib, a: a.var((1, -1)),
    "amax_dim_out_of_range": lambda lib, a: a.amax(-3),
    "max_dim_out_of_range": lambda lib, a: a.max(2),
    "logsumexp_dim_out_of_range": lambda lib, a: a.logsumexp(5),
    "softmax_dim_out_of_range": lambda lib, a: a.softmax(2),
    "norm_bad_dims": lambda lib, a: lib.linalg.norm(a, 2, dim=(0, 1, 1)),
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_bad_input_changes_nothing(name, torch):
    check_error_changes_nothing(torch, BAD_CALLS[name], np.arange(6.0).reshape(2, 3))
