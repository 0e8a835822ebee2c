"""Bit-exact reproduction of PyTorch's CPU random number generation.

This module reimplements, on top of NumPy, the pieces of ATen that produce
``torch.rand``, ``torch.randn`` and ``torch.randint`` on the CPU, so that::

    symgrad.random.manual_seed(s); symgrad.random.normal((5, 3), np.float32)

returns exactly the bits of ``torch.manual_seed(s); torch.randn(5, 3)``, and
successive calls continue the same stream as the corresponding torch calls.

How torch does it (ATen ``CPUGeneratorImpl``, ``DistributionsHelper.h``,
``TransformationHelper.h`` and ``native/cpu/DistributionTemplates.h``):

* The engine is a standard 32-bit Mersenne Twister (mt19937).  ``manual_seed(s)``
  runs the reference ``init_genrand`` on ``s mod 2**32`` but remembers the full
  64-bit seed for ``initial_seed()``.  ``random64()`` is two 32-bit draws, the
  first one being the high word.  NumPy's ``MT19937`` bit generator is the same
  engine, so its ``random_raw`` is used for the (vectorised) raw draws.
* ``rand``: float32 takes the low 24 bits of one 32-bit draw times 2**-24;
  float64 takes the low 53 bits of one 64-bit draw times 2**-53.
* ``randint(low, high)``: with ``range = high - low``, one 32-bit draw per
  element if ``range < 2**28`` else one 64-bit draw; the value is
  ``draw % range + low``.
* ``randn`` with ``numel >= 16`` ("normal_fill"): fill the output with uniforms
  of the output dtype, then Box-Muller on blocks of 16 (``u1 = 1 - data[j]``,
  ``u2 = data[j + 8]``, ``data[j] = r cos(theta)``, ``data[j + 8] = r sin(theta)``).
  If ``numel % 16 != 0`` the last 16 outputs are recomputed from 16 fresh
  uniforms.  For float32 on x86-64 with AVX2/AVX-512, torch uses the
  ``avx_mathfun.h`` (Cephes-style polynomial) ``log256_ps``/``sincos256_ps``
  compiled with FMA contraction; this is emulated here operation by operation
  in float32 with exactly rounded fused multiply-adds.  For float64 it calls
  libm ``log``/``cos``/``sin``; here the same libm is reached through
  :mod:`math`, element by element.
* ``randn`` with ``numel < 16``: a scalar double Box-Muller per element,
  ``theta = 2 pi u1``, ``r = sqrt(-2 log1p(-u2))``; it returns ``r cos(theta)``
  and caches ``r sin(theta)`` in the generator for the next scalar-path sample
  (float32 outputs are the doubles rounded to float32).  ``manual_seed`` clears
  the cache; ``normal_fill`` neither reads nor writes it.
* An unseeded process starts from a nondeterministic 64-bit seed (read from
  the OS), like torch's default CPU generator; a new :class:`Generator` starts
  from torch's fixed default seed 67280421310721.

``get_rng_state()`` returns a 5056-byte ``uint8`` array with the same layout
(x86-64, little endian) as ``torch.get_rng_state()``, so states can be
exchanged with torch in both directions.
"""

from __future__ import annotations

import math
import os
import struct
import threading
from collections.abc import Sequence

import numpy as np

__all__ = [
    "Generator",
    "default_generator",
    "get_rng_state",
    "initial_seed",
    "manual_seed",
    "normal",
    "randint",
    "seed",
    "set_rng_state",
    "uniform",
]

DEFAULT_SEED = 67280421310721  # c10::detail::default_rng_seed_val

_MT_N = 624
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

# Byte layout of at::detail::CPUGeneratorImplState (x86-64):
#   uint64 the_initial_seed; int left; int seeded; uint64 next;
#   uint64 state[624]; double normal_x, normal_y, normal_rho;
#   int normal_is_valid; <4 pad>; float next_float_normal_sample;
#   bool is_next_float_normal_sample_valid; <3 pad>
_HEAD = struct.Struct("<QiiQ")
_TAIL = struct.Struct("<dddi4xf?3x")
_STATE_SIZE = _HEAD.size + 8 * _MT_N + _TAIL.size  # 5056


