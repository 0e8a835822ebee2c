"""Tests for ``symgrad._tensor_str``: output must match PyTorch's ``repr``.

The first group uses strings copied verbatim from real PyTorch 2.13 output and
runs without torch.  The second group compares against ``repr(torch.Tensor)``
live and is skipped when torch is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from symgrad._tensor_str import (
    get_printoptions,
    printoptions,
    set_printoptions,
    tensor_repr,
)

_DEFAULT_OPTIONS = {
    "precision": 4,
    "threshold": 1000,
    "edgeitems": 3,
    "linewidth": 80,
    "sci_mode": None,
}


@pytest.fixture(autouse=True)
def _restore_symgrad_options() -> Iterator[None]:
    """Every test starts from, and restores, the current symgrad options."""
    saved = get_printoptions()
    yield
    set_printoptions(**saved)


def _repr(data: Any, dtype: str = "float32", **kwargs: Any) -> str:
    """Format ``data`` as ``dtype`` with float32 as the default float dtype."""
    array = np.asarray(data, dtype=dtype)
    show = dtype not in ("float32", "int64", "bool")
    return tensor_repr(array, dtype_name=dtype, show_dtype=show, **kwargs)


# --------------------------------------------------------------------------
# Hard-coded expectations (copied from PyTorch 2.13 output; no torch needed).
# --------------------------------------------------------------------------

_ROW = [0.2661, 0.1179, 0.0027]

HARD_CODED = [
    ("ones", np.ones(5), "float32", {}, "tensor([1., 1., 1., 1., 1.])"),
    ("scalar", 0.6819, "float32", {}, "tensor(0.6819)"),
    (
        "matrix_5x3",
        [_ROW] * 5,
        "float32",
        {},
        (
            "tensor([[0.2661, 0.1179, 0.0027],\n"
            "        [0.2661, 0.1179, 0.0027],\n"
            "        [0.2661, 0.1179, 0.0027],\n"
            "        [0.2661, 0.1179, 0.0027],\n"
            "        [0.2661, 0.1179, 0.0027]])"
        ),
    ),
    ("int_valued_scalar", 3.0, "float32", {}, "tensor(3.)"),
    ("int_scalar", 5, "int64", {}, "tensor(5)"),
    ("bool_scalar", True, "bool", {}, "tensor(True)"),
    ("bools", [True, False], "bool", {}, "tensor([ True, False])"),
    ("sci", [1e-5, 1.0], "float32", {}, "tensor([1.0000e-05, 1.0000e+00])"),
    ("million", [1e6, 2e6], "float32", {}, "tensor([1000000., 2000000.])"),
    (
        "nonfinite",
        [np.nan, np.inf, -np.inf, 1.5],
        "float32",
        {},
        "tensor([   nan,    inf,   -inf, 1.5000])",
    ),
    ("negative_zero", [-0.0, 1.0], "float32", {}, "tensor([-0., 1.])"),
    ("empty", np.zeros(0), "float32", {}, "tensor([])"),
    ("empty_0x3", np.zeros((0, 3)), "float32", {}, "tensor([], size=(0, 3))"),
    ("empty_f64", np.zeros(0), "float64", {}, "tensor([], dtype=symgrad.float64)"),
    ("empty_int", np.zeros(0), "int64", {}, "tensor([], dtype=symgrad.int64)"),
    (
        "ints",
        [[1, -20], [300, 4]],
        "int64",
        {},
        "tensor([[  1, -20],\n        [300,   4]])",
    ),
    (
        "f64",
        [1.5, 2.0],
        "float64",
        {},
        "tensor([1.5000, 2.0000], dtype=symgrad.float64)",
    ),
    (
        "grad_fn",
        [2.0, 3.0],
        "float32",
        {"grad_suffix": "grad_fn=<AddBackward0>"},
        "tensor([2., 3.], grad_fn=<AddBackward0>)",
    ),
    (
        "requires_grad",
        [1.0, 2.0],
        "float32",
        {"grad_suffix": "requires_grad=True"},
        "tensor([1., 2.], requires_grad=True)",
    ),
    (
        "3d",
        np.arange(12.0).reshape(2, 2, 3),
        "float32",
        {},
        (
            "tensor([[[ 0.,  1.,  2.],\n"
            "         [ 3.,  4.,  5.]],\n"
            "\n"
            "        [[ 6.,  7.,  8.],\n"
            "         [ 9., 10., 11.]]])"
        ),
    ),
    (
        "wrap",
        np.arange(30, dtype=np.float32) / np.float32(7),
        "float32",
        {},
        (
            "tensor([0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,\n"
            "        1.2857, 1.4286, 1.5714, 1.7143, 1.8571, 2.0000, 2.1429, 2.2857, 2.4286,\n"
            "        2.5714, 2.7143, 2.8571, 3.0000, 3.1429, 3.2857, 3.4286, 3.5714, 3.7143,\n"
            "        3.8571, 4.0000, 4.1429])"
        ),
    ),
    (
        "summarize",
        np.arange(2000),
        "int64",
        {},
        "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])",
    ),
    # float32 0.00125 is 0.0012499999..., so it rounds down; float64 rounds up.
    ("float32_exact", [0.00125, 1.0], "float32", {}, "tensor([0.0012, 1.0000])"),
    # Line breaks are decided with torch's shorter "dtype=torch.float64" width.
    (
        "suffix_layout",
        np.full((2, 3), -0.5),
        "float64",
        {"grad_suffix": "requires_grad=True"},
        (
            "tensor([[-0.5000, -0.5000, -0.5000],\n"
            "        [-0.5000, -0.5000, -0.5000]], dtype=symgrad.float64, requires_grad=True)"
        ),
    ),
]


@pytest.mark.parametrize(
    ("data", "dtype", "kwargs", "expected"),
    [case[1:] for case in HARD_CODED],
    ids=[case[0] for case in HARD_CODED],
)
def test_hard_coded(
    data: Any, dtype: str, kwargs: dict[str, Any], expected: str
) -> None:
    assert _repr(data, dtype, **kwargs) == expected


HARD_CODED_OPTIONS = [
    ("precision", {"precision": 2}, [1.12345, 3.0], "tensor([1.12, 3.00])"),
    (
        "threshold",
        {"threshold": 5},
        np.arange(10.0),
        "tensor([0., 1., 2.,  ..., 7., 8., 9.])",
    ),
    (
        "short",
        {"profile": "short"},
        np.arange(10.0).reshape(1, 10) * 1.1,
        "tensor([[0.00, 1.10, 2.20, 3.30, 4.40, 5.50, 6.60, 7.70, 8.80, 9.90]])",
    ),
    ("sci_on", {"sci_mode": True}, [1.5, 2.0], "tensor([1.5000e+00, 2.0000e+00])"),
    (
        "sci_off",
        {"sci_mode": False},
        [1e-5, 1e9],
        "tensor([         0.0000, 1000000000.0000])",
    ),
    (
        "linewidth",
        {"linewidth": 40},
        np.arange(12.0) / 3,
        (
            "tensor([0.0000, 0.3333, 0.6667, 1.0000,\n"
            "        1.3333, 1.6667, 2.0000, 2.3333,\n"
            "        2.6667, 3.0000, 3.3333, 3.6667])"
        ),
    ),
    (
        "edgeitems_0",
        {"edgeitems": 0, "threshold": 5},
        np.arange(10.0).reshape(2, 5),
        "tensor([...], size=(2, 5))",
    ),
]


@pytest.mark.parametrize(
    ("options", "data", "expected"),
    [case[1:] for case in HARD_CODED_OPTIONS],
    ids=[case[0] for case in HARD_CODED_OPTIONS],
)
def test_hard_coded_options(options: dict[str, Any], data: Any, expected: str) -> None:
    set_printoptions(**options)
    assert _repr(data) == expected


def test_printoption_profiles_and_reset() -> None:
    set_printoptions(profile="default")
    assert get_printoptions() == _DEFAULT_OPTIONS
    set_printoptions(profile="short", linewidth=100, sci_mode=True)
    assert get_printoptions() == {
        **_DEFAULT_OPTIONS,
        "precision": 2,
        "edgeitems": 2,
        "linewidth": 100,
        "sci_mode": True,
    }
    set_printoptions(precision=3)  # like torch, an omitted sci_mode resets it
    assert get_printoptions()["sci_mode"] is None
    set_printoptions(profile="full")
    assert get_printoptions()["threshold"] == float("inf")
    set_printoptions(profile="default")
    assert get_printoptions() == _DEFAULT_OPTIONS


def test_printoptions_context_manager_restores() -> None:
    before = get_printoptions()
    with printoptions(precision=1):
        assert _repr([1.25, 2.0]) == "tensor([1.2, 2.0])"
    assert get_printoptions() == before


def test_rejects_complex() -> None:
    with pytest.raises(TypeError):
        tensor_repr(np.array([1j]), dtype_name="complex128", show_dtype=True)


# --------------------------------------------------------------------------
# Live comparison with PyTorch.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch() -> Any:
    """The torch module (the oracle); skips these tests when it is missing."""
    return pytest.importorskip("torch")


@pytest.fixture
def torch_options(torch: Any) -> Iterator[None]:
    """Restore torch's print options after a test changes them."""
    saved = torch._tensor_str.get_printoptions()
    yield
    torch.set_printoptions(**saved)


