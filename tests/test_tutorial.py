"""The tutorial (``symgrad.tutorial``) and the ``symgrad demo`` command.

``symgrad.tutorial.run`` is written once and runs on either library; run on
symgrad and on PyTorch it must print the same lines (object addresses
masked).  The command-line checks run without torch.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import symgrad
from symgrad import tutorial

ADDRESS = re.compile(r"0x[0-9a-f]+")


def tutorial_lines(lib) -> list[str]:
    """The tutorial's stdout on ``lib``, addresses masked."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        tutorial.run(lib)
    return ADDRESS.sub("0x…", buffer.getvalue()).splitlines()


@pytest.fixture(scope="module")
def symgrad_lines() -> list[str]:
    return tutorial_lines(symgrad)


def test_tutorial_matches_torch_line_by_line(symgrad_lines):
    torch = pytest.importorskip("torch")
    expected = tutorial_lines(torch)
    assert len(expected) > 20
    for number, (ours, theirs) in enumerate(zip(symgrad_lines, expected), start=1):
        assert ours == theirs, f"line {number} differs"
    assert len(symgrad_lines) == len(expected)


def test_tutorial_prints_the_readme_values(symgrad_lines):
    """Values the seed README quotes from PyTorch 2.13 (no torch needed)."""
    text = "\n".join(symgrad_lines)
    assert "loss = tensor(0.6819, grad_fn=<BinaryCrossEntropyWithLogitsBackward0>)" in text
    assert "z = tensor([ 1.3755, -0.6023, -4.8127], grad_fn=<AddBackward0>)" in text
    assert "Gradient function for z = <AddBackward0 object at 0x…>" in text
    assert "tensor([0.2661, 0.1179, 0.0027])" in text
    assert ("z.grad_fn.next_functions = ((<SqueezeBackward4 object at 0x…>, 0), "
            "(<AccumulateGrad object at 0x…>, 0))") in text
    assert "matmul(ones(4), w): RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x4 and 5x3)" in text


def _script() -> str:
    """The installed ``symgrad`` console script of this interpreter's environment."""
    candidate = Path(sysconfig.get_path("scripts")) / ("symgrad.exe" if os.name == "nt" else "symgrad")
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("symgrad")
    assert found, "the symgrad console script is not installed (pip install -e .)"
    return found


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _check_demo_output(result: subprocess.CompletedProcess, symgrad_lines: list[str]) -> None:
    assert result.returncode == 0, result.stderr
    output = ADDRESS.sub("0x…", result.stdout).splitlines()
    # every tutorial line, in order
    position = 0
    for line in symgrad_lines:
        assert line in output[position:], f"missing from the demo output: {line!r}"
        position = output.index(line, position) + 1
    assert any(line.startswith("def backward(") for line in output), "no generated `def backward(` source"
    assert "import numpy as np" in output


def test_symgrad_demo_console_script(symgrad_lines):
    _check_demo_output(_run([_script(), "demo"]), symgrad_lines)


def test_python_m_symgrad_demo(symgrad_lines):
    _check_demo_output(_run([sys.executable, "-m", "symgrad", "demo"]), symgrad_lines)
