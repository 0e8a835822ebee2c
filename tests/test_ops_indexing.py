"""Indexing and joining ops against the PyTorch oracle: ``x[...]``, gather, index_select, cat, stack,
split, chunk, flip, repeat, narrow, cumsum.

Each case runs in float64 on the same inputs in torch and symgrad (values,
dtype, the whole ``grad_fn`` graph, gradients at rtol 1e-10) and is checked
against finite differences; cases that multiply through the op check second
derivatives.  Then: index values are runtime inputs (a loop with new indices
every step compiles once), basic indexing gives views, bad input raises
PyTorch's exception with PyTorch's message and changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from ops_oracle import (
    Case,
    R,
    check_against_torch,
    check_finite_differences,
    check_same_error,
    check_second_derivatives,
)

import symgrad


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def idx(lib, values):
    return lib.tensor(values, dtype=lib.int64)


CASES = {
    # ---- basic indexing: views (SelectBackward0, SliceBackward0, UnsqueezeBackward0, AliasBackward0)
    "int": Case(lambda lib, a: a[1], [R(4, 5)]),
    "int_negative": Case(lambda lib, a: a[-1], [R(4, 5)]),
    "int_int": Case(lambda lib, a: a[1, 2], [R(4, 5)]),
    "int_vector_to_0d": Case(lambda lib, a: a[3], [R(5)]),
    "int_0d_tensor": Case(lambda lib, a: a[idx(lib, 2)], [R(4, 5)]),
    "slice": Case(lambda lib, a: a[1:3], [R(4, 5)]),
    "slice_whole_alone": Case(lambda lib, a: a[:], [R(4, 5)]),
    "slice_step": Case(lambda lib, a: a[::2], [R(5, 3)]),
    "slice_negative_bounds": Case(lambda lib, a: a[-3:-1], [R(4, 5)]),
    "slice_past_the_end": Case(lambda lib, a: a[1:10], [R(4, 5)]),
    "slice_empty": Case(lambda lib, a: a[3:1], [R(4, 5)]),
    "slice_second_dim": Case(lambda lib, a: a[:, 1:4:2], [R(4, 5)]),
    "slice_whole_in_tuple": Case(lambda lib, a: a[1:3, :], [R(4, 5)]),
    "int_then_slice": Case(lambda lib, a: a[1, 1:3], [R(4, 5)]),
    "ellipsis": Case(lambda lib, a: a[...], [R(4, 5)]),
    "ellipsis_int": Case(lambda lib, a: a[..., 1], [R(2, 3, 4)]),
    "whole_slices_only": Case(lambda lib, a: a[:, :], [R(4, 5)]),
    "none": Case(lambda lib, a: a[None], [R(4, 5)]),
    "none_ellipsis_none": Case(lambda lib, a: a[None, ..., None], [R(4, 5)]),
    "none_in_the_middle": Case(lambda lib, a: a[:, None, 1], [R(4, 5)]),
    "0d_ellipsis": Case(lambda lib, a: a[...], [R()]),
    "0d_none": Case(lambda lib, a: a[None], [R()]),
    "slice_of_empty": Case(lambda lib, a: a[:, 1:], [R(0, 3)]),
    "int_of_empty_rows": Case(lambda lib, a: a[1], [R(3, 0)]),
    "int_second_dim_of_empty": Case(lambda lib, a: a[:, 2], [R(0, 3)]),
    "int_int_around_empty_dim": Case(lambda lib, a: a[0, :, 1], [R(2, 0, 3)]),
    # PyTorch skips a slice written from 0 to (past) the end, not one that merely selects everything
    "slice_from_zero_past_the_end": Case(lambda lib, a: a[:, 0:10], [R(4, 5)]),
    "slice_negative_start_selecting_all": Case(lambda lib, a: a[-4:, :], [R(4, 5)]),
    "slice_to_the_end_of_second_dim": Case(lambda lib, a: a[:, 0:4], [R(4, 5)]),
    # ---- advanced indexing: IndexBackward0, gradients scatter-add (duplicates accumulate)
    "list": Case(lambda lib, a: a[[0, 2]], [R(4, 5)]),
    "list_duplicates": Case(lambda lib, a: a[[0, 2, 0, 0]], [R(4, 5)]),
    "list_negative": Case(lambda lib, a: a[[-1, 0, -1]], [R(4, 5)]),
    "tensor_index": Case(lambda lib, a: a[idx(lib, [3, 1, 3])], [R(4, 5)]),
    "tensor_index_2d": Case(lambda lib, a: a[idx(lib, [[0, 1], [1, 1]])], [R(4, 5)]),
    "numpy_index": Case(lambda lib, a: a[np.array([1, 2, 1])], [R(4, 5)]),
    "empty_list": Case(lambda lib, a: a[[]], [R(4, 5)]),
    "two_arrays": Case(lambda lib, a: a[[1, 2, 1], [0, -1, 0]], [R(4, 5)]),
    "arrays_broadcast": Case(lambda lib, a: a[idx(lib, [[0], [2]]), idx(lib, [1, 3, 1])], [R(4, 5)]),
    "int_and_array": Case(lambda lib, a: a[1, [0, 2, 2]], [R(4, 5)]),
    "slice_and_array": Case(lambda lib, a: a[1:3, [0, 2]], [R(4, 5)]),
    "array_second_dim": Case(lambda lib, a: a[:, [3, 0, 3]], [R(3, 4, 5)]),
    "arrays_not_adjacent": Case(lambda lib, a: a[[0, 1], :, [1, 3]], [R(2, 3, 4)]),
    "arrays_adjacent_later": Case(lambda lib, a: a[:, [0, 1], [1, 2]], [R(2, 3, 4)]),
    "int_slice_array": Case(lambda lib, a: a[0, :, [1, 2]], [R(2, 3, 4)]),
    "ellipsis_array": Case(lambda lib, a: a[..., [1]], [R(2, 3, 4)]),
    "array_none": Case(lambda lib, a: a[[1, 2], None], [R(4, 5)]),
    "array_none_array": Case(lambda lib, a: a[[0, 1], None, [1, 2]], [R(4, 5)]),
    "mask": Case(lambda lib, a: a[a > 0], [R(4, 5)]),
    "mask_numpy": Case(lambda lib, a: a[np.array([True, False, True, True])], [R(4, 5)]),
    "mask_list": Case(lambda lib, a: a[[True, False, True, True]], [R(4, 5)]),
    "mask_2d_of_3d": Case(lambda lib, a: a[a[:, :, 0] > 0], [R(3, 4, 2)]),
    "mask_after_slice": Case(lambda lib, a: a[:, a[0] > 0], [R(3, 4, 2)]),
    "mask_none_true": Case(lambda lib, a: a[a > 100], [R(3, 2)]),
    "bool_true": Case(lambda lib, a: a[True], [R(4, 5)]),
    "bool_false": Case(lambda lib, a: a[False], [R(4, 5)]),
    "0d_mask": Case(lambda lib, a: a[lib.tensor(True)], [R()]),
    "index_of_empty": Case(lambda lib, a: a[:, [0, 0]], [R(0, 3)]),
    "index_of_empty_not_checked": Case(lambda lib, a: a[[5, -7], :], [R(2, 0)]),
    "index_then_math": Case(lambda lib, a: a[[0, 2, 0]] ** 3, [R(4, 5)], second=True),
    "mask_then_math": Case(lambda lib, a: (a[a > 0] * a[a > 0]).exp(), [R(3, 4)], second=True),
    "slice_then_math": Case(lambda lib, a: a[1:, ::2].sin() * a[0, ::2], [R(3, 5)], second=True),
    # ---- gather / index_select
    "gather": Case(lambda lib, a: a.gather(1, idx(lib, [[0, 0], [1, 0], [4, 2], [3, 3]])), [R(4, 5)]),
    "gather_dim0": Case(lambda lib, a: lib.gather(a, 0, idx(lib, [[0, 1, 2, 3, 0], [0, 0, 0, 0, 0]])), [R(4, 5)]),
    "gather_smaller_index": Case(lambda lib, a: a.gather(-1, idx(lib, [[2, 2, 2, 1, 1, 1, 0]])), [R(3, 4)]),
    "gather_3d": Case(lambda lib, a: a.gather(1, idx(lib, [[[0, 1], [2, 2]], [[1, 1], [0, 0]]])), [R(2, 3, 2)]),
    "gather_0d": Case(lambda lib, a: a.gather(0, idx(lib, 0)), [R()]),
    "gather_empty_index": Case(lambda lib, a: a.gather(1, lib.zeros(4, 0, dtype=lib.int64)), [R(4, 5)]),
    "gather_empty_index_not_checked": Case(lambda lib, a: a.gather(0, lib.zeros(2, 1, 0, dtype=lib.int64)),
                                           [R(1, 3, 1)]),
    "gather_then_math": Case(lambda lib, a: a.gather(1, idx(lib, [[1, 1], [0, 2]])).exp() * a[:, :2],
                             [R(2, 3)], second=True),
    "index_select": Case(lambda lib, a: a.index_select(0, idx(lib, [2, 0, 2])), [R(4, 5)]),
    "index_select_dim1": Case(lambda lib, a: lib.index_select(a, -1, idx(lib, [1, 1, 0])), [R(2, 3, 4)]),
    "index_select_0d_index": Case(lambda lib, a: a.index_select(1, idx(lib, 3)), [R(4, 5)]),
    "index_select_0d_input": Case(lambda lib, a: a.index_select(0, idx(lib, [0])), [R()]),
    "index_select_empty": Case(lambda lib, a: a.index_select(0, lib.zeros(0, dtype=lib.int64)), [R(4, 5)]),
    # ---- cat / stack
    "cat": Case(lambda lib, a, b: lib.cat([a, b]), [R(2, 3), R(4, 3)]),
    "cat_dim1": Case(lambda lib, a, b: lib.cat((a, b, a), dim=1), [R(2, 3), R(2, 1)]),
    "cat_negative_dim": Case(lambda lib, a, b: lib.cat([a, b], -1), [R(2, 2, 3), R(2, 2, 1)]),
    "cat_one": Case(lambda lib, a: lib.cat([a]), [R(2, 3)]),
    "cat_same_tensor": Case(lambda lib, a: lib.cat([a, a * 2, a]), [R(3)]),
    "concat": Case(lambda lib, a, b: lib.concat([a, b], dim=0), [R(1, 2), R(3, 2)]),
    "concatenate": Case(lambda lib, a, b: lib.concatenate([a, b], 1), [R(2, 1), R(2, 2)]),
    "cat_empty_part": Case(lambda lib, a, b: lib.cat([a, b]), [R(0, 3), R(2, 3)]),
    "cat_legacy_empty": Case(lambda lib, a, b: lib.cat([a, b], 1), [R(2, 3), R(0)]),
    "cat_only_legacy_empty": Case(lambda lib, a: lib.cat([a, a], -2), [R(0)]),
    "cat_constant": Case(lambda lib, a: lib.cat([a, lib.ones(2, 3, dtype=lib.float64)]), [R(1, 3)]),
    "cat_promotes_float32": Case(lambda lib, a: lib.cat([lib.ones(2, 3), a]), [R(1, 3)]),
    "cat_promotes_int": Case(lambda lib, a: lib.cat([a, lib.tensor([[1, 2, 3]])]), [R(1, 3)]),
    "cat_then_math": Case(lambda lib, a, b: lib.cat([a, b]).tanh() * lib.cat([b, a]), [R(2), R(2)], second=True),
    "stack": Case(lambda lib, a, b: lib.stack([a, b]), [R(2, 3), R(2, 3)]),
    "stack_last": Case(lambda lib, a, b: lib.stack((a, b), dim=-1), [R(2, 3), R(2, 3)]),
    "stack_0d": Case(lambda lib, a, b: lib.stack([a, b, a]), [R(), R()]),
    "stack_promotes": Case(lambda lib, a: lib.stack([a, lib.zeros(3)], 1), [R(3)]),
    "stack_empty": Case(lambda lib, a, b: lib.stack([a, b]), [R(0, 3), R(0, 3)]),
    "stack_empty_dim1": Case(lambda lib, a, b: lib.stack([a, b], 1), [R(2, 0), R(2, 0)]),
    "stack_empty_vectors_last": Case(lambda lib, a: lib.stack([a, a], -1), [R(0)]),
    # ---- split / chunk (one output checked per case; each piece is its own graph)
    "split": Case(lambda lib, a: a.split(2)[1] * 2 + a.split(2)[2].sum(), [R(5, 3)]),
    "split_fn_dim": Case(lambda lib, a: lib.split(a, 2, dim=1)[0], [R(3, 5)]),
    "split_sizes": Case(lambda lib, a: a.split([1, 3], 0)[1], [R(4, 2)]),
    "split_sizes_fn": Case(lambda lib, a: lib.split(a, [2, 0, 1], -1)[2], [R(2, 3)]),
    "chunk": Case(lambda lib, a: a.chunk(3, 1)[2], [R(4, 5)]),
    "chunk_fn": Case(lambda lib, a: lib.chunk(a, 2)[0] * lib.chunk(a, 2)[1], [R(4)]),
    "split_empty": Case(lambda lib, a: a.split(2)[0], [R(0, 3)]),
    "split_empty_other_dim": Case(lambda lib, a: a.split(2)[1], [R(3, 0)]),
    "split_along_empty_dim1": Case(lambda lib, a: a.split(2, 1)[0], [R(3, 0)]),
    "split_sizes_empty": Case(lambda lib, a: a.split([0, 0], 0)[1], [R(0, 3)]),
    "chunk_empty": Case(lambda lib, a: a.chunk(2)[1], [R(0, 3)]),
    "chunk_empty_other_dim": Case(lambda lib, a: a.chunk(2)[1], [R(3, 0)]),
    "chunk_along_empty_dim1": Case(lambda lib, a: a.chunk(3, 1)[0], [R(2, 0)]),
    # ---- flip / repeat / narrow / cumsum
    "flip": Case(lambda lib, a: a.flip(0), [R(4, 5)]),
    "flip_both": Case(lambda lib, a: lib.flip(a, (0, -1)), [R(4, 5)]),
    "flip_list": Case(lambda lib, a: a.flip([1]), [R(2, 3, 4)]),
    "flip_nothing": Case(lambda lib, a: a.flip(()), [R(3)]),
    "flip_0d": Case(lambda lib, a: a.flip(0), [R()]),
    "flip_empty": Case(lambda lib, a: a.flip(0), [R(0, 3)]),
    "flip_empty_both": Case(lambda lib, a: a.flip(0, 1), [R(3, 0)]),
    "flip_then_math": Case(lambda lib, a: a.flip(0) * a, [R(4)], second=True),
    "repeat": Case(lambda lib, a: a.repeat(2, 3), [R(2, 3)]),
    "repeat_more_dims": Case(lambda lib, a: a.repeat(2, 1, 3), [R(2, 3)]),
    "repeat_list": Case(lambda lib, a: a.repeat([3]), [R(2)]),
    "repeat_0d": Case(lambda lib, a: a.repeat(4), [R()]),
    "repeat_zero": Case(lambda lib, a: a.repeat(0, 1), [R(2, 3)]),
    "repeat_empty": Case(lambda lib, a: a.repeat(2, 3), [R(0, 3)]),
    "repeat_empty_more_dims": Case(lambda lib, a: a.repeat(2, 1, 1), [R(3, 0)]),
    "repeat_zero_of_empty": Case(lambda lib, a: a.repeat(0), [R(0)]),
    "repeat_then_math": Case(lambda lib, a: a.repeat(3) ** 2, [R(2)], second=True),
    "narrow": Case(lambda lib, a: a.narrow(0, 1, 2), [R(4, 5)]),
    "narrow_fn_negative_start": Case(lambda lib, a: lib.narrow(a, -1, -3, 2), [R(4, 5)]),
    "narrow_empty": Case(lambda lib, a: a.narrow(1, 5, 0), [R(4, 5)]),
    "cumsum": Case(lambda lib, a: a.cumsum(0), [R(4, 5)]),
    "cumsum_dim1": Case(lambda lib, a: lib.cumsum(a, dim=-1), [R(2, 3, 4)]),
    "cumsum_0d": Case(lambda lib, a: a.cumsum(0), [R()]),
    "cumsum_empty": Case(lambda lib, a: a.cumsum(1), [R(0, 3)]),
    "cumsum_dtype": Case(lambda lib, a: a.cumsum(0, dtype=lib.float64) * lib.arange(2).cumsum(0, dtype=lib.float32),
                         [R(2)]),
    "cumsum_int": Case(lambda lib, a: a * lib.tensor([True, False, True]).cumsum(0), [R(3)]),
    "cumsum_then_math": Case(lambda lib, a: a.cumsum(1) ** 2, [R(2, 3)], second=True),
}


@pytest.mark.parametrize("name", CASES)
def test_indexing_op_matches_torch(name, torch):
    check_against_torch(torch, name, CASES[name])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.fd])
def test_indexing_op_gradient_matches_finite_differences(name):
    check_finite_differences(name, CASES[name])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.second])
def test_indexing_op_second_derivatives_match_torch(name, torch):
    check_second_derivatives(torch, name, CASES[name])


def test_split_pieces_are_views_with_torchs_names(torch):
    for lib in (torch, symgrad):
        a = lib.ones(5, 2, dtype=lib.float64, requires_grad=True)
        assert [p.grad_fn.name() for p in a.split(2)] == ["SplitBackward0"] * 3
        assert [tuple(p.shape) for p in a.split([1, 4])] == [(1, 2), (4, 2)]
        assert {p.grad_fn.name() for p in a.split([1, 4])} == {"SplitWithSizesBackward0"}
        assert [tuple(p.shape) for p in a.chunk(10)] == [(1, 2)] * 5
        assert [(tuple(p.shape), p.grad_fn.name()) for p in lib.ones(0, 3, requires_grad=True).chunk(2)] == \
            [((0, 3), "SplitWithSizesBackward0")] * 2


@pytest.mark.parametrize("pieces", [
    lambda t: t.split(2), lambda t: t.split([0, 0]), lambda t: t.chunk(5), lambda t: t.chunk(2, 1),
    lambda t: t.split(1, 1), lambda t: t.split([2, 0, 1]),
], ids=["split", "split_sizes", "chunk", "chunk_dim1", "split_empty_dim", "split_sizes_other_dim"])
@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_split_and_chunk_of_empty_tensors_give_torchs_pieces(pieces, shape, torch):
    results = []
    for lib in (torch, symgrad):
        x = lib.ones(*shape, dtype=lib.float64, requires_grad=True)
        try:
            got = pieces(x)
        except RuntimeError as error:  # split sizes that do not sum to the dim: both must refuse
            results.append(type(error))
            continue
        results.append([(tuple(p.shape), p.grad_fn.name()) for p in got])
    assert results[1] == results[0]


# ------------------------------------------------ index values are data, not structure


def test_a_loop_with_new_indices_every_step_compiles_once():
    """Class targets, sampled rows, masks of one count: values change, the compiled backward does not."""
    rng = np.random.default_rng(0)
    w = symgrad.tensor(rng.normal(size=(6, 3)), requires_grad=True)
    symgrad.autograd.BACKWARD_CACHE.clear()
    for _ in range(5):
        rows = symgrad.tensor(rng.integers(0, 6, size=4))
        targets = symgrad.tensor(rng.integers(0, 3, size=(4, 1)))
        keep = np.zeros(6, dtype=bool)
        keep[rng.choice(6, size=3, replace=False)] = True
        picked = w[rows].gather(1, targets).sum() + w[keep].index_select(1, targets[:2, 0]).pow(2).sum()
        loss = picked + w[[rows[0].item(), -1], 1:].sum()
        w.grad = None
        loss.backward()
        expected = np.zeros((6, 3))
        np.add.at(expected, (rows.numpy(), targets.numpy()[:, 0]), 1.0)
        kept = np.flatnonzero(keep)
        for column in targets.numpy()[:2, 0]:
            np.add.at(expected, (kept, column), 2 * w.detach().numpy()[kept, column])
        np.add.at(expected, ([rows[0].item(), -1], slice(1, None)), 1.0)  # the same row twice counts twice
        np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-12)
    info = symgrad.autograd.BACKWARD_CACHE.info()
    assert (info.misses, info.hits) == (1, 4)
    assert "rows" in symgrad.backward_source(loss)  # a runtime argument, never baked into the source


def test_generated_backward_reads_indices_as_arguments():
    x = symgrad.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    rows = symgrad.tensor([2, 0, 2])
    source = symgrad.backward_source((x[rows, 1:] ** 2).sum())
    assert "def backward(rows, index_result):" in source
    assert "scatter_add_along(t, r, 0, 3)" in source and "slice_scatter(sc, (3, 4), np.s_[:, 1:])" in source


def test_second_derivative_through_an_index_with_repeats(torch):
    """d/dx of the gradient of sum(x[idx]**3): 6·count·x at the indexed entries."""
    results = []
    for lib in (torch, symgrad):
        x = lib.tensor([0.5, -1.5, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        index = lib.tensor([0, 2, 0, 3, 0])
        (g,) = lib.autograd.grad((x[index] ** 3).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad((g * lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64)).sum(), x)
        results.append((g.detach().numpy().copy(), h.numpy().copy(), g.grad_fn is not None))
    (g_t, h_t, d_t), (g_s, h_s, d_s) = results
    np.testing.assert_allclose(g_s, g_t, rtol=1e-12)
    np.testing.assert_allclose(h_s, h_t, rtol=1e-12)
    assert d_s and d_t


def test_gradcheck_through_indexing_ops():
    x = symgrad.tensor(np.random.default_rng(1).normal(size=(3, 4)), requires_grad=True)
    y = symgrad.tensor(np.random.default_rng(2).normal(size=(2, 4)), requires_grad=True)
    index = symgrad.tensor([[0, 3], [1, 1], [2, 0]])

    def program(x, y):
        joined = symgrad.cat([x[[0, 0, 2]], y.flip(1)]).cumsum(1)
        return (joined.gather(1, index.repeat(2, 1)[:5]) * x.repeat(2, 1)[:5, :2]).sin()
    assert symgrad.gradcheck(program, (x, y))
    assert symgrad.gradgradcheck(program, (x, y))


@pytest.mark.parametrize("program", [
    lambda x, y: x.split(2),
    lambda x, y: tuple(p.sin() for p in symgrad.split(x * y, [1, 0, 4])),
    lambda x, y: x.chunk(2, 1),
    lambda x, y: tuple(p ** 2 for p in symgrad.chunk(x + y, 3)),
    lambda x, y: symgrad.stack([x, y, x], 1),
    lambda x, y: symgrad.stack([x[0], y[1].exp()]) * x[:2],
    lambda x, y: x.index_select(0, symgrad.tensor([4, 0, 4, 2])),
    lambda x, y: symgrad.index_select(x * y, -1, symgrad.tensor([2, 2, 0])).exp(),
], ids=["split", "split_sizes_with_empty_piece", "chunk", "chunk_fn", "stack", "stack_then_math", "index_select",
        "index_select_then_math"])
def test_gradcheck_of_split_chunk_stack_index_select(program):
    """Every output (all pieces of a split) against finite differences, first and second derivatives."""
    x = symgrad.tensor(np.random.default_rng(3).normal(size=(5, 3)), requires_grad=True)
    y = symgrad.tensor(np.random.default_rng(4).normal(size=(5, 3)), requires_grad=True)
    assert symgrad.gradcheck(program, (x, y))
    assert symgrad.gradgradcheck(program, (x, y))


def test_formulas_show_indexing_readably():
    x = symgrad.tensor(np.arange(20.0).reshape(4, 5), requires_grad=True)
    t = symgrad.tensor([0, 2, 2])
    y = (x[t] ** 3).sum() + symgrad.cat([x[1:3], x.flip(0)]).cumsum(0).sum()
    assert str(symgrad.formula(y)) == "y = sum(cumsum₀(cat(x[1:3], x[::-1]))) + sum(gather₀(x, t)³)"
    gradient = symgrad.grad_formula(y, x)
    assert "scatter_add₀(3·gather₀(x, t)², t)" in str(gradient)
    y.backward()
    np.testing.assert_allclose(gradient.evaluate(), x.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("program", [
    lambda x: (symgrad.cat([x[1:], x[:1]]).cumsum(0) * x.flip(0)).sum(),
    lambda x: (x[symgrad.tensor([0, 0, 2])] ** 2).sum() + x[[1, -1]].sum() + (x[x > 1.5] ** 3).sum(),
    lambda x: (x.repeat(2)[1:5:2] * symgrad.stack([x, x.sin()])[1, :2].sum()).sum(),
    lambda x: x.reshape(3, 1).gather(0, symgrad.tensor([[2], [2]])).exp().sum() * x.index_select(0, x[:1].long()),
], ids=["cat_cumsum_flip", "index_mask", "repeat_stack", "gather_index_select"])
def test_elementwise_formulas_match_sympy_diff_of_the_expanded_forward(program):
    """Written element by element (index values as numbers), the derived gradient is sympy.diff of the forward."""
    x = symgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (_, forward), = symgrad.formula(program(x), elementwise=True).equations
    (_, gradient), = symgrad.grad_formula(program(x), x, elementwise=True).equations
    elements = [sp.Symbol(f"x[{i}]", real=True) for i in range(3)]
    assert forward.free_symbols <= set(elements)
    expected = sp.Matrix([sp.diff(forward, e) for e in elements])
    assert sp.expand(sp.Matrix(gradient).reshape(3, 1) - expected) == sp.zeros(3, 1)


def test_compiled_functions_take_indices_as_arguments():
    """symgrad.compile: an index argument (negative entries included) is an input of the generated code."""
    def f(x, rows):
        return (x[rows] ** 2).sum() + x[rows, rows].sum()
    x = np.arange(20.0).reshape(4, 5)
    compiled = symgrad.compile(f, x, np.array([0, -1]), wrt=0)
    for rows in ([1, -2], [3, 3], [0, 2]):
        _, (gradient,) = compiled(x, np.array(rows))
        leaf = symgrad.tensor(x, requires_grad=True)
        f(leaf, symgrad.tensor(rows)).backward()
        np.testing.assert_allclose(gradient, leaf.grad.numpy(), rtol=1e-12)


def test_float32_gradients_stay_float32(torch):
    for lib in (torch, symgrad):
        x = lib.ones(4, 3, requires_grad=True)
        (x[[0, 0]].sum() + x.gather(1, lib.tensor([[0]] * 4)).sum() + lib.cat([x, x]).cumsum(0).sum()).backward()
        assert str(x.grad.dtype).endswith("float32")


def test_iteration_gives_rows_like_torch(torch):
    results = []
    for lib in (torch, symgrad):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
        rows = list(x)
        sum(r * (i + 1) for i, r in enumerate(rows)).sum().backward()
        results.append(([r.tolist() for r in rows], x.grad.numpy().copy()))
        with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
            list(lib.tensor(1.0))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[1][1], results[0][1])


# ----------------------------------------------------------------- views and copies


def version(t) -> int:
    return t._version if hasattr(t, "_version") else t._version_counter.value


@pytest.mark.parametrize("make, shares", [
    (lambda t: t[1], True), (lambda t: t[:, 1:], True), (lambda t: t[None], True), (lambda t: t[...], True),
    (lambda t: t.narrow(1, 0, 2), True), (lambda t: t.split(1)[1], True), (lambda t: t[[0, 1]], False),
    (lambda t: t[t > 2], False), (lambda t: t.flip(0), False), (lambda t: t.index_select(0, t[0, :2].long()), False),
], ids=["select", "slice", "none", "ellipsis", "narrow", "split", "index", "mask", "flip", "index_select"])
def test_basic_indexing_gives_views_advanced_gives_copies(make, shares, torch):
    results = []
    for lib in (torch, symgrad):
        base = lib.tensor(np.arange(6.0).reshape(2, 3))
        part = make(base)
        part.mul_(10)
        results.append((base.numpy().copy(), version(base)))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    assert results[1][1] == results[0][1] == (1 if shares else 0)


def test_setitem_outside_autograd_matches_torch(torch):
    results = []
    for lib in (torch, symgrad):
        x = lib.zeros(3, 4, dtype=lib.float64)
        x[0] = 1.0
        x[1, 1:3] = lib.tensor([2.0, 3.0], dtype=lib.float64)
        x[[2, 2], [0, 3]] = 4.0
        x[x == 3.0] = 5.0
        x[..., -1] += 0.5
        results.append((x.numpy().copy(), version(x)))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    assert results[1][1] == results[0][1]


@pytest.mark.parametrize("assign", [
    lambda lib, x: x.__setitem__([0, 1], lib.ones(3)),
    lambda lib, x: x.__setitem__([0, 1], lib.ones(2, 2)),
    lambda lib, x: x.__setitem__(slice(1, 3), lib.ones(3)),
    lambda lib, x: x.__setitem__(5, 1.0),
], ids=["index_value_too_long", "index_value_too_many_dims", "slice_value_too_long", "out_of_range"])
def test_setitem_bad_value_raises_torchs_error_and_changes_nothing(assign, torch):
    def attempt(lib):
        x = lib.zeros(4)
        try:
            assign(lib, x)
        finally:
            assert x.tolist() == [0.0] * 4
    check_same_error(torch, attempt)


def test_setitem_on_tensors_that_require_grad():
    leaf = symgrad.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        leaf[0] = 1.0
    inner = leaf * 2
    with pytest.raises(NotImplementedError, match="CopySlices"):
        inner[0] = 1.0
    np.testing.assert_array_equal(inner.detach().numpy(), [0.0, 0.0, 0.0])
    with symgrad.no_grad():
        leaf[0] = 1.0
    assert leaf.tolist() == [1.0, 0.0, 0.0]


# -------------------------------------------------------------------- bad input

ERRORS = {
    "int_out_of_range": lambda lib: lib.zeros(4, 5)[4],
    "negative_int_out_of_range": lambda lib: lib.zeros(4, 5)[-5],
    "int_out_of_range_dim1": lambda lib: lib.zeros(4, 5)[:, 5],
    "list_out_of_range": lambda lib: lib.zeros(4, 5)[[4]],
    "list_negative_out_of_range": lambda lib: lib.zeros(4, 5)[[-5]],
    "second_array_out_of_range": lambda lib: lib.zeros(4, 5)[[1, 2], [0, 7]],
    "float_index": lambda lib: lib.zeros(4, 5)[1.0],
    "float_tensor_index": lambda lib: lib.zeros(4, 5)[lib.tensor([1.0])],
    "too_many_indices": lambda lib: lib.zeros(4, 5)[1, 2, 3],
    "index_of_0d": lambda lib: lib.zeros(())[0],
    "zero_step": lambda lib: lib.zeros(4, 5)[::0],
    "negative_step": lambda lib: lib.zeros(4, 5)[::-1],
    "mask_wrong_shape": lambda lib: lib.zeros(4, 5)[lib.ones(3, dtype=lib.bool)],
    "mask_wrong_second_dim": lambda lib: lib.zeros(4, 5)[lib.ones(4, 4, dtype=lib.bool)],
    "arrays_do_not_broadcast": lambda lib: lib.zeros(4, 5)[[0, 1], [0, 1, 2]],
    "array_out_of_range_after_slice": lambda lib: lib.zeros(2, 3, 4)[:, [1], [9]],  # PyTorch counts index arrays
    "array_into_an_empty_dim": lambda lib: lib.zeros(0, 3)[[2]],
    "gather_dim": lambda lib: lib.zeros(4, 5).gather(2, lib.tensor([[0]])),
    "gather_out_of_range": lambda lib: lib.zeros(4, 5).gather(1, lib.tensor([[5]])),
    "gather_negative": lambda lib: lib.zeros(4, 5).gather(1, lib.tensor([[-1]])),
    "gather_float_index": lambda lib: lib.zeros(4, 5).gather(1, lib.tensor([[0.0]])),
    "gather_ndim": lambda lib: lib.zeros(4, 5).gather(1, lib.tensor([0])),
    "gather_index_too_large": lambda lib: lib.zeros(4, 5).gather(1, lib.zeros(5, 1, dtype=lib.int64)),
    "index_select_dim": lambda lib: lib.zeros(4, 5).index_select(2, lib.tensor([0])),
    "index_select_out_of_range": lambda lib: lib.zeros(4, 5).index_select(0, lib.tensor([4])),
    "index_select_dim1_out_of_range": lambda lib: lib.zeros(4, 5, 2).index_select(1, lib.tensor([9])),
    "index_select_empty_axis": lambda lib: lib.zeros(3, 0).index_select(1, lib.tensor([0])),
    "index_select_empty_vector": lambda lib: lib.zeros(0).index_select(0, lib.tensor([0])),
    "index_select_negative": lambda lib: lib.zeros(4, 5).index_select(0, lib.tensor([-1])),
    "index_select_2d_index": lambda lib: lib.zeros(4, 5).index_select(0, lib.tensor([[0]])),
    "index_select_float_index": lambda lib: lib.zeros(4, 5).index_select(0, lib.tensor([0.0])),
    "index_select_scalar_many": lambda lib: lib.zeros(()).index_select(0, lib.tensor([0, 0])),
    "cat_sizes": lambda lib: lib.cat([lib.zeros(4, 5), lib.zeros(2, 4)]),
    "cat_ndim": lambda lib: lib.cat([lib.zeros(4, 5), lib.zeros(5)]),
    "cat_empty_list": lambda lib: lib.cat([]),
    "cat_dim": lambda lib: lib.cat([lib.zeros(4, 5), lib.zeros(4, 5)], 2),
    "cat_0d": lambda lib: lib.cat([lib.tensor(1.0), lib.tensor(2.0)]),
    "cat_not_a_tensor": lambda lib: lib.cat([lib.zeros(2), 1]),
    "cat_a_tensor": lambda lib: lib.cat(lib.zeros(2, 2)),
    "stack_sizes": lambda lib: lib.stack([lib.zeros(4, 5), lib.zeros(2, 5)]),
    "stack_dim": lambda lib: lib.stack([lib.zeros(4, 5), lib.zeros(4, 5)], 3),
    "stack_empty": lambda lib: lib.stack([]),
    "split_zero": lambda lib: lib.zeros(4, 5).split(0),
    "split_negative": lambda lib: lib.zeros(4, 5).split(-1),
    "split_sizes_sum": lambda lib: lib.zeros(4, 5).split([1, 2]),
    "split_sizes_negative": lambda lib: lib.zeros(4, 5).split([5, -1]),
    "split_dim": lambda lib: lib.zeros(4, 5).split(1, 2),
    "split_0d": lambda lib: lib.tensor(1.0).split(1),
    "split_sizes_0d": lambda lib: lib.tensor(1.0).split([1]),
    "split_sizes_sum_negative_dim": lambda lib: lib.zeros(2, 2, 2).split([0, 2, 2], -3),
    "split_negative_before_dim": lambda lib: lib.zeros(2).split(-1, 1),
    "chunk_zero": lambda lib: lib.zeros(4, 5).chunk(0),
    "chunk_0d": lambda lib: lib.tensor(1.0).chunk(1),
    "flip_repeated_dim": lambda lib: lib.zeros(4, 5).flip(0, 0),
    "flip_dim": lambda lib: lib.zeros(4, 5).flip(2),
    "repeat_too_few": lambda lib: lib.zeros(4, 5).repeat(2),
    "repeat_negative": lambda lib: lib.zeros(4, 5).repeat(-1, 1),
    "narrow_too_long": lambda lib: lib.zeros(4, 5).narrow(0, 3, 2),
    "narrow_negative_length": lambda lib: lib.zeros(4, 5).narrow(0, 1, -1),
    "narrow_start": lambda lib: lib.zeros(4, 5).narrow(0, 5, 0),
    "narrow_dim": lambda lib: lib.zeros(4, 5).narrow(2, 0, 1),
    "narrow_0d": lambda lib: lib.tensor(1.0).narrow(0, 0, 1),
    "narrow_length_before_dim": lambda lib: lib.zeros(2).narrow(-2, 3, -1),
    "repeat_nothing": lambda lib: lib.tensor(1.0).repeat(),
    "cumsum_dim": lambda lib: lib.zeros(4, 5).cumsum(2),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_input_raises_torchs_error(name, torch):
    check_same_error(torch, ERRORS[name])


def test_bad_index_changes_nothing():
    x = symgrad.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x[[0, 1]] * 2).sum().backward()
    before = x.grad.numpy().copy()
    for bad in (lambda: x[[0, 2]], lambda: x.gather(1, symgrad.tensor([[2]])), lambda: x[::-1],
                lambda: symgrad.cat([x, x[0]]), lambda: x.index_select(0, symgrad.tensor([5]))):
        with pytest.raises((IndexError, RuntimeError, ValueError)):
            bad().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), before)
    np.testing.assert_array_equal(x.detach().numpy(), [[1.0, 2.0], [3.0, 4.0]])
