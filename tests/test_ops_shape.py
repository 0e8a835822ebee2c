"""Shape ops against the PyTorch oracle: reshape/view/flatten, transposes, expand, clone.

Each case runs in float64 on the same inputs in torch and symgrad (values,
dtype, the whole ``grad_fn`` graph, gradients at rtol 1e-10), and its
gradient is checked against finite differences.  Shape ops are linear, so
second derivatives are checked where a product passes through them.  Then:
views share memory and version counters as PyTorch's do, copies do not, and
bad input raises PyTorch's exception with PyTorch's message.
"""

from __future__ import annotations

import numpy as np
import pytest
from ops_oracle import (
    Case,
    R,
    check_against_torch,
    check_error_changes_nothing,
    check_finite_differences,
    check_same_error,
    check_second_derivatives,
)

import symgrad


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


CASES = {
    # ---- reshape: ViewBackward0 on contiguous data
    "reshape": Case(lambda lib, a: a.reshape(6, 4), [R(2, 3, 4)]),
    "reshape_infer": Case(lambda lib, a: a.reshape(-1, 4), [R(2, 3, 4)]),
    "reshape_tuple": Case(lambda lib, a: a.reshape((4, 6)), [R(2, 3, 4)]),
    "reshape_list": Case(lambda lib, a: a.reshape([3, -1]), [R(2, 3, 4)]),
    "reshape_fn": Case(lambda lib, a: lib.reshape(a, (3, 8)), [R(2, 3, 4)]),
    "reshape_same_shape": Case(lambda lib, a: a.reshape(2, 3, 4), [R(2, 3, 4)]),
    "reshape_to_0d": Case(lambda lib, a: a.reshape(()), [R(1)]),
    "reshape_0d_to_1d": Case(lambda lib, a: a.reshape(-1), [R()]),
    "reshape_empty": Case(lambda lib, a: a.reshape(3, 0), [R(0, 3)]),
    "reshape_as": Case(lambda lib, a, b: a.reshape_as(b), [R(2, 3), R(3, 2, grad=False)]),
    # ---- reshape of non-contiguous data: ReshapeAliasBackward0, or CloneBackward0 + UnsafeViewBackward0
    "reshape_permuted_viewable": Case(lambda lib, a: a.permute(2, 0, 1).reshape(4, 6), [R(2, 3, 4)]),
    "reshape_permuted_copied": Case(lambda lib, a: a.permute(2, 0, 1).reshape(-1), [R(2, 3, 4)]),
    "reshape_swapped_copied": Case(lambda lib, a: a.permute(1, 0, 2).reshape(3, 8), [R(2, 3, 4)]),
    "reshape_transposed_matrix": Case(lambda lib, a: a.t().reshape(-1), [R(3, 4)]),
    "reshape_expanded": Case(lambda lib, a: a.expand(2, 3, 4).reshape(6, 4), [R(3, 1)]),
    # reductions and softmaxes return contiguous results, as PyTorch's do
    "reshape_after_softmax": Case(lambda lib, a: a.t().softmax(0).reshape(-1), [R(3, 4)]),
    "reshape_after_reduction": Case(lambda lib, a: a.permute(2, 1, 0).std(1, keepdim=True).reshape(-1), [R(2, 3, 4)]),
    "reshape_then_math": Case(lambda lib, a: (a.t().reshape(2, 6) * a.reshape(2, 6)).sum(0), [R(3, 4)],
                              second=True),
    # ---- view
    "view": Case(lambda lib, a: a.view(4, 6), [R(2, 3, 4)]),
    "view_infer": Case(lambda lib, a: a.view(-1), [R(2, 3, 4)]),
    "view_tuple": Case(lambda lib, a: a.view((2, 12)), [R(2, 3, 4)]),
    "view_non_contiguous_viewable": Case(lambda lib, a: a.permute(1, 0, 2).view(3, 2, 2, 2), [R(2, 3, 4)]),
    "view_as": Case(lambda lib, a, b: a.view_as(b), [R(2, 3), R(6, grad=False)]),
    "view_0d": Case(lambda lib, a: a.view(1, 1), [R()]),
    # ---- flatten
    "flatten": Case(lambda lib, a: a.flatten(), [R(2, 3, 4)]),
    "flatten_start": Case(lambda lib, a: a.flatten(1), [R(2, 3, 4)]),
    "flatten_range": Case(lambda lib, a: a.flatten(0, 1), [R(2, 3, 4)]),
    "flatten_negative": Case(lambda lib, a: a.flatten(-2, -1), [R(2, 3, 4)]),
    "flatten_fn": Case(lambda lib, a: lib.flatten(a, start_dim=1, end_dim=2), [R(2, 3, 4)]),
    "flatten_nothing_to_merge": Case(lambda lib, a: (a * 2).flatten(1, 1), [R(2, 3, 4)]),
    "flatten_0d": Case(lambda lib, a: a.flatten(), [R()]),
    "flatten_transposed": Case(lambda lib, a: a.t().flatten(), [R(3, 4)]),
    # ---- transposes
    "transpose": Case(lambda lib, a: a.transpose(0, 2), [R(2, 3, 4)]),
    "transpose_negative": Case(lambda lib, a: a.transpose(-1, 0), [R(2, 3, 4)]),
    "transpose_same_dim": Case(lambda lib, a: a.transpose(1, 1), [R(2, 3)]),
    "transpose_fn": Case(lambda lib, a: lib.transpose(a, 1, 0), [R(2, 3)]),
    "transpose_0d": Case(lambda lib, a: a.transpose(0, -1), [R()]),
    "swapaxes": Case(lambda lib, a: lib.swapaxes(a, 0, 1), [R(2, 3, 4)]),
    "swapdims": Case(lambda lib, a: a.swapdims(2, 1), [R(2, 3, 4)]),
    "t_matrix": Case(lambda lib, a: a.t(), [R(2, 3)]),
    "t_vector": Case(lambda lib, a: a.t(), [R(3)]),
    "t_0d": Case(lambda lib, a: a.t(), [R()]),
    "t_fn": Case(lambda lib, a: lib.t(a), [R(3, 2)]),
    "mT_matrix": Case(lambda lib, a: a.mT, [R(2, 3)]),
    "mT_batch": Case(lambda lib, a: a.mT, [R(2, 3, 4)]),
    "mH": Case(lambda lib, a: a.mH, [R(2, 3, 4)]),
    "H": Case(lambda lib, a: a.H, [R(2, 3)]),
    "transpose_then_matmul": Case(lambda lib, a, b: a.t() @ b.mT, [R(3, 2), R(4, 3)], second=True),
    # ---- expand, broadcast_to, expand_as
    "expand": Case(lambda lib, a: a.expand(3, 4), [R(4)]),
    "expand_keep": Case(lambda lib, a: a.expand(2, -1, 4), [R(3, 1)]),
    "expand_same_shape": Case(lambda lib, a: a.expand(3, 4), [R(3, 4)]),
    "expand_list": Case(lambda lib, a: a.expand([2, 1, 3]), [R(1, 3)]),
    "expand_0d": Case(lambda lib, a: a.expand(2, 3), [R()]),
    "expand_to_empty": Case(lambda lib, a: a.expand(0, 3), [R(3)]),
    "broadcast_to": Case(lambda lib, a: lib.broadcast_to(a, (2, 3, 4)), [R(3, 1)]),
    "broadcast_to_method": Case(lambda lib, a: a.broadcast_to((5, 2)), [R(2)]),
    "expand_as": Case(lambda lib, a, b: a.expand_as(b), [R(1, 3), R(4, 3, grad=False)]),
    "expand_then_math": Case(lambda lib, a, b: (a.expand(3, 4) * b).sum(1), [R(4), R(3, 4)], second=True),
    "view_then_square": Case(lambda lib, a: (a.view(-1) * a.flatten()).reshape(3, 2).t(), [R(2, 3)], second=True),
    # ---- clone
    "clone": Case(lambda lib, a: a.clone(), [R(2, 3)]),
    "clone_fn": Case(lambda lib, a: lib.clone(a), [R(3)]),
    "clone_transposed": Case(lambda lib, a: a.t().clone() * 2, [R(2, 3)]),
    # ---- N-D @ 2-D matmul folds through a view (built from these records)
    "matmul_3d_2d": Case(lambda lib, a, b: a @ b, [R(2, 3, 4), R(4, 5)], second=True),
    "matmul_3d_2d_transposed": Case(lambda lib, a, b: lib.matmul(a.transpose(0, 1), b), [R(3, 2, 4), R(4, 2)]),
    # ---- 0-d and empty inputs (squeeze, unsqueeze and permute are otherwise in tests/test_autograd.py)
    "squeeze_0d": Case(lambda lib, a: a.squeeze(), [R()]),
    "squeeze_0d_dim": Case(lambda lib, a: a.squeeze(0), [R()]),
    "squeeze_empty": Case(lambda lib, a: a.squeeze(), [R(0, 1, 3)], fd=False),
    "squeeze_empty_dim": Case(lambda lib, a: a.squeeze((1,)), [R(0, 1, 3)], fd=False),
    "unsqueeze_empty": Case(lambda lib, a: a.unsqueeze(-1), [R(2, 0)], fd=False),
    "permute_0d": Case(lambda lib, a: a.permute(()), [R()]),
    "permute_empty": Case(lambda lib, a: a.permute(1, 0, 2), [R(2, 0, 3)], fd=False),
    "transpose_empty": Case(lambda lib, a: a.transpose(0, 1), [R(0, 3)], fd=False),
    "t_empty": Case(lambda lib, a: a.t(), [R(3, 0)], fd=False),
    "mT_empty": Case(lambda lib, a: a.mT, [R(0, 2, 3)], fd=False),
    "view_empty": Case(lambda lib, a: a.view(-1, 2), [R(0, 2, 2)], fd=False),
    "flatten_empty": Case(lambda lib, a: a.flatten(1), [R(2, 0, 3)], fd=False),
    "clone_0d": Case(lambda lib, a: a.clone(), [R()]),
    "clone_empty": Case(lambda lib, a: lib.clone(a), [R(0, 4)], fd=False),
    "reshape_permuted_empty": Case(lambda lib, a: a.permute(1, 0).reshape(-1), [R(0, 3)], fd=False),
}


