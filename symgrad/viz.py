"""Pictures of recorded graphs: the ``grad_fn`` chain, as Graphviz DOT, SVG or PNG.

``symgrad.viz.draw(t)`` walks the graph below ``t`` and returns a
:class:`Graph`: one box per ``grad_fn`` node (named as PyTorch names them,
``MmBackward0``), a blue box per leaf that requires grad, a grey box per
constant input, each with its name and shape, and ``t`` itself in green.
``formulas=True`` adds each node's formula (``z = u1 + b``).

The DOT source needs nothing else (``.source``); SVG and PNG need the
``graphviz`` Python package and Graphviz's ``dot`` program
(``pip install 'symgrad[graph]'`` and ``apt-get install graphviz``), and a
clear error says so when either is missing.  In Jupyter a graph displays
itself.

>>> import symgrad
>>> w = symgrad.ones(2, requires_grad=True, name="w")
>>> picture = symgrad.viz.draw((w * 3).sum())
>>> print(picture.source)
digraph {
    graph [rankdir=BT]
    node [shape=box, style="rounded,filled", fillcolor=white, fontname="DejaVu Sans", fontsize=11]
    edge [arrowsize=0.7]
    n0 [label="MulBackward0\\n(2,)"]
    n1 [label="SumBackward0\\n()"]
    leaf0 [label="w\\n(2,)", fillcolor=lightblue]
    out [label="out\\n()", fillcolor=darkolivegreen1]
    leaf0 -> n0
    n0 -> n1
    n1 -> out
}
"""

from __future__ import annotations

from pathlib import Path

from .autograd.graph import AccumulateGrad, Node
from .formula.api import _as_tensor
from .formula.display import Display
from .formula.graph import RecordedGraph
from .formula.names import CallerNames, caller_frame
from .formula.printing import text
from .symbolic.nodes import TensorSymbol
from .tensor import Tensor

__all__ = ["draw", "Graph", "GraphvizNotFoundError"]

INSTALL_HINT = ("Rendering a picture needs the graphviz Python package and Graphviz's `dot` program: "
                "pip install 'symgrad[graph]' (or pip install graphviz), and Graphviz itself "
                "(apt-get install graphviz, brew install graphviz or conda install graphviz). "
                "The DOT source needs neither: draw(t).source.")

_COLORS = {"leaf": "lightblue", "const": "gray90", "out": "darkolivegreen1"}


class GraphvizNotFoundError(RuntimeError):
    """The ``graphviz`` Python package or the ``dot`` program is missing (the message says how to install them)."""


