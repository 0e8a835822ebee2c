"""NumPy code generation: one line per tensor node, names a person can read.

The generated module imports NumPy only; it is valid on its own (``.source``
can be saved and imported without symgrad).  Each SymPy node class has a
``_print_<Class>`` method here, mirroring SymPy's printer dispatch.
"""

from __future__ import annotations

import linecache
import re
from itertools import count

import numpy as np

from ..symbolic.nodes import (
    BroadcastTo,
    Elementwise,
    Fill,
    MatMul,
    Permute,
    Reshape,
    Sum,
    TensorExpr,
    TensorSymbol,
    broadcast_shapes,
    topological_order,
)
from ..symbolic.numpy_helpers import HELPERS, helper_source, helpers_called
from ..symbolic.numpy_printer import kernel_source, may_warn

__all__ = ["generate_function", "compile_source", "python_name"]

_counter = count()


def python_name(text: str, taken: set[str]) -> str:
    """A fresh, valid Python identifier derived from ``text`` (not a keyword, not in ``taken``).

    >>> python_name("w.grad", {"w_grad"})
    'w_grad_1'
    """
    base = re.sub(r"\W", "_", text) or "t"
    if base[0].isdigit():
        base = "t_" + base
    if base in _RESERVED:
        base += "_"
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


_RESERVED = set(__import__("keyword").kwlist) | {"np", "numpy", "None", "True", "False"} | set(HELPERS)


class _Emitter:
    """Turns a DAG of tensor nodes into statements, one per non-trivial node."""

    def __init__(self, params: list[TensorSymbol]):
        self.taken: set[str] = set()
        self.names: dict[TensorExpr, str] = {}
        for p in params:
            self.names[p] = python_name(p.name, self.taken)
        self.lines: list[str] = []
        self.may_warn = False  # a kernel can produce inf/nan warnings (PyTorch never warns)

    def emit(self, outputs: list[TensorExpr], output_names=None) -> list[str]:
        uses = _use_counts(outputs)
        preferred = dict(zip(outputs, output_names or []))
        for node in topological_order(outputs):
            if node in self.names:
                continue
            if isinstance(node, TensorSymbol):
                raise ValueError(f"{node.name} is used but is not a parameter")
            expression = getattr(self, f"_print_{type(node).__name__}")(node)
            if uses.get(node, 0) == 1 and isinstance(node, Fill) and node not in outputs:
                self.names[node] = expression  # a constant read once is written inline
                continue
            name = python_name(preferred.get(node) or _stem(node), self.taken)
            self.lines.append(f"{name} = {expression}")
            self.names[node] = name
        return [self.names[o] for o in outputs]

    def _print_Elementwise(self, node: Elementwise) -> str:
        self.may_warn = self.may_warn or may_warn(node.expr)
        source = kernel_source(node.expr, [self.names[x] for x in node.inputs])
        natural = [x.dtype for x in node.inputs if x.dtype is not None]
        if natural and np.result_type(*natural) != node.dtype:  # a dtype conversion (Tensor.to)
            source = f"np.asarray({source}, dtype=np.{node.dtype.name})"
        if broadcast_shapes(*(x.shape for x in node.inputs)) != node.shape:
            # the formula no longer reads the operand that carried the shape (x/x is 1)
            source = f"np.broadcast_to({source}, {node.shape})"
        return source

    def _print_MatMul(self, node: MatMul) -> str:
        a, b = (self.names[x] for x in node.args)
        return f"{a} @ {b}"

    def _print_Sum(self, node: Sum) -> str:
        axes = node.axes
        axis = axes[0] if len(axes) == 1 else axes
        keep = ", keepdims=True" if node.keepdim else ""
        return f"np.sum({self.names[node.args[0]]}, axis={axis}{keep})"

    def _print_Reshape(self, node: Reshape) -> str:
        return f"np.reshape({self.names[node.args[0]]}, {node.attr})"

    def _print_BroadcastTo(self, node: BroadcastTo) -> str:
        return f"np.broadcast_to({self.names[node.args[0]]}, {node.attr})"

    def _print_Permute(self, node: Permute) -> str:
        a = self.names[node.args[0]]
        return f"{a}.T" if node.attr == (1, 0) else f"np.transpose({a}, {node.attr})"

    def _print_Fill(self, node: Fill) -> str:
        value = float(node.value) if node.value.is_finite else repr(float(node.value))
        dtype = f"np.{node.dtype.name}"
        if value == 0:
            return f"np.zeros({node.shape}, dtype={dtype})"
        return f"np.full({node.shape}, {value!r}, dtype={dtype})"


def _stem(node: TensorExpr) -> str:
    if isinstance(node, Elementwise):
        return "t"
    return {MatMul: "mm", Sum: "s", Reshape: "r", BroadcastTo: "b", Permute: "p", Fill: "c"}.get(type(node), "t")


def _use_counts(outputs) -> dict[TensorExpr, int]:
    uses: dict[TensorExpr, int] = {}
    for node in topological_order(outputs):
        for child in node.inputs:
            uses[child] = uses.get(child, 0) + 1
    return uses


def generate_function(name: str, params: list[TensorSymbol], outputs: list[TensorExpr],
                      *, doc: str = "", output_names: list[str] | None = None, quiet: bool = False) -> str:
    """Source of a stand-alone module defining ``name(*params)`` returning ``outputs`` as a tuple.

    ``output_names`` name the variables holding the outputs (when computed here);
    ``quiet`` runs the body under ``np.errstate(all="ignore")`` when a kernel
    may warn (for stand-alone code; symgrad's own calls are silenced by the caller).

    >>> import sympy as sp
    >>> from symgrad.symbolic import TensorSymbol, elementwise, arg
    >>> x = TensorSymbol("x", (3,), "float64")
    >>> print(generate_function("f", [x], [elementwise(sp.exp(arg(0)), [x], "float64")]).splitlines()[-2])
        t = np.exp(x)
    """
    emitter = _Emitter(params)
    results = emitter.emit(outputs, output_names)
    header = ", ".join(emitter.names[p] for p in params)
    body = [f"def {name}({header}):"]
    if doc:
        body.append(f'    """{doc}"""')
    indent = "    "
    if quiet and emitter.may_warn:  # silence inf/nan warnings, as PyTorch is silent
        body.append('    with np.errstate(all="ignore"):')
        indent = "        "
    body += [f"{indent}{line}" for line in emitter.lines]
    body.append(f"{indent}return ({', '.join(results)}{',' if len(results) == 1 else ''})")
    # NumPy functions NumPy lacks (erf) are defined in the module itself: it still imports NumPy only
    helpers = "".join(helper_source(h) + "\n\n" for h in helpers_called("\n".join(body)))
    return "import numpy as np\n\n\n" + helpers + "\n".join(body) + "\n"


def compile_source(source: str, name: str):
    """Execute generated source and return the function ``name`` (tracebacks show the source).

    >>> compile_source("def f(x):\\n    return x + 1\\n", "f")(1)
    2
    """
    filename = f"<symgrad-generated-{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"np": np}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated source
    return namespace[name]

