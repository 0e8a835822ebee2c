"""PyTorch's autograd tutorial, step by step: the code behind ``symgrad demo``.

The same function runs on symgrad or on PyTorch and prints the same lines
(object addresses aside); the test suite compares the two line by line.

    python -m symgrad.tutorial          # symgrad
    python -m symgrad.tutorial torch    # the same code on PyTorch
"""

from __future__ import annotations

import importlib
import sys
import warnings


def run(lib):
    """Every step of the tutorial on ``lib`` (``symgrad`` or ``torch``); returns the loss tensor."""
    lib.manual_seed(0)
    F = lib.nn.functional  # noqa: N806 - the usual alias

    # 1. Build the graph: one linear layer and a binary cross-entropy loss
    x = lib.ones(5)  # input tensor
    y = lib.zeros(3)  # expected output
    w = lib.randn(5, 3, requires_grad=True)
    b = lib.randn(3, requires_grad=True)
    z = lib.matmul(x, w) + b
    loss = F.binary_cross_entropy_with_logits(z, y)
    print("x =", x)
    print("z =", z)
    print("loss =", loss)

    # 2. Every op records its backward function in grad_fn
    print(f"Gradient function for z = {z.grad_fn}")
    print(f"Gradient function for loss = {loss.grad_fn}")
    print("z.grad_fn.next_functions =", z.grad_fn.next_functions)
    print("next of", z.grad_fn.next_functions[0][0].name(), "=", z.grad_fn.next_functions[0][0].next_functions)
    print("is_leaf: w", w.is_leaf, "z", z.is_leaf, "x", x.is_leaf, "; w.grad_fn =", w.grad_fn)

    # 3. Compute the gradients
    loss.backward()
    print(w.grad)
    print(b.grad)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        print("z.grad =", z.grad)
    print("warning:", caught[0].category.__name__, "-", str(caught[0].message).split(". ")[0])
    try:
        loss.backward()
    except RuntimeError as error:
        print("second backward: RuntimeError:", str(error).split(". ")[0])

    # 4. Stop tracking gradients
    z = lib.matmul(x, w) + b
    print(z.requires_grad)
    with lib.no_grad():
        z = lib.matmul(x, w) + b
    print(z.requires_grad)
    z = lib.matmul(x, w) + b
    z_det = z.detach()
    print(z_det.requires_grad)

    # Errors PyTorch raises, raised the same way
    for label, action in [
        ("z.backward()", lambda: z.backward()),
        ("w.add_(1)", lambda: w.add_(1)),
        ("matmul(ones(4), w)", lambda: lib.matmul(lib.ones(4), w)),
        ("ones(3) + ones(4)", lambda: lib.ones(3) + lib.ones(4)),
    ]:
        try:
            action()
        except RuntimeError as error:
            print(f"{label}: RuntimeError: {error}")

    # grad_fn names of other common ops
    names = {"x@w (2-D)": lib.matmul(x.unsqueeze(0), w), "*": w * 2, "/": w / 2, "-": w - 1,
             "sum": w.sum(), "mean": w.mean(), "sigmoid": w.sigmoid(), ".T": w.T, "exp": w.exp(),
             "relu": w.relu()}
    print(", ".join(f"{k} {v.grad_fn.name()}" for k, v in names.items()))
    return loss


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    run(importlib.import_module(argv[0] if argv else "symgrad"))


if __name__ == "__main__":
    main()