def _torch_repr_and_ours(
    torch: Any, data: np.ndarray, grad: str | None = None
) -> tuple[str, str]:
    """Return ``(expected, actual)`` for ``data`` (optionally with autograd info)."""
    tensor = torch.from_numpy(np.array(data))
    if grad is not None:
        tensor.requires_grad_(True)
        if grad == "grad_fn":
            tensor = tensor * 1
    if tensor.grad_fn is not None:
        grad_suffix: str | None = f"grad_fn=<{type(tensor.grad_fn).__name__}>"
    elif tensor.requires_grad:
        grad_suffix = "requires_grad=True"
    else:
        grad_suffix = None
    show_dtype = tensor.dtype not in (
        torch.get_default_dtype(),
        torch.int64,
        torch.bool,
    )
    expected = repr(tensor).replace("torch.", "symgrad.")
    actual = tensor_repr(
        np.asarray(data),
        dtype_name=str(tensor.dtype).removeprefix("torch."),
        show_dtype=show_dtype,
        grad_suffix=grad_suffix,
    )
    return expected, actual


def _values(rng: np.random.Generator, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """Float64 test values of one ``kind`` (a family of magnitudes/specials)."""
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "mixed":  # each element scaled by 1e-8 .. 1e8
        return rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 9, shape)
    if kind == "scaled":  # one common magnitude per array
        return rng.standard_normal(shape) * 10.0 ** rng.integers(-9, 10)
    if kind == "integral":
        return np.round(rng.standard_normal(shape) * 10.0 ** rng.integers(0, 10))
    if kind == "halves":
        return rng.integers(-6, 6, shape) * 0.5
    specials = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -2.5, 1e-5, 3e9, 0.1]
    return rng.choice(specials, shape)


