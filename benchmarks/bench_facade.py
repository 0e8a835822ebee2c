"""One training step of the tutorial's model: symgrad vs PyTorch eager vs hand-written NumPy.

The model is the one in PyTorch's autograd tutorial (see the project's seed README)::

    x = ones(5); y = zeros(3); w = randn(5, 3, requires_grad=True); b = randn(3, requires_grad=True)
    z = matmul(x, w) + b
    loss = nn.functional.binary_cross_entropy_with_logits(z, y)

One *step* is forward + ``loss.backward()`` + clearing the gradients with
``w.grad = None; b.grad = None`` -- what ``optimizer.zero_grad()`` does by
default since PyTorch 2.0 (``set_to_none=True``).  There is no optimiser
update, so every step sees the same values.  The NumPy column is the same
math written by hand (forward plus analytic gradient, no autograd).

Before timing, the script checks that all systems give the same loss and
gradients (float32, rtol 1e-5) and aborts if they do not.  Timing runs the
systems in interleaved rounds (A B C A B C ...) after an untimed warm-up of
each; every round runs ``--steps`` steps of one system and records the time
per step.  The table reports the median and minimum over rounds, and ratios
to PyTorch eager computed from medians of this same run.

    python benchmarks/bench_facade.py             # default run, ~20 s (up to ~40 s on a busy machine)
    python benchmarks/bench_facade.py --quick     # smoke test, a few seconds
    python benchmarks/bench_facade.py --profile   # also cProfile symgrad's step
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmark this checkout, not whatever symgrad is installed
    sys.path.insert(0, str(REPO))

TARGET_RATIO = 0.5  # from the issue: "symgrad step at most 0.5x PyTorch eager"
RTOL, ATOL = 1e-5, 1e-8
SEED = 0
DEFAULTS = {"rounds": 41, "steps": 2000, "warmup": 500}
QUICK = {"rounds": 5, "steps": 100, "warmup": 20}
ZEROING = "w.grad = None; b.grad = None  (optimizer.zero_grad() default, set_to_none=True)"


class VerificationError(RuntimeError):
    """The systems disagree on the loss or the gradients: timings would be meaningless."""


@dataclass
class System:
    """One column of the benchmark.

    ``step`` is what is timed.  ``result`` runs one step and returns
    ``(loss, dloss/dw, dloss/db)`` as NumPy arrays, for verification.
    ``enter`` runs (untimed) before each of this system's rounds, e.g. to set
    PyTorch's thread count.
    """

    name: str
    step: Callable[[], object]
    result: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]
    enter: Callable[[], None] = lambda: None
    secondary: bool = False  # shown in the table, not used as the main number
    times: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- the three systems


def tutorial_step(lib, x, y, w, b):
    """``step`` (forward, backward, zeroing grads) and ``result`` of the tutorial model, for either library.

    symgrad and PyTorch share the API, so one definition serves both.
    """
    F = lib.nn.functional  # noqa: N806 - the usual alias

    def forward_backward():
        z = lib.matmul(x, w) + b
        loss = F.binary_cross_entropy_with_logits(z, y)
        loss.backward()
        return loss

    def step():
        forward_backward()
        w.grad = None
        b.grad = None

    def result():
        loss = forward_backward()
        out = (loss.detach().numpy().copy(), w.grad.numpy().copy(), b.grad.numpy().copy())
        w.grad = None
        b.grad = None
        return out

    return step, result


def symgrad_system(gen_seed: int) -> tuple[System, np.ndarray, np.ndarray]:
    """The model in symgrad, written exactly as the tutorial writes it; returns its w, b values too."""
    import symgrad

    gen = symgrad.random.Generator(gen_seed)
    x = symgrad.ones(5)
    y = symgrad.zeros(3)
    w = symgrad.randn(5, 3, requires_grad=True, generator=gen)
    b = symgrad.randn(3, requires_grad=True, generator=gen)
    step, result = tutorial_step(symgrad, x, y, w, b)
    return System("symgrad", step, result), w.detach().numpy().copy(), b.detach().numpy().copy()


def torch_systems(torch, w0: np.ndarray, b0: np.ndarray) -> list[System]:
    """PyTorch eager with its default thread count (main number) and with one thread (secondary)."""
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    default_threads = torch.get_num_threads()
    step, result = tutorial_step(torch, torch.ones(5), torch.zeros(3), w, b)
    main = System(f"torch eager ({default_threads} threads, default)", step, result,
                  enter=lambda: torch.set_num_threads(default_threads))
    systems = [main]
    if default_threads != 1:
        systems.append(System("torch eager (1 thread)", step, result,
                              enter=lambda: torch.set_num_threads(1), secondary=True))
    return systems


def numpy_system(w0: np.ndarray, b0: np.ndarray) -> System:
    """The same math by hand: forward, then the analytic gradient."""
    x = np.ones(5, dtype=np.float32)
    y = np.zeros(3, dtype=np.float32)
    w = w0.copy()
    b = b0.copy()
    n = np.float32(y.size)

    def forward_backward():
        z = x @ w + b
        sp = np.logaddexp(np.float32(0), z)  # softplus(z), stable
        loss = np.mean(sp - y * z)
        sig = np.exp(z - sp)  # sigmoid(z) = exp(z - softplus(z)): reuses the forward, cannot overflow
        dz = (sig - y) / n
        dw = np.outer(x, dz)
        db = dz
        return loss, dw, db

    def result():
        loss, dw, db = forward_backward()
        return np.asarray(loss), dw, db

    return System("numpy (hand-written)", forward_backward, result)


# --------------------------------------------------------------------------- verification and timing


def verify(systems: list[System]) -> str:
    """Run one step of each system and compare loss and gradients with the first system's."""
    ref_system = systems[0]
    ref_system.enter()
    ref = ref_system.result()
    for system in systems[1:]:
        system.enter()
        got = system.result()
        for what, r, g in zip(("loss", "w.grad", "b.grad"), ref, got):
            problem = None
            if g.dtype != np.float32 or r.dtype != np.float32:
                problem = f"dtype {g.dtype} vs {r.dtype} (expected float32)"
            elif g.shape != r.shape:
                problem = f"shape {g.shape} vs {r.shape}"
            elif not np.allclose(g, r, rtol=RTOL, atol=ATOL):
                err = np.abs(g.astype(np.float64) - r)
                problem = (f"max abs err {err.max():.3g}, max rel err {(err / np.abs(r)).max():.3g}\n"
                           f"  {system.name}: {g.tolist()}\n  {ref_system.name}: {r.tolist()}")
            if problem:
                raise VerificationError(f"{system.name} and {ref_system.name} disagree on {what} "
                                        f"(float32, rtol {RTOL:g}, atol {ATOL:g}): {problem}")
    return f"loss, w.grad, b.grad agree (float32, rtol {RTOL:g}, atol {ATOL:g}): " + ", ".join(
        s.name.split(" (")[0] for s in systems if not s.secondary)


