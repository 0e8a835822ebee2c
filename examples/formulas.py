"""The derivative formulas behind PyTorch's autograd tutorial, and a picture of its graph.

    python examples/formulas.py                 # formulas, and tutorial_graph.png if Graphviz is installed
    python examples/formulas.py docs/formulas_tutorial.png

Prints the loss and its gradients as formulas (text, 2-D, LaTeX), checks them
against what ``backward`` computes, shows the per-element expansion of a
gradient, a second derivative, and writes the ``grad_fn`` graph as a picture.
"""

from __future__ import annotations

import sys

import numpy as np

import symgrad


def main(picture: str = "tutorial_graph.png") -> None:
    symgrad.manual_seed(0)
    x = symgrad.ones(5)  # input tensor
    y = symgrad.zeros(3)  # expected output
    w = symgrad.randn(5, 3, requires_grad=True)
    b = symgrad.randn(3, requires_grad=True)
    z = symgrad.matmul(x, w) + b
    loss = symgrad.nn.functional.binary_cross_entropy_with_logits(z, y)

    print("The loss, and its gradients as backward computes them:\n")
    print(symgrad.formula(loss))
    grads = symgrad.grad_formula(loss, [w, b])
    print(grads)

    print("\nIn two dimensions, and in LaTeX:\n")
    print(grads.pretty())
    print(grads.latex())

    loss.backward()
    formula_w, formula_b = grads.evaluate()
    print("\nThe formulas evaluated with NumPy equal w.grad and b.grad:",
          np.allclose(formula_w, w.grad.numpy()) and np.allclose(formula_b, b.grad.numpy()))

    print("\nElement by element (b[2] is the bias of the third output):\n")
    print(symgrad.grad_formula(loss, b, elementwise=True).sympy()[2])

    print("\nScalar calculus, and a second derivative through create_graph=True:\n")
    t = symgrad.tensor(1.5, dtype=symgrad.float64, requires_grad=True)
    f = t.tanh() * t ** 2
    print(symgrad.grad_formula(f, t))
    (df,) = symgrad.autograd.grad(f, t, create_graph=True)
    print(symgrad.grad_formula(df, t))

    print("\nThe grad_fn graph:")
    graph = symgrad.viz.draw(loss, formulas=True)
    try:
        print("picture:", graph.render(picture))
    except symgrad.viz.GraphvizNotFoundError as error:
        print(error)
        print(graph.source)


if __name__ == "__main__":
    main(*sys.argv[1:])
