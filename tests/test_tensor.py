"""The Tensor facade (``symgrad/tensor.py``, ``creation.py``, ``dtypes.py``) against PyTorch.

Creation, attributes, conversions, printing, type promotion and in-place
operations.  The first section runs without torch; every test that takes the
``torch`` fixture compares with PyTorch 2.13 live (``torch.`` in its text
becomes ``symgrad.``) and is skipped when torch is absent.
"""

from __future__ import annotations

import itertools
import operator
import warnings

import numpy as np
import pytest

import symgrad


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def text(x) -> str:
    """repr/message text with PyTorch's module name replaced by ours."""
    return str(x).replace("torch.", "symgrad.")


def outcome(fn, lib):
    """What ``fn(lib)`` does: ("returns", repr, arrays) or ("raises", exception type name, message)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's 1/0 warnings; values are compared
            result = fn(lib)
    except Exception as error:  # noqa: BLE001 - any exception is part of the behaviour compared
        return ("raises", type(error).__name__, text(error))
    results = result if isinstance(result, tuple) else (result,)
    arrays = tuple(r.detach().numpy().copy() if hasattr(r, "detach") else r for r in results)
    return ("returns", text(repr(result)), arrays)


def assert_same_outcome(fn, torch):
    expected, actual = outcome(fn, torch), outcome(fn, symgrad)
    assert actual[:2] == expected[:2]
    if expected[0] == "returns":
        assert len(actual[2]) == len(expected[2])
        for a, e in zip(actual[2], expected[2]):
            if isinstance(e, np.ndarray):
                assert a.dtype == e.dtype
                np.testing.assert_array_equal(a, e)
            elif isinstance(e, bool | int | float | str | list | None):  # others: compared by repr above
                assert a == e and type(a) is type(e)
    return actual


# ============================================================================
# Without torch: literal PyTorch behaviour
# ============================================================================


def test_shape_prints_as_symgrad_size():
    x = symgrad.ones(5, 3)
    assert repr(x.shape) == "symgrad.Size([5, 3])"
    assert str(x.shape) == "symgrad.Size([5, 3])"
    assert x.shape == (5, 3)
    assert isinstance(x.shape, tuple)
    assert repr(symgrad.tensor(2.0).shape) == "symgrad.Size([])"


def test_default_dtypes():
    assert symgrad.ones(2).dtype is symgrad.float32
    assert symgrad.tensor([1.5]).dtype is symgrad.float32
    assert symgrad.tensor([1, 2]).dtype is symgrad.int64
    assert symgrad.tensor([True]).dtype is symgrad.bool
    assert symgrad.tensor(np.array([1.5])).dtype is symgrad.float64
    assert repr(symgrad.float32) == "symgrad.float32"
    assert repr(symgrad.float64) == "symgrad.float64"


def test_print_of_tutorial_input():
    assert repr(symgrad.ones(5)) == "tensor([1., 1., 1., 1., 1.])"
    assert str(symgrad.ones(5)) == "tensor([1., 1., 1., 1., 1.])"


def test_from_numpy_shares_memory():
    a = np.zeros(3)
    t = symgrad.from_numpy(a)
    a[1] = 7.0
    assert t.tolist() == [0.0, 7.0, 0.0]
    t.add_(1)
    np.testing.assert_array_equal(a, [1.0, 8.0, 1.0])


def test_as_tensor_shares_memory_of_matching_array():
    a = np.arange(3.0)
    t = symgrad.as_tensor(a)
    a[0] = -1.0
    assert t.tolist() == [-1.0, 1.0, 2.0]


def test_numpy_shares_memory():
    t = symgrad.zeros(2, 2, dtype=symgrad.float64)
    t.numpy()[0, 1] = 3.0
    assert t.tolist() == [[0.0, 3.0], [0.0, 0.0]]


def test_detach_shares_data_and_cuts_the_graph():
    w = symgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = w.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    d.mul_(2)  # allowed: d does not require grad
    assert w.tolist() == [2.0, 4.0, 6.0]
    z = w * 3
    zd = z.detach()
    zd.zero_()
    assert z.tolist() == [0.0, 0.0, 0.0]


def test_requires_grad_flag_and_method():
    x = symgrad.ones(3)
    assert x.requires_grad is False and x.is_leaf and x.grad_fn is None
    assert x.requires_grad_() is x
    assert x.requires_grad is True and x.is_leaf
    x.requires_grad_(False)
    assert x.requires_grad is False
    assert symgrad.ones(2, requires_grad=True).requires_grad is True


def test_is_leaf_and_grad_fn():
    w = symgrad.ones(2, requires_grad=True)
    c = symgrad.ones(2)
    z = w * c
    assert w.is_leaf and w.grad_fn is None
    assert not z.is_leaf and z.grad_fn.name() == "MulBackward0"
    assert (c * 2).is_leaf and (c * 2).grad_fn is None
    with symgrad.no_grad():
        assert (w * 2).is_leaf


# ============================================================================
# Creation, compared with torch
# ============================================================================

CREATION = {
    "tensor_floats": lambda lib: lib.tensor([1.5, -2.0, 3.0]),
    "tensor_ints": lambda lib: lib.tensor([1, 2, 3]),
    "tensor_bools": lambda lib: lib.tensor([True, False]),
    "tensor_bool_int_mix": lambda lib: lib.tensor([True, 2]),
    "tensor_int_float_mix": lambda lib: lib.tensor([[1, 2], [3, 4.5]]),
    "tensor_0d_float": lambda lib: lib.tensor(2.5),
    "tensor_0d_int": lambda lib: lib.tensor(7),
    "tensor_0d_bool": lambda lib: lib.tensor(False),
    "tensor_float64": lambda lib: lib.tensor([1.5, 2.0], dtype=lib.float64),
    "tensor_int_as_float64": lambda lib: lib.tensor([1, 2], dtype=lib.float64),
    "tensor_float_as_int64": lambda lib: lib.tensor([1.7, -2.7], dtype=lib.int64),
    "tensor_as_bool": lambda lib: lib.tensor([0.0, 2.0], dtype=lib.bool),
    "tensor_numpy_float64": lambda lib: lib.tensor(np.array([1.5, 2.0])),
    "tensor_numpy_float32": lambda lib: lib.tensor(np.array([1.5, 2.0], dtype=np.float32)),
    "tensor_numpy_int64": lambda lib: lib.tensor(np.array([[1, 2]], dtype=np.int64)),
    "tensor_numpy_bool": lambda lib: lib.tensor(np.array([True, False])),
    "tensor_requires_grad": lambda lib: lib.tensor([1.0, 2.0], requires_grad=True),
    "tensor_float64_requires_grad": lambda lib: lib.tensor([[1.0], [2.0]], dtype=lib.float64, requires_grad=True),
    "tensor_empty": lambda lib: lib.tensor([]),
    "ones_varargs": lambda lib: lib.ones(2, 3),
    "ones_tuple": lambda lib: lib.ones((2, 3)),
    "ones_list_float64": lambda lib: lib.ones([3, 1], dtype=lib.float64),
    "ones_int64": lambda lib: lib.ones(2, dtype=lib.int64),
    "ones_bool": lambda lib: lib.ones(2, dtype=lib.bool),
    "ones_0d": lambda lib: lib.ones(()),
    "ones_requires_grad": lambda lib: lib.ones(3, requires_grad=True),
    "zeros_varargs": lambda lib: lib.zeros(3, 2),
    "zeros_int64": lambda lib: lib.zeros(2, 2, dtype=lib.int64),
    "zeros_float64_requires_grad": lambda lib: lib.zeros(2, dtype=lib.float64, requires_grad=True),
    "zeros_empty": lambda lib: lib.zeros(0, 3),
    "randn_seeded": lambda lib: (lib.manual_seed(0), lib.randn(5, 3))[1],
    "randn_float64": lambda lib: (lib.manual_seed(7), lib.randn(2, 4, dtype=lib.float64))[1],
    "randn_requires_grad": lambda lib: (lib.manual_seed(1), lib.randn(4, requires_grad=True))[1],
    "randn_tuple": lambda lib: (lib.manual_seed(2), lib.randn((3, 2)))[1],
    "rand_seeded": lambda lib: (lib.manual_seed(0), lib.rand(3, 3))[1],
    "rand_float64": lambda lib: (lib.manual_seed(3), lib.rand(2, 3, dtype=lib.float64))[1],
    "randn_then_rand": lambda lib: (lib.manual_seed(5), lib.randn(3), lib.rand(2))[1:],
    "from_numpy_float64": lambda lib: lib.from_numpy(np.array([1.0, 2.5])),
    "from_numpy_float32": lambda lib: lib.from_numpy(np.array([1.0, 2.5], dtype=np.float32)),
    "from_numpy_int64": lambda lib: lib.from_numpy(np.arange(4, dtype=np.int64).reshape(2, 2)),
    "from_numpy_bool": lambda lib: lib.from_numpy(np.array([True, False])),
    "as_tensor_list": lambda lib: lib.as_tensor([1.5, 2.0]),
    "as_tensor_ints": lambda lib: lib.as_tensor([1, 2]),
    "as_tensor_array": lambda lib: lib.as_tensor(np.array([1.5, 2.0])),
    "as_tensor_dtype": lambda lib: lib.as_tensor(np.array([1.5, 2.0]), dtype=lib.float32),
    "as_tensor_tensor": lambda lib: lib.as_tensor(lib.tensor([1, 2])),
    "ones_like": lambda lib: lib.ones_like(lib.tensor([[1, 2], [3, 4]])),
    "ones_like_float64_requires_grad": lambda lib: lib.ones_like(lib.zeros(2, dtype=lib.float64), requires_grad=True),
    "ones_like_dtype": lambda lib: lib.ones_like(lib.zeros(2), dtype=lib.int64),
    "zeros_like": lambda lib: lib.zeros_like(lib.ones(2, 3)),
    "zeros_like_requires_grad": lambda lib: lib.zeros_like(lib.ones(2), requires_grad=True),
    "zeros_like_of_requires_grad": lambda lib: lib.zeros_like(lib.ones(2, requires_grad=True)),
    "zeros_like_bool": lambda lib: lib.zeros_like(lib.tensor([True, True])),
    # errors
    "tensor_int_requires_grad": lambda lib: lib.tensor([1, 2], requires_grad=True),
    "tensor_bool_requires_grad": lambda lib: lib.tensor([True], requires_grad=True),
    "ones_int_requires_grad": lambda lib: lib.ones(2, dtype=lib.int64, requires_grad=True),
    "zeros_bool_requires_grad": lambda lib: lib.zeros(2, dtype=lib.bool, requires_grad=True),
    "ones_like_int_requires_grad": lambda lib: lib.ones_like(lib.tensor([1]), requires_grad=True),
}


@pytest.mark.parametrize("case", CREATION)
def test_creation_matches_torch(case, torch):
    assert_same_outcome(CREATION[case], torch)


ATTRIBUTES = {
    "shape": lambda lib: lib.ones(5, 3).shape,
    "shape_0d": lambda lib: lib.tensor(1.5).shape,
    "size": lambda lib: lib.ones(5, 3).size(),
    "size_dim": lambda lib: (lib.ones(5, 3).size(0), lib.ones(5, 3).size(-1)),
    "shape_equals_tuple": lambda lib: lib.ones(5, 3).shape == (5, 3),
    "dtype_default": lambda lib: lib.ones(1).dtype,
    "dtype_names": lambda lib: (lib.float32, lib.float64, lib.int64, lib.bool),
    "dtype_of_int": lambda lib: lib.tensor([1]).dtype,
    "item_float": lambda lib: lib.tensor([2.5]).item(),
    "item_float64_0d": lambda lib: lib.tensor(0.1, dtype=lib.float64).item(),
    "item_float32_rounding": lambda lib: lib.tensor(0.1).item(),
    "item_int": lambda lib: lib.tensor(3).item(),
    "item_bool": lambda lib: lib.tensor([[True]]).item(),
    "item_requires_grad": lambda lib: lib.tensor(1.5, requires_grad=True).item(),
    "item_many_elements": lambda lib: lib.ones(3).item(),
    "tolist_matrix": lambda lib: lib.tensor([[1.5, 2.0], [3.0, 4.0]]).tolist(),
    "tolist_0d": lambda lib: lib.tensor(2.5).tolist(),
    "tolist_int": lambda lib: lib.tensor([1, 2]).tolist(),
    "tolist_bool": lambda lib: lib.tensor([True, False]).tolist(),
    "tolist_requires_grad": lambda lib: lib.tensor([1.0, 2.0], requires_grad=True).tolist(),
    "numpy_values": lambda lib: lib.tensor([1.5, 2.0]).numpy().tolist(),
    "numpy_dtype": lambda lib: str(lib.tensor([1.5, 2.0], dtype=lib.float64).numpy().dtype),
    "numpy_requires_grad": lambda lib: lib.ones(2, requires_grad=True).numpy(),
    "detach_numpy": lambda lib: lib.ones(2, requires_grad=True).detach().numpy().tolist(),
    "requires_grad_default": lambda lib: lib.ones(2).requires_grad,
    "requires_grad_method_returns_self": lambda lib: (lambda t: t.requires_grad_() is t)(lib.ones(2)),
    "requires_grad_method_false": lambda lib: lib.ones(2, requires_grad=True).requires_grad_(False).requires_grad,
    "requires_grad_int": lambda lib: lib.tensor([1, 2]).requires_grad_(),
    "requires_grad_bool": lambda lib: lib.tensor([True]).requires_grad_(),
    "requires_grad_false_on_int": lambda lib: lib.tensor([1, 2]).requires_grad_(False),
    "requires_grad_nonleaf_false": lambda lib: (lib.ones(2, requires_grad=True) * 2).requires_grad_(False),
    "requires_grad_nonleaf_true": lambda lib: (lib.ones(2, requires_grad=True) * 2).requires_grad_(True),
    "requires_grad_setter": lambda lib: (lambda t: (setattr(t, "requires_grad", True), t)[1])(lib.zeros(2)),
    "flags_leaf": lambda lib: (lambda t: (t.is_leaf, t.requires_grad, t.grad_fn, t.grad))(
        lib.ones(2, requires_grad=True)),
    "flags_result": lambda lib: (lambda t: (t.is_leaf, t.requires_grad, t.grad_fn.name()))(
        lib.ones(2, requires_grad=True) * 2),
    "flags_constant_result": lambda lib: (lambda t: (t.is_leaf, t.requires_grad, t.grad_fn))(lib.ones(2) * 2),
    "flags_detach": lambda lib: (lambda t: (t.is_leaf, t.requires_grad, t.grad_fn))(
        (lib.ones(2, requires_grad=True) * 2).detach()),
    "detach_value": lambda lib: (lib.tensor([1.0, 2.0], requires_grad=True) * 2).detach(),
}


@pytest.mark.parametrize("case", ATTRIBUTES)
def test_attributes_match_torch(case, torch):
    assert_same_outcome(ATTRIBUTES[case], torch)


def test_item_returns_python_types(torch):
    for make in (lambda lib: lib.tensor(2.5), lambda lib: lib.tensor(3), lambda lib: lib.tensor(True),
                 lambda lib: lib.tensor([1.0], dtype=lib.float64)):
        assert type(make(symgrad).item()) is type(make(torch).item())


def test_detach_shares_data_like_torch(torch):
    def fn(lib):
        w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        d = w.detach()
        d.add_(1)
        z = w * 2
        z.detach().mul_(0.5)
        return w.detach(), z.detach(), d
    assert_same_outcome(fn, torch)


# ============================================================================
# Printing
# ============================================================================

PRINTED = {
    "float32": lambda lib: lib.tensor([1.0, 2.5, -3.0]),
    "float32_requires_grad": lambda lib: lib.tensor([1.0, 2.5], requires_grad=True),
    "float32_grad_fn": lambda lib: lib.tensor([1.0, 2.5], requires_grad=True) * 2,
    "float32_0d_grad_fn": lambda lib: (lib.tensor([1.0, 2.5], requires_grad=True) * 2).sum(),
    "float64": lambda lib: lib.tensor([1.0, 2.5], dtype=lib.float64),
    "float64_requires_grad": lambda lib: lib.tensor([1.0, 2.5], dtype=lib.float64, requires_grad=True),
    "float64_grad_fn": lambda lib: lib.tensor([[1.0, -2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True) + 1,
    "float64_0d_grad_fn": lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True).mean(),
    "float64_0d": lambda lib: lib.tensor(0.25, dtype=lib.float64),
    "int64": lambda lib: lib.tensor([[1, -2], [3, 4]]),
    "int64_0d": lambda lib: lib.tensor(5),
    "bool": lambda lib: lib.tensor([True, False]),
    "bool_0d": lambda lib: lib.tensor(True),
    "empty": lambda lib: lib.zeros(0),
    "empty_float64": lambda lib: lib.zeros(0, dtype=lib.float64),
    "randn_matrix_grad_fn": lambda lib: (lib.manual_seed(0), lib.randn(5, 3, requires_grad=True) * 10)[1],
    "large_values_requires_grad": lambda lib: lib.tensor([1e10, 1.0, -3e-5], requires_grad=True),
    "float64_large_values_grad_fn": lambda lib: lib.tensor([1e10, 1.0], dtype=lib.float64, requires_grad=True) * 3,
    "nonfinite_grad_fn": lambda lib: lib.tensor([0.0, 1.0, -1.0], requires_grad=True).log(),
    "tutorial_z": lambda lib: (lib.manual_seed(0), lib.matmul(lib.ones(5), lib.randn(5, 3, requires_grad=True))
                             + lib.randn(3, requires_grad=True))[1],
    "relu_grad_fn": lambda lib: lib.tensor([-1.0, 2.0], requires_grad=True).relu(),
    "permute_grad_fn": lambda lib: lib.ones(2, 3, dtype=lib.float64, requires_grad=True).T,
}


@pytest.mark.parametrize("case", PRINTED)
def test_repr_and_str_match_torch(case, torch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours, theirs = PRINTED[case](symgrad), PRINTED[case](torch)
    assert repr(ours) == text(repr(theirs))
    assert str(ours) == text(str(theirs))


# ============================================================================
# Type promotion: + - * / over dtypes x (dim > 0, 0-d) x Python scalars / tensors
# ============================================================================

DTYPES = ["float32", "float64", "int64", "bool"]
RANKS = ["dim", "0d"]
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
SCALARS = [3, -2, 2.5, 0.1, True]  # int, float, bool (True) Python scalars
_DATA = {"float32": [1.5, -2.0, 3.25], "float64": [1.5, -2.0, 3.25], "int64": [3, -2, 5],
         "bool": [True, False, True]}


def _operand(lib, dtype: str, rank: str):
    data = _DATA[dtype] if rank == "dim" else _DATA[dtype][0]
    return lib.tensor(data, dtype=getattr(lib, dtype))


def _compare_cases(cases, torch):
    """Run (label, fn) cases in both libraries; return the labels whose outcomes differ."""
    mismatches = []
    for label, fn in cases:
        expected, actual = outcome(fn, torch), outcome(fn, symgrad)
        same = actual[:2] == expected[:2]
        if same and expected[0] == "returns":
            a, e = actual[2][0], expected[2][0]
            same = a.dtype == e.dtype and a.shape == e.shape and np.array_equal(a, e, equal_nan=a.dtype.kind == "f")
        if not same:
            mismatches.append(f"{label}: torch {expected[:2]} {expected[2:]}, symgrad {actual[:2]} {actual[2:]}")
    return mismatches


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_promotion_with_python_scalars(dtype, rank, op, torch):
    fn = OPS[op]
    cases = []
    for scalar in SCALARS:
        cases.append((f"{dtype}[{rank}] {op} {scalar!r}", lambda lib, s=scalar: fn(_operand(lib, dtype, rank), s)))
        cases.append((f"{scalar!r} {op} {dtype}[{rank}]", lambda lib, s=scalar: fn(s, _operand(lib, dtype, rank))))
    mismatches = _compare_cases(cases, torch)
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_promotion_between_tensors(dtype, rank, op, torch):
    fn = OPS[op]
    cases = [(f"{dtype}[{rank}] {op} {other}[{other_rank}]",
              lambda lib, o=other, r=other_rank: fn(_operand(lib, dtype, rank), _operand(lib, o, r)))
             for other, other_rank in itertools.product(DTYPES, RANKS)]
    mismatches = _compare_cases(cases, torch)
    assert not mismatches, "\n".join(mismatches)


def test_promotion_of_named_functions(torch):
    pairs = [("int64", "float64"), ("float32", "float64"), ("int64", "int64"), ("bool", "int64")]
    cases = [(f"{name}({a}, {b})",
              lambda lib, n=name, a=a, b=b: getattr(lib, n)(_operand(lib, a, "dim"), _operand(lib, b, "0d")))
             for name in ("add", "sub", "mul", "div") for a, b in pairs]
    mismatches = _compare_cases(cases, torch)
    assert not mismatches, "\n".join(mismatches)


# ============================================================================
# In-place operations on tensors that do not require grad
# ============================================================================

INPLACE = {
    "add_scalar": lambda lib, t: t.add_(2),
    "add_float_scalar": lambda lib, t: t.add_(0.5),
    "add_tensor": lambda lib, t: t.add_(lib.tensor([1.0, 2.0, 3.0])),
    "add_int_tensor_alpha": lambda lib, t: t.add_(lib.tensor([1, 2, 3]), alpha=2),
    "add_broadcast": lambda lib, t: t.add_(lib.ones(1)),
    "add_broadcast_error": lambda lib, t: t.add_(lib.ones(2, 3)),
    "sub_scalar": lambda lib, t: t.sub_(1),
    "sub_float_scalar": lambda lib, t: t.sub_(1.5),
    "sub_tensor": lambda lib, t: t.sub_(lib.tensor([1, 1, 1])),
    "mul_scalar": lambda lib, t: t.mul_(3),
    "mul_float_scalar": lambda lib, t: t.mul_(2.5),
    "mul_0d_float64": lambda lib, t: t.mul_(lib.tensor(2.0, dtype=lib.float64)),
    "div_scalar": lambda lib, t: t.div_(4),
    "div_tensor": lambda lib, t: t.div_(lib.tensor([2.0, 4.0, 8.0])),
    "zero_": lambda lib, t: t.zero_(),
    "fill_int": lambda lib, t: t.fill_(7),
    "fill_float": lambda lib, t: t.fill_(7.5),
    "fill_bool": lambda lib, t: t.fill_(True),
    "fill_0d_tensor": lambda lib, t: t.fill_(lib.tensor(2.5, dtype=lib.float64)),
    "fill_1d_tensor_error": lambda lib, t: t.fill_(lib.ones(3)),
    "iadd": lambda lib, t: operator.iadd(t, 1),
    "isub": lambda lib, t: operator.isub(t, 1),
    "imul": lambda lib, t: operator.imul(t, 2),
    "itruediv": lambda lib, t: operator.itruediv(t, 2),
    "iadd_tensor": lambda lib, t: operator.iadd(t, lib.tensor([0.5, 1.5, 2.5], dtype=lib.float64)),
    "copy_float": lambda lib, t: t.copy_(lib.tensor([0.5, -1.5, 2.7], dtype=lib.float64)),
    "copy_int": lambda lib, t: t.copy_(lib.tensor([4, 5, 6])),
    "copy_bool": lambda lib, t: t.copy_(lib.tensor([True, False, True])),
    "copy_broadcast": lambda lib, t: t.copy_(lib.tensor([9])),
    "copy_number": lambda lib, t: t.copy_(5),
    "copy_shape_error": lambda lib, t: t.copy_(lib.ones(2)),
    "copy_broadcast_error": lambda lib, t: t.copy_(lib.ones(2, 3)),
    "clamp_numbers": lambda lib, t: t.clamp_(1, 2),
    "clamp_min": lambda lib, t: t.clamp_(min=0.5),
    "clamp_max_tensor": lambda lib, t: t.clamp_(max=lib.tensor([0.5, 0.5, 4.0])),
    "clamp_none": lambda lib, t: t.clamp_(),
    "clip_": lambda lib, t: t.clip_(0, 1),
}


@pytest.mark.parametrize("case", INPLACE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_matches_torch(dtype, case, torch):
    """Result, identity (``t.op_() is t``), dtype and the data left behind, also after errors."""
    def fn(lib):
        t = lib.tensor([1, 0, 3], dtype=getattr(lib, dtype))
        try:
            result = INPLACE[case](lib, t)
        except Exception as error:  # noqa: BLE001
            return ("error", type(error).__name__, text(error), t.tolist(), str(t.dtype))
        return ("ok", result is t, t.tolist(), str(t.dtype))
    results = {}
    for lib in (torch, symgrad):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            results[lib.__name__] = text(fn(lib))
    assert results["symgrad"] == results["torch"]


def test_inplace_keeps_the_python_object(torch):
    def fn(lib):
        t = lib.ones(3)
        original = t
        t += 1
        t *= 2
        t -= 0.5
        t /= 3
        return t is original, t
    assert_same_outcome(fn, torch)


# Version-bump effects: an in-place op on a tensor saved for backward makes backward fail.

VERSION_BUMPS = {
    "add_": lambda lib, t: t.add_(1),
    "sub_": lambda lib, t: t.sub_(1),
    "mul_": lambda lib, t: t.mul_(2),
    "div_": lambda lib, t: t.div_(2),
    "zero_": lambda lib, t: t.zero_(),
    "fill_": lambda lib, t: t.fill_(3.0),
    "iadd": lambda lib, t: operator.iadd(t, 1),
    "isub": lambda lib, t: operator.isub(t, 1),
    "imul": lambda lib, t: operator.imul(t, 2),
    "itruediv": lambda lib, t: operator.itruediv(t, 2),
    "twice": lambda lib, t: t.add_(1).mul_(2),
    "copy_": lambda lib, t: t.copy_(lib.ones(3)),
    "clamp_": lambda lib, t: t.clamp_(0, 1),
}


def _backward_outcome(build, lib):
    """Run ``build(lib)`` -> (loss, leaves), then backward; the error or every leaf's grad."""
    loss, leaves = build(lib)
    try:
        loss.backward()
    except RuntimeError as error:
        return ("raises", text(error).split(" Hint:")[0])  # torch's hint names torch.autograd.set_detect_anomaly
    return ("grads", [leaf.grad.tolist() for leaf in leaves])