def _init_genrand(seed32: int) -> np.ndarray:
    """Reference mt19937 ``init_genrand`` (also torch's ``init_with_uint32``)."""
    key = [0] * _MT_N
    prev = key[0] = seed32 & _U32
    for i in range(1, _MT_N):
        prev = key[i] = (1812433253 * (prev ^ (prev >> 30)) + i) & _U32
    return np.array(key, dtype=np.uint32)


def _normalize_seed(seed) -> int:
    s = int(seed)
    if not -(1 << 63) <= s <= _U64:
        raise ValueError(f"seed must be in [-2**63, 2**64 - 1], got {s}")
    return s & _U64  # negative seeds wrap like torch (-1 -> 2**64 - 1)


def _nondeterministic_seed() -> int:
    return int.from_bytes(os.urandom(8), "little")


class Generator:
    """A CPU random generator compatible with ``torch.Generator()``.

    ``Generator()`` starts from torch's fixed default seed (67280421310721),
    exactly like ``torch.Generator()``.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.RLock()
        self._bitgen = np.random.MT19937()
        self.manual_seed(DEFAULT_SEED if seed is None else seed)

    # -- torch.Generator API ------------------------------------------------
    def manual_seed(self, seed: int) -> Generator:
        s = _normalize_seed(seed)
        with self._lock:
            self._set_engine(_init_genrand(s), _MT_N)
            self._seed = s
            # torch's freshly seeded engine has left=1, next=0 (we only need it
            # to reproduce torch's state bytes exactly).
            self._exhausted_next = 0
            self._next_double: float | None = None
            self._next_float: float | None = None
        return self

    def seed(self) -> int:
        """Reseed from a nondeterministic source and return the new seed."""
        s = _nondeterministic_seed()
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> np.ndarray:
        """The state as a ``uint8`` array laid out like ``torch.get_rng_state()``."""
        with self._lock:
            st = self._bitgen.state["state"]
            key = np.asarray(st["key"], dtype="<u8")
            pos = int(st["pos"])
            if pos >= _MT_N:
                left, nxt = 1, self._exhausted_next
            else:
                left, nxt = _MT_N + 1 - pos, pos
            nd, nf = self._next_double, self._next_float
            raw = b"".join(
                (
                    _HEAD.pack(self._seed, left, 1, nxt),
                    key.tobytes(),
                    _TAIL.pack(
                        0.0,
                        0.0 if nd is None else nd,
                        0.0,
                        nd is not None,
                        0.0 if nf is None else nf,
                        nf is not None,
                    ),
                )
            )
        return np.frombuffer(raw, dtype=np.uint8).copy()

    def set_state(self, state) -> Generator:
        """Restore a state from :meth:`get_state` (or from ``torch.get_rng_state()``)."""
        if isinstance(state, (bytes, bytearray, memoryview)):
            buf = bytes(state)
        else:
            arr = np.asarray(state)
            if arr.dtype != np.uint8:
                raise TypeError(
                    f"RNG state must be a uint8 array, got dtype {arr.dtype}"
                )
            buf = np.ascontiguousarray(arr).reshape(-1).tobytes()
        if len(buf) != _STATE_SIZE:
            raise ValueError(f"RNG state must have {_STATE_SIZE} bytes, got {len(buf)}")
        seed, left, seeded, nxt = _HEAD.unpack_from(buf, 0)
        key = np.frombuffer(buf, dtype="<u8", count=_MT_N, offset=_HEAD.size)
        _, normal_y, _, normal_valid, next_float, float_valid = _TAIL.unpack_from(
            buf, _HEAD.size + 8 * _MT_N
        )
        if not (seeded and 0 < left <= _MT_N and nxt <= _MT_N):
            raise ValueError("Invalid mt19937 state")
        if left == 1:
            pos = _MT_N  # next draw regenerates the state block
        elif nxt == _MT_N + 1 - left:
            pos = nxt
        else:
            raise ValueError(
                f"unsupported mt19937 state: left={left} and next={nxt} are inconsistent"
            )
        with self._lock:
            self._set_engine((key & _U32).astype(np.uint32), pos)
            self._seed = seed
            self._exhausted_next = nxt if left == 1 else _MT_N
            self._next_double = float(normal_y) if normal_valid else None
            self._next_float = float(next_float) if float_valid else None
        return self

    # -- raw draws ------------------------------------------------------------
    def _set_engine(self, key: np.ndarray, pos: int) -> None:
        self._bitgen.state = {
            "bit_generator": "MT19937",
            "state": {"key": key, "pos": pos},
        }

    def _random32(self, n: int) -> np.ndarray:
        """``n`` successive ``random()`` outputs as uint64."""
        if n <= 0:
            return np.zeros(0, dtype=np.uint64)
        self._exhausted_next = _MT_N
        return self._bitgen.random_raw(n)

    def _random64(self, n: int) -> np.ndarray:
        """``n`` successive ``random64()`` outputs (high word drawn first)."""
        raw = self._random32(2 * n)
        return (raw[0::2] << np.uint64(32)) | raw[1::2]

    def _uniform01(self, n: int, dtype: np.dtype) -> np.ndarray:
        if dtype == np.float32:
            bits = self._random32(n) & np.uint64((1 << 24) - 1)
            return bits.astype(np.float32) * np.float32(2.0**-24)
        bits = self._random64(n) & np.uint64((1 << 53) - 1)
        return bits.astype(np.float64) * 2.0**-53


default_generator = Generator(_nondeterministic_seed())


# ---------------------------------------------------------------------------
# Module-level torch-like API
# ---------------------------------------------------------------------------


def manual_seed(seed: int) -> Generator:
    """``torch.manual_seed``: seed the default generator."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """``torch.seed``: reseed the default generator nondeterministically."""
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> np.ndarray:
    return default_generator.get_state()


def set_rng_state(state) -> None:
    default_generator.set_state(state)


def _shape_numel(shape) -> tuple[tuple[int, ...], int]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    elif not isinstance(shape, (Sequence, np.ndarray)):
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}")
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimension in shape {dims}")
    return dims, math.prod(dims)


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"only float32 and float64 are supported, got {dt}")
    return dt


def uniform(shape, dtype=np.float32, generator: Generator | None = None) -> np.ndarray:
    """``torch.rand(*shape, dtype=dtype, generator=generator)``."""
    dims, n = _shape_numel(shape)
    dt = _float_dtype(dtype)
    gen = default_generator if generator is None else generator
    with gen._lock:
        out = gen._uniform01(n, dt)
    return out.reshape(dims)


def randint(
    low: int, high: int, shape, generator: Generator | None = None
) -> np.ndarray:
    """``torch.randint(low, high, shape, generator=generator)`` (int64)."""
    low, high = int(low), int(high)
    if not low < high:
        raise ValueError(f"randint expects low < high, got low={low} >= high={high}")
    if low < -(1 << 63) or high - 1 > (1 << 63) - 1:
        raise ValueError("randint bounds must fit in int64")
    dims, n = _shape_numel(shape)
    gen = default_generator if generator is None else generator
    span = high - low  # 1 .. 2**64 - 1
    with gen._lock:
        draws = gen._random64(n) if span >= 1 << 28 else gen._random32(n)
    vals = draws % np.uint64(span) + np.uint64(low & _U64)  # wraps mod 2**64
    return vals.view(np.int64).reshape(dims)


def normal(shape, dtype=np.float32, generator: Generator | None = None) -> np.ndarray:
    """``torch.randn(*shape, dtype=dtype, generator=generator)``."""
    dims, n = _shape_numel(shape)
    dt = _float_dtype(dtype)
    gen = default_generator if generator is None else generator
    with gen._lock:
        if n >= 16:
            out = _normal_fill(gen, n, dt)
        else:
            out = _normal_scalar(gen, n).astype(dt)
    return out.reshape(dims)


# ---------------------------------------------------------------------------
# randn, numel >= 16: normal_fill
# ---------------------------------------------------------------------------


def _normal_fill(gen: Generator, n: int, dt: np.dtype) -> np.ndarray:
    full = n // 16
    tail = n % 16 != 0
    u = gen._uniform01(n, dt)
    blocks = u[: 16 * full]
    if tail:  # torch recomputes the last 16 outputs from 16 fresh uniforms
        blocks = np.concatenate([blocks, gen._uniform01(16, dt)])
    blocks = blocks.reshape(-1, 16)
    u1 = (1 - blocks[:, :8]).ravel()
    u2 = blocks[:, 8:].ravel()
    if dt == np.float32:
        a, b = _box_muller_avx2_f32(u1, u2)
    else:
        a, b = _box_muller_f64(u1, u2)
    res = np.concatenate([a.reshape(-1, 8), b.reshape(-1, 8)], axis=1).ravel()
    out = np.empty(n, dtype=dt)
    out[: 16 * full] = res[: 16 * full]
    if tail:
        out[n - 16 :] = res[16 * full :]
    return out


def _libm(fn, x: np.ndarray) -> np.ndarray:
    """Apply a :mod:`math` (i.e. C libm) function elementwise, bit for bit."""
    return np.fromiter(map(fn, x.tolist()), dtype=np.float64, count=x.size)


_TWO_PI = 2.0 * math.pi


def _box_muller_f64(u1: np.ndarray, u2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # NormalFill16<double>: r = sqrt(-2 log(u1)), theta = 2 pi u2,
    # out = fma(r cos(theta), std=1, mean=0)  (the "+ 0.0" turns -0 into +0).
    radius = np.sqrt(-2.0 * _libm(math.log, u1))
    theta = _TWO_PI * u2
    return radius * _libm(math.cos, theta) + 0.0, radius * _libm(math.sin, theta) + 0.0


# -- float32: emulation of avx_mathfun.h (log256_ps, sincos256_ps) with FMA --

_F32 = np.float32
_TIE_MASK = np.uint64((1 << 29) - 1)
_TIE_HALF = np.uint64(1 << 28)


def _fma32(a: np.ndarray, b, c) -> np.ndarray:
    """Exactly rounded float32 ``a * b + c`` (like ``vfmadd*ps``).

    ``a * b`` is exact in float64; the float64 sum can only round wrongly to
    float32 if it lands exactly on a float32 rounding midpoint while being
    inexact, which is detected and repaired with an error-free TwoSum.
    """
    p = a.astype(np.float64) * np.asarray(b, dtype=np.float64)
    c64 = np.broadcast_to(np.asarray(c, dtype=np.float64), p.shape)
    s = p + c64
    tie = np.flatnonzero((s.view(np.uint64) & _TIE_MASK) == _TIE_HALF)
    if tie.size:
        ps, cs, ss = p.ravel()[tie], c64.ravel()[tie], s.ravel()[tie]
        bv = ss - ps
        err = (ps - (ss - bv)) + (cs - bv)
        fix = err != 0
        if fix.any():
            flat = s.reshape(-1)
            flat[tie[fix]] = np.nextafter(ss[fix], np.copysign(np.inf, err[fix]))
    return s.astype(_F32)


_LOG_P = [
    _F32(v)
    for v in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
]
_LOG_Q1 = _F32(-2.12194440e-4)
_LOG_Q2 = _F32(0.693359375)
_SQRTHF = _F32(0.707106781186547524)
_HALF = _F32(0.5)
_ONE = _F32(1.0)
_ZERO = _F32(0.0)


def _log256_ps(x: np.ndarray) -> np.ndarray:
    """``log256_ps`` for positive normal float32 inputs."""
    bits = x.view(np.uint32)
    e = ((bits >> np.uint32(23)).astype(np.int32) - 127).astype(_F32) + _ONE
    x = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(_F32)
    mask = x < _SQRTHF
    tmp = np.where(mask, x, _ZERO)
    x = x - _ONE
    e = e - np.where(mask, _ONE, _ZERO)
    x = x + tmp
    z = x * x
    y = np.full_like(x, _LOG_P[0])
    for coef in _LOG_P[1:]:
        y = _fma32(y, x, coef)
    y = y * x
    y = _fma32(y, z, e * _LOG_Q1)
    y = y - z * _HALF
    x = x + y
    return x + e * _LOG_Q2


_FOPI = _F32(1.27323954473516)
_DP1 = _F32(-0.78515625)
_DP2 = _F32(-2.4187564849853515625e-4)
_DP3 = _F32(-3.77489497744594108e-8)
_SIN_P = [_F32(v) for v in (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)]
_COS_P = [
    _F32(v)
    for v in (2.443315711809948e-005, -1.388731625493765e-003, 4.166664568298827e-002)
]
_SIGN = np.uint32(0x80000000)


def _sincos256_ps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sincos256_ps`` for float32 inputs of moderate size (|x| < 8192)."""
    sign_sin = x.view(np.uint32) & _SIGN
    x = np.abs(x)
    j = (x * _FOPI).astype(np.int32)
    j = (j + 1) & ~1
    y = j.astype(_F32)
    sign_sin = sign_sin ^ ((j & 4).astype(np.uint32) << np.uint32(29))
    sign_cos = ((~(j - 2)) & 4).astype(np.uint32) << np.uint32(29)
    poly_mask = (j & 2) == 0
    # extended precision modular arithmetic, x - y * pi/4 (products fused)
    x = _fma32(y, _DP1, x)
    x = _fma32(y, _DP2, x)
    x = _fma32(y, _DP3, x)
    z = x * x
    c = np.full_like(z, _COS_P[0])
    c = _fma32(c, z, _COS_P[1])
    c = _fma32(c, z, _COS_P[2])
    c = c * z
    c = _fma32(c, z, -(z * _HALF))
    c = c + _ONE
    s = np.full_like(z, _SIN_P[0])
    s = _fma32(s, z, _SIN_P[1])
    s = _fma32(s, z, _SIN_P[2])
    s = s * z
    s = _fma32(s, x, x)
    ysin2 = np.where(poly_mask, s, _ZERO)
    ysin1 = np.where(poly_mask, _ZERO, c)
    sin = (ysin1 + ysin2).view(np.uint32) ^ sign_sin
    cos = ((c - ysin1) + (s - ysin2)).view(np.uint32) ^ sign_cos
    return sin.view(_F32), cos.view(_F32)


