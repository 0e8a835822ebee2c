"""Format tensor values exactly as PyTorch prints them.

This module reimplements the algorithm of ``torch/_tensor_str.py`` for dense
CPU tensors of real (floating, integer and bool) dtypes, working directly on
NumPy arrays.  The output is identical to ``repr(torch_tensor)`` except that
the dtype suffix reads ``dtype=symgrad.<name>`` instead of
``dtype=torch.<name>``.

Summary of the rules (all taken from PyTorch):

* Float values are formatted from their exact double value.  One formatter is
  shared by the whole tensor (or by its summarized part): if every non-zero
  finite value is an integer, values print as ``1.``; scientific notation is
  used when ``max/min > 1000``, ``max > 1e8`` or ``min < 1e-4`` over the
  absolute non-zero finite values (unless forced by ``sci_mode``).
* Every element is right-aligned to the widest non-zero finite value.
* 1-D rows wrap at ``linewidth``; nested dimensions are joined by ``,`` and
  ``ndim - 1`` newlines, indented to line up after ``tensor(``.
* Tensors with more than ``threshold`` elements are summarized, keeping
  ``edgeitems`` entries at both ends of every dimension.
* Suffixes (``size=``, ``dtype=``, grad info) follow the data, separated by
  ``", "`` or moved to a new line when the last line would exceed
  ``linewidth``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "get_printoptions",
    "printoptions",
    "set_printoptions",
    "tensor_repr",
]

_PREFIX = "tensor("
_INDENT = len(_PREFIX)
_NAMESPACE = "symgrad"


@dataclasses.dataclass
class _PrintOptions:
    """Global print options, mirroring ``torch._tensor_str.PRINT_OPTS``."""

    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_OPTS = _PrintOptions()

_PROFILES: dict[str, dict[str, Any]] = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set the options used by :func:`tensor_repr`, like ``torch.set_printoptions``.

    Args:
        precision: Digits after the decimal point for floats (default 4).
        threshold: Element count above which output is summarized (default 1000).
        edgeitems: Items kept at each end of a summarized dimension (default 3).
        linewidth: Characters per line used for wrapping (default 80).
        profile: ``'default'``, ``'short'`` or ``'full'``; applied first, then
            overridden by the explicit arguments.  Unknown names are ignored,
            as in PyTorch.
        sci_mode: ``True``/``False`` forces scientific notation on/off;
            ``None`` lets the formatter choose.  As in PyTorch, this option is
            always reset, so omitting it restores automatic selection.
    """
    if profile in _PROFILES:
        for name, value in _PROFILES[profile].items():
            setattr(_OPTS, name, value)
    if precision is not None:
        _OPTS.precision = precision
    if threshold is not None:
        _OPTS.threshold = threshold
    if edgeitems is not None:
        _OPTS.edgeitems = edgeitems
    if linewidth is not None:
        _OPTS.linewidth = linewidth
    _OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """Return the current print options as keyword arguments for :func:`set_printoptions`."""
    return dataclasses.asdict(_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs: Any) -> Iterator[None]:
    """Temporarily change the print options (same arguments as :func:`set_printoptions`)."""
    saved = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**saved)


@dataclasses.dataclass(frozen=True)
class _Formatter:
    """Formats single elements with a common width and notation."""

    floating: bool
    precision: int
    int_mode: bool = True
    sci_mode: bool = False
    max_width: int = 1

    def format(self, value: float) -> str:
        """Format one Python scalar, right-aligned to ``max_width``."""
        if not self.floating:
            text = f"{value}"
        elif self.sci_mode:
            text = f"{value:{self.max_width}.{self.precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            if math.isfinite(value):
                text += "."
        else:
            text = f"{value:.{self.precision}f}"
        return text.rjust(self.max_width)


def _make_formatter(values: np.ndarray, opts: _PrintOptions) -> _Formatter:
    """Choose notation and width from ``values`` (the possibly summarized data)."""
    flat = values.reshape(-1)
    precision = opts.precision
    if flat.dtype.kind != "f":
        widths = [len(f"{v}") for v in flat.tolist()]
        return _Formatter(False, precision, max_width=max([1, *widths]))

    nonzero_finite = flat[np.isfinite(flat) & (flat != 0)]
    if nonzero_finite.size == 0:
        return _Formatter(True, precision)

    int_mode = bool(np.all(nonzero_finite == np.ceil(nonzero_finite)))
    as_double = nonzero_finite.astype(np.float64)
    magnitudes = np.abs(as_double)
    smallest, largest = magnitudes.min(), magnitudes.max()
    if opts.sci_mode is None:
        with np.errstate(over="ignore"):
            ratio = largest / smallest
        sci_mode = bool(ratio > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4)
    else:
        sci_mode = bool(opts.sci_mode)

    scalars = as_double.tolist()
    if sci_mode:
        widths = [len(f"{v:.{precision}e}") for v in scalars]
    elif int_mode:
        widths = [len(f"{v:.0f}") + 1 for v in scalars]
    else:
        widths = [len(f"{v:.{precision}f}") for v in scalars]
    return _Formatter(True, precision, int_mode, sci_mode, max([1, *widths]))