def _w_and_x(lib):
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    x = lib.tensor([1.0, 3.0, 2.0], dtype=lib.float64)
    return w, x


@pytest.mark.parametrize("bump", VERSION_BUMPS)
def test_inplace_on_saved_constant_fails_backward(bump, torch):
    def build(lib):
        w, x = _w_and_x(lib)
        loss = (w * x).sum()  # MulBackward0 saves x to compute w's gradient
        VERSION_BUMPS[bump](lib, x)
        return loss, [w]
    expected = _backward_outcome(build, torch)
    assert expected[0] == "raises"
    assert _backward_outcome(build, symgrad) == expected


@pytest.mark.parametrize("bump", VERSION_BUMPS)
def test_inplace_on_unsaved_constant_is_harmless(bump, torch):
    def build(lib):
        w, x = _w_and_x(lib)
        loss = (w + x).sum()  # AddBackward0 saves nothing
        VERSION_BUMPS[bump](lib, x)
        return loss, [w]
    expected = _backward_outcome(build, torch)
    assert expected[0] == "grads"
    assert _backward_outcome(build, symgrad) == expected


@pytest.mark.parametrize("bump", ["add_", "zero_", "imul"])
def test_inplace_through_detached_alias_bumps_the_shared_version(bump, torch):
    def build(lib):
        w, _ = _w_and_x(lib)
        loss = (w * w).sum()
        VERSION_BUMPS[bump](lib, w.detach())
        return loss, [w]
    expected = _backward_outcome(build, torch)
    assert expected[0] == "raises"
    assert _backward_outcome(build, symgrad) == expected


