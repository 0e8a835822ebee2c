"""docs/ops.md stays true: it lists every public op, and every call in its tables records the
``grad_fn`` graph it shows, in symgrad and in PyTorch.

A table cell ``\\`call\\` → \\`A ← B\\``` means: evaluating ``call`` gives a result whose
``grad_fn`` graph has the distinct node names ``A``, ``B`` (breadth first from the result,
without ``AccumulateGrad``); ``\\`None\\``` means no ``grad_fn``.  An optional
``(torch: \\`…\\`)`` gives PyTorch's graph where it deliberately differs.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import symgrad
import symgrad.nn.functional as F

DOC = (Path(__file__).parents[1] / "docs" / "ops.md").read_text()
TABLE_ROWS = [line for line in DOC.splitlines() if line.startswith("| ") and "→" in line]
CALL = re.compile(r"`([^`]+)` → `([^`]+)`(?: \(torch: `([^`]+)`\))?")
CALLS = [match.groups() for row in TABLE_ROWS for match in CALL.finditer(row)]
ACCUMULATE_GRAD = "torch::autograd::AccumulateGrad"


def _mentioned(pattern: str) -> set[str]:
    return set(re.findall(pattern, DOC))


def _public_tensor_attributes() -> set[str]:
    return {name for name in dir(symgrad.Tensor) if not name.startswith("_")}


def test_the_tables_have_calls():
    assert len(TABLE_ROWS) > 100 and len(CALLS) > 200


def test_every_public_function_and_method_is_listed():
    callables = {n for n in symgrad.__all__ if callable(getattr(symgrad, n))}
    assert callables - _mentioned(r"symgrad\.(\w+)") == set()
    assert _public_tensor_attributes() - _mentioned(r"Tensor\.(\w+)") == set()
    assert set(F.__all__) - _mentioned(r"\bF\.(\w+)") == set()
    assert set(symgrad.linalg.__all__) - _mentioned(r"linalg\.(\w+)") == set()


def test_everything_listed_exists():
    assert {n for n in _mentioned(r"symgrad\.(\w+)") if not hasattr(symgrad, n)} == set()
    assert _mentioned(r"Tensor\.(\w+)") - _public_tensor_attributes() == set()
    assert _mentioned(r"\bF\.(\w+)") - set(F.__all__) == set()
    assert _mentioned(r"linalg\.(\w+)") - set(symgrad.linalg.__all__) == set()


def _namespace(lib) -> dict:
    """The inputs the tables' calls use, as docs/ops.md describes them."""
    rng = np.random.default_rng(0)

    def leaf(*shape):
        return lib.tensor(rng.uniform(0.2, 0.8, shape), dtype=lib.float64, requires_grad=True)

    return dict(
        x=leaf(2, 3), y=leaf(2, 3), s=leaf(), v=leaf(3), u=leaf(3), m=leaf(3, 4), a3=leaf(2, 3, 4),
        b3=leaf(2, 4, 5), t=lib.tensor(rng.uniform(0.0, 1.0, (2, 3)), dtype=lib.float64),
        c=lib.tensor([0, 2]), i=lib.tensor([2, 0]), g=lib.tensor([[0, 2, 1], [1, 1, 0]]),
        mask=lib.tensor([[True, False, True], [False, True, False]]), np=np, F=lib.nn.functional, symgrad=lib)


def _graph(result) -> str:
    """The distinct grad_fn names of the result's graph, breadth first, as the tables write them."""
    if isinstance(result, tuple | list):  # split, chunk: the first piece
        result = result[0]
    if result.grad_fn is None:
        return "None"
    names, seen, queue = [], set(), [result.grad_fn]
    while queue:
        node = queue.pop(0)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.name() != ACCUMULATE_GRAD and node.name() not in names:
            names.append(node.name())
        queue.extend(next_node for next_node, _ in node.next_functions)
    return " ← ".join(names)


def _evaluate(call: str, lib) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-argument warnings are tested with the ops
        return _graph(eval(call, _namespace(lib)))  # noqa: S307 - the calls are the document's own text


@pytest.mark.parametrize(("call", "graph", "torch_graph"), CALLS, ids=[c for c, _, _ in CALLS])
def test_the_listed_grad_fn_is_symgrads_and_torchs(call, graph, torch_graph):
    assert _evaluate(call, symgrad) == graph
    torch = pytest.importorskip("torch")
    assert _evaluate(call, torch) == (torch_graph or graph)
    assert torch_graph != graph, "a listed difference that is none"
