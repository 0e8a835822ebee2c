"""Linear algebra against the PyTorch oracle.

outer, addmm, nn.functional.linear (1-D, 2-D and 3-D input, with and
without bias, contiguous or not: PyTorch's chain of ``grad_fn`` nodes in each
case), matmul/``@`` in every 1-D/2-D/N-D combination (folded into mm/mv or
expanded for bmm as PyTorch decides, broadcast batches, size-1 and empty
dims), bmm, mm, mv, dot, linalg.norm/vector_norm, nn.functional.cosine_similarity
and nn.functional.normalize: values, the whole ``grad_fn`` graph, gradients at
rtol 1e-10, finite differences, second derivatives, the zero vectors where the
``eps`` clamps act, and PyTorch's errors.  einsum (recorded as one node) is
compared by its top ``grad_fn`` name; gradcheck/gradgradcheck, the generated
code and ``symgrad.formula`` of batched programs at the end.
"""

from __future__ import annotations

import numpy as np
import pytest
from ops_oracle import (
    Case,
    R,
    V,
    assert_close,
    check_against_torch,
    check_error_changes_nothing,
    check_finite_differences,
    check_same_error,
    check_second_derivatives,
    run,
    text,
)

import symgrad


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def F(lib):
    return lib.nn.functional


CASES = {
    # ---- outer (MulBackward0 over ViewBackward0)
    "outer": Case(lambda lib, a, b: lib.outer(a, b), [R(3), R(4)], second=True),
    "outer_method": Case(lambda lib, a, b: a.outer(b), [R(2), R(2)]),
    "outer_constant": Case(lambda lib, a, b: lib.outer(a, b), [R(3, grad=False), R(2)]),
    "outer_empty": Case(lambda lib, a, b: lib.outer(a, b), [R(0), R(3)]),
    # ---- addmm
    "addmm": Case(lambda lib, c, a, b: lib.addmm(c, a, b), [R(2, 3), R(2, 4), R(4, 3)], second=True),
    "addmm_broadcast_bias": Case(lambda lib, c, a, b: lib.addmm(c, a, b), [R(3), R(2, 4), R(4, 3)]),
    "addmm_scaled": Case(lambda lib, c, a, b: c.addmm(a, b, beta=0.5, alpha=-2.0), [R(2, 1), R(2, 4), R(4, 3)]),
    # ---- nn.functional.linear: AddmmBackward0 / MmBackward0 / views, as torch chooses
    "linear_2d_bias": Case(lambda lib, x, w, b: F(lib).linear(x, w, b), [R(4, 3), R(2, 3), R(2)], second=True),
    "linear_2d": Case(lambda lib, x, w: F(lib).linear(x, w), [R(4, 3), R(2, 3)], second=True),
    "linear_1d_bias": Case(lambda lib, x, w, b: F(lib).linear(x, w, b), [R(3), R(2, 3), R(2)], second=True),
    "linear_1d": Case(lambda lib, x, w: F(lib).linear(x, w), [R(3), R(2, 3)]),
    "linear_3d_bias": Case(lambda lib, x, w, b: F(lib).linear(x, w, b), [R(2, 3, 4), R(5, 4), R(5)], second=True),
    "linear_3d": Case(lambda lib, x, w: F(lib).linear(x, w), [R(2, 3, 4), R(5, 4)]),
    "linear_4d_bias": Case(lambda lib, x, w, b: F(lib).linear(x, w, b), [R(2, 1, 2, 3), R(2, 3), R(2)]),
    "linear_constant_input": Case(lambda lib, x, w, b: F(lib).linear(x, w, b), [R(4, 3, grad=False), R(2, 3), R(2)]),
    "linear_constant_weight": Case(lambda lib, x, w: F(lib).linear(x, w), [R(4, 3), R(2, 3, grad=False)]),
    "linear_scalar_bias": Case(lambda lib, x, w, b: F(lib).linear(x, w, b), [R(3), R(2, 3), R()]),
    "linear_3d_non_contiguous_bias": Case(lambda lib, x, w, b: F(lib).linear(x.transpose(0, 1), w, b),
                                          [R(3, 2, 4), R(5, 4), R(5)]),
    "linear_then_loss": Case(lambda lib, x, w, b: F(lib).linear(x, w, b).tanh().sum(),
                             [R(4, 3, grad=False), R(2, 3), R(2)], second=True),
    # ---- matmul: every case of PyTorch's decomposition (dot, mv, mm, folded mm/mv, expanded bmm)
    "matmul_4d_2d": Case(lambda lib, a, b: lib.matmul(a, b), [R(2, 1, 3, 4), R(4, 2)]),
    "matmul_1d_1d": Case(lambda lib, a, b: a @ b, [R(3), R(3)]),
    "matmul_2d_1d": Case(lambda lib, a, b: a @ b, [R(2, 3), R(3)]),
    "matmul_1d_2d": Case(lambda lib, a, b: a @ b, [R(3), R(3, 2)]),
    "matmul_2d_2d": Case(lambda lib, a, b: a @ b, [R(2, 3), R(3, 2)], second=True),
    "matmul_3d_1d": Case(lambda lib, a, b: a @ b, [R(2, 3, 4), R(4)], second=True),
    "matmul_1d_3d": Case(lambda lib, a, b: a @ b, [R(3), R(2, 3, 4)]),
    "matmul_3d_2d": Case(lambda lib, a, b: a @ b, [R(2, 3, 4), R(4, 5)]),
    "matmul_3d_2d_constant_weight": Case(lambda lib, a, b: a @ b, [R(2, 3, 4), R(4, 5, grad=False)]),
    "matmul_2d_3d": Case(lambda lib, a, b: a @ b, [R(3, 4), R(2, 4, 5)], second=True),
    "matmul_2d_3d_constant_left": Case(lambda lib, a, b: a @ b, [R(3, 4, grad=False), R(2, 4, 5)]),
    "matmul_3d_3d": Case(lambda lib, a, b: lib.matmul(a, b), [R(2, 3, 4), R(2, 4, 5)], second=True),
    "matmul_3d_3d_batch_of_one": Case(lambda lib, a, b: a @ b, [R(2, 3, 4), R(1, 4, 5)]),
    "matmul_3d_3d_batch_of_one_left": Case(lambda lib, a, b: a @ b, [R(1, 3, 4), R(2, 4, 5)]),
    "matmul_3d_3d_batch_of_one_constant": Case(lambda lib, a, b: a @ b, [R(2, 3, 4), R(1, 4, 5, grad=False)]),
    "matmul_4d_3d": Case(lambda lib, a, b: a @ b, [R(2, 3, 2, 4), R(3, 4, 2)], second=True),
    "matmul_4d_3d_broadcast": Case(lambda lib, a, b: a @ b, [R(2, 1, 2, 4), R(3, 4, 2)]),
    "matmul_3d_4d_broadcast": Case(lambda lib, a, b: a @ b, [R(3, 2, 4), R(2, 1, 4, 2)], second=True),
    "matmul_4d_4d_broadcast": Case(lambda lib, a, b: a @ b, [R(2, 1, 3, 4), R(1, 2, 4, 2)]),
    "matmul_4d_1d": Case(lambda lib, a, b: a @ b, [R(2, 2, 3, 4), R(4)]),
    "matmul_1d_4d": Case(lambda lib, a, b: a @ b, [R(4), R(2, 2, 4, 3)]),
    "matmul_4d_1d_constant_vector": Case(lambda lib, a, b: a @ b, [R(2, 2, 3, 4), R(4, grad=False)]),
    "matmul_size_one_dims": Case(lambda lib, a, b: a @ b, [R(1, 1, 4), R(3, 4, 1)]),
    "matmul_empty_batch": Case(lambda lib, a, b: a @ b, [R(0, 2, 3), R(3, 4)], fd=False),
    "matmul_empty_batch_3d": Case(lambda lib, a, b: a @ b, [R(0, 2, 3), R(0, 3, 4)], fd=False),
    "matmul_empty_inner": Case(lambda lib, a, b: a @ b, [R(2, 3, 0), R(2, 0, 4)], fd=False),
    "matmul_non_contiguous_fold": Case(lambda lib, a, b: a.transpose(0, 1) @ b, [R(3, 2, 4), R(4, 5, grad=False)]),
    "matmul_non_contiguous_batch": Case(lambda lib, a, b: a @ b.transpose(1, 2), [R(2, 3, 4), R(2, 5, 4)]),
    "matmul_chain": Case(lambda lib, a, b, c: (a @ b @ c).tanh(), [R(2, 3, 4), R(2, 4, 5), R(5, 2)], second=True),
    "rmatmul_batched": Case(lambda lib, a, b: b.__rmatmul__(a), [R(2, 2, 3), R(2, 3, 2)]),
    # ---- bmm, mm, mv, dot
    "bmm": Case(lambda lib, a, b: lib.bmm(a, b), [R(2, 3, 4), R(2, 4, 5)], second=True),
    "bmm_method": Case(lambda lib, a, b: a.bmm(b).sigmoid(), [R(3, 1, 2), R(3, 2, 2)], second=True),
    "bmm_constant": Case(lambda lib, a, b: lib.bmm(a, b), [R(2, 3, 4, grad=False), R(2, 4, 5)]),
    "bmm_empty": Case(lambda lib, a, b: lib.bmm(a, b), [R(0, 2, 3), R(0, 3, 1)], fd=False),
    "mm": Case(lambda lib, a, b: lib.mm(a, b), [R(3, 4), R(4, 2)], second=True),
    "mm_empty": Case(lambda lib, a, b: a.mm(b), [R(0, 3), R(3, 2)], fd=False),
    "mv": Case(lambda lib, a, b: lib.mv(a, b), [R(3, 4), R(4)], second=True),
    "dot": Case(lambda lib, a, b: lib.dot(a, b), [R(4), R(4)], second=True),
    "dot_empty": Case(lambda lib, a, b: a.dot(b), [R(0), R(0)], fd=False),
    # ---- linalg.norm / vector_norm (Frobenius by default)
    "linalg_norm_matrix": Case(lambda lib, a: lib.linalg.norm(a), [R(3, 4)], second=True),
    "linalg_norm_fro": Case(lambda lib, a: lib.linalg.norm(a, "fro"), [R(3, 4)]),
    "linalg_norm_ord_fro_dims": Case(lambda lib, a: lib.linalg.norm(a, ord="fro", dim=(0, 2)), [R(2, 3, 4)]),
    "linalg_norm_vector": Case(lambda lib, a: lib.linalg.norm(a), [R(5)], second=True),
    "linalg_norm_batched_matmul": Case(lambda lib, a, b: lib.linalg.norm(a @ b), [R(2, 3, 4), R(4, 2)], second=True),
    "linalg_vector_norm": Case(lambda lib, a: lib.linalg.vector_norm(a, 3, dim=1), [R(2, 3)], second=True),
    # ---- cosine_similarity
    "cosine_similarity": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b), [R(3, 4), R(3, 4)], second=True),
    "cosine_similarity_dim0": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b, dim=0), [R(3, 4), R(3, 4)]),
    "cosine_similarity_negative_dim": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b, -1),
                                           [R(2, 3, 4), R(2, 3, 4)], second=True),
    "cosine_similarity_1d": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b, dim=0), [R(4), R(4)]),
    "cosine_similarity_broadcast": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b), [R(3, 4), R(4)]),
    "cosine_similarity_broadcast_both": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b, dim=-1),
                                             [R(3, 1, 4), R(2, 4)]),
    "cosine_similarity_constant": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b),
                                       [R(2, 3), R(2, 3, grad=False)]),
    # a norm below eps: torch clamps the value but passes the gradient through the clamp, so
    # the gradient is not the derivative of the function (no finite differences)
    "cosine_similarity_eps": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b, eps=0.5),
                                  [V([[0.1, 0.2], [3.0, 1.0]]), V([[1.0, -1.0], [0.2, 0.1]])], fd=False),
    # the zero vector: its norm is clamped to eps, the gradient is the other unit vector / eps
    "cosine_similarity_zero_vector": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b),
                                          [V([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]), R(2, 3)], fd=False),
    # ---- normalize
    "normalize": Case(lambda lib, a: F(lib).normalize(a), [R(3, 4)], second=True),
    "normalize_dim0": Case(lambda lib, a: F(lib).normalize(a, dim=0), [R(3, 4)]),
    "normalize_p1": Case(lambda lib, a: F(lib).normalize(a, p=1, dim=-1), [R(2, 3, 4)]),
    "normalize_p3": Case(lambda lib, a: F(lib).normalize(a, 3.0, 1), [R(2, 3)], second=True),
    "normalize_1d": Case(lambda lib, a: F(lib).normalize(a, dim=0), [R(4)]),
    "normalize_eps": Case(lambda lib, a: F(lib).normalize(a, eps=0.5), [V([[0.1, 0.2], [3.0, 1.0]])], fd=False),
    "normalize_zero_row": Case(lambda lib, a: F(lib).normalize(a), [V([[0.0, 0.0], [3.0, 4.0]])], fd=False),
    # ---- empty and 0-d operands the cases above lack
    "mv_empty": Case(lambda lib, a, b: lib.mv(a, b), [R(0, 3), R(3)], fd=False),
    "mv_empty_inner": Case(lambda lib, a, b: a.mv(b), [R(2, 0), R(0)], fd=False),
    "addmm_empty": Case(lambda lib, c, a, b: lib.addmm(c, a, b), [R(3), R(0, 4), R(4, 3)], fd=False),
    "addmm_0d_bias": Case(lambda lib, c, a, b: lib.addmm(c, a, b), [R(), R(2, 4), R(4, 3)]),
    "linear_empty_batch": Case(lambda lib, x, w, b: F(lib).linear(x, w, b), [R(0, 3), R(2, 3), R(2)], fd=False),
    "normalize_empty": Case(lambda lib, a: F(lib).normalize(a), [R(0, 3)], fd=False),
    "cosine_similarity_empty": Case(lambda lib, a, b: F(lib).cosine_similarity(a, b), [R(0, 3), R(0, 3)], fd=False),
    "outer_0d_length_one": Case(lambda lib, a, b: lib.outer(a.reshape(1), b), [R(), R(3)]),
}