def test_failed_inplace_does_not_bump_the_version(torch):
    def build(lib):
        w, x = _w_and_x(lib)
        loss = (w * x).sum()
        try:
            x.add_(lib.ones(2, 3))
        except RuntimeError:
            pass
        return loss, [w]
    expected = _backward_outcome(build, torch)
    assert expected[0] == "grads"
    assert _backward_outcome(build, symgrad) == expected


# In-place on a leaf that requires grad: an error, except under no_grad (an optimizer step).

LEAF_INPLACE = {
    "add_": lambda lib, w: w.add_(1),
    "sub_": lambda lib, w: w.sub_(lib.ones(3, dtype=lib.float64)),
    "mul_": lambda lib, w: w.mul_(2),
    "div_": lambda lib, w: w.div_(2),
    "zero_": lambda lib, w: w.zero_(),
    "fill_": lambda lib, w: w.fill_(1.0),
    "iadd": lambda lib, w: operator.iadd(w, 1),
    "isub": lambda lib, w: operator.isub(w, 0.1),
    "imul": lambda lib, w: operator.imul(w, 3),
    "itruediv": lambda lib, w: operator.itruediv(w, 4),
    "copy_": lambda lib, w: w.copy_(lib.zeros(3, dtype=lib.float64)),
    "clamp_": lambda lib, w: w.clamp_(0, 1),
    "clamp_tensor": lambda lib, w: w.clamp_(min=lib.zeros(3, dtype=lib.float64)),
}


