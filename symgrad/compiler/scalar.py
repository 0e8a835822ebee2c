"""A second code generator for tiny arrays: one Python ``math`` statement per element.

On arrays of a few elements a NumPy call costs about a microsecond whatever it
computes, so a gradient made of twenty vectorised calls spends almost all its
time in call overhead.  This generator unrolls the same tensor graph into
per-element scalar code: each array argument is unpacked into Python floats
once (``w_0, w_1, … = w.ravel().tolist()``), every element of every node is
one assignment, reshapes, transposes and broadcasts cost nothing (they only
re-index), and the results are packed back into arrays.

It prints each elementwise kernel with the NumPy kernel printer and maps the
NumPy names to scalar equivalents (:data:`SCALAR_NAMES`); a kernel using
anything else makes the graph ineligible (:func:`scalar_function_lines`
returns None) and the NumPy code is used.  Python's ``math`` raises where
NumPy returns inf or nan (``exp(1000)``, ``log(0)``, ``1/0``): the generated
function then calls the NumPy version, so inf and nan come out as NumPy's.
Python floats are doubles: a float32 graph is computed in double precision
and its results rounded to float32 once, at the end — as accurate as the
float32 NumPy code or more (they agree to float32 rounding), and where float32
arithmetic would overflow in an intermediate (``exp(100) * exp(-100)``) the
double result is the finite one.
:mod:`symgrad.compiler.program` times both versions and keeps the faster.
"""

from __future__ import annotations

import math
import operator
import re

import numpy as np
import sympy as sp
from sympy.core.evalf import prec_to_dps

from ..symbolic.functions import sigmoid, softplus
from ..symbolic.nodes import (
    BroadcastTo,
    Concat,
    Cumsum,
    Elementwise,
    Fill,
    MatMul,
    Permute,
    Reference,
    Reshape,
    Slice,
    SliceScatter,
    Sum,
    TensorExpr,
    TensorSymbol,
    topological_order,
)
from ..symbolic.numpy_printer import kernel_source
from .codegen import NameSet, python_name

__all__ = ["scalar_function_lines", "SCALAR_NAMESPACE", "SCALAR_NAMES", "MAX_SCALAR_ELEMENTS"]

_UNROLLED_DTYPES = tuple(np.dtype(t) for t in ("float64", "float32", "int64", "bool"))

# beyond this many element statements the unrolled code is larger than it is fast
MAX_SCALAR_ELEMENTS = 2000


def _where(condition, a, b):
    return a if condition else b


def _maximum(a, b):  # NumPy's: nan propagates
    return a if a != a or a >= b else b if b == b else b


def _minimum(a, b):
    return a if a != a or a <= b else b if b == b else b


def _logaddexp(a, b):
    top = a if a > b else b
    if top == -math.inf:
        return -math.inf
    return top + math.log1p(math.exp(-abs(a - b)))


def _sign(x):
    return (x > 0) - (x < 0) if x == x else x


def _nan_to_num(x):
    return 0.0 if x != x else x


def _heaviside(x, at_zero):
    return at_zero if x == 0 else float(x > 0) if x == x else x


def _reduce(function):
    def reduced(*xs):
        return math.nan if any(x != x for x in xs) else function(xs)
    return reduced


def _first_index(values, best) -> list[bool]:
    for k, v in enumerate(values):
        if v != v or v == best:
            return [j == k for j in range(len(values))]
    return [False] * len(values)


SCALAR_NAMESPACE = {
    "math": math, "_where": _where, "_maximum": _maximum, "_minimum": _minimum, "_logaddexp": _logaddexp,
    "_sign": _sign, "_nan_to_num": _nan_to_num, "_heaviside": _heaviside, "_eq": operator.eq,
    "_ne": operator.ne, "_gt": operator.gt, "_ge": operator.ge, "_lt": operator.lt, "_le": operator.le,
    "_and": operator.and_, "_or": operator.or_, "_amax": _reduce(max), "_amin": _reduce(min),
    "_first_index": _first_index, "_mod": operator.mod,
}