@pytest.mark.parametrize("name", CASES)
def test_shape_op_matches_torch(name, torch):
    check_against_torch(torch, name, CASES[name])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.fd])
def test_shape_op_gradient_matches_finite_differences(name):
    check_finite_differences(name, CASES[name])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.second])
def test_shape_op_second_derivatives_match_torch(name, torch):
    """Shape ops are linear; these cases multiply through them, so the second derivatives cross the views."""
    check_second_derivatives(torch, name, CASES[name])


# ----------------------------------------------------------- views and copies


def version(t) -> int:
    """A tensor's version counter (torch's ``_version``; symgrad keeps the counter object)."""
    return t._version if hasattr(t, "_version") else t._version_counter.value


@pytest.mark.parametrize("make", [
    lambda t: t.view(6), lambda t: t.reshape(3, 2), lambda t: t.transpose(0, 1), lambda t: t.t(),
    lambda t: t.mT, lambda t: t.flatten(), lambda t: t.t().reshape(3, 1, 2),
], ids=["view", "reshape", "transpose", "t", "mT", "flatten", "reshape_alias"])
def test_views_share_data_and_version_counter(make, torch):
    """An in-place change through the view is seen by the base, and both versions move, as in PyTorch."""
    results = []
    for lib in (torch, symgrad):
        base = lib.tensor(np.arange(6.0).reshape(2, 3))
        view = make(base)
        view.mul_(10)
        results.append((base.numpy().copy(), version(base), version(view)))
    (base_t, version_t, view_version_t), (base_s, version_s, view_version_s) = results
    np.testing.assert_array_equal(base_s, base_t)
    assert base_t[0, 1] == 10 and version_s == version_t == view_version_s == view_version_t == 1