@pytest.mark.parametrize("case", LEAF_INPLACE)
def test_inplace_on_leaf_requiring_grad_raises(case, torch):
    def fn(lib):
        w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        try:
            LEAF_INPLACE[case](lib, w)
        except RuntimeError as error:
            return ("raises", text(error), w.tolist())
        return ("ok", w.tolist())
    expected = fn(torch)
    assert expected[0] == "raises"
    assert fn(symgrad) == expected


@pytest.mark.parametrize("case", LEAF_INPLACE)
def test_inplace_on_leaf_allowed_under_no_grad(case, torch):
    def fn(lib):
        w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        with lib.no_grad():
            result = LEAF_INPLACE[case](lib, w)
        return (result is w, w.tolist(), w.is_leaf, w.requires_grad, w.grad_fn, str(w.dtype))
    assert text(fn(symgrad)) == text(fn(torch))


def test_optimizer_step_under_no_grad(torch):
    """``w -= lr * w.grad`` under no_grad, then ``w.grad.zero_()``: the usual training step."""
    def fn(lib):
        w = lib.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=lib.float64, requires_grad=True)
        x = lib.tensor([1.0, -2.0], dtype=lib.float64)
        history = []
        for _ in range(3):
            loss = ((w @ x) ** 2).sum()
            loss.backward()
            with lib.no_grad():
                w -= 0.1 * w.grad
            history.append((loss.item(), w.grad.tolist(), w.tolist(), w.is_leaf, w.requires_grad))
            w.grad.zero_()
        return history
    ours, theirs = fn(symgrad), fn(torch)
    for (l1, g1, w1, *flags1), (l2, g2, w2, *flags2) in zip(ours, theirs):
        np.testing.assert_allclose(l1, l2, rtol=1e-12)
        np.testing.assert_allclose(g1, g2, rtol=1e-12)
        np.testing.assert_allclose(w1, w2, rtol=1e-12)
        assert flags1 == flags2


