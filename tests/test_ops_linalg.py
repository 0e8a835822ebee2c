"""Linear algebra on the existing primitives against the PyTorch oracle.

outer, addmm, nn.functional.linear (1-D, 2-D and 3-D input, with and
without bias, contiguous or not: PyTorch's chain of ``grad_fn`` nodes in each
case), N-D @ 2-D matmul, nn.functional.cosine_similarity and
nn.functional.normalize: values, the whole ``grad_fn`` graph, gradients at
rtol 1e-10, finite differences, second derivatives, the zero vectors where the
``eps`` clamps act, and PyTorch's errors.
"""

from __future__ import annotations

import pytest
from ops_oracle import (
    Case,
    R,
    V,
    check_against_torch,
    check_finite_differences,
    check_same_error,
    check_second_derivatives,
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
    # ---- N-D @ 2-D
    "matmul_4d_2d": Case(lambda lib, a, b: lib.matmul(a, b), [R(2, 1, 3, 4), R(4, 2)]),
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
    "cosine_similarity_shapes": lambda lib: F(lib).cosine_similarity(lib.zeros(3, 4), lib.zeros(5)),
    "cosine_similarity_dim": lambda lib: F(lib).cosine_similarity(lib.zeros(3, 4), lib.zeros(3, 4), dim=2),
    "normalize_dim": lambda lib: F(lib).normalize(lib.zeros(4)),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_input_raises_like_torch(name, torch):
    check_same_error(torch, ERRORS[name])
