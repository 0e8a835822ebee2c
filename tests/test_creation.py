"""Creation functions of issue 3 against PyTorch: ``full``, ``full_like``, ``eye``, ``arange``,
``linspace``, ``randint``, ``randn_like``.

Values are compared bit for bit (``arange`` and ``linspace`` reproduce the
arithmetic of PyTorch's CPU kernels; the random functions its generator),
with dtypes, shapes, ``requires_grad`` and PyTorch's errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import symgrad

torch = pytest.importorskip("torch")


def text(x) -> str:
    return str(x).replace("torch.", "symgrad.")


def outcome(fn, lib):
    """("returns", repr, arrays) or ("raises", exception type name, message) of ``fn(lib)``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = fn(lib)
    except Exception as error:  # noqa: BLE001 - the exception is part of the behaviour compared
        return ("raises", type(error).__name__, text(error))
    results = result if isinstance(result, tuple) else (result,)
    return ("returns", text(repr(result)), tuple(r.detach().numpy().copy() for r in results))


def assert_same_outcome(fn):
    expected, actual = outcome(fn, torch), outcome(fn, symgrad)
    assert actual[:2] == expected[:2]
    if expected[0] == "returns":
        for a, e in zip(actual[2], expected[2]):
            assert a.dtype == e.dtype and a.shape == e.shape
            np.testing.assert_array_equal(a, e)  # bit for bit (NaN equal to NaN)


CASES = {
    # full / full_like: the dtype follows the value
    "full_float": lambda lib: lib.full((2, 3), 1.5),
    "full_int": lambda lib: lib.full((2,), 7),
    "full_bool": lambda lib: lib.full((2,), True),
    "full_list_size_dtype": lambda lib: lib.full([2, 1], 7, dtype=lib.float64),
    "full_0d": lambda lib: lib.full((), -2.5),
    "full_empty": lambda lib: lib.full((0, 3), 1.0),
    "full_requires_grad": lambda lib: lib.full((2,), 0.5, requires_grad=True),
    "full_device": lambda lib: lib.full((2,), 0.5, device="cpu"),
    "full_like_int_truncates": lambda lib: lib.full_like(lib.ones(2, dtype=lib.int64), 2.7),
    "full_like_dtype": lambda lib: lib.full_like(lib.ones(2), 2.7, dtype=lib.float64),
    "full_like_requires_grad": lambda lib: lib.full_like(lib.ones(2, 2), -1.0, requires_grad=True),
    "full_like_bool": lambda lib: lib.full_like(lib.ones(2, dtype=lib.bool), 0),
    # eye
    "eye": lambda lib: lib.eye(3),
    "eye_rectangular_int": lambda lib: lib.eye(2, 3, dtype=lib.int64),
    "eye_tall": lambda lib: lib.eye(4, 2, dtype=lib.float64),
    "eye_empty": lambda lib: lib.eye(0),
    "eye_requires_grad": lambda lib: lib.eye(2, requires_grad=True),
    # arange: int64 for ints, the default float dtype otherwise; end excluded
    "arange_end": lambda lib: lib.arange(5),
    "arange_start_end": lambda lib: lib.arange(2, 7),
    "arange_negative_step": lambda lib: lib.arange(10, 0, -3),
    "arange_empty": lambda lib: lib.arange(5, 5),
    "arange_float_end": lambda lib: lib.arange(5.5),
    "arange_float_step": lambda lib: lib.arange(1, 2.5, 0.5),
    "arange_tenths": lambda lib: lib.arange(0, 1, 0.1),
    "arange_irregular": lambda lib: lib.arange(-3.7, 10.2, 0.37),
    "arange_irregular_float64": lambda lib: lib.arange(-3.7, 10.2, 0.37, dtype=lib.float64),
    "arange_large_offset": lambda lib: lib.arange(1e6, 1e6 + 100, 0.7),
    "arange_negative_float_step": lambda lib: lib.arange(5, -3, -0.3, dtype=lib.float64),
    "arange_thirds": lambda lib: lib.arange(0.0, 100.0, 1 / 3),
    "arange_long_float64": lambda lib: lib.arange(0.1, 100.3, 0.0123, dtype=lib.float64),
    "arange_long_float32": lambda lib: lib.arange(-1e-3, 7.77, 0.0031),
    "arange_float_dtype": lambda lib: lib.arange(3, dtype=lib.float32),
    "arange_int_dtype_float_bounds": lambda lib: lib.arange(-2.5, 3.7, 1.5, dtype=lib.int64),
    "arange_int_dtype_negative_step": lambda lib: lib.arange(5, -2.5, -2.5, dtype=lib.int64),
    "arange_tensor_end": lambda lib: lib.arange(lib.tensor(3)),
    "arange_bool_end": lambda lib: lib.arange(True),
    "arange_requires_grad": lambda lib: lib.arange(0, 1, 0.25, requires_grad=True),
    # linspace
    "linspace": lambda lib: lib.linspace(0, 1, 5),
    "linspace_one": lambda lib: lib.linspace(0, 1, 1),
    "linspace_zero": lambda lib: lib.linspace(0, 1, 0),
    "linspace_int": lambda lib: lib.linspace(0, 10, 5, dtype=lib.int64),
    "linspace_int_negative": lambda lib: lib.linspace(-7, 3, 9, dtype=lib.int64),
    "linspace_float64": lambda lib: lib.linspace(-1.3, 7.9, 7, dtype=lib.float64),
    "linspace_long": lambda lib: lib.linspace(0.1, 100.3, 8147),
    "linspace_long_float64": lambda lib: lib.linspace(-1e-3, 7.77, 2507, dtype=lib.float64),
    "linspace_decreasing": lambda lib: lib.linspace(5, -3, 27),
    "linspace_requires_grad": lambda lib: lib.linspace(0, 1, 3, requires_grad=True),
    # random: the same stream as PyTorch's generator
    "randint_high": lambda lib: (lib.manual_seed(0), lib.randint(10, (5,)))[1],
    "randint_low_high": lambda lib: (lib.manual_seed(1), lib.randint(-5, 5, (3, 4)))[1],
    "randint_wide_range": lambda lib: (lib.manual_seed(2), lib.randint(-5, 1 << 40, (6,)))[1],
    "randint_float_dtype": lambda lib: (lib.manual_seed(3), lib.randint(0, 3, (4,), dtype=lib.float32))[1],
    "randint_keywords": lambda lib: (lib.manual_seed(4), lib.randint(low=2, high=9, size=(2, 2)))[1],
    "randint_then_randn": lambda lib: (lib.manual_seed(5), lib.randint(7, (3,)), lib.randn(2))[1:],
    "randn_like": lambda lib: (lib.manual_seed(0), lib.randn_like(lib.zeros(5, 3)))[1],
    "randn_like_large_float64": lambda lib: (lib.manual_seed(6), lib.randn_like(lib.zeros(4, 9, dtype=lib.float64)))[1],
    "randn_like_dtype": lambda lib: (lib.manual_seed(7), lib.randn_like(lib.zeros(3), dtype=lib.float64))[1],
    "randn_like_requires_grad": lambda lib: (lib.manual_seed(8), lib.randn_like(lib.zeros(2), requires_grad=True))[1],
    # errors
    "full_int_size": lambda lib: lib.full(2, 7),
    "full_int_requires_grad": lambda lib: lib.full((2,), 7, requires_grad=True),
    "eye_negative_n": lambda lib: lib.eye(-1),
    "eye_negative_m": lambda lib: lib.eye(2, -1),
    "arange_zero_step": lambda lib: lib.arange(0, 5, 0),
    "arange_wrong_sign": lambda lib: lib.arange(0, 5, -1),
    "arange_backwards": lambda lib: lib.arange(5, 0),
    "arange_wrong_sign_float": lambda lib: lib.arange(0.0, 1.0, -0.1),
    "arange_infinite": lambda lib: lib.arange(float("inf")),
    "arange_nan": lambda lib: lib.arange(0, float("nan")),
    "arange_int_requires_grad": lambda lib: lib.arange(3, requires_grad=True),
    "arange_int_dtype_fractional_step": lambda lib: lib.arange(0, 2.5, 0.5, dtype=lib.int64),
    "arange_bool_dtype": lambda lib: lib.arange(3, dtype=lib.bool),
    "linspace_negative_steps": lambda lib: lib.linspace(0, 1, -1),
    "randint_empty_range": lambda lib: lib.randint(3, 3, (2,)),
    "randint_reversed_range": lambda lib: lib.randint(3, 1, (2,)),
    "randint_int_size": lambda lib: lib.randint(0, 3),
    "randint_requires_grad": lambda lib: lib.randint(0, 3, (2,), requires_grad=True),
    "randn_like_int": lambda lib: lib.randn_like(lib.ones(2, dtype=lib.int64)),
}


