"""Smoke tests for benchmarks/bench_facade.py and benchmarks/bench_compiled.py: they run, verify, and print ratios.

Timings are never asserted: they depend on the machine and its load.
"""

import importlib.util
import json
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


# --------------------------------------------------------------------------- benchmarks/bench_compiled.py

COMPILED = BENCH.with_name("bench_compiled.py")
# torch is the reference when installed; the others are always importable
FAST_SYSTEMS = "torch,symgrad,symgrad-eager,numpy"
TINY = ["--tiny", "--quick", "--rounds", "1", "--round-ms", "1", "--chain-ops", "", "--systems", FAST_SYSTEMS]


@pytest.fixture(scope="module")
def compiled_bench():
    spec = importlib.util.spec_from_file_location("bench_compiled", COMPILED)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _symgrad_features():
    import symgrad

    return {"compile": hasattr(symgrad, "compile"),
            "cross_entropy": hasattr(symgrad.nn.functional, "cross_entropy"),
            "getitem": hasattr(symgrad.Tensor, "__getitem__")}


def test_compiled_bench_tiny_run_verifies_every_system(compiled_bench, tmp_path, capsys):
    """Every workload at tiny sizes: each system that can run it agrees with the reference, then is timed."""
    out_json = tmp_path / "results.json"
    assert compiled_bench.main([*TINY, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "MISMATCH" not in out
    results = json.loads(out_json.read_text())["workloads"]
    assert sorted(results) == ["W1", "W2", "W3", "W4", "W5"]
    have = _symgrad_features()
    torch_here = importlib.util.find_spec("torch") is not None
    for key, res in results.items():
        needs = {"W3": "cross_entropy", "W4": "getitem"}.get(key)
        runs_in_symgrad = needs is None or have[needs]
        expected = {"numpy"} if key in ("W1", "W2", "W3") else set()
        if runs_in_symgrad:
            expected |= {"symgrad-eager"} if torch_here else set()
            expected |= {"symgrad"} if have["compile"] else set()
        assert expected <= set(res["verified"]), (key, res["verified"], res["skipped"])
        timed = set(res["verified"]) | {"torch" if torch_here else "symgrad-eager"}
        assert timed <= set(res["median_seconds"]), key
        if torch_here:
            assert res["ratio_to_torch"]["torch"] == 1.0
    assert "| ratio to PyTorch eager" in out or not torch_here


def test_compiled_bench_detects_a_wrong_gradient(compiled_bench, capsys, monkeypatch):
    """A system whose gradient differs is reported as MISMATCH, not timed, and main() returns 1."""
    work = compiled_bench.WORKLOADS["W1"]
    right = work.by_hand

    def wrong(*arrays):
        value, grads = right(*arrays)
        return value, (grads[0] * 1.01, grads[1])

    monkeypatch.setattr(work, "by_hand", wrong)
    argv = [*TINY[:-1], "numpy,symgrad-eager", "--workloads", "W1"]
    assert compiled_bench.main(argv) == 1
    out = capsys.readouterr().out
    assert "W1 NumPy hand-written: MISMATCH" in out
    assert "grad 0: max abs error" in out


def test_compiled_bench_build_worker_reports_seconds(compiled_bench, capsys):
    """The build-time scaling run starts one such worker per (system, chain length)."""
    assert compiled_bench.main(["--build-worker", "symgrad", "10"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if _symgrad_features()["compile"]:
        assert out["seconds"] > 0
    else:
        assert out == {"skipped": "symgrad.compile not available"}
