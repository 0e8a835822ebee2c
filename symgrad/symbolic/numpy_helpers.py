"""NumPy functions that NumPy lacks, emitted into generated code when a kernel calls them.

A stable scalar function whose NumPy form is not a NumPy call (``erf``) prints
as a call to a helper defined here.  :func:`symgrad.symbolic.numpy_printer.kernel_function`
puts the helpers a kernel calls into its namespace, and
:func:`symgrad.compiler.codegen.generate_function` writes their source at the
top of the generated module, so generated code still imports NumPy only.
Each helper must be self-contained (NumPy as ``np``, nothing else).
"""

from __future__ import annotations

import inspect
import re
from functools import cache

import numpy as np

__all__ = ["HELPERS", "erf", "helpers_called", "helper_source", "slice_scatter", "scatter_add_along"]


def erf(x):
    """The error function, elementwise, keeping a floating dtype (NumPy has none).

    W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969, as in
    SPECFUN's CALERF): relative error below 5e-16 for every double (3 ulps at
    most), odd, ±1 at ±inf, NaN for NaN.  About 10x the cost of ``np.exp``: the
    three ranges are evaluated on their own elements only.

    >>> import numpy as np, math
    >>> erf(np.array([0.0, 0.5, -1.0, 3.0, np.inf]))
    array([ 0.        ,  0.52049988, -0.84270079,  0.99997791,  1.        ])
    >>> abs(float(erf(0.3)) - math.erf(0.3)) < 1e-16
    True
    """
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    y = np.abs(x).astype(np.float64)
    out = np.array(y)  # NaN stays NaN: it is in no range below

    def exp_minus_square(t):  # exp(-t*t), with t*t split so its rounding is not amplified
        head = np.trunc(t * 16.0) / 16.0
        return np.exp(-head * head) * np.exp(-(t - head) * (t + head))

    small = y <= 0.5
    t = y[small]
    z = t * t
    out[small] = t * (np.polyval((1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2,
                                  3.77485237685302021e2, 3.20937758913846947e3), z)
                      / np.polyval((1.0, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
                                    2.84423683343917062e3), z))
    middle = (y > 0.5) & (y <= 4.0)
    t = y[middle]
    erfc = (np.polyval((2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
                        6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
                        1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3), t)
            / np.polyval((1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
                          1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
                          3.43936767414372164e3, 1.23033935480374942e3), t))
    out[middle] = 1.0 - exp_minus_square(t) * erfc
    large = y > 4.0
    t = np.minimum(y[large], 8.0)  # erfc(8) < 1e-28: erf is exactly ±1 in double precision beyond
    w = 1.0 / (t * t)
    r = w * (np.polyval((1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
                         1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4), w)
             / np.polyval((1.0, 2.56852019228982242e0, 1.87295284992346725e0, 5.27905102951428412e-1,
                           6.05183413124413191e-2, 2.33520497626869185e-3), w))
    out[large] = 1.0 - exp_minus_square(t) * (5.6418958354775628695e-1 - r) / t
    return np.copysign(out, x).astype(dtype, copy=False)


def reference_max(x, axis):
    """The maximum over ``axis``, kept as size 1 (a reduction's reference value).

    >>> reference_max(np.array([[1.0, 3.0], [2.0, 0.0]]), (1,))
    array([[3.],
           [2.]])
    """
    return np.amax(x, axis=axis, keepdims=True)


def reference_min(x, axis):
    """The minimum over ``axis``, kept as size 1."""
    return np.amin(x, axis=axis, keepdims=True)


def reference_absmax(x, axis):
    """The largest magnitude over ``axis``, kept as size 1 (the inf-norm)."""
    return np.amax(np.abs(x), axis=axis, keepdims=True)


def reference_absmin(x, axis):
    """The smallest magnitude over ``axis``, kept as size 1 (the -inf-norm)."""
    return np.amin(np.abs(x), axis=axis, keepdims=True)


def reference_shift(x, axis):
    """The maximum over ``axis`` (``-inf`` when empty), kept as size 1: softmax's shift."""
    return np.amax(x, axis=axis, keepdims=True, initial=-np.inf)


def reference_finite_shift(x, axis):
    """The maximum over ``axis`` with infinities made 0: logsumexp's shift (exact for any finite shift).

    >>> reference_finite_shift(np.array([1.0, np.inf]), (0,))
    array([0.])
    """
    top = np.amax(x, axis=axis, keepdims=True, initial=-np.inf)
    return np.where(np.isinf(top), 0, top).astype(x.dtype, copy=False)


def selection_mask_max(x, axis):
    """A boolean mask of the first maximum along the one ``axis`` (max(dim)'s selected element).

    >>> selection_mask_max(np.array([1.0, 3.0, 3.0]), (0,))
    array([False,  True, False])
    """
    if x.ndim == 0:
        return np.ones((), dtype=bool)
    mask = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(mask, np.argmax(x, axis=axis[0], keepdims=True), True, axis=axis[0])
    return mask


def selection_mask_min(x, axis):
    """A boolean mask of the first minimum along the one ``axis``."""
    if x.ndim == 0:
        return np.ones((), dtype=bool)
    mask = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(mask, np.argmin(x, axis=axis[0], keepdims=True), True, axis=axis[0])
    return mask


def slice_scatter(values, shape, index):
    """Zeros of ``shape`` with ``values`` written at ``index`` (a slice's gradient).

    >>> slice_scatter(np.array([1.0, 2.0]), (4,), np.s_[1:3])
    array([0., 1., 2., 0.])
    """
    out = np.zeros(shape, dtype=values.dtype)
    out[index] = values
    return out


def scatter_add_along(values, index, axis, size):
    """Zeros with ``size`` along ``axis``, ``values`` added at ``index`` (``take_along_axis``'s gradient).

    Repeated indices accumulate.

    >>> scatter_add_along(np.array([1.0, 2.0, 3.0]), np.array([0, 2, 0]), 0, 3)
    array([4., 0., 2.])
    """
    shape = list(values.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=values.dtype)
    positions = list(np.indices(values.shape, sparse=True))
    positions[axis] = np.broadcast_to(index, values.shape)
    np.add.at(out, tuple(positions), values)
    return out


HELPERS = {f.__name__: f for f in (erf, reference_max, reference_min, reference_absmax, reference_absmin,
                                   reference_shift, reference_finite_shift, selection_mask_max,
                                   selection_mask_min, slice_scatter, scatter_add_along)}


def helpers_called(source: str) -> list[str]:
    """The helpers that printed NumPy ``source`` calls (a bare ``name(``, not ``np.name(``).

    >>> helpers_called("x*erf(y) + np.exp(z)"), helpers_called("np.erf(x)")
    (['erf'], [])
    """
    return [name for name in HELPERS if re.search(rf"(?<![\w.]){name}\(", source)]


@cache
def helper_source(name: str) -> str:
    """The source of a helper, to be written into a generated module."""
    return inspect.getsource(HELPERS[name])