def test_reshape_that_copies_does_not_share_data(torch):
    results = []
    for lib in (torch, symgrad):
        base = lib.tensor(np.arange(6.0).reshape(2, 3))
        copy = base.t().reshape(-1)
        copy.mul_(10)
        results.append((base.numpy().copy(), copy.numpy().copy(), version(base)))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    assert results[1][2] == results[0][2] == 0


def test_reshape_to_the_same_shape_is_a_new_view(torch):
    for lib in (torch, symgrad):
        a = lib.ones(2, 3, dtype=lib.float64, requires_grad=True)
        out = a.reshape(2, 3)
        assert out is not a and out.grad_fn.name() == "ViewBackward0"


def test_flatten_without_merging_returns_the_tensor_itself(torch):
    for lib in (torch, symgrad):
        a = lib.ones(2, 3, dtype=lib.float64, requires_grad=True)
        assert a.flatten(1, 1) is a and a.flatten(-1) is a


def test_backward_through_a_view_of_a_modified_base_is_refused():
    """PyTorch regenerates such a view's history; symgrad refuses instead of giving a wrong gradient."""
    w = symgrad.ones(2, 3, dtype=symgrad.float64, requires_grad=True)
    base = w * 1
    view = base.view(6)
    base.mul_(2)
    with pytest.raises(NotImplementedError, match="view whose base was modified in place"):
        view.sum().backward()