# NumPy names in printed kernels -> their scalar equivalents
SCALAR_NAMES = {
    "np.exp": "math.exp", "np.log": "math.log", "np.log1p": "math.log1p", "np.expm1": "math.expm1",
    "np.log2": "math.log2", "np.log10": "math.log10", "np.sqrt": "math.sqrt", "np.sin": "math.sin",
    "np.cos": "math.cos", "np.tan": "math.tan", "np.arcsin": "math.asin", "np.arccos": "math.acos",
    "np.arctan": "math.atan", "np.arctan2": "math.atan2", "np.sinh": "math.sinh", "np.cosh": "math.cosh",
    "np.tanh": "math.tanh", "np.abs": "abs", "np.absolute": "abs", "np.logaddexp": "_logaddexp",
    "np.maximum": "_maximum", "np.minimum": "_minimum", "np.where": "_where", "np.sign": "_sign",
    "np.nan_to_num": "_nan_to_num", "np.isnan": "math.isnan", "np.heaviside": "_heaviside",
    "np.equal": "_eq", "np.not_equal": "_ne", "np.greater": "_gt", "np.greater_equal": "_ge",
    "np.less": "_lt", "np.less_equal": "_le", "np.logical_and": "_and", "np.logical_or": "_or",
    "np.trunc": "math.trunc", "np.mod": "_mod", "np.inf": "math.inf", "np.nan": "math.nan", "erf": "math.erf",
}
_NAME = re.compile(r"(?<![\w.])(np\.\w+|erf)(?!\w)")
_PLACEHOLDER = re.compile(r"__a(\d+)__")


class _IneligibleError(Exception):
    """The graph uses something the scalar generator does not unroll."""


def scalar_function_lines(name: str, fallback: str, params: list[TensorSymbol], outputs: list[TensorExpr],
                          module_names: dict | None = None) -> list[str] | None:
    """Lines of ``name(*params)``: ``outputs`` unrolled per element, or None when not eligible.

    ``fallback`` names the NumPy function of the same signature, called when
    Python's ``math`` raises (where NumPy gives inf or nan).

    >>> import sympy as sp
    >>> x = TensorSymbol("x", (2,), "float64")
    >>> from symgrad.symbolic import elementwise, arg
    >>> print("\\n".join(scalar_function_lines("f", "g", [x], [elementwise(sp.exp(arg(0)), [x], "float64")])))
    def f(x):
        try:
            x_0, x_1 = x.tolist()
            t0_0 = math.exp(x_0)
            t0_1 = math.exp(x_1)
            return (np.array([t0_0, t0_1], dtype=np.float64),)
        except (ArithmeticError, ValueError, TypeError):
            return g(x)
    """
    try:
        return _Unroller(params, outputs, module_names or {}).function(name, fallback)
    except _IneligibleError:
        return None