class Graph:
    """A picture of a recorded graph: DOT source always, SVG/PNG through Graphviz.

    ``source`` is the DOT text; :meth:`pipe` renders it to bytes,
    :meth:`render` to a file; Jupyter shows it inline as SVG.
    """

    def __init__(self, source: str, nodes: int) -> None:
        self.source = source
        self.nodes = nodes

    def __repr__(self) -> str:
        return f"<symgrad.viz.Graph of {self.nodes} nodes: .source (DOT), .render(path) (SVG/PNG)>"

    def pipe(self, format: str = "svg") -> bytes:  # noqa: A002 - graphviz's own argument name
        """The picture as bytes in ``format`` (``svg``, ``png``, ``pdf`` …)."""
        graphviz = _graphviz()
        try:
            return graphviz.Source(self.source).pipe(format=format)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizNotFoundError(INSTALL_HINT) from error

    def render(self, path, format: str | None = None) -> str:  # noqa: A002
        """Write the picture to ``path`` (format from its suffix unless given); returns the path."""
        path = Path(path)
        data = self.pipe(format or path.suffix.lstrip(".") or "png")
        path.write_bytes(data)
        return str(path)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter: the SVG when Graphviz is there, else the DOT source as text."""
        try:
            return {"image/svg+xml": self.pipe("svg").decode("utf-8"), "text/plain": repr(self)}
        except GraphvizNotFoundError:
            return {"text/plain": self.source}


def _graphviz():
    try:
        import graphviz
    except ImportError as error:
        raise GraphvizNotFoundError(INSTALL_HINT) from error
    return graphviz


def draw(tensor, *, formulas: bool = False, constants: bool = True, names: dict | None = None) -> Graph:
    """The ``grad_fn`` graph below ``tensor`` (or a ``grad_fn`` node) as a :class:`Graph`.

    Boxes show PyTorch's node names, the names and shapes of leaves and of
    intermediates held in the caller's variables; ``formulas=True`` adds
    each node's formula in terms of its operands (unnamed intermediates get
    ``u1, u2, …``); ``constants=False`` leaves out the inputs that do not
    require grad; ``names`` (``{"w": w, …}``) names tensors as in :func:`symgrad.formula`.
    """
    root = _as_tensor(tensor)
    graph = RecordedGraph(root, CallerNames(caller_frame(), names))
    return _Drawing(graph, root, formulas, constants).build()


def _quote(label: str) -> str:
    return '"' + label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(shape) -> str:
    return str(tuple(shape))


class _Drawing:
    """Builds the DOT lines of one graph."""

    def __init__(self, graph: RecordedGraph, root: Tensor, formulas: bool, constants: bool) -> None:
        self.graph, self.root, self.constants = graph, root, constants
        self.nodes: list[str] = []
        self.edges: list[str] = []
        self.inputs: dict[TensorSymbol, str] = {}
        self.formulas = self._formulas() if formulas else None

    def _formulas(self) -> list[str]:
        """Each recorded node's formula over its operands, every intermediate shown by name."""
        graph = self.graph
        names, first = {}, {}
        for i, node in enumerate(graph.nodes):
            if node is not graph.output and not isinstance(node, TensorSymbol) and node not in names:
                names[node], first[node] = graph.result_names[i] or graph.table.fresh("u", 1), i
        symbols = {leaf.symbol: leaf.display for leaf in graph.leaves.values()}
        display = Display(symbols, names, lambda: graph.table.fresh("u", 1))
        out = []
        for i, node in enumerate(graph.nodes):
            if node is graph.output or first.get(node) == i:
                label, shown = (graph.root_name if node is graph.output else names[node]), display.show(node)
            else:  # a node whose lowering is another node's (a no-op squeeze) or an input
                label, shown = graph.result_names[i] or "·", display.ref(node)
            out.append(f"{label} = {text(shown.expr, display.shapes)}")
        return out

    def build(self) -> Graph:
        graph = self.graph
        if graph.order:
            index = {node: i for i, node in enumerate(graph.order)}
            for i, node in enumerate(graph.order):
                self._node(i, node)
            for i, node in enumerate(graph.order):
                for j, edge in enumerate(node.edges):
                    self._edge(i, j, node, edge, index)
            self.nodes.append(f"out [label={_quote(self._output_label())}, fillcolor={_COLORS['out']}]")
            self.edges.append(f"n{index[self.root._grad_fn]} -> out")
        else:  # a leaf or a constant: nothing was recorded
            self.nodes.append(f"out [label={_quote(self._output_label())}, fillcolor={_COLORS['out']}]")
        header = ["graph [rankdir=BT]",
                  'node [shape=box, style="rounded,filled", fillcolor=white, fontname="DejaVu Sans", fontsize=11]',
                  "edge [arrowsize=0.7]"]
        body = "\n".join(f"    {line}" for line in header + self.nodes + self.edges)
        return Graph("digraph {\n" + body + "\n}\n", len(self.nodes))

    def _output_label(self) -> str:
        return f"{self.graph.root_name}\n{_shape(self.root.shape)}"

    def _node(self, i: int, node: Node) -> None:
        lines = [node.name()]
        name = self.graph.result_names[i]
        if self.formulas is not None:
            lines.append(self.formulas[i])
        elif name:
            lines.append(name)
        lines.append(_shape(node.result.shape))
        self.nodes.append(f"n{i} [label={_quote(chr(10).join(lines))}]")

    def _edge(self, i: int, j: int, node: Node, edge, index: dict) -> None:
        if isinstance(edge, Node):
            self.edges.append(f"n{index[edge]} -> n{i}")
        elif isinstance(edge, AccumulateGrad):
            symbol = self.graph.target(edge.variable)
            self.edges.append(f"{self._input(symbol, 'leaf')} -> n{i}")
        elif self.constants and hasattr(node.values[j], "shape"):
            symbol = self.graph.operand_symbols.get(id(node.values[j]))
            if symbol is not None:
                self.edges.append(f"{self._input(symbol, 'const')} -> n{i}")

    def _input(self, symbol: TensorSymbol, kind: str) -> str:
        found = self.inputs.get(symbol)
        if found is None:
            leaf = self.graph.leaves[symbol]
            found = self.inputs[symbol] = f"{kind}{sum(1 for k in self.inputs.values() if k.startswith(kind))}"
            style = ", style=\"rounded,filled,dashed\"" if kind == "const" else ""
            self.nodes.append(f"{found} [label={_quote(f'{leaf.name}{chr(10)}{_shape(leaf.shape)}')}, "
                              f"fillcolor={_COLORS[kind]}{style}]")
        return found
