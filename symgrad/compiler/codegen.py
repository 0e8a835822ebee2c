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

from ..symbolic.einsum import Einsum
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
    ScatterAddAlong,
    Slice,
    SliceScatter,
    Sum,
    TakeAlong,
    TensorExpr,
    TensorSymbol,
    broadcast_shapes,
    topological_order,
)
from ..symbolic.numpy_helpers import HELPERS, helper_source, helpers_called
from ..symbolic.numpy_printer import kernel_source, may_warn

__all__ = ["generate_function", "generate_module", "function_lines", "compile_source", "compile_namespace",
           "python_name"]

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
    suffixes = getattr(taken, "suffixes", None)  # a NameSet remembers where each base's search stopped
    k = suffixes.get(base, 0) if suffixes is not None else 0
    name = base if k == 0 else f"{base}_{k}"
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    if suffixes is not None:
        suffixes[base] = k
    taken.add(name)
    return name


class NameSet(set):
    """A set of taken names that makes :func:`python_name` O(1) per name (t, t_1, … t_999)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.suffixes: dict[str, int] = {}


_RESERVED = set(__import__("keyword").kwlist) | {"np", "numpy", "None", "True", "False"} | set(HELPERS)


class _Emitter:
    """Turns a DAG of tensor nodes into statements, one per non-trivial node."""

    def __init__(self, params: list[TensorSymbol], module_names: dict[TensorSymbol, str] | None = None):
        self.taken: set[str] = NameSet()
        self.names: dict[TensorExpr, str] = {}
        for symbol, name in (module_names or {}).items():  # module-level constants: read, never assigned
            self.names[symbol] = name
            self.taken.add(name)
        for p in params:
            self.names[p] = python_name(p.name, self.taken)
        self.lines: list[str] = []
        self.may_warn = False  # a kernel can produce inf/nan warnings (PyTorch never warns)

    def emit(self, outputs: list[TensorExpr], output_names=None, node_names=None) -> list[str]:
        uses = _use_counts(outputs)
        preferred = {**(node_names or {}), **dict(zip(outputs, output_names or []))}
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
        source = kernel_source(node.expr, [self._operand(x, node) for x in node.inputs])
        natural = [x.dtype for x in node.inputs if x.dtype is not None]
        if natural and np.result_type(*natural) != node.dtype:  # a dtype conversion (Tensor.to)
            source = f"np.asarray({source}, dtype=np.{node.dtype.name})"
        # printing can cancel terms (factor_terms turns a*(b - c) + a*(c - b) into 0): the shape
        # and dtype then come from the node, not from the operands the printed kernel still reads
        read = [x for x in node.inputs if _reads(source, self.names[x])]
        if node.inputs and not read:
            source = f"np.full({node.shape}, {source}, dtype=np.{node.dtype.name})"
        elif broadcast_shapes(*(x.shape for x in read)) != node.shape:
            # the formula no longer reads the operand that carried the shape (x/x is 1)
            source = f"np.broadcast_to({source}, {node.shape})"
        return source

    def _operand(self, x: TensorExpr, node: Elementwise) -> str:
        name = self.names[x]
        if x.dtype == bool and node.dtype != bool:  # NumPy refuses arithmetic such as -mask on booleans
            return f"np.asarray({name}, dtype=np.{node.dtype.name})"  # (a constant mask may print as False)
        return name

    def _print_MatMul(self, node: MatMul) -> str:
        a, b = (self.names[x] for x in node.args)
        return f"{a} @ {b}"

    def _print_Einsum(self, node: Einsum) -> str:
        subscripts, extras = node.numpy_form()
        dtype = f"dtype=np.{node.dtype.name}"
        operands = [self.names[x] for x in node.inputs]
        operands += [f"np.eye({n}, {dtype})" if kind == "eye" else f"np.ones({n}, {dtype})" for kind, n in extras]
        optimize = ", optimize=True" if len(operands) > 1 else ""  # BLAS and a contraction order
        return f"np.einsum({subscripts!r}, {', '.join(operands)}{optimize})"

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

    def _print_Reference(self, node: Reference) -> str:
        x = node.args[1]
        source = f"{node.kind}({self.names[x]}, {node.axes})"
        if x.dtype is not None and node.dtype not in (x.dtype, np.dtype(bool)):  # a dtype= conversion
            source = f"{source}.astype(np.{node.dtype.name})"
        return source

    def _print_Slice(self, node: Slice) -> str:
        return f"{self.names[node.args[0]]}[{slice_text(node.slices, node.args[0].shape)}]"

    def _print_SliceScatter(self, node: SliceScatter) -> str:
        index = slice_text(node.slices, node.shape)
        return f"slice_scatter({self.names[node.args[0]]}, {node.shape}, np.s_[{index}])"

    def _print_TakeAlong(self, node: TakeAlong) -> str:
        a, index = (self.names[x] for x in node.args[:2])
        return f"np.take_along_axis({a}, {index}, axis={node.axis})"

    def _print_ScatterAddAlong(self, node: ScatterAddAlong) -> str:
        a, index = (self.names[x] for x in node.args[:2])
        return f"scatter_add_along({a}, {index}, {node.axis}, {node.size})"

    def _print_Concat(self, node: Concat) -> str:
        return f"np.concatenate(({', '.join(self.names[x] for x in node.inputs)}), axis={node.axis})"

    def _print_Cumsum(self, node: Cumsum) -> str:
        return f"np.cumsum({self.names[node.args[0]]}, axis={node.axis})"

    def _print_Fill(self, node: Fill) -> str:
        value = float(node.value) if node.value.is_finite else repr(float(node.value))
        dtype = f"np.{node.dtype.name}"
        if value == 0:
            return f"np.zeros({node.shape}, dtype={dtype})"
        return f"np.full({node.shape}, {value!r}, dtype={dtype})"


def _reads(source: str, name: str) -> bool:
    """Whether the printed ``source`` mentions the operand printed as ``name`` (a variable or inline text)."""
    if not name.isidentifier():
        return name in source
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", source) is not None


def slice_text(slices, shape) -> str:
    """Canonical ``(start, stop, step)`` triples as NumPy slice syntax, trailing whole axes left out.

    >>> slice_text([(1, 3, 1), (0, 5, 1)], (4, 5)), slice_text([(0, 4, 1), (4, -1, -1)], (4, 5))
    ('1:3', ':, ::-1')
    """
    parts = [_one_slice(s, n) for s, n in zip(slices, shape)]
    while len(parts) > 1 and parts[-1] == ":":
        parts.pop()
    return ", ".join(parts)


def _one_slice(s, size: int) -> str:
    start, stop, step = s
    if step > 0:
        first = "" if start == 0 else str(start)
        last = "" if stop >= size else str(stop)
    else:
        first = "" if start == size - 1 else str(start)
        last = "" if stop < 0 else str(stop)
    text = f"{first}:{last}"
    return text if step == 1 else f"{text}:{step}"


def _stem(node: TensorExpr) -> str:
    if isinstance(node, Elementwise):
        return "t"
    stems = {MatMul: "mm", Sum: "s", Reshape: "r", BroadcastTo: "b", Permute: "p", Fill: "c", Reference: "ref",
             Slice: "sl", SliceScatter: "sl", TakeAlong: "taken", ScatterAddAlong: "sc", Concat: "cat",
             Cumsum: "cs"}
    return stems.get(type(node), "t")


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
    return generate_module([function_lines(name, params, outputs, doc=doc, output_names=output_names, quiet=quiet)])


def function_lines(name: str, params: list[TensorSymbol], outputs: list[TensorExpr], *, doc: str = "",
                   output_names: list[str] | None = None, quiet: bool = False,
                   node_names: dict[TensorExpr, str] | None = None,
                   module_names: dict[TensorSymbol, str] | None = None) -> list[str]:
    """The lines of one generated function (see :func:`generate_function`; :func:`generate_module` joins them).

    ``node_names`` suggests variable names for intermediate nodes; ``module_names``
    maps symbols to module-level constants the function reads.
    """
    emitter = _Emitter(params, module_names)
    results = emitter.emit(outputs, output_names, node_names)
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
    return body


def generate_module(functions: list[list[str]], *, docstring: str = "", constants: dict[str, str] | None = None) -> str:
    """A module of the given :func:`function_lines`, importing NumPy only.

    ``constants`` maps module-level names to the source of their values.

    >>> print(generate_module([["def f(x):", "    return (x + c,)"]], constants={"c": "1.0"}))
    import numpy as np
    <BLANKLINE>
    c = 1.0
    <BLANKLINE>
    <BLANKLINE>
    def f(x):
        return (x + c,)
    <BLANKLINE>
    """
    code = "\n\n\n".join("\n".join(lines) for lines in functions)
    # NumPy functions NumPy lacks (erf) are defined in the module itself: it still imports NumPy only
    helpers = "".join(helper_source(h) + "\n\n" for h in helpers_called(code))
    head = f'"""{docstring}"""\n\n' if docstring else ""
    values = "".join(f"{name} = {value}\n" for name, value in (constants or {}).items())
    values = f"\n{values}" if values else ""
    return head + "import numpy as np\n" + values + "\n\n" + helpers + code + "\n"


def compile_source(source: str, name: str, constants: dict | None = None):
    """Execute generated source and return the function ``name`` (tracebacks show the source).

    ``constants`` are added to the module's namespace first (values too large to print).

    >>> compile_source("def f(x):\\n    return x + 1\\n", "f")(1)
    2
    """
    return compile_namespace(source, constants)[name]


def compile_namespace(source: str, constants: dict | None = None) -> dict:
    """Execute generated source (with ``constants`` predefined) and return its namespace."""
    filename = f"<symgrad-generated-{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"np": np, **(constants or {})}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated source
    return namespace