class _Unroller:
    def __init__(self, params, outputs, module_names):
        self.params, self.outputs = params, outputs
        self.names = {p: p.name for p in params} | {s: n for s, n in module_names.items()}
        self.elements: dict[TensorExpr, list[str]] = {}
        self.lines: list[str] = []
        self.count = 0
        # element names must not shadow a parameter or a module constant (const_2 is not const's element 2)
        self.taken = NameSet([*self.names.values(), *SCALAR_NAMESPACE, "np"])

    def function(self, name: str, fallback: str) -> list[str]:
        order = topological_order(self.outputs)
        if sum(_size(n.shape) for n in order) > MAX_SCALAR_ELEMENTS:
            raise _IneligibleError
        for node in order:
            if node.dtype is not None and node.dtype not in _UNROLLED_DTYPES:
                raise _IneligibleError
            self.elements[node] = self._unroll(node)
        returns = ", ".join(self._pack(o) for o in self.outputs)
        header = ", ".join(self.names[p] for p in self.params)
        body = [f"def {name}({header}):", "    try:"]
        body += [f"        {line}" for line in self.lines]
        body.append(f"        return ({returns},)")
        body += ["    except (ArithmeticError, ValueError, TypeError):", f"        return {fallback}({header})"]
        return body

    def _unroll(self, node) -> list[str]:
        if isinstance(node, TensorSymbol):
            return self._unpack(node)
        handler = getattr(self, f"_unroll_{type(node).__name__}", None)
        if handler is None:
            raise _IneligibleError
        return handler(node)

    def _unpack(self, node: TensorSymbol) -> list[str]:
        if node not in self.names:
            raise _IneligibleError
        name = self.names[node]
        names = [python_name(f"{name}_{k}", self.taken) for k in range(_size(node.shape))]
        if names:
            flat = f"{name}.tolist()" if node.ndim == 1 else f"{name}.ravel().tolist()"  # ravel costs a call
            self.lines.append(f"{', '.join(names)}{',' if len(names) == 1 else ''} = {flat}")
        return names

    def _stem(self) -> str:
        self.count += 1
        return f"t{self.count - 1}"

    def _assign(self, texts: list[str]) -> list[str]:
        stem = self._stem()
        names = []
        for k, text in enumerate(texts):
            if re.fullmatch(r"[\w.]+|-?[\d.e+-]+", text):  # a name or a number: no statement needed
                names.append(text)
                continue
            names.append(python_name(f"{stem}_{k}", self.taken))
            self.lines.append(f"{names[-1]} = {text}")
        return names

    def _unroll_Elementwise(self, node: Elementwise) -> list[str]:
        template = _scalar_kernel(node.expr, len(node.inputs))
        maps = [_broadcast_index(x.shape, node.shape) for x in node.inputs]
        texts = []
        for k in range(_size(node.shape)):
            elements = [self.elements[x][m[k]] for x, m in zip(node.inputs, maps)]
            texts.append(_PLACEHOLDER.sub(lambda match, e=elements: e[int(match.group(1))], template))
        return self._assign(texts)

    def _unroll_MatMul(self, node: MatMul) -> list[str]:
        a, b = node.args
        ia = np.broadcast_to(_index(a.shape), node.shape[:-2] + a.shape[-2:])
        ib = np.broadcast_to(_index(b.shape), node.shape[:-2] + b.shape[-2:])
        ea, eb = self.elements[a], self.elements[b]
        texts = []
        for position in np.ndindex(*node.shape):
            *batch, i, j = position
            row, column = ia[(*batch, i)], ib[(*batch, slice(None), j)]
            terms = [f"{ea[p]}*{eb[q]}" for p, q in zip(row, column)]
            texts.append(" + ".join(terms) if terms else "0.0")
        return self._assign(texts)

    def _unroll_Sum(self, node: Sum) -> list[str]:
        x = node.args[0]
        groups = _groups(x.shape, node.axes)
        zero = "0.0" if x.dtype is None or x.dtype.kind == "f" else "0"
        return self._assign([" + ".join(self.elements[x][p] for p in g) if len(g) else zero for g in groups])

    def _unroll_Reshape(self, node: Reshape) -> list[str]:
        return self.elements[node.args[0]]

    def _unroll_BroadcastTo(self, node: BroadcastTo) -> list[str]:
        x = node.args[0]
        return [self.elements[x][p] for p in _broadcast_index(x.shape, node.shape)]

    def _unroll_Permute(self, node: Permute) -> list[str]:
        x = node.args[0]
        return [self.elements[x][p] for p in np.transpose(_index(x.shape), node.attr).ravel()]

    def _unroll_Slice(self, node: Slice) -> list[str]:
        x = node.args[0]
        return [self.elements[x][p] for p in _index(x.shape)[_slicing(node.slices)].ravel()]

    def _unroll_SliceScatter(self, node: SliceScatter) -> list[str]:
        x = node.args[0]
        zero = "0.0" if x.dtype.kind == "f" else "0"
        out = np.full(_size(node.shape), -1)
        out.reshape(node.shape)[_slicing(node.slices)] = _index(x.shape)
        return [zero if p < 0 else self.elements[x][p] for p in out]

    def _unroll_Concat(self, node: Concat) -> list[str]:
        parts = [np.array(self.elements[x], dtype=object).reshape(x.shape) for x in node.inputs]
        return list(np.concatenate(parts, axis=node.axis).ravel()) if parts else []

    def _unroll_Cumsum(self, node: Cumsum) -> list[str]:
        x = node.args[0]
        running = np.moveaxis(_index(x.shape), node.axis, -1).reshape(-1, x.shape[node.axis] if x.ndim else 1)
        texts = np.empty(running.shape, dtype=object)
        for row, indices in enumerate(running):
            total = ""
            for k, p in enumerate(indices):
                total = self.elements[x][p] if k == 0 else f"{texts[row, k - 1]} + {self.elements[x][p]}"
                texts[row, k] = self._assign([total])[0]
        shape = np.moveaxis(_index(x.shape), node.axis, -1).shape
        return list(np.moveaxis(texts.reshape(shape), -1, node.axis).ravel())

    def _unroll_Fill(self, node: Fill) -> list[str]:
        value = node.value
        text = repr(float(value)) if node.dtype.kind == "f" else repr(int(value)) if node.dtype.kind != "b" \
            else repr(bool(value))
        text = {"inf": "math.inf", "-inf": "-math.inf", "nan": "math.nan"}.get(text, text)
        return [text] * _size(node.shape)

    def _unroll_Reference(self, node: Reference) -> list[str]:
        x = node.args[1]
        kind = node.kind
        groups = _groups(x.shape, node.axes)
        elements = self.elements[x]
        if kind.startswith("selection_mask"):
            return self._selection(node, groups, elements)
        texts = []
        for g in groups:
            values = [elements[p] for p in g]
            if kind in ("reference_absmax", "reference_absmin"):
                values = [f"abs({v})" for v in values]
            reducer = "_amax" if kind in ("reference_max", "reference_absmax", "reference_shift",
                                          "reference_finite_shift") else "_amin"
            if not values:
                if kind in ("reference_shift", "reference_finite_shift"):
                    texts.append("-math.inf" if kind == "reference_shift" else "0.0")
                    continue
                raise _IneligibleError
            text = f"{reducer}({', '.join(values)})"
            if kind == "reference_finite_shift":
                text = f"_where(abs({text}) == math.inf, 0.0, {text})"
            texts.append(text)
        return self._assign(texts)

    def _selection(self, node, groups, elements) -> list[str]:
        out = [""] * _size(node.shape)
        reducer = "_amax" if node.kind.endswith("max") else "_amin"
        for g in groups:
            values = ", ".join(elements[p] for p in g)
            name = python_name(self._stem(), self.taken)
            self.lines.append(f"{name} = _first_index(({values},), {reducer}({values}))")
            for k, p in enumerate(g):
                out[p] = f"{name}[{k}]"
        return out

    def _pack(self, node) -> str:
        elements = self.elements[node]
        if node.dtype is None:
            raise _IneligibleError
        dtype = f", dtype=np.{node.dtype.name}"  # an identity kernel may hold an integer argument's elements
        if node.shape == ():
            return f"np.{node.dtype.name}({elements[0]})" if node.dtype.kind != "b" else f"np.bool_({elements[0]})"
        array = f"np.array([{', '.join(elements)}]{dtype})"
        return array if node.ndim == 1 else f"{array}.reshape({node.shape})"


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _slicing(slices) -> tuple[slice, ...]:
    """Canonical ``(start, stop, step)`` triples as Python slices (a negative stop of -1 means "to the front")."""
    return tuple(slice(start, None if stop < 0 else stop, step) for start, stop, step in slices)


