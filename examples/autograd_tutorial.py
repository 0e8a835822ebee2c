"""PyTorch's autograd tutorial, reproduced with symgrad.

The steps live in :mod:`symgrad.tutorial` so that ``symgrad demo`` can run
them from an installed package; run ``python examples/autograd_tutorial.py
torch`` to see PyTorch print the same lines.
"""

from symgrad.tutorial import main

if __name__ == "__main__":
    main()