# copy_ and clamp_ inside a recorded graph: CopyBackwards / ClampBackward1 / ClampBackward0, as PyTorch

RECORDED_INPLACE = {
    "copy_into_constant": lambda lib, w: lib.ones(3, dtype=lib.float64).copy_(w * 2),
    "copy_broadcast_into_constant": lambda lib, w: lib.ones(2, 3, dtype=lib.float64).copy_(w),
    "copy_over_history": lambda lib, w: (w * 3).copy_(lib.zeros(3, dtype=lib.float64)),
    "copy_converted": lambda lib, w: lib.ones(3).copy_(w),
    "clamp_numbers": lambda lib, w: (w * 1).clamp_(-0.5, 1.0),
    "clamp_tensor": lambda lib, w: (w * 1).clamp_(min=lib.tensor([0.0, 0.0, 3.0], dtype=lib.float64)),
    "zero_over_history": lambda lib, w: (w * 3).zero_(),  # ZeroBackward0: a zero gradient
    "fill_over_history": lambda lib, w: (w * 3).fill_(2.5),  # FillBackward2
    "fill_with_0d_tensor": lambda lib, w: (w * 3).fill_(w[1] * 2),  # FillBackward3: the value gets the sum
    "fill_constant_with_0d_tensor": lambda lib, w: lib.ones(3, dtype=lib.float64).fill_(w.sum()),
}


