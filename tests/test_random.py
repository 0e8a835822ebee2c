"""Tests for symgrad.random: bit-for-bit agreement with PyTorch's CPU RNG.

Tests that use the ``torch_`` fixture compare against a live torch (skipped when
torch is not installed); the others use values copied from real torch output.
"""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from symgrad.random import (
    DEFAULT_SEED,
    Generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    normal,
    randint,
    set_rng_state,
    uniform,
)

REPO = Path(__file__).resolve().parents[1]

SEEDS = [0, 1, 42, 2**32 + 5, 2**63 + 12345, 2**64 - 1]
SHAPES = [
    (0,), (1,), (2,), (3,), (15,), (16,), (17,), (31,), (32,), (33,), (100,), (1000,),
    (5, 3), (4, 4), (3, 7), (2, 0), (10, 10), (33, 31),
]  # fmt: skip
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def torch_():
    return pytest.importorskip("torch")


def tdtype(torch_, dtype):
    return {np.float32: torch_.float32, np.float64: torch_.float64}[dtype]


def assert_bits_equal(actual, expected):
    """Exact equality including dtype, shape, signed zeros and NaN payloads."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    uint = np.dtype(f"u{actual.dtype.itemsize}")
    np.testing.assert_array_equal(actual.view(uint), expected.view(uint))


def torch_normal_fill_is_avx2(torch_):
    # float32 randn with numel >= 16 uses avx_mathfun.h on x86 AVX2/AVX-512
    # (which this module emulates); other CPUs use libm logf/sinf/cosf.
    return torch_.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


# ---------------------------------------------------------------------------
# Oracle comparisons with torch
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_randn_matches_torch(torch_, seed, shape, dtype):
    if (
        dtype == np.float32
        and np.prod(shape) >= 16
        and not torch_normal_fill_is_avx2(torch_)
    ):
        pytest.skip("torch's float32 normal_fill is not the AVX2 kernel on this CPU")
    torch_.manual_seed(seed)
    expected = torch_.randn(*shape, dtype=tdtype(torch_, dtype)).numpy()
    manual_seed(seed)
    assert_bits_equal(normal(shape, dtype), expected)
    # the stream (and the scalar path's cached sample) continues identically
    expected = torch_.randn(3, dtype=tdtype(torch_, dtype)).numpy()
    assert_bits_equal(normal((3,), dtype), expected)


@pytest.mark.parametrize("seed", SEEDS[::2])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_rand_matches_torch(torch_, seed, shape):
    for dtype in DTYPES:
        torch_.manual_seed(seed)
        expected = torch_.rand(*shape, dtype=tdtype(torch_, dtype)).numpy()
        manual_seed(seed)
        assert_bits_equal(uniform(shape, dtype), expected)


@pytest.mark.parametrize("seed", SEEDS[1::2])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_randint_matches_torch(torch_, seed, shape):
    torch_.manual_seed(seed)
    expected = torch_.randint(-3, 17, shape).numpy()
    manual_seed(seed)
    assert_bits_equal(randint(-3, 17, shape), expected)


@pytest.mark.parametrize(
    "low, high",
    [
        (0, 1),
        (0, 2),
        (-5, 5),
        (0, 2**28 - 1),  # 32-bit draws
        (0, 2**28),  # 64-bit draws from here on
        (-(2**40), 2**40),
        (2**62, 2**63 - 1),
        (-(2**63), 2**63 - 1),  # range 2**64 - 1
        (-(2**63), -(2**63) + 3),
    ],
)
def test_randint_ranges_match_torch(torch_, low, high):
    torch_.manual_seed(123)
    expected = [torch_.randint(low, high, (37,)).numpy(), torch_.rand(3).numpy()]
    manual_seed(123)
    assert_bits_equal(randint(low, high, (37,)), expected[0])
    assert_bits_equal(uniform((3,), np.float32), expected[1])


def test_large_normal_matches_torch(torch_):
    if not torch_normal_fill_is_avx2(torch_):
        pytest.skip("torch's float32 normal_fill is not the AVX2 kernel on this CPU")
    torch_.manual_seed(2024)
    expected = [
        torch_.randn(200_003).numpy(),
        torch_.randn(20_000, dtype=torch_.float64).numpy(),
    ]
    manual_seed(2024)
    assert_bits_equal(normal((200_003,), np.float32), expected[0])
    assert_bits_equal(normal((20_000,), np.float64), expected[1])


MIXED_CALLS = [
    ("randn", (5, 3), np.float32),  # scalar path: 8 pairs, the 16th sample is cached
    ("randn", (3,), np.float32),  # the cached sample + one new pair
    ("randn", (20,), np.float64),  # normal_fill: neither uses nor sets the cache
    ("randn", (1,), np.float64),  # a new pair, r sin(theta) is cached
    ("randn", (1,), np.float32),  # the cached sample (shared between dtypes)
    ("rand", (7,), np.float64),
    ("randn", (2, 2), np.float64),
    ("randint", (9,), (0, 1000)),
    ("randn", (17,), np.float32),
    ("rand", (5,), np.float32),
    ("randn", (0,), np.float32),
    ("randn", (15,), np.float32),
    ("randint", (4,), (-(2**40), 2**41)),
    ("randn", (33,), np.float64),
    ("randn", (1,), np.float32),
    ("randn", (1,), np.float32),
]


def _torch_call(torch_, kind, shape, arg, generator=None):
    if kind == "randint":
        return torch_.randint(*arg, shape, generator=generator).numpy()
    fn = torch_.randn if kind == "randn" else torch_.rand
    return fn(*shape, dtype=tdtype(torch_, arg), generator=generator).numpy()


def _our_call(kind, shape, arg, generator=None):
    if kind == "randint":
        return randint(*arg, shape, generator=generator)
    fn = normal if kind == "randn" else uniform
    return fn(shape, arg, generator=generator)


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 1])
def test_mixed_call_sequence_matches_torch(torch_, seed):
    torch_.manual_seed(seed)
    expected = [_torch_call(torch_, *call) for call in MIXED_CALLS]
    manual_seed(seed)
    for call, exp in zip(MIXED_CALLS, expected):
        assert_bits_equal(_our_call(*call), exp)
    np.testing.assert_array_equal(get_rng_state(), torch_.get_rng_state().numpy())


def test_manual_seed_clears_cached_normal(torch_):
    torch_.manual_seed(5)
    torch_.randn(1, dtype=torch_.float64)
    torch_.manual_seed(6)
    expected = torch_.randn(3, dtype=torch_.float64).numpy()
    manual_seed(5)
    normal((1,), np.float64)
    manual_seed(6)
    assert_bits_equal(normal((3,), np.float64), expected)


def test_generator_objects_match_torch(torch_):
    tg, g = torch_.Generator(), Generator()
    assert g.initial_seed() == tg.initial_seed() == DEFAULT_SEED
    torch_.manual_seed(99)
    manual_seed(99)
    for call in MIXED_CALLS[:6]:
        assert_bits_equal(
            _our_call(*call, generator=g), _torch_call(torch_, *call, generator=tg)
        )
    tg.manual_seed(2**33 + 3)
    assert g.manual_seed(2**33 + 3) is g
    for call in MIXED_CALLS:
        assert_bits_equal(
            _our_call(*call, generator=g), _torch_call(torch_, *call, generator=tg)
        )
    np.testing.assert_array_equal(g.get_state(), tg.get_state().numpy())
    # the default streams were left untouched by the generator calls
    assert_bits_equal(
        uniform((4,), np.float64), torch_.rand(4, dtype=torch_.float64).numpy()
    )


@pytest.mark.parametrize("seed", [0, -1, 2**64 - 1, -(2**63), 2**32 + 5, True])
def test_seed_normalization_matches_torch(torch_, seed):
    torch_.manual_seed(seed)
    manual_seed(seed)
    assert initial_seed() == torch_.initial_seed()
    assert_bits_equal(normal((4,), np.float32), torch_.randn(4).numpy())


# ---------------------------------------------------------------------------
# RNG state
# ---------------------------------------------------------------------------


def test_state_bytes_match_torch(torch_):
    torch_.manual_seed(11)
    manual_seed(11)
    np.testing.assert_array_equal(
        get_rng_state(), torch_.get_rng_state().numpy()
    )  # fresh
    for n in (1, 623, 2, 5000):  # odd counts cross the 624-word block boundary
        uniform((n,), np.float32)
        torch_.rand(n)
        np.testing.assert_array_equal(get_rng_state(), torch_.get_rng_state().numpy())
    normal((3,), np.float64)  # leaves a cached normal sample in the state
    torch_.randn(3, dtype=torch_.float64)
    state = get_rng_state()
    assert state.dtype == np.uint8 and state.shape == (5056,)
    np.testing.assert_array_equal(state, torch_.get_rng_state().numpy())


def test_state_exchange_with_torch(torch_):
    torch_.manual_seed(3)
    torch_.rand(1000)
    torch_.randn(5, dtype=torch_.float64)  # cached sample travels with the state
    set_rng_state(torch_.get_rng_state())
    expected = [
        torch_.randn(1).numpy(),
        torch_.randn(40).numpy(),
        torch_.randint(0, 9, (6,)).numpy(),
    ]
    assert_bits_equal(normal((1,), np.float32), expected[0])
    assert_bits_equal(normal((40,), np.float32), expected[1])
    assert_bits_equal(randint(0, 9, (6,)), expected[2])
    # ...and back: torch continues from a state produced here
    normal((7,), np.float64)
    torch_.set_rng_state(torch_.from_numpy(get_rng_state()))
    assert_bits_equal(
        uniform((9,), np.float64), torch_.rand(9, dtype=torch_.float64).numpy()
    )
    assert_bits_equal(
        normal((1,), np.float64), torch_.randn(1, dtype=torch_.float64).numpy()
    )


_TEMPER = [
    (18, 0xFFFFFFFF, "r"),
    (15, 0xEFC60000, "l"),
    (7, 0x9D2C5680, "l"),
    (11, 0xFFFFFFFF, "r"),
]


def _untemper(y):
    """Invert mt19937's output tempering (to craft states with chosen outputs)."""
    y = np.asarray(y, dtype=np.uint32)
    for shift, mask, direction in _TEMPER:
        x = y.copy()
        for _ in range(32 // shift + 1):
            moved = (
                (x >> np.uint32(shift)) if direction == "r" else (x << np.uint32(shift))
            )
            x = y ^ (moved & np.uint32(mask))
        y = x
    return y


def _crafted_state(words):
    """A torch-format state whose next outputs are exactly ``words``."""
    g = Generator(0)
    state = g.get_state()
    key = state[24 : 24 + 8 * 624].view("<u8").copy()
    key[1 : 1 + len(words)] = _untemper(words)
    state[24 : 24 + 8 * 624] = key.view(np.uint8)
    state[8:12] = np.array([624], "<i4").view(np.uint8)  # left
    state[16:24] = np.array([1], "<u8").view(np.uint8)  # next
    return state


def test_crafted_state_yields_chosen_words():
    words = (
        np.random.default_rng(0)
        .integers(0, 2**32, 600, dtype=np.uint64)
        .astype(np.uint32)
    )
    g = Generator()
    g.set_state(_crafted_state(words))
    np.testing.assert_array_equal(
        uniform((600,), np.float32, generator=g) * 2.0**24, words & 0xFFFFFF
    )


# Raw words giving extreme uniforms; read pairwise (hi, lo) for 64-bit draws.
# float32: 0 (u1 = 1 -> radius 0), 0xFFFFFF (largest), high bits ignored.
# float64: (0xFFE00000, 0) -> 0 and (0x001FFFFF, 0xFFFFFFFF) -> largest.
EDGE_WORDS = np.array(
    [0, 0, 0xFFE00000, 0, 0x001FFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0x00FFFFFF]
    + [0xFF000000, 1, 0xDEADBEEF, 0x00800000, 0x80000000, 0, 0, 0xFFE00000]
    + [0xFFE00000, 0, 0xFFE00000, 0, 0x001FFFFF, 0xFFFFFFFF, 0, 0x00FFFFFF] * 4,
    dtype=np.uint32,
)


@pytest.mark.parametrize("n", [1, 2, 3, 16, 17, 31])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_edge_uniforms_match_torch(torch_, n, dtype):
    if dtype == np.float32 and n >= 16 and not torch_normal_fill_is_avx2(torch_):
        pytest.skip("torch's float32 normal_fill is not the AVX2 kernel on this CPU")
    words = np.concatenate([EDGE_WORDS, EDGE_WORDS[::-1]])
    state = _crafted_state(words)
    for kind in ("randn", "rand"):
        torch_.set_rng_state(torch_.from_numpy(state.copy()))
        expected = _torch_call(torch_, kind, (n,), dtype)
        set_rng_state(state)
        assert_bits_equal(_our_call(kind, (n,), dtype), expected)


def test_state_round_trip_without_torch():
    manual_seed(8)
    normal((5,), np.float64)  # leaves a cached sample
    state = get_rng_state()
    first = [
        normal((1,), np.float32),
        normal((50,), np.float32),
        randint(0, 10**12, (3,)),
    ]
    manual_seed(1)  # clobber
    set_rng_state(state)
    second = [
        normal((1,), np.float32),
        normal((50,), np.float32),
        randint(0, 10**12, (3,)),
    ]
    for a, b in zip(first, second):
        assert_bits_equal(a, b)
    set_rng_state(bytes(state))  # bytes work too
    assert_bits_equal(normal((1,), np.float32), first[0])
    assert initial_seed() == 8


def test_generator_state_round_trip_and_independence():
    g = Generator(5)
    state = g.get_state()
    x = normal((20,), np.float64, generator=g)
    manual_seed(0)
    ref = uniform((4,), np.float32)
    g.set_state(state)
    assert_bits_equal(normal((20,), np.float64, generator=g), x)
    manual_seed(0)
    assert_bits_equal(uniform((4,), np.float32), ref)


# ---------------------------------------------------------------------------
# Default (unseeded) stream
# ---------------------------------------------------------------------------

# Fresh interpreters: two load symgrad/random.py (directly, so that the check
# does not pay for importing the whole package), one runs torch unseeded.
_OUR_FRESH = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("symgrad_random", sys.argv[1])
R = importlib.util.module_from_spec(spec)
spec.loader.exec_module(R)
s = R.initial_seed()
x = R.normal((20,), np.float32)
R.manual_seed(s)
print(s, int(np.array_equal(x, R.normal((20,), np.float32))))
"""

_TORCH_FRESH = """
import torch
print(torch.initial_seed())
print(torch.randn(20).numpy().view("u4").tolist())
print(torch.randn(3, dtype=torch.float64).numpy().view("u8").tolist())
"""


def _torch_installed():
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture(scope="module", autouse=True)
def _fresh_process_handles():
    """Start the fresh interpreters as soon as this module's tests start.

    They run concurrently with the other tests; ``fresh_processes`` collects them.
    """
    module_path = str(REPO / "symgrad" / "random.py")
    commands = [[sys.executable, "-c", _OUR_FRESH, module_path]] * 2
    if _torch_installed():
        commands.append([sys.executable, "-c", _TORCH_FRESH])
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        for cmd in commands
    ]
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def fresh_processes(_fresh_process_handles):
    outputs = []
    for proc in _fresh_process_handles:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.splitlines())
    return outputs


def test_fresh_process_default_stream_is_nondeterministic_but_consistent(
    fresh_processes,
):
    # Like torch's default CPU generator: seeded from the OS at start-up, and
    # the unseeded stream is the one of manual_seed(initial_seed()).
    (line1,), (line2,) = fresh_processes[:2]
    (seed1, ok1), (seed2, ok2) = line1.split(), line2.split()
    assert ok1 == ok2 == "1"
    assert seed1 != seed2


def test_fresh_process_torch_default_stream(torch_, fresh_processes):
    seed, randn32, randn64 = fresh_processes[2]
    seed = int(seed)
    assert seed != DEFAULT_SEED  # torch's default CPU generator is seeded from the OS
    g = Generator(seed)
    assert g.initial_seed() == seed
    np.testing.assert_array_equal(
        normal((20,), np.float32, generator=g).view("u4"), json.loads(randn32)
    )
    np.testing.assert_array_equal(
        normal((3,), np.float64, generator=g).view("u8"), json.loads(randn64)
    )


# ---------------------------------------------------------------------------
# Expected values copied from torch 2.13 output (no torch needed)
# ---------------------------------------------------------------------------


def test_known_randn_float32_small():
    manual_seed(0)
    expected = [
        [1.541, -0.2934, -2.1788],
        [0.5684, -1.0845, -1.3986],
        [0.4033, 0.838, -0.7193],
        [-0.4033, -0.5966, 0.182],
        [-0.8567, 1.1006, -1.0712],
    ]
    out = normal((5, 3), np.float32)
    assert out.dtype == np.float32 and out.shape == (5, 3)
    np.testing.assert_array_equal(np.round(out.astype(np.float64), 4), expected)


def test_known_randn_float32_normal_fill_exact_bits():
    # torch.manual_seed(0); torch.randn(18).numpy().view(np.uint32)
    expected = [
        3213892485, 3214114954, 1058082820, 1061888861, 1058622859, 3217493339,
        3199125194, 1072508750, 1055894101, 3189866335, 3190918891, 1044111780,
        1068619456, 1070271744, 1064452252, 3210214195, 1064209456, 1067525943,
    ]  # fmt: skip
    manual_seed(0)
    np.testing.assert_array_equal(normal((18,), np.float32).view(np.uint32), expected)


def test_known_randn_float64():
    manual_seed(42)
    expected = [
        0.299556, 1.504572, 1.271591, 0.61867, -0.037203, 1.035247, -0.010086, 0.08948,
        0.038435, 0.390003, -0.579841, 0.875894, 0.392385, 1.108461, 0.865173, 0.855216,
        0.249412,
    ]  # fmt: skip
    np.testing.assert_array_equal(np.round(normal((17,), np.float64), 6), expected)
    manual_seed(42)
    np.testing.assert_allclose(
        normal((3,), np.float64), [0.33669035, 0.12880941, 0.23446236], atol=1e-8
    )
    np.testing.assert_allclose(
        normal((2,), np.float64), [0.23033303, -1.12285638], atol=1e-8
    )


def test_known_rand_and_randint():
    manual_seed(1)
    expected32 = [0.7576315999031067, 0.2793108820915222, 0.40306925773620605,
                  0.7346844673156738, 0.029281556606292725, 0.7998586297035217]  # fmt: skip
    np.testing.assert_array_equal(
        uniform((6,), np.float32), np.array(expected32, np.float32)
    )
    expected64 = [0.17709922744775553, 0.5560680561489946, 0.1094438536552077]
    np.testing.assert_array_equal(uniform((3,), np.float64), expected64)
    manual_seed(1)
    np.testing.assert_array_equal(
        randint(0, 10, (12,)), [5, 9, 4, 8, 3, 3, 1, 1, 9, 2, 8, 9]
    )
    np.testing.assert_array_equal(
        randint(-(2**40), 2**40, (3,)), [877839392327, -78727841284, 579543727385]
    )
    g = Generator()
    assert g.initial_seed() == 67280421310721
    expected = [
        0.267295241355896,
        0.8725283145904541,
        0.3352888226509094,
        0.4030158519744873,
    ]
    np.testing.assert_array_equal(
        uniform((4,), np.float32, generator=g), np.array(expected, np.float32)
    )


# ---------------------------------------------------------------------------
# API details
# ---------------------------------------------------------------------------


def test_output_types_and_shapes():
    manual_seed(0)
    assert normal((2, 3), np.float64).dtype == np.float64
    assert uniform((2, 3), "float32").shape == (2, 3)
    assert normal(4, np.float32).shape == (4,)
    assert normal((), np.float32).shape == ()
    assert randint(0, 5, (3, 0)).shape == (3, 0)
    assert randint(0, 5, (2,)).dtype == np.int64


def test_invalid_arguments():
    with pytest.raises(TypeError):
        normal((3,), np.int32)
    with pytest.raises(ValueError):
        randint(5, 5, (3,))
    with pytest.raises(ValueError):
        manual_seed(2**64)
    with pytest.raises(ValueError):
        set_rng_state(np.zeros(10, np.uint8))
    with pytest.raises(ValueError):
        uniform((-1, 3), np.float32)


def test_fma32_is_correctly_rounded_when_float64_would_double_round():
    from symgrad.random import _fma32

    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24 is a float32 rounding midpoint; a tiny
    # addend decides the rounding, but vanishes in a plain float64 sum.
    a = np.array([1 + 2**-12] * 3, np.float32)
    c = np.array([2.0**-80, -(2.0**-80), 0.0])
    lower = np.float32(1 + 2**-11)
    expected = np.array([np.nextafter(lower, np.float32(2)), lower, lower])
    assert_bits_equal(_fma32(a, a, c), expected)


def test_million_normals_is_fast():
    manual_seed(0)
    start = time.perf_counter()
    normal((1000, 1000), np.float32)
    normal((1000, 1000), np.float64)
    assert time.perf_counter() - start < 2.0