@pytest.mark.parametrize("name", CASES)
def test_linalg_op_matches_torch(name, torch):
    check_against_torch(torch, name, CASES[name])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.fd])
def test_linalg_op_gradient_matches_finite_differences(name):
    check_finite_differences(name, CASES[name])


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.second])
def test_linalg_op_second_derivatives_match_torch(name, torch):
    check_second_derivatives(torch, name, CASES[name])


def test_linear_compiles_once_per_structure():
    """A training loop over linear + softmax + logsumexp compiles one backward and reuses it."""
    symgrad.autograd.BACKWARD_CACHE.clear()
    w = symgrad.randn(3, 4, dtype=symgrad.float64, requires_grad=True)
    b = symgrad.zeros(3, dtype=symgrad.float64, requires_grad=True)
    for _ in range(3):
        x = symgrad.randn(5, 4, dtype=symgrad.float64)
        logits = symgrad.nn.functional.linear(x, w, b)
        loss = (logits.logsumexp(1) - logits.log_softmax(1).amax(1)).mean()
        loss.backward()
    info = symgrad.autograd.BACKWARD_CACHE.info()
    assert info.misses == 1 and info.hits == 2


# -------------------------------------------------------------- bad input

ERRORS = {
    "outer_matrix": lambda lib: lib.outer(lib.zeros(3, 4), lib.zeros(4)),
    "outer_matrix_second": lambda lib: lib.outer(lib.zeros(4), lib.zeros(3, 4)),
    "addmm_shapes": lambda lib: lib.addmm(lib.zeros(3), lib.zeros(2, 4), lib.zeros(3, 3)),
    "addmm_vector": lambda lib: lib.addmm(lib.zeros(3), lib.zeros(4), lib.zeros(4, 3)),
    "addmm_bias": lambda lib: lib.addmm(lib.zeros(4), lib.zeros(2, 4), lib.zeros(4, 3)),
    "linear_shapes": lambda lib: F(lib).linear(lib.zeros(3, 4), lib.zeros(5, 3)),
    "linear_shapes_bias": lambda lib: F(lib).linear(lib.zeros(3, 4), lib.zeros(5, 3), lib.zeros(5)),
    "linear_0d": lambda lib: F(lib).linear(lib.zeros(()), lib.zeros(5, 3)),
    "linear_bias_size": lambda lib: F(lib).linear(lib.zeros(3, 4), lib.zeros(5, 4), lib.zeros(3)),
    "matmul_3d_shapes": lambda lib: lib.matmul(lib.zeros(2, 3, 4), lib.zeros(3, 5)),
    "matmul_0d": lambda lib: lib.matmul(lib.zeros(()), lib.zeros(3)),
    "matmul_3d_3d_inner": lambda lib: lib.matmul(lib.zeros(2, 2, 3), lib.zeros(2, 4, 4)),
    "matmul_batch_mismatch": lambda lib: lib.matmul(lib.zeros(2, 2, 3), lib.zeros(3, 3, 4)),
    "matmul_4d_batch_mismatch": lambda lib: lib.zeros(2, 3, 2, 3) @ lib.zeros(4, 3, 4),
    "matmul_1d_3d_inner": lambda lib: lib.matmul(lib.zeros(4), lib.zeros(2, 3, 4)),
    "matmul_3d_1d_inner": lambda lib: lib.matmul(lib.zeros(2, 3, 4), lib.zeros(3)),
    "matmul_2d_3d_inner": lambda lib: lib.matmul(lib.zeros(3, 4), lib.zeros(2, 3, 4)),
    "matmul_dtypes_bmm": lambda lib: lib.matmul(lib.zeros(2, 2, 3, dtype=lib.float64), lib.zeros(2, 3, 4)),
    "matmul_dtypes_mm": lambda lib: lib.matmul(lib.zeros(2, 2, 3, dtype=lib.float64), lib.zeros(3, 4)),
    "matmul_dtypes_mv": lambda lib: lib.matmul(lib.zeros(2, 2, 3, dtype=lib.float64), lib.zeros(3)),
    "bmm_2d": lambda lib: lib.bmm(lib.zeros(2, 3), lib.zeros(2, 3, 4)),
    "bmm_2d_second": lambda lib: lib.bmm(lib.zeros(2, 2, 3), lib.zeros(3, 4)),
    "bmm_batch": lambda lib: lib.bmm(lib.zeros(2, 2, 3), lib.zeros(3, 3, 4)),
    "bmm_inner": lambda lib: lib.zeros(2, 2, 3).bmm(lib.zeros(2, 4, 4)),
    "bmm_dtypes": lambda lib: lib.bmm(lib.zeros(2, 2, 3), lib.zeros(2, 3, 4, dtype=lib.float64)),
    "bmm_bool": lambda lib: lib.bmm(lib.zeros(2, 2, 3, dtype=lib.bool), lib.zeros(2, 3, 4, dtype=lib.bool)),
    "mm_3d": lambda lib: lib.mm(lib.zeros(2, 2, 3), lib.zeros(3, 4)),
    "mm_1d": lambda lib: lib.mm(lib.zeros(2, 3), lib.zeros(3)),
    "mm_shapes": lambda lib: lib.mm(lib.zeros(2, 3), lib.zeros(4, 3)),
    "mv_3d": lambda lib: lib.mv(lib.zeros(2, 2, 3), lib.zeros(3)),
    "mv_2d_2d": lambda lib: lib.mv(lib.zeros(2, 3), lib.zeros(3, 1)),
    "mv_shapes": lambda lib: lib.mv(lib.zeros(2, 3), lib.zeros(4)),
    "mv_dtypes": lambda lib: lib.mv(lib.zeros(2, 3, dtype=lib.float64), lib.zeros(3)),
    "dot_2d": lambda lib: lib.dot(lib.zeros(2, 3), lib.zeros(3)),
    "dot_sizes": lambda lib: lib.dot(lib.zeros(2), lib.zeros(3)),
    "einsum_sizes": lambda lib: lib.einsum("ij,jk->ik", lib.zeros(2, 3), lib.zeros(4, 5)),
    "einsum_fewer_operands": lambda lib: lib.einsum("ij,jk->ik", lib.zeros(2, 3)),
    "einsum_more_operands": lambda lib: lib.einsum("ij", lib.zeros(2, 3), lib.zeros(2, 3)),
    "einsum_too_many_subscripts": lambda lib: lib.einsum("ijk", lib.zeros(2, 3)),
    "einsum_too_few_subscripts": lambda lib: lib.einsum("i", lib.zeros(2, 3)),
    "einsum_ellipsis_too_many": lambda lib: lib.einsum("...ijk", lib.zeros(2, 3)),
    "einsum_output_repeated": lambda lib: lib.einsum("ij->ii", lib.zeros(2, 3)),
    "einsum_output_unknown": lambda lib: lib.einsum("ij->k", lib.zeros(2, 3)),
    "einsum_bad_character": lambda lib: lib.einsum("i1->i", lib.zeros(2, 3)),
    "einsum_bad_output_character": lambda lib: lib.einsum("i->->i", lib.zeros(3)),
    "einsum_diagonal_sizes": lambda lib: lib.einsum("ii->i", lib.zeros(2, 3)),
    "einsum_two_ellipses": lambda lib: lib.einsum("...i...->i", lib.zeros(3)),
    "einsum_broken_ellipsis": lambda lib: lib.einsum("..i->i", lib.zeros(3)),
    "einsum_two_output_ellipses": lambda lib: lib.einsum("...i->......", lib.zeros(3)),
    "einsum_ellipsis_sizes": lambda lib: lib.einsum("...i,...i->...", lib.zeros(2, 3), lib.zeros(4, 3)),
    "einsum_dtypes": lambda lib: lib.einsum("i,i->", lib.zeros(3, dtype=lib.float64), lib.zeros(3)),
    "einsum_no_operands": lambda lib: lib.einsum("i->i"),
    "cosine_similarity_shapes": lambda lib: F(lib).cosine_similarity(lib.zeros(3, 4), lib.zeros(5)),
    "cosine_similarity_dim": lambda lib: F(lib).cosine_similarity(lib.zeros(3, 4), lib.zeros(3, 4), dim=2),
    "normalize_dim": lambda lib: F(lib).normalize(lib.zeros(4)),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_input_raises_like_torch(name, torch):
    check_same_error(torch, ERRORS[name])


# ------------------------------------------------------------------- einsum
# symgrad records einsum as one node named like the last node of PyTorch's chain
# (PyTorch's diagonal/permute/bmm/view nodes below it are not mirrored), so these
# cases compare the top grad_fn name; values and gradients as everywhere.

EINSUM = {
    "matrix_product": ("ij,jk->ik", [R(2, 3), R(3, 4)]),
    "implicit_output": ("ij,jk", [R(2, 3), R(3, 4)]),
    "implicit_order": ("ba,cb", [R(2, 3), R(4, 2)]),
    "batch": ("bij,bjk->bik", [R(2, 2, 3), R(2, 3, 4)]),
    "batch_constant": ("bij,bjk->bik", [R(2, 2, 3), R(2, 3, 4, grad=False)]),
    "trace": ("ii", [R(3, 3)]),
    "trace_explicit": ("ii->", [R(3, 3)]),
    "diagonal": ("ii->i", [R(3, 3)]),
    "batch_diagonal": ("...ii->...i", [R(2, 3, 3)]),
    "diagonal_of_three": ("iji->j", [R(2, 3, 2)]),
    "diagonal_times_vector": ("ii,i->i", [R(3, 3), R(3)]),
    "outer": ("i,j->ij", [R(3), R(4)]),
    "outer_of_three": ("i,j,k->ijk", [R(2), R(3), R(2)]),
    "inner": ("i,i->", [R(3), R(3)]),
    "hadamard": ("ij,ij->ij", [R(2, 3), R(2, 3)]),
    "matrix_vector": ("ij,j->i", [R(2, 3), R(3)]),
    "sum_all": ("ij->", [R(2, 3)]),
    "sum_over_index": ("ijk->ik", [R(2, 3, 4)]),
    "transpose": ("ij->ji", [R(2, 3)]),
    "ellipsis": ("...ij,...jk->...ik", [R(2, 2, 3), R(3, 4)]),
    "ellipsis_broadcast": ("...i,...i->...", [R(2, 3), R(1, 3)]),
    "ellipsis_summed": ("...i->i", [R(2, 3)]),
    "ellipsis_implicit": ("...ij", [R(2, 3, 4)]),
    "broadcast_size_one": ("ij,kj->ik", [R(1, 3), R(4, 3)]),
    "broadcast_size_one_summed": ("i,i", [R(1), R(4)]),
    "upper_case": ("Ab,bA", [R(2, 3), R(3, 2)]),
    "three_operands": ("ijk,ikl,lm->jm", [R(2, 3, 4), R(2, 4, 5), R(5, 2)]),
    "bilinear": ("bn,anm,bm->ba", [R(2, 3), R(4, 3, 5), R(2, 5)]),
    "scalar_operand": (",i->i", [R(), R(3)]),
    "same_operand_twice": None,  # einsum('ij,jk', x, x): both factors are one leaf
    "empty": ("ij,jk->ik", [R(0, 3), R(3, 4)]),
    "empty_contraction": ("ij,jk->ik", [R(2, 0), R(0, 4)]),
}
# (an einsum of one operand is linear: its second derivative is 0, and torch refuses to differentiate it twice)
SMOOTH_EINSUM = ["matrix_product", "batch", "diagonal_times_vector", "three_operands", "same_operand_twice",
                 "ellipsis_broadcast", "bilinear"]


def _einsum_case(name: str) -> Case:
    if name == "same_operand_twice":
        return Case(lambda lib, x: lib.einsum("ij,jk", x, x).tanh(), [R(3, 3)], second=True)
    equation, args = EINSUM[name]
    empty = any(0 in arg.shape for arg in args)
    return Case(lambda lib, *xs: lib.einsum(equation, *xs), args, fd=not empty, second=name in SMOOTH_EINSUM)


@pytest.mark.parametrize("name", EINSUM)
def test_einsum_matches_torch(name, torch):
    """Forward values, dtype, shape, PyTorch's top grad_fn name, and gradients at rtol 1e-10."""
    case = _einsum_case(name)
    out_t, leaves_t = run(torch, name, case)
    out_s, leaves_s = run(symgrad, name, case)
    assert text(out_s.dtype) == text(out_t.dtype)
    assert tuple(out_s.shape) == tuple(out_t.shape)
    assert_close(out_s.detach().numpy(), out_t.detach().numpy(), what="forward")
    assert out_s.grad_fn.name() == out_t.grad_fn.name()
    seed = np.random.default_rng(0).normal(size=tuple(out_t.shape))
    out_t.backward(torch.tensor(seed))
    out_s.backward(symgrad.tensor(seed))
    for leaf_s, leaf_t, arg in zip(leaves_s, leaves_t, case.args):
        if arg.grad:
            assert_close(leaf_s.grad.numpy(), leaf_t.grad.numpy(), what=name)


@pytest.mark.parametrize("name", [n for n in EINSUM if _einsum_case(n).fd])
def test_einsum_gradient_matches_finite_differences(name):
    check_finite_differences(name, _einsum_case(name))


@pytest.mark.parametrize("name", SMOOTH_EINSUM)
def test_einsum_second_derivatives_match_torch(name, torch):
    check_second_derivatives(torch, name, _einsum_case(name))


@pytest.mark.parametrize("equation, shapes", [("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("ii->i", [(3, 3)]),
                                              ("...i,...i->...", [(2, 3), (1, 3)]), ("ii", [(2, 2)])])
def test_einsum_passes_gradcheck_and_gradgradcheck(equation, shapes):
    rng = np.random.default_rng(5)
    inputs = [symgrad.tensor(rng.normal(size=s), requires_grad=True) for s in shapes]
    assert symgrad.autograd.gradcheck(lambda *xs: symgrad.einsum(equation, *xs), inputs)
    assert symgrad.autograd.gradgradcheck(lambda *xs: symgrad.einsum(equation, *xs).sin(), inputs)


def test_batched_matmul_passes_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(6)
    a = symgrad.tensor(rng.normal(size=(2, 1, 2, 3)), requires_grad=True)
    b = symgrad.tensor(rng.normal(size=(3, 3, 2)), requires_grad=True)
    assert symgrad.autograd.gradcheck(lambda x, y: x @ y, (a, b))
    assert symgrad.autograd.gradgradcheck(lambda x, y: (x @ y).tanh(), (a, b))


def test_einsum_operand_forms_match_torch(torch):
    """Operands as one list, and the sublist format, as torch.einsum accepts them."""
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    calls = [lambda lib, x, y: lib.einsum("ij,jk->ik", [x, y]),
             lambda lib, x, y: lib.einsum("ij,jk", (x, y)),
             lambda lib, x, y: lib.einsum(x, [0, 1], y, [1, 2], [0, 2]),
             lambda lib, x, y: lib.einsum(x, [Ellipsis, 1], y, [1, 27]),
             lambda lib, x, y: lib.einsum(" i j , j k -> k i ", x, y)]
    for call in calls:
        expected = call(torch, torch.tensor(a), torch.tensor(b)).numpy()
        assert_close(call(symgrad, symgrad.tensor(a), symgrad.tensor(b)).numpy(), expected)


@pytest.mark.parametrize("dtype", ["int64", "float32"])
def test_einsum_dtypes_match_torch(dtype, torch):
    values = np.arange(6).reshape(2, 3)
    for equation in ("ij,kj->ik", "ij->", "ij->ji", "ij,ij->ij"):
        count = len(equation.split(","))
        expected = torch.einsum(equation, *[torch.tensor(values, dtype=getattr(torch, dtype))] * count)
        actual = symgrad.einsum(equation, *[symgrad.tensor(values, dtype=getattr(symgrad, dtype))] * count)
        assert text(actual.dtype) == text(expected.dtype)
        assert np.array_equal(actual.numpy(), expected.numpy())


# ------------------------------------------------- generated code and formulas

def test_batched_matmul_backward_is_a_batched_product():
    """bmm's adjoint is a product with the other factor's last two axes swapped; the expanded batch is summed."""
    a = symgrad.randn(2, 3, 2, 4, dtype=symgrad.float64)
    b = symgrad.randn(3, 4, 2, dtype=symgrad.float64, requires_grad=True)
    lines = symgrad.backward_source((a @ b).sum()).splitlines()
    assert "    p = np.transpose(input, (0, 2, 1))" in lines
    assert "    mm = p @ np.full((6, 2, 2), 1.0, dtype=np.float64)" in lines
    assert "    grad_b = np.sum(r, axis=0)" in lines  # b was expanded over the leading batch of 2


def test_two_dimensional_matmul_code_is_unchanged():
    x = symgrad.ones(4, 5, dtype=symgrad.float64)
    w = symgrad.randn(5, 3, dtype=symgrad.float64, requires_grad=True)
    source = symgrad.backward_source((x @ w).sum())
    assert "grad_w = p @ c" in source or "@" in source.split("grad_w =")[1].splitlines()[0]
    assert "einsum" not in source


def test_einsum_backward_code_is_an_einsum():
    x = symgrad.randn(3, 3, dtype=symgrad.float64, requires_grad=True)
    v = symgrad.randn(3, dtype=symgrad.float64, requires_grad=True)
    source = symgrad.backward_source(symgrad.einsum("ii,i->i", x, v).sum())
    assert "np.einsum('i,i,ia->ia', " in source  # the diagonal's adjoint writes onto the diagonal
    assert "np.eye(3, dtype=np.float64)" in source


def _batched_program():
    a = symgrad.randn(2, 3, 3, dtype=symgrad.float64, requires_grad=True)
    b = symgrad.randn(2, 3, 4, dtype=symgrad.float64, requires_grad=True)
    c = symgrad.randn(4, 2, dtype=symgrad.float64, requires_grad=True)
    out = symgrad.einsum("bii,bij->bj", a, b).tanh().sum() + (a @ b @ c).sigmoid().sum()
    return out, [a, b, c]


def test_formula_of_a_batched_program_evaluates_to_what_backward_computes():
    symgrad.manual_seed(0)
    out, wrt = _batched_program()
    forward = symgrad.formula(out)
    assert "einsum('bii,bij->bj', " in str(forward)
    assert np.allclose(forward.evaluate(), out.item())
    grads = symgrad.grad_formula(out, wrt)
    for value, g, t in zip(grads.evaluate(), symgrad.autograd.grad(out, wrt, retain_graph=True), wrt):
        assert value.shape == tuple(t.shape)
        assert np.allclose(value, g.numpy())
    assert r"\operatorname{einsum}" in grads.latex()
    elementwise = symgrad.grad_formula(out, wrt[0], elementwise=True)
    assert np.allclose(elementwise.evaluate(), symgrad.autograd.grad(out, wrt[0])[0].numpy())


@pytest.mark.parametrize("equation, dtypes", [("i,j->", ("float64", "float32")), ("i,j->ij", ("float64", "float32")),
                                              ("i,j->", ("bool", "bool")), ("i,j->ij", ("bool", "bool")),
                                              ("i->", ("bool",)), ("i,i->", ("int64", "int64"))])
def test_einsum_mixed_and_integer_dtypes_follow_torch(equation, dtypes, torch):
    """Without a bmm (no summed label in two operands) PyTorch multiplies and sums, promoting as mul/sum do."""
    operands = equation.split("->")[0].split(",")
    expected = torch.einsum(equation, *[torch.ones(2, dtype=getattr(torch, d)) for d in dtypes[:len(operands)]])
    actual = symgrad.einsum(equation, *[symgrad.ones(2, dtype=getattr(symgrad, d)) for d in dtypes[:len(operands)]])
    assert text(actual.dtype) == text(expected.dtype)
    assert np.array_equal(actual.numpy(), expected.numpy())


@pytest.mark.parametrize("product", [lambda lib, w, v: lib.einsum("i,i->", w, v),
                                     lambda lib, w, v: lib.einsum("i,j->ij", w, v),
                                     lambda lib, w, v: lib.bmm(w.reshape(1, 1, 3), v.reshape(1, 3, 1)),
                                     lambda lib, w, v: v.reshape(1, 1, 3).expand(2, 1, 3) @ w.reshape(1, 3, 1)],
                         ids=["einsum_inner", "einsum_outer", "bmm", "batched_matmul"])
def test_saved_operand_modified_in_place_raises_like_torch(product, torch):
    """The gradient for w reads v: modifying v in place before backward is PyTorch's version-counter error."""
    raised = []
    for lib in (torch, symgrad):
        w = lib.ones(3, dtype=lib.float64, requires_grad=True)
        v = lib.ones(3, dtype=lib.float64)
        y = product(lib, w, v)
        v.mul_(2)
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
        # the message names the saved tensor; PyTorch's einsum saves intermediate views of other shapes
        raised.append(text(info.value).split(": [")[0])
        assert w.grad is None
    assert raised[0] == raised[1]


BAD_CALLS = {
    "mm_shape_mismatch": lambda lib, a, b: lib.mm(a, b),
    "matmul_shape_mismatch": lambda lib, a, b: a @ b,
    "bmm_not_3d": lambda lib, a, b: lib.bmm(a, b.t()),
    "mv_mismatch": lambda lib, a, b: lib.mv(a, b[0]),
    "dot_not_1d": lambda lib, a, b: lib.dot(a, b),
    "outer_not_1d": lambda lib, a, b: lib.outer(a, b),
    "addmm_mismatch": lambda lib, a, b: lib.addmm(a, a, b),
    "einsum_wrong_operand_count": lambda lib, a, b: lib.einsum("ij,jk->ik", a),
    "linear_mismatch": lambda lib, a, b: F(lib).linear(a, b),
    "cosine_similarity_mismatch": lambda lib, a, b: F(lib).cosine_similarity(a, b),
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_bad_input_changes_nothing(name, torch):
    check_error_changes_nothing(torch, BAD_CALLS[name], np.arange(6.0).reshape(2, 3), np.ones((2, 2)))
