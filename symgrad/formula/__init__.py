"""Human-facing formulas: what a recorded computation and its derivative are, written as math.

``symgrad.formula(t)`` gives the formula that computed ``t``;
``symgrad.grad_formula(out, wrt)`` the derivative ``backward`` computes, both
as :class:`Formula` objects that print as one-line Unicode, SymPy's 2-D form
(``.pretty()``), LaTeX (``.latex()``, rendered by Jupyter) and give the SymPy
expression (``.sympy()``).  The pieces:

* :mod:`.graph` — the recorded graph lowered to tensor-level SymPy, with names;
* :mod:`.names` — ``name=``, the caller's variables, ``t0, t1, …``;
* :mod:`.display` — tensor-level graphs written as notation (:mod:`.notation`);
* :mod:`.printing` — the three printers; :mod:`.elements` — per-element expansion;
* :mod:`.equations` — the :class:`Formula` object; :mod:`.api` — the two entry points.
"""

from .api import formula, grad_formula
from .equations import Formula

__all__ = ["formula", "grad_formula", "Formula"]