_SHAPES = [
    (),
    (1,),
    (5,),
    (7, 3),
    (2, 3, 4),
    (2, 2, 2, 3),
    (0,),
    (0, 3),
    (2, 0),
    (40,),
    (1200,),
    (35, 31),
    (12, 10, 9),
]
_FLOAT_KINDS = ["normal", "mixed", "scaled", "integral", "halves", "specials"]


def _random_cases() -> list[tuple[str, np.ndarray, str | None]]:
    """A fixed, broad set of arrays: every shape x float kind x float dtype, plus ints/bools."""
    rng = np.random.default_rng(1234)
    cases = []
    for shape in _SHAPES:
        label = "x".join(map(str, shape)) or "0d"
        for kind in _FLOAT_KINDS:
            for dtype in (np.float32, np.float64):
                values = _values(rng, kind, shape).astype(dtype)
                grad = [None, "requires_grad", "grad_fn"][len(cases) % 3]
                cases.append((f"{label}-{kind}-{values.dtype}-{grad}", values, grad))
        magnitude = 10 ** int(rng.integers(1, 19))
        cases.append(
            (f"{label}-int64", rng.integers(-magnitude, magnitude, shape), None)
        )
        cases.append((f"{label}-bool", np.asarray(rng.random(shape) < 0.5), None))
    return cases


_RANDOM_CASES = _random_cases()


@pytest.mark.parametrize(
    ("data", "grad"),
    [case[1:] for case in _RANDOM_CASES],
    ids=[case[0] for case in _RANDOM_CASES],
)
def test_matches_torch_random(torch: Any, data: np.ndarray, grad: str | None) -> None:
    expected, actual = _torch_repr_and_ours(torch, data, grad)
    assert actual == expected


_EXAMPLES = [
    np.ones(5, np.float32),
    np.array(0.6819, np.float32),
    np.array([1e-5, 1.0], np.float32),
    np.array([1e6, 1.0]),
    np.array([1e8, 1.0]),
    np.array([1e300, 1e-300]),
    np.array([5e-324, 1.0]),
    np.array([np.finfo(np.float32).max, 1.0], np.float32),
    np.array([-0.0, 0.0, 1.0]),
    np.array([np.nan, np.nan]),
    np.array(-np.inf),
    np.zeros((2, 3)),
    np.zeros((2, 0, 3), bool),
    np.arange(4000).reshape(10, 20, 20),
    np.arange(3000.0).reshape(3, 10, 10, 10) / 7,
    np.array([1, 2, 3], np.int32),
    np.array([1.0, 2.5], np.float16),
]


@pytest.mark.parametrize("data", _EXAMPLES, ids=range(len(_EXAMPLES)))
def test_matches_torch_examples(torch: Any, data: np.ndarray) -> None:
    expected, actual = _torch_repr_and_ours(torch, data)
    assert actual == expected


_OPTIONS = [
    {"precision": 2},
    {"precision": 0},
    {"precision": 8},
    {"threshold": 5},
    {"threshold": 0},
    {"edgeitems": 1, "threshold": 10},
    {"edgeitems": 0, "threshold": 10},
    {"linewidth": 30},
    {"linewidth": 0},
    {"linewidth": 200},
    {"sci_mode": True},
    {"sci_mode": False},
    {"profile": "short"},
    {"profile": "full"},
    {"profile": "short", "precision": 6, "sci_mode": True},
]
_OPTION_DATA = [
    np.array(2.5),
    np.arange(24.0).reshape(2, 3, 4) / 3,
    np.array([1e-5, 0.5, 1e9, np.nan], np.float32),
    np.array([-7, 12, 345]),
    np.arange(1500.0) - 700,
]


@pytest.mark.usefixtures("torch_options")
@pytest.mark.parametrize("options", _OPTIONS, ids=[str(o) for o in _OPTIONS])
def test_matches_torch_with_printoptions(torch: Any, options: dict[str, Any]) -> None:
    torch.set_printoptions(**options)
    set_printoptions(**options)
    assert get_printoptions() == torch._tensor_str.get_printoptions()
    for data in _OPTION_DATA:
        grad = "requires_grad" if data.dtype.kind == "f" else None
        expected, actual = _torch_repr_and_ours(torch, data, grad)
        assert actual == expected
