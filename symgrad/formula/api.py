"""``symgrad.formula`` and ``symgrad.grad_formula``: the formulas behind recorded tensors.

>>> import symgrad
>>> x = symgrad.tensor(2.0, requires_grad=True)
>>> f = x.tanh() * x ** 2
>>> symgrad.formula(f)
f = x²·tanh(x)
>>> symgrad.grad_formula(f, x)
∂f/∂x = x²·(1 − tanh(x)²) + 2·x·tanh(x)
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .. import dtypes
from ..autograd.graph import AccumulateGrad, Node
from ..symbolic.nodes import TensorExpr, TensorSymbol, fill
from ..tensor import Tensor, _make
from .display import Display
from .elements import as_sympy, element_latex_names, element_symbols, evaluate, index_symbols
from .equations import Formula
from .graph import RecordedGraph
from .names import CallerNames, caller_frame
from .notation import Broadcast, Partial
from .printing import latex_name

__all__ = ["formula", "grad_formula", "DEFAULT_MAX_ELEMENTS"]

DEFAULT_MAX_ELEMENTS = 1000  # elementwise=True: the expansion is for small tensors


def formula(tensor, *, names: dict | None = None, expand=False, max_depth: int | None = None,
            elementwise: bool = False, max_elements: int = DEFAULT_MAX_ELEMENTS) -> Formula:
    """The formula that computed ``tensor``, in terms of its inputs.

    ``tensor`` may also be any node reached through ``grad_fn``.  Tensors are
    named by ``names`` (``{"w": w, …}``, for code whose variables are out of
    reach), else ``name=``, else the caller's variables, else ``t0, t1, …``.
    Intermediates the caller holds in variables are written by name and
    defined after ``where``; ``expand=True`` writes everything out (or pass
    the names to write out), ``max_depth=n`` names subexpressions nested
    deeper than n operations (``u1, u2, …``).  ``elementwise=True`` gives
    the scalar expression of every element instead (small tensors only).

    >>> import symgrad
    >>> w = symgrad.ones(2, 2, requires_grad=True)
    >>> h = (w @ w.T).relu()
    >>> symgrad.formula(h)
    h = relu(w·wᵀ)
    >>> symgrad.formula(h.sum(), elementwise=True)
    out = 2·relu(w[0,0]·w[1,0] + w[0,1]·w[1,1]) + relu(w[0,0]² + w[0,1]²) + relu(w[1,0]² + w[1,1]²)
    """
    root = _as_tensor(tensor)
    graph = RecordedGraph(root, CallerNames(caller_frame(), names))
    lhs = sp.Symbol(graph.root_name, real=True)
    if elementwise:
        arrays = _element_arrays(graph, max_elements, [root.shape])
        return _element_formula(graph, [(lhs, as_sympy(evaluate(graph.output, arrays)))], [root.shape])
    display = _display(graph, expand, max_depth)
    return _tensor_formula(graph, display, [(lhs, display.show(graph.output).expr)], [root.shape])


def grad_formula(out, wrt=None, *, names: dict | None = None, expand=False, max_depth: int | None = None,
                 elementwise: bool = False, max_elements: int = DEFAULT_MAX_ELEMENTS) -> Formula:
    """The derivative of ``out`` with respect to ``wrt`` (a tensor or a list; default: every leaf that requires grad).

    The derivative is the one ``backward`` computes — derived by the same
    reverse mode over the same tensor-level graph — written as a formula:
    ``∂loss/∂w = x ⊗ (σ(z) − y)/3``.  ``wrt`` may be a leaf, an intermediate
    or even a constant the graph reads.  ``out`` must be a scalar, except with
    ``elementwise=True``, which gives the full Jacobian of a small tensor
    (the Hessian, for a gradient made with ``create_graph=True``).  The
    options are those of :func:`formula`.

    >>> import symgrad
    >>> x = symgrad.tensor(1.0, requires_grad=True)
    >>> y = x.exp() / x
    >>> symgrad.grad_formula(y, x)
    ∂y/∂x = (x − 1)·exp(x)/x²
    """
    root = _as_tensor(out)
    names = CallerNames(caller_frame(), names)
    graph = RecordedGraph(root, names)
    tensors = graph.leaf_tensors() if wrt is None else _as_list(wrt)
    targets = [graph.target(_as_tensor(t)) for t in tensors]
    lhs = [Partial(sp.Symbol(graph.root_name, real=True), _target_symbol(graph, t, x, names))
           for t, x in zip(tensors, targets)]
    shapes = [tuple(_as_tensor(t).shape) for t in tensors]
    if elementwise:
        arrays = _element_arrays(graph, max_elements, shapes)
        values = _element_gradients(graph, targets, shapes, arrays)
        return _element_formula(graph, list(zip(lhs, values)), [tuple(root.shape) + s for s in shapes])
    if root.shape != ():
        raise RuntimeError(f"grad_formula needs a scalar output, but it has shape {tuple(root.shape)}: "
                           "differentiate out.sum(), or pass elementwise=True for the Jacobian of a small tensor")
    grads = graph.gradients(targets)
    display = _display(graph, expand, max_depth)
    # a gradient has its tensor's shape: a broadcast to that shape goes without saying
    equations = [(left, _unbroadcast(display.show(g if g is not None else fill(0, s, "float64")).expr))
                 for left, g, s in zip(lhs, grads, shapes)]
    return _tensor_formula(graph, display, equations, shapes)


# ---------------------------------------------------------------------- helpers


def _as_tensor(x) -> Tensor:
    """A tensor, or the tensor a ``grad_fn`` node produced / an ``AccumulateGrad`` accumulates into."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, AccumulateGrad):
        return x.variable
    if isinstance(x, Node):
        tensor = _make(x.result, dtypes.from_numpy_dtype(x.result.dtype))
        tensor._grad_fn = x
        return tensor
    raise TypeError(f"expected a Tensor or a grad_fn node, got {type(x).__name__}")