def time_steps(step: Callable[[], object], n: int) -> float:
    """Seconds per step, over ``n`` back-to-back steps."""
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def run_rounds(systems: list[System], rounds: int, steps: int) -> None:
    for _ in range(rounds):
        for system in systems:
            system.enter()
            system.times.append(time_steps(system.step, steps))


# --------------------------------------------------------------------------- reporting


def _cpu_model() -> str:
    from benchmarks.machine import cpu_model  # the repository root is on sys.path (see the top of this file)

    return cpu_model()


def _git_describe() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "symgrad"], cwd=REPO, capture_output=True,
                               text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "git: unknown"
    return f"git {head}" + (", symgrad/ has uncommitted changes" if dirty else "")


def header(torch, args, torch_note: str) -> list[str]:
    import sympy

    import symgrad

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    if torch is not None:
        torch_line = (f"{torch.__version__} (default threads: intra-op {torch.get_num_threads()}, "
                      f"inter-op {torch.get_num_interop_threads()})")
    else:
        torch_line = f"{torch_note}: PyTorch column skipped"
    return [
        "symgrad facade benchmark: one training step of the tutorial model (x: 5, w: 5x3, b: 3)",
        "  step = z = matmul(x, w) + b; loss = binary_cross_entropy_with_logits(z, y); loss.backward();",
        f"         {ZEROING}",
        f"date     {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"cpu      {_cpu_model()} ({os.cpu_count()} logical cores, {usable} usable)",
        f"os       {platform.platform()}",
        f"python   {platform.python_version()} ({platform.python_implementation()})",
        f"numpy    {np.__version__}",
        f"sympy    {sympy.__version__}",
        f"torch    {torch_line}",
        f"symgrad  {symgrad.__version__} from {Path(symgrad.__file__).parent} ({_git_describe()})",
        f"timing   {args.rounds} interleaved rounds x {args.steps} steps, after {args.warmup} untimed warm-up "
        "steps each; time.perf_counter, gc enabled",
    ]


