"""The compiler behind :func:`symgrad.compile`: a traced function -> one NumPy module.

:mod:`symgrad.compiler.backward` compiles only the backward pass of a graph
the eager forward has already run.  A compiled *program* computes everything
from the function's arguments: the forward values, then the gradients, in one
generated function, so a call builds no graph and runs no Python per op.

The input is the same structure key as the backward's (see
:mod:`symgrad.compiler.backward`) plus, per slot, what it stands for in the
program (:class:`SlotRole`): an argument, a Python number or an array
captured by the function (folded into the code as constants), a reduction's
reference operand (recomputed from its operand) or nothing (saved results
are ignored: the program recomputes them).

The module it prints defines

* ``forward(args…)`` -> the value,
* ``value_and_grad(args…)`` -> the value and the gradients of the ``wrt`` slots,
* ``vjp(args…, seed)`` -> the gradients for an output seed (jacobians),
* ``hvp(args…, tangent…)`` -> Hessian-vector products (hessians; scalar outputs only),

as asked, each with common subexpressions computed once, elementwise chains
fused, and the forward's intermediates read by the gradient code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..derive import gradients
from ..symbolic.nodes import TensorExpr, TensorSymbol, fill, topological_order
from .backward import lower_nodes, may_alias
from .codegen import compile_namespace, function_lines, generate_module, python_name
from .optimize import optimize
from .scalar import SCALAR_NAMESPACE, scalar_function_lines

__all__ = ["SlotRole", "Program", "build_program"]

# arrays with more elements than this are not printed into ``.source``: they are
# loaded from a ``.npz`` file written beside the module by ``save``
LARGEST_PRINTED_CONSTANT = 64


@dataclass(frozen=True)
class SlotRole:
    """What a structure-key slot stands for in a compiled program.

    ``kind``: ``"arg"`` (argument ``index``), ``"constant"`` (``value`` is baked in),
    ``"reference"`` (``value`` is ``(kind, axes)`` of a :class:`Reference`) or
    ``"unused"`` (a saved result: recomputed).
    """

    kind: str
    index: int = -1
    value: object = None


@dataclass
class Program:
    """Compiled functions of one traced program and the module they come from."""

    functions: dict[str, object]
    source: str                       # the module as ``.source`` shows it (large constants loaded from .npz)
    constants: dict[str, np.ndarray]  # module-level arrays too large to print
    expressions: dict[str, list] = field(default_factory=dict)  # outputs of each function as SymPy graphs
    # per function and output: whether the value may be an argument or a view of one (callers copy it)
    aliases: dict[str, tuple[bool, ...]] = field(default_factory=dict)
    # per-element Python versions of forward/value_and_grad for tiny float64 arrays (``<name>_scalar`` in
    # ``functions``), when the graph allows: see symgrad.compiler.scalar
    scalar_source: str | None = None


def build_program(key, roles: list[SlotRole], arg_symbols: list[TensorSymbol], *, wrt: list[int],
                  node_names: list[str | None] | None = None, stabilize=None, hessian: bool = False,
                  passes: bool = True, doc: str = "") -> Program:
    """Compile ``forward``, ``value_and_grad``, ``vjp`` (and ``hvp``) for a structure key.

    ``arg_symbols`` are the function's parameters (one per argument, in order);
    ``wrt`` lists the argument indices to differentiate; ``node_names`` suggests
    a variable name per recorded node (the user's own names); ``stabilize`` is
    a pass run on the forward graph before deriving; ``passes=False`` prints the
    graphs as derived, without :func:`symgrad.compiler.optimize.optimize` (to test the passes).
    """
    nodes, slots, roots, _ = key
    constants: dict[TensorSymbol, np.ndarray] = {}
    taken = {s.name for s in arg_symbols if s is not None}
    inputs, references = [], {}
    for slot, role in zip(slots, roles):
        if role.kind == "arg":
            inputs.append(arg_symbols[role.index])
        elif role.kind == "constant":
            inputs.append(_constant(role.value, slot, constants, taken))
        elif role.kind == "reference":
            references[len(inputs)] = role.value
            inputs.append(None)
        else:
            inputs.append(None)
    lowered = lower_nodes(nodes, inputs, references)
    (root, _), = roots
    value = lowered[root]
    if stabilize is not None:
        (value,) = stabilize([value])
    wrt_symbols = [arg_symbols[i] for i in wrt]
    grads = _zeros_for_missing(gradients([value], [fill(1, value.shape, value.dtype)], wrt_symbols), wrt_symbols)
    seed = TensorSymbol(python_name("seed", taken), value.shape, value.dtype.name, "seed")
    vjps = _zeros_for_missing(gradients([value], [seed], wrt_symbols), wrt_symbols)
    names = {lowered[i]: n for i, n in enumerate(node_names or []) if n}
    outputs = {
        "forward": ([value], ["value"], []),
        "value_and_grad": ([value, *grads], ["value", *(f"grad_{s.name}" for s in wrt_symbols)], []),
        "vjp": (vjps, [f"grad_{s.name}" for s in wrt_symbols], [seed]),
    }
    if hessian:
        tangents = [TensorSymbol(python_name(f"tangent_{s.name}", taken), s.shape, s.dtype.name, "seed")
                    for s in wrt_symbols]
        hvps = _hessian_vector_products(grads, tangents, wrt_symbols)
        outputs["hvp"] = (hvps, [f"hvp_{s.name}" for s in wrt_symbols], tangents)
    return _assemble(outputs, arg_symbols, constants, names, doc, passes)


def _constant(value, slot, constants: dict, taken: set[str]) -> TensorExpr:
    """A captured Python number (folded into kernels) or array (a module-level constant)."""
    kind, shape, dtype = slot
    if kind == "scalar":
        # folded into the kernels that read it (a bool counts as 0/1, as in arithmetic)
        return fill(value if isinstance(value, float) else int(value), (),
                    np.float64 if isinstance(value, float) else np.int64)
    array = np.asarray(value)
    symbol = TensorSymbol(python_name("const", taken), array.shape, array.dtype.name, "constant")
    constants[symbol] = array
    return symbol


def _zeros_for_missing(grads, wrt):
    return [fill(0, w.shape, w.dtype) if g is None else g for g, w in zip(grads, wrt)]


def _hessian_vector_products(grads, tangents, wrt):
    """``H @ v`` for each argument: the gradient of ``sum(grad · tangent)`` (reverse over reverse)."""
    return _zeros_for_missing(gradients(grads, tangents, wrt), wrt)


def _assemble(outputs: dict, arg_symbols, constants: dict, names: dict, doc: str, passes: bool) -> Program:
    module_names = {symbol: symbol.name for symbol in constants}
    arg_symbols = [s for s in arg_symbols if s is not None]  # arguments that are not arrays are baked in
    functions_lines, expressions = [], {}
    for name, (exprs, output_names, extra) in outputs.items():
        exprs = optimize(exprs) if passes else exprs
        expressions[name] = exprs
        functions_lines.append(function_lines(name, [*arg_symbols, *extra], exprs, doc=_doc(name, doc),
                                              output_names=output_names, quiet=True, node_names=names,
                                              module_names=module_names))
    used = {n for exprs in expressions.values() for n in topological_order(exprs) if n in constants}
    printed = {s.name: _literal(a) for s, a in constants.items() if s in used and a.size <= LARGEST_PRINTED_CONSTANT}
    loaded = {s.name: a for s, a in constants.items() if s in used and a.size > LARGEST_PRINTED_CONSTANT}
    shown = dict(printed)
    if loaded:
        shown["_saved"] = 'np.load(__file__.removesuffix(".py") + ".npz")'
        shown.update({name: f"_saved[{name!r}]" for name in loaded})
    source = generate_module(functions_lines, docstring=_MODULE_DOC, constants=shown)
    scalar_lines = [lines for name in _UNROLLED if (lines := scalar_function_lines(
        f"{name}_scalar", name, arg_symbols, expressions[name], module_names)) is not None]
    runnable = generate_module(functions_lines + scalar_lines, docstring=_MODULE_DOC, constants=printed)
    namespace = compile_namespace(runnable, {**loaded, **SCALAR_NAMESPACE})
    functions = {name: namespace[name] for name in outputs}
    functions.update({f"{name}_scalar": namespace[f"{name}_scalar"] for name in _UNROLLED
                      if f"{name}_scalar" in namespace})
    aliases = {name: tuple(may_alias(e) for e in exprs) for name, exprs in expressions.items()}
    scalar_source = "\n\n\n".join("\n".join(lines) for lines in scalar_lines) + "\n" if scalar_lines else None
    return Program(functions, source, loaded, expressions, aliases, scalar_source)


_UNROLLED = ("forward", "value_and_grad")  # the calls whose overhead matters on tiny arrays


_MODULE_DOC = "Generated by symgrad.compile: NumPy only, no symgrad needed."

_DOCS = {
    "forward": "The value of {doc}.",
    "value_and_grad": "The value of {doc} and its gradients.",
    "vjp": "Gradients of {doc} for the output gradient ``seed``.",
    "hvp": "Hessian-vector products of {doc} with the tangents.",
}


def _doc(name: str, doc: str) -> str:
    return _DOCS[name].format(doc=doc or "the function")


def _literal(array: np.ndarray) -> str:
    return f"np.array({array.tolist()!r}, dtype=np.{array.dtype.name})"