def _as_list(x) -> list:
    return [x] if isinstance(x, Tensor | Node | AccumulateGrad) else list(x)


def _target_symbol(graph: RecordedGraph, tensor, target: TensorExpr | None, names: CallerNames) -> sp.Symbol:
    """The name ``∂out/∂·`` shows for a target (one the graph does not read is named like a leaf)."""
    tensor = _as_tensor(tensor)
    if isinstance(target, TensorSymbol):
        return graph.leaves[target].display
    for node, name in zip(graph.nodes, graph.result_names):
        if node is target and name:
            return sp.Symbol(name, real=True)
    return sp.Symbol(graph.table.claim(names.name_of(tensor) or "input"), real=True)


def _display(graph: RecordedGraph, expand, max_depth: int | None) -> Display:
    symbols = {leaf.symbol: leaf.display for leaf in graph.leaves.values()}
    return Display(symbols, graph.named_nodes(expand), lambda: graph.table.fresh("u", 1), max_depth)


def _unbroadcast(expr: sp.Expr) -> sp.Expr:
    c, rest = expr.as_coeff_Mul()
    return c * rest.operand if isinstance(rest, Broadcast) else expr


def _reading_order(equations, definitions: dict) -> list[tuple[sp.Symbol, sp.Expr]]:
    """Definitions top-down: in order of first use by the equations, then by earlier definitions."""
    queue = [rhs for _, rhs in equations]
    ordered: dict = {}
    while queue:
        for part in sp.preorder_traversal(queue.pop(0)):
            if part in definitions and part not in ordered:
                ordered[part] = definitions[part]
                queue.append(definitions[part])
    return list(ordered.items())


def _tensor_formula(graph: RecordedGraph, display: Display, equations, result_shapes) -> Formula:
    definitions = _reading_order(equations, {name: shown.expr for name, shown in display.definitions()})
    symbols = set(display.shapes) | {lhs for lhs, _ in equations if isinstance(lhs, sp.Symbol)}
    symbols |= {a for lhs, _ in equations if isinstance(lhs, Partial) for a in lhs.args}
    return Formula(equations, definitions, shapes=display.shapes,
                   latex_names={s: latex_name(s.name) for s in symbols},
                   values={leaf.display: leaf.value for leaf in graph.leaves.values()},
                   result_shapes=result_shapes)


def _element_arrays(graph: RecordedGraph, max_elements: int, result_shapes) -> dict:
    sizes = {leaf.name: leaf.value.size for leaf in graph.leaves.values()}
    big = {name: n for name, n in sizes.items() if n > max_elements}
    total = sum(sizes.values()) + sum(int(np.prod(s)) for s in result_shapes)
    if big or total > 4 * max_elements:
        raise ValueError(f"elementwise=True writes every element out; these tensors are too large: "
                         f"{big or sizes} (max_elements={max_elements}). Use the tensor-level formula instead.")
    indices = index_symbols(graph.nodes)  # which elements are read is data: shown at its values
    return {leaf.symbol: _object_values(leaf.value) if leaf.symbol in indices
            else element_symbols(leaf.name, leaf.shape) for leaf in graph.leaves.values()}


def _object_values(value: np.ndarray) -> np.ndarray:
    out = np.empty(value.shape, dtype=object)
    for index in np.ndindex(*value.shape):
        out[index] = sp.Integer(int(value[index]))
    return out


def _element_gradients(graph: RecordedGraph, targets, shapes, arrays) -> list:
    """Each target's derivative element by element; the Jacobian when the output is not a scalar."""
    out = graph.output
    if out.shape == ():
        grads = graph.gradients(targets)
        return [as_sympy(evaluate(g, arrays) if g is not None else np.zeros(s, dtype=object))
                for g, s in zip(grads, shapes)]
    seed = TensorSymbol("seed", out.shape, out.dtype.name, "seed")
    grads = graph.gradients(targets, seed)
    results = []
    for g, s in zip(grads, shapes):
        rows = np.zeros(out.shape + s, dtype=object)
        for index in np.ndindex(*out.shape):
            one_hot = np.zeros(out.shape, dtype=object)
            one_hot[index] = 1
            if g is not None:
                rows[index] = evaluate(g, {**arrays, seed: one_hot})
        results.append(as_sympy(rows))
    return results


def _element_formula(graph: RecordedGraph, equations, result_shapes) -> Formula:
    names, values = {}, {}
    for leaf in graph.leaves.values():
        names.update(element_latex_names(leaf.name, leaf.shape))
        symbols = element_symbols(leaf.name, leaf.shape)
        for index in np.ndindex(*leaf.shape):
            values[symbols[index]] = leaf.value[index]
    for lhs, _ in equations:
        for s in lhs.args if isinstance(lhs, Partial) else (lhs,):
            names.setdefault(s, latex_name(s.name))
    return Formula(equations, shapes={}, latex_names=names, values=values, result_shapes=result_shapes)