def table(systems: list[System], torch_median: float | None) -> list[str]:
    name_width = max(len(s.name) for s in systems)
    lines = [f"{'system':<{name_width}}  {'median us/step':>14}  {'min us/step':>11}  {'vs torch eager':>14}",
             "-" * (name_width + 45)]
    for s in systems:
        med, best = statistics.median(s.times), min(s.times)
        ratio = f"{med / torch_median:.2f}x" if torch_median else "n/a"
        lines.append(f"{s.name:<{name_width}}  {med * 1e6:>14.1f}  {best * 1e6:>11.1f}  {ratio:>14}")
    return lines


def noise_notes(systems: list[System], factor: float = 1.5) -> list[str]:
    """A line for every system with rounds much slower than its median (load from other processes, ...)."""
    notes = []
    for s in systems:
        med = statistics.median(s.times)
        slow = [t for t in s.times if t > factor * med]
        if slow:
            notes.append(f"note: {s.name}: {len(slow)} of {len(s.times)} rounds were over {factor}x its median "
                         f"(worst {max(slow) / med:.1f}x); the median ignores them, but the machine was not quiet")
    return notes


def profile_symgrad(system: System, steps: int, top: int = 10) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        system.step()
    profiler.disable()
    print(f"\ncProfile of {steps} symgrad steps (top {top} by tottime; profiling inflates all times):")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)


# --------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, help=f"interleaved timing rounds (default {DEFAULTS['rounds']})")
    parser.add_argument("--steps", type=int, help=f"steps per round (default {DEFAULTS['steps']})")
    parser.add_argument("--warmup", type=int, help=f"untimed warm-up steps per system (default {DEFAULTS['warmup']})")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK['rounds']} rounds x {QUICK['steps']} steps (a few seconds)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when it is installed")
    parser.add_argument("--profile", action="store_true", help="after timing, cProfile symgrad's step")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.rounds < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--rounds and --steps must be >= 1, --warmup >= 0")
    return args


def _import_torch(skip: bool):
    if skip:
        return None, "not used, --no-torch"
    try:
        import torch
    except ImportError:
        return None, "not installed"
    return torch, ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch, torch_note = _import_torch(args.no_torch)

    sg, w0, b0 = symgrad_system(SEED)
    t_systems = torch_systems(torch, w0, b0) if torch is not None else []
    np_system = numpy_system(w0, b0)
    # verification reference: PyTorch when present, else the hand-written NumPy
    systems = [*t_systems[:1], sg, np_system, *t_systems[1:]] if t_systems else [np_system, sg]
    order = [sg, *t_systems[:1], np_system, *t_systems[1:]]  # timing and table order

    default_threads = torch.get_num_threads() if torch is not None else None
    try:
        for line in header(torch, args, torch_note):
            print(line)
        try:
            verify(systems)  # the first call: symgrad compiles here
            for system in order:
                system.enter()
                for _ in range(args.warmup):
                    system.step()
            verified = verify(systems)  # again, on the warmed-up (cached) path that is timed
        except VerificationError as error:
            print(f"\nABORTED: verification failed, nothing timed.\n{error}", file=sys.stderr)
            print("ABORTED: verification failed (see stderr)")
            return 1
        print(f"verified {verified}")
        print()

        run_rounds(order, args.rounds, args.steps)

        torch_median = statistics.median(t_systems[0].times) if t_systems else None
        for line in table(order, torch_median):
            print(line)
        for line in noise_notes(order):
            print(line)
        print()
        sg_median, np_median = statistics.median(sg.times), statistics.median(np_system.times)
        if torch_median:
            verdict = "met" if sg_median / torch_median <= TARGET_RATIO else "NOT met"
            print(f"ratio symgrad/torch = {sg_median / torch_median:.2f}x   "
                  f"(target from the issue: symgrad step at most {TARGET_RATIO}x PyTorch eager -> {verdict})")
            print(f"ratio numpy/torch   = {np_median / torch_median:.2f}x")
            print(f"ratios use medians of this run; main torch number = default threads ({default_threads})"
                  + ("; the 1-thread row is for comparison" if len(t_systems) > 1 else ""))
        else:
            print(f"ratio symgrad/torch = n/a (PyTorch {torch_note})")
            print(f"(target from the issue: symgrad step at most {TARGET_RATIO}x PyTorch eager -> not measured)")
        print(f"ratio symgrad/numpy = {sg_median / np_median:.2f}x")

        if args.profile:
            profile_symgrad(sg, args.steps)
    finally:
        if default_threads is not None:
            torch.set_num_threads(default_threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
