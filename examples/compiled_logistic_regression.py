"""Training logistic regression with compiled gradients (symgrad.compile).

    python examples/compiled_logistic_regression.py            # train, report, save the gradient module
    python examples/compiled_logistic_regression.py out.py     # ... and write the module to out.py

The loss is written naively, as a user might: ``log(1 + exp(-margin))``. The
compiled function rewrites it into the stable form (finite for any margin), is
traced once, and then every step of gradient descent runs one generated NumPy
function. At the end the same gradients are recomputed through the autograd
facade (``backward``) as a check, and the generated module is saved: it runs
without symgrad.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import symgrad


def loss_fn(w, b, X, y):
    """Mean logistic loss for labels y in {-1, +1}, written the naive way."""
    margin = y * (X @ w + b)
    return (1 + (-margin).exp()).log().mean()


def make_data(n: int = 2000, d: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    true_w = rng.normal(size=d)
    y = np.where(X @ true_w + 0.3 * rng.normal(size=n) > 0, 1.0, -1.0)
    return X, y


def train(X, y, steps: int = 300, learning_rate: float = 0.5):
    w, b = np.zeros(X.shape[1]), np.zeros(())
    step = symgrad.compile(loss_fn, w, b, X, y, wrt=("w", "b"))  # traced and compiled once
    history = []
    start = time.perf_counter()
    for _ in range(steps):
        loss, (grad_w, grad_b) = step(w, b, X, y)
        w -= learning_rate * grad_w
        b -= learning_rate * grad_b
        history.append(float(loss))
    seconds = time.perf_counter() - start
    return w, b, step, history, seconds


def main(path: str | None = None) -> None:
    X, y = make_data()
    w, b, step, history, seconds = train(X, y)
    accuracy = float(np.mean(np.sign(X @ w + b) == y))
    print(f"loss {history[0]:.4f} -> {history[-1]:.4f} in {len(history)} steps "
          f"({seconds / len(history) * 1e6:.0f} µs per step), training accuracy {accuracy:.3f}")
    print(f"traces: {step.cache_info().misses}")

    # the same gradient through the autograd facade
    tw, tb = symgrad.tensor(w, requires_grad=True), symgrad.tensor(b, requires_grad=True)
    loss_fn(tw, tb, symgrad.tensor(X), symgrad.tensor(y)).backward()
    _, (grad_w, grad_b) = step(w, b, X, y)
    error = max(np.abs(tw.grad.numpy() - grad_w).max(), abs(float(tb.grad) - float(grad_b)))
    print(f"compiled gradient vs backward(): max difference {error:.1e}")

    # the naive formula is finite even for huge margins: the stability rewrite made it softplus
    loss, (grad_w, _) = step(w * 1e4, b, X, y)
    print(f"at w * 1e4: loss {float(loss):.3g}, gradient finite: {bool(np.isfinite(grad_w).all())}")

    print("\nThe generated gradient code:\n")
    print(step.source.split("def vjp")[0].split("def value_and_grad")[1].join(["def value_and_grad", ""]))
    if path:
        print(f"wrote {step.save(path)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