_TWO_PI_F32 = _F32(2.0 * math.pi)


def _box_muller_avx2_f32(
    u1: np.ndarray, u2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # NormalFill16<float> (AVX2): radius = sqrt(-2 * log256(u1)),
    # theta = 2pi * u2, out = fmadd(radius * cos, std=1, mean=0).
    radius = np.sqrt(_F32(-2.0) * _log256_ps(u1))
    sin, cos = _sincos256_ps(_TWO_PI_F32 * u2)
    return radius * cos + _ZERO, radius * sin + _ZERO


# ---------------------------------------------------------------------------
# randn, numel < 16: normal_distribution<double> with a cached second sample
# ---------------------------------------------------------------------------


def _normal_scalar(gen: Generator, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    start = 0
    if gen._next_double is not None:
        out[0] = gen._next_double + 0.0  # transformation::normal(x, 0, 1)
        gen._next_double = None
        start = 1
    rest = n - start
    pairs = (rest + 1) // 2
    if pairs:
        u = gen._uniform01(2 * pairs, np.dtype(np.float64))
        theta = _TWO_PI * u[0::2]
        radius = np.sqrt(-2.0 * _libm(math.log1p, -u[1::2]))
        vals = np.empty(2 * pairs, dtype=np.float64)
        vals[0::2] = radius * _libm(math.cos, theta)
        vals[1::2] = radius * _libm(math.sin, theta)
        out[start:] = vals[:rest] + 0.0
        if rest % 2:
            gen._next_double = float(vals[-1])
    return out
