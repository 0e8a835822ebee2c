"""Smoke test for benchmarks/bench_facade.py: it runs, verifies, and prints ratios.

Timings are never asserted: they depend on the machine and its load.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_facade.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_facade", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _ratio_lines(text):
    return [line for line in text.splitlines() if line.startswith("ratio ")]


def test_quick_run(bench, capsys):
    """The quick mode with PyTorch when it is installed (its column is skipped otherwise)."""
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "verified " in out
    ratios = _ratio_lines(out)
    assert any(line.startswith("ratio symgrad/numpy") for line in ratios)
    if importlib.util.find_spec("torch") is not None:
        assert any(line.startswith("ratio symgrad/torch = ") and "x" in line for line in ratios)
        assert "at most 0.5x PyTorch eager" in out


def test_quick_run_without_torch(bench, capsys):
    """The path taken when PyTorch is absent: symgrad and NumPy only, a note instead of the torch ratio."""
    assert bench.main(["--quick", "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert "ratio symgrad/torch = n/a" in out
    assert any(line.startswith("ratio symgrad/numpy") for line in _ratio_lines(out))


def test_verification_failure_aborts(bench, capsys, monkeypatch):
    """A system that computes something else makes main() return 1 before any timing."""
    make_numpy = bench.numpy_system

    def wrong_numpy(w0, b0):
        system = make_numpy(w0, b0)
        right = system.result
        system.result = lambda: tuple(a * 2 for a in right())
        return system

    monkeypatch.setattr(bench, "numpy_system", wrong_numpy)
    assert bench.main(["--quick", "--no-torch"]) == 1
    captured = capsys.readouterr()
    assert "verification failed" in captured.err
    assert "median us/step" not in captured.out
