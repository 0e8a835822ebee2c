"""Element-by-element expansion: a tensor graph evaluated over arrays of SymPy symbols.

For small tensors, ``elementwise=True`` writes a formula as scalar
expressions in the elements (``w[0,1]``, ``b[2]`` …).  The tensor-level graph
is evaluated by NumPy over ``object`` arrays whose entries are SymPy
expressions, so a derivative expanded this way is the *tensor-level*
derivation evaluated element by element — which the tests compare with
``sympy.diff`` of the expanded forward formula (brute force against the
reverse-mode derivation).

>>> from symgrad.symbolic import TensorSymbol, matmul
>>> a = TensorSymbol("a", (1, 2), "float64"); b = TensorSymbol("b", (2, 1), "float64")
>>> arrays = {a: element_symbols("a", (1, 2)), b: element_symbols("b", (2, 1))}
>>> evaluate(matmul(a, b), arrays)[0, 0]
a[0,0]*b[0,0] + a[0,1]*b[1,0]
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..symbolic.einsum import Einsum
from ..symbolic.nodes import (
    BroadcastTo,
    Concat,
    Cumsum,
    Elementwise,
    Fill,
    MatMul,
    Permute,
    Reshape,
    ScatterAddAlong,
    Slice,
    SliceScatter,
    Sum,
    TakeAlong,
    TensorExpr,
    TensorSymbol,
    arg,
    topological_order,
)
from .display import tidy
from .printing import latex_name

__all__ = ["element_symbols", "element_latex_names", "evaluate", "as_sympy", "index_symbols"]


def element_symbols(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of real symbols ``name[i,j]`` (a 0-d tensor is the symbol ``name``).

    >>> element_symbols("b", (2,)).tolist()
    [b[0], b[1]]
    """
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        label = f"{name}[{','.join(map(str, index))}]" if shape else name
        out[index] = sp.Symbol(label, real=True)
    return out


def element_latex_names(name: str, shape: tuple[int, ...]) -> dict[sp.Symbol, str]:
    """LaTeX for each element symbol: ``w_{0,1}``.

    >>> element_latex_names("w", (1, 2))
    {w[0,0]: 'w_{0,0}', w[0,1]: 'w_{0,1}'}
    """
    base = latex_name(name)
    if "_" in base and not base.startswith(r"\mathrm"):
        base = f"{{{base}}}"  # w_{1} then indices: {w_{1}}_{0}
    return {s: (f"{base}_{{{','.join(map(str, i))}}}" if shape else base)
            for i, s in zip(np.ndindex(*shape), element_symbols(name, shape).flat)}


def _apply_kernel(node: Elementwise, inputs: list[np.ndarray]) -> np.ndarray:
    symbols = [arg(i) for i in range(len(inputs))]
    broadcast = np.broadcast_arrays(*inputs)
    out = np.empty(node.shape, dtype=object)
    for index in np.ndindex(*node.shape):
        out[index] = node.expr.xreplace(dict(zip(symbols, (b[index] for b in broadcast))))
    return out


def _object(value) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = value
    return out if not isinstance(value, np.ndarray) else value


def evaluate(node: TensorExpr, arrays: dict) -> np.ndarray:
    """The value of ``node`` with each input symbol bound to an object array (memoised over the DAG)."""
    values: dict[TensorExpr, np.ndarray] = dict(arrays)
    for n in topological_order([node]):
        if n in values:
            continue
        inputs = [values[x] for x in n.inputs]
        if isinstance(n, Elementwise):
            out = _apply_kernel(n, inputs)
        elif isinstance(n, MatMul):
            out = np.matmul(*inputs)
        elif isinstance(n, Einsum):
            subscripts, extras = n.numpy_form()
            out = np.einsum(subscripts, *inputs, *(getattr(np, kind)(size, dtype=int) for kind, size in extras))
        elif isinstance(n, Sum):
            out = np.sum(inputs[0], axis=n.axes, keepdims=n.keepdim)
        elif isinstance(n, Reshape):
            out = np.reshape(inputs[0], n.shape)
        elif isinstance(n, BroadcastTo):
            out = np.broadcast_to(inputs[0], n.shape)
        elif isinstance(n, Permute):
            out = np.transpose(inputs[0], n.attr)
        elif isinstance(n, Fill):
            out = np.full(n.shape, n.value, dtype=object)
        elif isinstance(n, Slice | SliceScatter | TakeAlong | ScatterAddAlong | Concat | Cumsum):
            out = _indexing(n, inputs)
        else:
            raise TypeError(f"cannot expand {type(n).__name__} element by element")
        values[n] = _object(out)
    return values[node]


def _numpy_slices(slices) -> tuple:
    return tuple(slice(start, None if stop < 0 else stop, step) for start, stop, step in slices)


def _indexing(n: TensorExpr, inputs: list[np.ndarray]) -> np.ndarray:
    """An indexing primitive over object arrays (index operands hold their integer values)."""
    if isinstance(n, Slice):
        return inputs[0][_numpy_slices(n.slices)]
    if isinstance(n, Concat):
        return np.concatenate(inputs, axis=n.axis)
    if isinstance(n, Cumsum):
        return np.cumsum(inputs[0], axis=n.axis)
    out = np.full(n.shape, sp.Integer(0), dtype=object)
    if isinstance(n, SliceScatter):
        out[_numpy_slices(n.slices)] = inputs[0]
        return out
    index = np.vectorize(int, otypes=[np.int64])(inputs[1]) if inputs[1].size else inputs[1].astype(np.int64)
    if isinstance(n, TakeAlong):
        return np.take_along_axis(inputs[0], index, axis=n.axis)
    positions = list(np.indices(inputs[0].shape, sparse=True))
    positions[n.axis] = np.broadcast_to(index, inputs[0].shape)
    np.add.at(out, tuple(positions), inputs[0])
    return out


def index_symbols(nodes) -> set[TensorSymbol]:
    """The inputs that index arrays are computed from: element by element, their values are used, not symbols.

    >>> from symgrad.symbolic.nodes import take_along
    >>> a, i = TensorSymbol("a", (3,), "float64"), TensorSymbol("i", (2,), "int64")
    >>> sorted(s.name for s in index_symbols([take_along(a, i, 0)]))
    ['i']
    """
    found: set[TensorSymbol] = set()
    for n in topological_order(list(nodes)):
        if isinstance(n, TakeAlong | ScatterAddAlong):
            found.update(x for x in topological_order([n.args[1]]) if isinstance(x, TensorSymbol))
    return found


def as_sympy(array: np.ndarray, simplify: bool = True):
    """An object array as SymPy: a scalar, a ``Matrix`` (1-D and 2-D) or an ``Array``.

    >>> import numpy as np
    >>> as_sympy(element_symbols("b", (2,)))
    Matrix([
    [b[0]],
    [b[1]]])
    """
    array = np.asarray(array, dtype=object)
    tidied = np.empty(array.shape, dtype=object)
    for index in np.ndindex(*array.shape):
        element = sp.sympify(array[index])
        tidied[index] = tidy(element, thorough=False) if simplify else element
    array = tidied
    if array.ndim == 0:
        return sp.sympify(array[()])
    if array.ndim <= 2:
        return sp.ImmutableMatrix(array.reshape(array.shape[0], -1).tolist())
    return sp.ImmutableDenseNDimArray(array.tolist(), array.shape)