# -------------------------------------------------------------- bad input

ERRORS = {
    "reshape_wrong_size": lambda lib: lib.zeros(2, 3, 4).reshape(5, 5),
    "reshape_two_inferred": lambda lib: lib.zeros(2, 3, 4).reshape(-1, -1),
    "reshape_negative": lambda lib: lib.zeros(2, 3, 4).reshape(-2, 12),
    "reshape_ambiguous_empty": lambda lib: lib.zeros(0, 3).reshape(0, -1),
    "view_wrong_size": lambda lib: lib.zeros(2, 3, 4).view(7),
    "view_not_viewable": lambda lib: lib.zeros(2, 3, 4).permute(2, 0, 1).view(-1),
    "view_transposed": lambda lib: lib.zeros(3, 4).t().view(12),
    "flatten_reversed": lambda lib: lib.zeros(2, 3, 4).flatten(2, 1),
    "flatten_dim_out_of_range": lambda lib: lib.zeros(2, 3, 4).flatten(0, 3),
    "transpose_dim_out_of_range": lambda lib: lib.zeros(2, 3, 4).transpose(0, 3),
    "transpose_0d_out_of_range": lambda lib: lib.zeros(()).transpose(0, 1),
    "t_3d": lambda lib: lib.zeros(2, 3, 4).t(),
    "mT_vector": lambda lib: lib.zeros(4).mT,
    "mH_vector": lambda lib: lib.zeros(4).mH,
    "H_3d": lambda lib: lib.zeros(2, 3, 4).H,
    "expand_mismatch": lambda lib: lib.zeros(4).expand(3, 5),
    "expand_too_few_sizes": lambda lib: lib.zeros(3, 4, dtype=lib.float64).expand(4),
    "expand_leading_minus_one": lambda lib: lib.zeros(4).expand(-1, 4),
    "expand_negative": lambda lib: lib.zeros(1, 4).expand(3, -2),
    "expand_as_smaller": lambda lib: lib.zeros(3, 4).expand_as(lib.zeros(4)),
    "broadcast_to_mismatch": lambda lib: lib.broadcast_to(lib.zeros(3, 4), (4, 4)),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_input_raises_like_torch(name, torch):
    check_same_error(torch, ERRORS[name])


# misuse of a tensor that requires grad: torch's exception type, and the tensor and its graph untouched
BAD_CALLS = {
    "reshape_wrong_size": lambda lib, a: a.reshape(5),
    "view_not_viewable": lambda lib, a: a.t().view(-1),
    "permute_wrong_dims": lambda lib, a: a.permute(0, 0),
    "transpose_dim_out_of_range": lambda lib, a: a.transpose(0, 2),
    "expand_mismatch": lambda lib, a: a.expand(4, 4),
    "squeeze_dim_out_of_range": lambda lib, a: a.squeeze(3),
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_bad_input_changes_nothing(name, torch):
    check_error_changes_nothing(torch, BAD_CALLS[name], np.arange(6.0).reshape(2, 3))