def _summarized_data(data: np.ndarray, edgeitems: int) -> np.ndarray:
    """Keep only the ``edgeitems`` leading and trailing entries of long dimensions."""
    if data.ndim >= 2 and edgeitems == 0:
        return data[tuple(slice(0, 0) for _ in range(data.ndim))]
    for axis, size in enumerate(data.shape):
        if size > 2 * edgeitems:
            keep = np.r_[0:edgeitems, size - edgeitems : size]
            data = np.take(data, keep, axis=axis)
    return data


def _vector_str(
    data: np.ndarray, indent: int, summarize: bool, fmt: _Formatter, opts: _PrintOptions
) -> str:
    """Format a 1-D array, wrapping rows at the line width."""
    element_length = fmt.max_width + 2
    per_line = max(1, math.floor((opts.linewidth - indent) / element_length))
    edge = opts.edgeitems
    if summarize and not edge:
        items = ["..."]
    elif summarize and data.shape[0] > 2 * edge:
        head = [fmt.format(v) for v in data[:edge].tolist()]
        tail = [fmt.format(v) for v in data[-edge:].tolist()]
        items = [*head, " ...", *tail]
    else:
        items = [fmt.format(v) for v in data.tolist()]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(
    data: np.ndarray, indent: int, summarize: bool, fmt: _Formatter, opts: _PrintOptions
) -> str:
    """Format an array of any rank with a shared formatter."""
    if data.ndim == 0:
        return fmt.format(data.item())
    if data.ndim == 1:
        return _vector_str(data, indent, summarize, fmt, opts)

    size, edge = data.shape[0], opts.edgeitems
    if summarize and size > 2 * edge:
        rows = [*range(edge), None, *range(size - edge, size)]
    else:
        rows = list(range(size))
    slices = [
        "..." if i is None else _nested_str(data[i], indent + 1, summarize, fmt, opts)
        for i in rows
    ]
    separator = "," + "\n" * (data.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(slices) + "]"


def _data_str(data: np.ndarray, indent: int, opts: _PrintOptions) -> str:
    """Format the values of a non-empty array (the part between the parentheses)."""
    summarize = data.size > opts.threshold
    sample = _summarized_data(data, opts.edgeitems) if summarize else data
    fmt = _make_formatter(sample, opts)
    return _nested_str(data, indent, summarize, fmt, opts)


def _add_suffixes(
    text: str, suffixes: list[tuple[str, int]], indent: int, linewidth: int
) -> str:
    """Append ``suffixes`` and the closing parenthesis, wrapping like PyTorch.

    Each suffix is ``(text, layout_width)``; the width used for line-breaking
    decisions is the width PyTorch's own suffix would have (``torch.`` is two
    characters shorter than ``symgrad.``), so breaks land where PyTorch's do.
    """
    parts = [text]
    # Same off-by-two arithmetic as PyTorch (``rfind`` returns -1 without newline).
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix, width in suffixes:
        if last_line_len + width + 2 > linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + width
        else:
            parts.append(", " + suffix)
            last_line_len += width + 2
    parts.append(")")
    return "".join(parts)


def _plain_suffix(text: str) -> tuple[str, int]:
    """A suffix whose layout width is its own length."""
    return text, len(text)


def tensor_repr(
    data: np.ndarray,
    *,
    dtype_name: str,
    show_dtype: bool,
    grad_suffix: str | None = None,
) -> str:
    """Return exactly what PyTorch prints for a CPU tensor with these values.

    Args:
        data: The values: a NumPy array of a float, integer or bool dtype
            (0-d and empty arrays allowed).  float32 values are printed from
            their exact float32 value, as PyTorch does.
        dtype_name: e.g. ``'float64'``; printed as ``dtype=symgrad.float64``.
        show_dtype: Whether the dtype suffix is shown (PyTorch shows it when
            the dtype is not the default float dtype, int64 or bool).  For
            empty tensors PyTorch also shows int64 and bool, so the suffix is
            then shown when ``show_dtype`` is true or the dtype is int64/bool.
        grad_suffix: e.g. ``'grad_fn=<AddBackward0>'`` or
            ``'requires_grad=True'``; appended last.

    Returns:
        The ``repr`` string, e.g. ``'tensor([1., 2.], dtype=symgrad.float64)'``.
    """
    data = np.asarray(data)
    if data.dtype.kind not in "fiub":
        raise TypeError(f"cannot format arrays of dtype {data.dtype}")
    opts = _OPTS
    # Lay out as PyTorch would with "dtype=torch.<name>", then print "symgrad.".
    dtype_suffix = (
        f"dtype={_NAMESPACE}.{dtype_name}",
        len(f"dtype=torch.{dtype_name}"),
    )
    suffixes: list[tuple[str, int]] = []
    if data.size == 0:
        if data.ndim != 1:
            suffixes.append(_plain_suffix(f"size={tuple(data.shape)}"))
        if show_dtype or dtype_name in ("int64", "bool"):
            suffixes.append(dtype_suffix)
        body = "[]"
    else:
        if not opts.edgeitems:
            suffixes.append(_plain_suffix(f"size={tuple(data.shape)}"))
        if show_dtype:
            suffixes.append(dtype_suffix)
        body = _data_str(data, _INDENT, opts)
    if grad_suffix:
        suffixes.append(_plain_suffix(grad_suffix))
    return _add_suffixes(_PREFIX + body, suffixes, _INDENT, opts.linewidth)
