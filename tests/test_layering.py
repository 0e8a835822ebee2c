"""The import layering of the package (DESIGN.md: "a stage imports only earlier stages").

Every module under ``symgrad/`` is parsed with :mod:`ast`; every import of a
``symgrad`` module it contains — at module level or deferred inside a
function — must point to an allowed layer.  The layers, lowest first::

    dtypes, _tensor_str, random, grad_mode  <  symbolic  <  derive  <  ops  <  compiler
      <  autograd  <  tensor  <  (backward, functional, creation, nn)  <  (formula, viz)
      <  the public package ``symgrad/__init__``  <  tutorial  <  cli, __main__

A layer may import its own layer and earlier ones, with the narrower rules of
the design: the symbolic classes import nothing else from symgrad, ``derive``
only the symbolic classes, the op table only dtypes/grad_mode/symbolic/derive, and the
CLI only the public ``symgrad`` package (and ``symgrad.tutorial``).

No torch needed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "symgrad"

# The ordering, lowest layer first; each entry is a set of top-level names under symgrad/.
ORDER: list[set[str]] = [
    {"dtypes", "_tensor_str", "random", "grad_mode"},
    {"symbolic"},
    {"derive"},
    {"ops"},
    {"compiler"},
    {"autograd"},
    {"tensor"},
    {"backward", "functional", "creation", "nn", "gradcheck", "linalg", "indexing"},
    {"formula", "viz", "transforms"},  # formulas and pictures of the recorded graph; compiled functions
    {"__init__"},  # the public package: `import symgrad`, `from symgrad import x`
    {"tutorial", "expr"},
    {"cli", "__main__"},
]

# Narrower rules stated by the design for the lower stages and the CLI.
EXPLICIT: dict[str, set[str]] = {
    "symbolic": {"symbolic"},
    "derive": {"symbolic"},
    "ops": {"dtypes", "grad_mode", "symbolic", "derive", "ops"},
    "compiler": {"dtypes", "grad_mode", "symbolic", "derive", "ops", "compiler"},
    "autograd": {"dtypes", "grad_mode", "symbolic", "derive", "ops", "compiler", "autograd"},
    "cli": {"__init__", "tutorial", "expr", "gradcheck"},
    "__main__": {"cli"},
}

LAYER_OF = {name: rank for rank, names in enumerate(ORDER) for name in names}


def allowed_for(component: str) -> set[str]:
    """The top-level names a module in ``component`` may import (derived from ORDER)."""
    if component in EXPLICIT:
        return EXPLICIT[component] | ({component} if component not in ("cli", "__main__") else set())
    rank = LAYER_OF[component]
    return {name for names in ORDER[: rank + 1] for name in names}


def module_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def component_of(path: Path) -> str:
    """The top-level name a file belongs to: ``ops/registry.py`` -> ``ops``, ``tensor.py`` -> ``tensor``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def module_name(path: Path) -> list[str]:
    """``symgrad/ops/registry.py`` -> ``["symgrad", "ops", "registry"]`` (packages end at the package)."""
    parts = ["symgrad", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return parts


def symgrad_imports(path: Path) -> list[tuple[int, str, str]]:
    """Every import of a symgrad module in ``path``: (line, written form, imported top-level name).

    The top-level name is the first component below ``symgrad`` (``__init__`` for the
    package itself).  ``from . import x`` resolves ``x`` as a submodule.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "symgrad":
                    found.append((node.lineno, f"import {alias.name}", parts[1] if len(parts) > 1 else "__init__"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
            else:
                parts = (node.module or "").split(".")
            if parts[0] != "symgrad":
                continue
            written = f"from {'.' * node.level}{node.module or ''} import {', '.join(a.name for a in node.names)}"
            if len(parts) > 1:
                found.append((node.lineno, written, parts[1]))
            else:  # `from symgrad import x` / `from . import x` at the package root
                for alias in node.names:
                    target = alias.name if (PACKAGE / alias.name).is_dir() or (
                        PACKAGE / f"{alias.name}.py").is_file() else "__init__"
                    found.append((node.lineno, written, target))
    return found


FILES = module_files()


def test_every_module_has_a_layer():
    unknown = sorted({component_of(p) for p in FILES} - set(LAYER_OF))
    assert not unknown, f"modules with no place in the layer ordering (add them to ORDER): {unknown}"


def test_the_walker_sees_the_imports():
    """Guard against a vacuous layering test: known imports are found and resolved."""
    found = {(p.relative_to(PACKAGE).as_posix(), target) for p in FILES for _, _, target in symgrad_imports(p)}
    assert ("tensor.py", "ops") in found
    assert ("ops/registry.py", "derive") in found
    assert ("cli.py", "__init__") in found


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_imports_respect_the_layers(path: Path):
    component = component_of(path)
    if component not in LAYER_OF:
        pytest.fail(f"{component} has no layer (see test_every_module_has_a_layer)")
    allowed = allowed_for(component)
    bad = [f"line {line}: {written}  (-> {target})" for line, written, target in symgrad_imports(path)
           if target not in allowed]
    assert not bad, (f"symgrad/{path.relative_to(PACKAGE).as_posix()} (layer {component!r}) may import only "
                     f"{sorted(allowed)}; it imports:\n  " + "\n  ".join(bad))


@pytest.mark.parametrize("path", [p for p in FILES if component_of(p) in LAYER_OF
                                  and LAYER_OF[component_of(p)] < LAYER_OF["tensor"]],
                         ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_nothing_below_the_facade_imports_it(path: Path):
    forbidden = {name for names in ORDER[LAYER_OF["tensor"]:] for name in names}
    bad = [f"line {line}: {written}" for line, written, target in symgrad_imports(path) if target in forbidden]
    assert not bad, f"{path.name} sits below tensor.py but imports the facade or above: {bad}"


def test_cli_uses_only_the_public_package():
    targets = {target for _, _, target in symgrad_imports(PACKAGE / "cli.py")}
    assert targets <= {"__init__", "tutorial", "expr", "gradcheck"}, targets
    assert "__init__" in targets