def _index(shape) -> np.ndarray:
    return np.arange(_size(shape)).reshape(shape)


def _broadcast_index(shape, out_shape) -> np.ndarray:
    """For each element of ``out_shape`` (row-major), the flat index of the input element it reads."""
    return np.broadcast_to(_index(shape), out_shape).ravel()


def _groups(shape, axes) -> list[np.ndarray]:
    """For each output element of a reduction over ``axes`` (row-major), the flat input indices summed."""
    kept = [i for i in range(len(shape)) if i not in axes]
    moved = np.transpose(_index(shape), kept + list(axes))
    return list(moved.reshape(_size([shape[i] for i in kept]), _size([shape[i] for i in axes])))


class _ScalarCall(sp.Function):
    """A call printed as ``_<name>(x)``: one Python function where NumPy needs two calls."""

    original: type[sp.Function]  # the function it stands for

    def _numpycode(self, printer):
        return f"_{type(self).__name__}({printer._print(self.args[0])})"

    def _eval_evalf(self, prec):
        # a constant argument (softplus(0) once x - x folds) is printed as a float: evaluate the original
        return self.original(*self.args).evalf(prec_to_dps(prec))


# the stable functions' NumPy forms (np.exp(-np.logaddexp(0, -x))) cost two Python calls per element
_SCALAR_CALLS = {f: type(f.__name__, (_ScalarCall,), {"original": f}) for f in (sigmoid, softplus)}


def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _softplus(x):
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


SCALAR_NAMESPACE.update({"_sigmoid": _sigmoid, "_softplus": _softplus})


def _scalar_kernel(expr: sp.Expr, n: int) -> str:
    """The kernel printed with placeholders ``__a0__ …`` and scalar function names."""
    if expr.has(*_SCALAR_CALLS):
        expr = expr.replace(lambda e: type(e) in _SCALAR_CALLS, lambda e: _SCALAR_CALLS[type(e)](*e.args))
    source = kernel_source(expr, [f"__a{i}__" for i in range(n)])
    if "~" in source or "**" in source and not _integer_powers(source):
        raise _IneligibleError  # bitwise not of a bool, or a power whose Python form may be complex

    def scalar_name(match):
        found = SCALAR_NAMES.get(match.group(1))
        if found is None:
            raise _IneligibleError
        return found

    return _NAME.sub(scalar_name, source)


def _integer_powers(source: str) -> bool:
    return all(re.match(r"\d+(?![\d.e])", tail) for tail in source.split("**")[1:])