@pytest.mark.parametrize("case", CASES)
def test_creation_matches_torch(case):
    assert_same_outcome(CASES[case])


def test_randint_and_randn_like_are_reproducible_with_manual_seed():
    draws = []
    for _ in range(2):
        symgrad.manual_seed(11)
        draws.append((symgrad.randint(100, (20,)).numpy(), symgrad.randn_like(symgrad.zeros(30)).numpy()))
    for a, b in zip(*draws):
        np.testing.assert_array_equal(a, b)


def test_other_devices_are_rejected():
    for make in (lambda: symgrad.full((2,), 1.0, device="cuda"), lambda: symgrad.eye(2, device="cuda"),
                 lambda: symgrad.arange(3, device="meta"), lambda: symgrad.linspace(0, 1, 3, device="cuda:0"),
                 lambda: symgrad.randint(3, (2,), device="cuda"), lambda: symgrad.randn_like(symgrad.ones(2),
                                                                                            device="cuda"),
                 lambda: symgrad.full_like(symgrad.ones(2), 1.0, device="cuda")):
        with pytest.raises(RuntimeError, match="CPU only"):
            make()


def test_arange_matches_torch_on_random_ranges():
    """PyTorch's kernel is reproduced bit for bit (a fused multiply-add per value, 256-bit vectors)."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        start, length = rng.normal(scale=100), rng.uniform(1, 3000)
        step = rng.uniform(0.001, 5) * rng.choice([-1, 1])
        end = start + np.sign(step) * length * abs(step) / 10
        for dtype in ("float32", "float64"):
            expected = torch.arange(start, end, step, dtype=getattr(torch, dtype)).numpy()
            np.testing.assert_array_equal(symgrad.arange(start, end, step, dtype=getattr(symgrad, dtype)).numpy(),
                                          expected)
            expected = torch.linspace(start, end, int(length), dtype=getattr(torch, dtype)).numpy()
            np.testing.assert_array_equal(symgrad.linspace(start, end, int(length),
                                                           dtype=getattr(symgrad, dtype)).numpy(), expected)