@pytest.mark.parametrize("case", RECORDED_INPLACE)
def test_recorded_copy_and_clamp_match_torch(case, torch):
    def fn(lib):
        w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        out = RECORDED_INPLACE[case](lib, w)
        (out * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum().backward()
        return out.grad_fn.name(), out.detach().tolist(), w.grad.tolist(), str(out.dtype)
    assert text(fn(symgrad)) == text(fn(torch))


# finite differences through the recorded in-place ops and conversions (CopyBackwards, FillBackward2/3,
# ZeroBackward0, ToCopyBackward0), which the generic gradcheck of public functions cannot reach
DIFFERENTIABLE_INPLACE = {
    "copy_": lambda w, v: (w * 1).copy_(v) * w,
    "copy_broadcast": lambda w, v: (w.expand(2, 3) * 1).copy_(v).sum(0) * w,
    "fill_number": lambda w, v: (w * 1).fill_(2.5) * w + v,
    "fill_0d_tensor": lambda w, v: (w * v).fill_(v.sum() ** 2) * w,
    "zero_": lambda w, v: (w * v).zero_() + w * v,
    "clamp_": lambda w, v: (w * v).clamp_(-0.5, 0.5),
}


@pytest.mark.parametrize("case", DIFFERENTIABLE_INPLACE)
def test_recorded_inplace_gradients_match_finite_differences(case):
    w = symgrad.tensor([0.7, -1.2, 0.3], dtype=symgrad.float64, requires_grad=True)
    v = symgrad.tensor([-0.4, 0.9, 1.1], dtype=symgrad.float64, requires_grad=True)
    assert symgrad.gradcheck(DIFFERENTIABLE_INPLACE[case], (w, v))


def test_conversion_gradient_matches_finite_differences():
    """Through float32 and back: the derivative is 1; the step is large enough that float32 rounding is far
    below the tolerance."""
    w = symgrad.tensor([0.7, -1.2, 0.3], dtype=symgrad.float64, requires_grad=True)
    assert symgrad.gradcheck(lambda t: t.float().double() * t, (w,), eps=1e-2, atol=1e-4)
    assert symgrad.gradcheck(lambda t: t.to(symgrad.float32).to(t) * 3, (w,), eps=1e-2, atol=1e-4)
