"""Graph pictures (``symgrad.viz.draw``): DOT always, PNG/SVG through Graphviz, a clear error without it.

The PNG of the tutorial's graph is rendered here when the ``graphviz``
package and the ``dot`` program are installed (CI installs both) and the
test is skipped, not failed, on a machine without them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import symgrad
from symgrad import viz


def _tutorial():
    symgrad.manual_seed(0)
    x = symgrad.ones(5)
    y = symgrad.zeros(3)
    w = symgrad.randn(5, 3, requires_grad=True)
    b = symgrad.randn(3, requires_grad=True)
    z = symgrad.matmul(x, w) + b
    loss = symgrad.nn.functional.binary_cross_entropy_with_logits(z, y)
    return x, y, w, b, z, loss


def _renderable() -> bool:
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


needs_graphviz = pytest.mark.skipif(not _renderable(), reason="the graphviz package or the dot program is missing")


def test_dot_source_shows_pytorch_names_leaves_and_shapes():
    x, y, w, b, z, loss = _tutorial()
    source = viz.draw(loss).source
    for label in ('"MmBackward0\\n(1, 3)"', '"SqueezeBackward4\\n(3,)"', '"AddBackward0\\nz\\n(3,)"',
                  '"BinaryCrossEntropyWithLogitsBackward0\\n()"', '"w\\n(5, 3)", fillcolor=lightblue',
                  '"b\\n(3,)", fillcolor=lightblue', '"x\\n(5,)", fillcolor=gray90', '"loss\\n()"'):
        assert label in source, label
    assert source.startswith("digraph {") and source.rstrip().endswith("}")
    # edges run from inputs to the ops that read them, as the data flows
    assert "leaf0 -> n0" in source and "n0 -> n1" in source and "n3 -> out" in source
    assert source.count("->") == 8


def test_formulas_and_constants_options():
    x, y, w, b, z, loss = _tutorial()
    source = viz.draw(loss, formulas=True).source
    assert '"MmBackward0\\nu1 = x·w\\n(1, 3)"' in source
    assert "loss = mean(softplus(z) − y ⊙ z)" in source
    without = viz.draw(loss, constants=False).source
    assert "gray90" not in without and without.count("->") == 6


def test_draw_a_leaf_a_node_and_odd_labels():
    w = symgrad.ones(2, requires_grad=True, name='say "hi"\\')
    assert 'out [label="say \\"hi\\"\\\\\\n(2,)"' in viz.draw(w).source
    loss = (w * 2).sum()
    from_node = viz.draw(loss.grad_fn).source
    assert from_node.count("->") == 3 and r'"loss\n()"' in from_node
    assert repr(viz.draw(loss)).startswith("<symgrad.viz.Graph of 4 nodes")


@needs_graphviz
def test_png_of_the_tutorial_graph(tmp_path):
    x, y, w, b, z, loss = _tutorial()
    path = viz.draw(loss, formulas=True).render(tmp_path / "tutorial.png")
    data = Path(path).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000
    svg = viz.draw(loss).pipe("svg").decode()
    assert "<svg" in svg and "MmBackward0" in svg
    bundle = viz.draw(loss)._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml") or "<svg" in bundle["image/svg+xml"]


def test_a_clear_message_without_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz now raises ImportError
    x, y, w, b, z, loss = _tutorial()
    picture = viz.draw(loss)
    with pytest.raises(viz.GraphvizNotFoundError, match=r"pip install 'symgrad\[graph\]'.*apt-get install graphviz"):
        picture.render("never.png")
    assert picture._repr_mimebundle_() == {"text/plain": picture.source}


def test_a_clear_message_without_dot(monkeypatch):
    graphviz = pytest.importorskip("graphviz")

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Source, "pipe", missing)
    x, y, w, b, z, loss = _tutorial()
    with pytest.raises(viz.GraphvizNotFoundError, match="Graphviz's `dot` program"):
        viz.draw(loss).pipe("png")
