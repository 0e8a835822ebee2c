"""Random programs through symgrad and torch: forward values, every leaf's ``.grad`` and the graphs.

Hypothesis draws small programs over the op surface of symgrad (one family of
ops per ``Builder.gen_<kind>``, listed in ``KINDS``):

* arithmetic: ``+ - * / **``, unary minus, ``add``/``sub`` with ``alpha``,
  Python scalars on either side, ``pow`` with number and tensor exponents;
* elementwise math: ``exp``/``log``/``sigmoid``/``tanh``/``relu``/``reciprocal``,
  ``sqrt``/``rsqrt``/``log1p``/``log2``/``log10`` (positive operands),
  ``sin``/``cos``/``tan``/``atan``/``erf``/``sinh``/``cosh``/``expm1`` (bounded
  operands), ``asin``/``acos`` on ``0.9 * tanh(x)``, ``atan2``, ``abs``, ``sign``,
  ``square``, ``clamp``/``clip`` with number and tensor bounds, ``maximum``,
  ``minimum``, ``where`` on comparison masks, ``lerp``;
* activations: ``leaky_relu``, ``elu``, ``gelu`` (both approximations),
  ``silu``, ``softplus`` (``beta``, ``threshold``), ``hardtanh``,
  ``softmax``/``log_softmax`` along any dim;
* reductions (int and tuple dims, ``keepdim``): ``sum``, ``mean``, ``prod``,
  ``var``/``std`` with ``correction``, ``amax``/``amin``, ``max``/``min`` whole
  and along a dim (``.values``/``[0]``), ``logsumexp``, ``norm``,
  ``linalg.vector_norm``, ``linalg.norm``, ``cumsum``;
* linear algebra: ``matmul``/``mm``/``mv``/``dot``/``@``, batched ``matmul``
  with broadcasting batch dims, ``bmm``, ``einsum`` (``EINSUM``), ``outer``;
* shapes: ``squeeze``/``unsqueeze``/``permute``/``.T``/``.mT``/``transpose``,
  ``reshape``/``view``/``flatten``, ``expand``/``broadcast_to``, ``cat``,
  ``stack``, one piece of ``split``/``chunk``, ``flip``, ``repeat``,
  ``narrow``, indexing with ints, slices (with steps), ``None``, ``...``, an
  integer list or tensor, bool masks (per dim and whole-tensor), ``gather``,
  ``index_select``;
* losses: ``binary_cross_entropy_with_logits`` (``weight``, ``pos_weight``),
  ``mse``/``l1``/``smooth_l1``/``huber`` losses, ``binary_cross_entropy`` on
  probabilities, ``cross_entropy`` with int64 class targets (``weight``,
  ``ignore_index``, ``label_smoothing``) and with probabilities, ``nll_loss``,
  ``kl_div`` (``log_target``, ``'batchmean'``), ``cosine_similarity``,
  ``normalize``; every reduction.

Leaves are float64 tensors of shapes that broadcast against each
other; most require grad, some are constants, some are used several times, and
intermediate results are reused (the graphs are DAGs).  Values are kept in safe
domains by construction: ``log``, fractional and negative powers and tensor
exponents only see positive operands bounded away from zero (a positive leaf,
``exp``, ``sigmoid``, ``x * x + 1``, ``2 ** x``), denominators are such positive
values, BCE inputs are sigmoids of bounded operands, and any operand whose
magnitude bound would make the result exceed ``MAX_BOUND`` is squashed by
``tanh`` first.  Ties and kinks are not avoided (``relu`` zeros, reused
operands in ``maximum(v, v)``, clamped values, repeated entries under
``max``): there the gradients must follow PyTorch's conventions too.

Each program is printed as Python source over a module ``lib`` (``repr`` of the
drawn program), runs once with ``lib = torch`` and once with ``lib = symgrad``
on identical values, then ``backward()`` (with a random ``gradient`` for a
non-scalar root).  Compared: forward value (rtol 1e-10, atol 1e-12), the
``.grad`` of every leaf (``None`` included), the root's ``grad_fn.name()`` and
the whole ``grad_fn`` graph (names, edges, leaves, sharing).  A second test
runs the same programs through ``autograd.grad(create_graph=True)`` and a
Hessian-vector product (``second_order_source``) and compares the values; a
third compiles each program with ``symgrad.compile`` and compares it with the
facade at moved arguments.  If torch raises (the generator should prevent it),
symgrad must raise the same.

Where the comparison is relaxed (each named where it happens): ``OPAQUE``
results (``einsum``, ``l1_loss``, ``kl_div``: one node where PyTorch builds a
chain, documented in docs/ops.md; pointwise losses with a broadcasting target:
a bug) have their ``grad_fn`` compared by name, the graph continuing at their
operands; the output number of a ``split``/``chunk`` piece is not compared
(symgrad gives each piece its own node, documented); the Hessian-vector
product accepts any finite symgrad value where torch's is nan at a zero vector
under a norm or std (``NORM_NAN_OPS``: torch's double backward divides by the
norm).  ``KNOWN_BUGS`` lists the bugs found here that are out of this file's
reach and the combinations each one leaves out; documented departures that
would show up downstream are not drawn (``var``/``std`` without degrees of
freedom, ``einsum('ii->i')``).

Running it:

* default (CI): ``SYMGRAD_FUZZ_EXAMPLES`` examples (default 40), derandomized,
  so every run sees the same programs;
* a long randomized fuzz::

      SYMGRAD_FUZZ_EXAMPLES=5000 SYMGRAD_FUZZ_RANDOM=1 python -m pytest tests/test_random_programs.py -q

  ``SYMGRAD_FUZZ_RANDOM=1`` draws new programs on every run (a failure prints
  its ``@reproduce_failure`` blob); ``SYMGRAD_FUZZ_SEED=<int>`` (or pytest's
  ``--hypothesis-seed=<int>``) fixes the random stream.  A failure's message
  holds the shrunk program as a self-contained script; ``-k "matches_torch
  and not second"``, ``-k second_order`` and ``-k compiled`` select one of the
  three tests.  Speed (2 cores, 3000 examples each): about 33 s first order,
  130 s second order, 250 s compiled; the default run takes about 10 s.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import random
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import symgrad

torch = pytest.importorskip("torch")

RTOL = 1e-10
# Absolute floor: entries that cancel to ~1e-16 come out as exactly 0 in one library
# (symgrad simplifies the derivative symbolically, torch multiplies node by node).
ATOL = 1e-12

EXAMPLES = int(os.environ.get("SYMGRAD_FUZZ_EXAMPLES", "40"))
RANDOM = os.environ.get("SYMGRAD_FUZZ_RANDOM", "") not in ("", "0")
SEED = os.environ.get("SYMGRAD_FUZZ_SEED")

MAX_BOUND = 1e3       # bound on |value| of every intermediate result
POSITIVE_FLOOR = 0.04  # lower bound of every value fed to log, x ** -p, x ** 0.5, a / x, ...
MAX_OPS = 16          # ops in one program (besides leaves)
COVERAGE_EXAMPLES = 1000  # programs per family of ops in the coverage test
MAX_RANK = 3          # ops that add a dimension to their result's (reductions, ints in an index) stop at this rank
ROOT_SHAPES = [(), (3,), (2, 3), (3, 1), (1, 3), (2, 1, 3)]
SIZES = (1, 2, 3)      # sizes of dimensions that reductions and matmul contract
MASK_SHAPES = [(3,), (2, 3), (3, 1), (2, 2), (2, 1, 3)]  # inputs of a whole-tensor bool mask
# einsum equations by the rank of their result (implicit outputs: the letters used once, sorted)
EINSUM = {
    0: ["i,i->", "ij,ij->", "ii->", "ij->", "ii", "i,i"],
    # not "ii->i": PyTorch returns a (non-contiguous) diagonal view, symgrad a new tensor (docs/ops.md), so
    # a later reshape records other nodes
    1: ["ij,j->i", "ij,ij->i", "ji->i", "i,i->i", "ij,jk,k->i", "ij,j"],
    2: ["ij,jk->ik", "ik,jk->ij", "i,j->ij", "ji->ij", "bij,bj->bi", "ij,ij->ij", "ij,jk", "ij->ij"],
    3: ["bij,bjk->bik", "bij,jk->bik", "ij,k->ijk", "kji->ijk", "bi,bj->bij", "bik,bjk->bij"],
}


# Where the comparison with torch is relaxed, and why.  OPAQUE: results whose grad_fn is compared by
# name only (graph_signature continues at their operands' nodes, skipping PyTorch's chain in between).
OPAQUE = {
    "einsum": "one node, where PyTorch builds a chain of permute/view/bmm nodes (documented, docs/ops.md)",
    "l1_loss, kl_div": "one node named like the top of PyTorch's chain of sub/abs/xlogy/mul nodes (documented)",
    "mse/l1/smooth_l1/huber_loss with a target that broadcasts": "KNOWN_BUGS['loss_broadcast']",
}
# Bugs found by this test that are out of its reach; each names the specific combination left out.
KNOWN_BUGS = {
    "loss_broadcast": "mse_loss/l1_loss/smooth_l1_loss/huber_loss with a target of another (broadcastable) shape: "
                      "PyTorch's F.* expand the operands first (broadcast_tensors: an ExpandBackward0 above the "
                      "one that broadcasts, when it requires grad); symgrad records no expand node. Values and "
                      "gradients agree; the graph is compared as OPAQUE for these.",
    "constant_comparison": "symgrad.compile of a comparison that folds to a constant (where(y > y, 0, x), or "
                           "softmax(0-d) > 0, which is 1 > 0): the kernel prints as the Python bool False/True and "
                           "the generated code calls False.astype (AttributeError). The compiled test skips programs "
                           "whose compile fails with exactly that error (eager and second order still run them).",
    "compile_bce_domain": "symgrad.compile of binary_cross_entropy with a target argument above ~0.7 raises: the "
                          "check trace moves arguments to x * 1.4 + 0.01 (transforms._perturbed), out of BCE's "
                          "[0, 1]. Constant probabilities are drawn below 0.7.",
    "create_graph_extreme": "autograd.grad(create_graph=True) through amax/amin/max/min can give nan where the "
                            "gradient is finite: the graph program compares recomputed values with the forward's "
                            "saved extreme, and a product recomputed in another order rounds differently, so no "
                            "element matches and the tie count is 0 (x2 = [[[0.944, 1.281, 0.913]]], x1 = "
                            "[[[1.428]]] requiring grad, x0 = [[0.878, 0.829, 0.931]]: grad(amin(x2 * x1 * x0, "
                            "dim=1).sum(), x1, create_graph=True) is nan, torch and backward() give 2.7408). The "
                            "second-order test skips programs with such an op whose gradient is nan where torch's "
                            "is finite.",
}
# Not drawn because symgrad departs from torch there on purpose (docs/ops.md): var/std without degrees of
# freedom (correction >= the elements per result) have gradient 0 where torch's is nan.


@functools.cache
def compositions(n: int) -> list[tuple[int, ...]]:
    """The ways to write ``n`` as an ordered sum of one to three positive sizes (pieces of cat / split)."""
    return [p for k in (1, 2, 3) for p in itertools.product(range(1, n + 1), repeat=k) if sum(p) == n]


@functools.cache
def same_numel_shapes(numel: int) -> list[tuple[int, ...]]:
    """The shapes of rank 0 to 3 with ``numel`` elements (the inputs of a reshape to a shape of that size).

    Dimensions stay at most 6 where that is possible, so that a chain of reshapes keeps tensors small.
    """
    dims = [d for d in range(1, numel + 1) if numel % d == 0]
    shapes = [()] if numel == 1 else []
    for rank in (1, 2, 3):
        shapes += [s for s in itertools.product(dims, repeat=rank) if math.prod(s) == numel]
    return [s for s in shapes if max(s, default=1) <= 6] or shapes


# ============================================================================
# Programs
# ============================================================================


@dataclass
class Var:
    name: str
    shape: tuple
    bound: float       # |value| <= bound everywhere
    low: float = 0.0   # > 0: the value is positive and >= low


class Program:
    """Straight-line code over ``lib``: leaf definitions, then one op per line; ``root`` is the result."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.leaves: list[str] = []      # names of the leaf tensors
        self.root = ""
        self.seed: list | None = None    # gradient for a non-scalar root
        self.directions: dict[str, list] = {}  # leaf requiring grad -> direction of the Hessian-vector product
        self.opaque: dict[str, list[str]] = {}  # result -> its operands, where torch's chain is not compared
        self.stds: list[str] = []  # results of std (see zero_std)

    def source(self) -> str:
        backward = f"{self.root}.backward()" if self.seed is None else \
            f"{self.root}.backward(lib.tensor({self.seed!r}, dtype=lib.float64))"
        return "\n".join(self.lines + [f"if {self.root}.requires_grad:", f"    {backward}"]) + "\n"

    def second_order_source(self) -> str:
        """The program, then ``grads = grad(root, leaves, create_graph=True)`` and ``hvp = grad(<grads, v>)``."""
        wrt = ", ".join(self.directions)
        seed = "None" if self.seed is None else f"lib.tensor({self.seed!r}, dtype=lib.float64)"
        directions = ", ".join(f"lib.tensor({v!r}, dtype=lib.float64)" for v in self.directions.values())
        return "\n".join(self.lines + [
            f"wrt = [{wrt}]",
            f"directions = [{directions}]",
            "grads = hvp = None",
            f"if {self.root}.grad_fn is not None:",
            f"    grads = lib.autograd.grad({self.root}, wrt, grad_outputs={seed}, create_graph=True, "
            "allow_unused=True)",
            "    terms = [(g * v).sum() for g, v in zip(grads, directions) if g is not None and g.requires_grad]",
            "    hvp = (lib.autograd.grad(sum(terms[1:], terms[0]), wrt, materialize_grads=True) if terms",
            "           else [lib.zeros_like(t) for t in wrt])",
        ]) + "\n"

    def __repr__(self) -> str:  # how Hypothesis shows a falsifying example: a runnable script
        leaves = ", ".join(self.leaves)
        return ("\n# import torch as lib  /  import symgrad as lib\n" + self.source() +
                f"print({self.root}, [t.grad for t in ({leaves},)])\n")

    def _repr_pretty_(self, printer, cycle) -> None:  # Hypothesis' pretty printer
        printer.text(repr(self))


class Builder:
    """Draws a program top-down: ``exact(shape)`` returns a Var of exactly that shape.

    Every choice goes through ``choose``/``integer``/``boolean``/``distinct``/``permutation``
    (Hypothesis' ``draw``); :class:`RandomBuilder` makes the same choices with ``random``.
    """

    def __init__(self, draw):
        self.draw = draw
        self.program = Program()
        self.vars: list[Var] = []
        self.ops = 0
        self.kinds: set[str] = set()  # the families of ops drawn (gen_<kind>)
        self.rng = np.random.default_rng(self.integer(0, 2**32 - 1))

    # ---- choices
    def choose(self, options):
        return self.draw(st.sampled_from(options))

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def boolean(self) -> bool:
        return self.draw(st.booleans())

    def distinct(self, options, low: int, high: int) -> list:
        """``low`` to ``high`` different elements of ``options``."""
        return self.draw(st.lists(st.sampled_from(list(options)), min_size=low, max_size=high, unique=True))

    def permutation(self, options) -> list:
        return self.draw(st.permutations(list(options)))

    # ---- bookkeeping

    def emit(self, expr: str, shape, bound: float, low: float = 0.0) -> Var:
        var = Var(f"v{len(self.vars)}", tuple(shape), float(bound), float(low))
        self.program.lines.append(f"{var.name} = {expr}")
        self.vars.append(var)
        return var

    def leaf(self, shape, kind: str = "real", requires_grad: bool | None = None) -> Var:
        if requires_grad is None:
            requires_grad = self.choose([True, True, True, False])
        if kind == "real":
            values, bound, low = self.rng.uniform(-2.0, 2.0, shape), 2.0, 0.0
        elif kind == "pos":
            values, bound, low = self.rng.uniform(0.5, 2.0, shape), 2.0, 0.5
        else:  # "prob": BCE targets; below 0.7 because symgrad.compile's check trace moves its
            # arguments by up to x * 1.4 + 0.01 (transforms._perturbed) and BCE refuses targets above 1:
            # compiling at a target of 0.9 raises (KNOWN_BUGS['compile_bce_domain'])
            values, bound, low = self.rng.uniform(0.0, 0.7, shape), 1.0, 0.0
        values = np.round(values, 3)
        name = f"x{len(self.program.leaves)}"
        if requires_grad:
            self.program.directions[name] = np.round(self.rng.normal(size=shape), 3).tolist()
        self.program.lines.append(
            f"{name} = lib.tensor({values.tolist()!r}, dtype=lib.float64, requires_grad={requires_grad})")
        self.program.leaves.append(name)
        var = Var(name, tuple(shape), bound, low)
        self.vars.append(var)
        return var

    def constant(self, shape, kind: str) -> Var:
        return self.leaf(shape, kind, requires_grad=False)

    def existing(self, shape, low: float = 0.0) -> list[Var]:
        return [v for v in self.vars if v.shape == tuple(shape) and (low == 0.0 or v.low >= low)]

    def squash(self, var: Var, limit: float) -> Var:
        """``var`` if its bound is within ``limit``, else ``tanh(var)`` (bound 1)."""
        if var.bound <= limit:
            return var
        return self.emit(f"{var.name}.tanh()", var.shape, 1.0)

    def fits(self, bound: float) -> bool:
        return bound <= MAX_BOUND and math.isfinite(bound)

    # ---- shapes
    def operand_shapes(self, shape):
        """Two shapes that broadcast to ``shape`` (each dim full in at least one of them)."""
        a, b = [], []
        for n in shape:
            who = "both" if n == 1 else self.choose(["both", "a", "b"])
            a.append(n if who in ("both", "a") else 1)
            b.append(n if who in ("both", "b") else 1)
        # one operand may lose leading 1s; the other keeps the full rank so that the result has it
        if self.boolean():
            return self.drop_leading_ones(a), tuple(b)
        return tuple(a), self.drop_leading_ones(b)

    def drop_leading_ones(self, shape):
        k = 0
        while k < len(shape) and shape[k] == 1:
            k += 1
        return tuple(shape[self.integer(0, k):])

    # ---- generation
    def exact(self, shape, depth: int) -> Var:
        shape = tuple(shape)
        reusable = self.existing(shape)
        options = ["leaf"] + (["reuse"] if reusable else [])
        if depth > 0 and self.ops < MAX_OPS:
            options += ["unary", "binary", "scalar", "alpha", "pow", "divide", "reduce", "shape"]
            if len(shape) <= 2:
                options.append("matmul")
            options.append("bce")
            options += ["math", "binary2", "activation", "reduce2", "linalg2", "shape2", "shape2", "loss"]
        kind = self.choose(options)
        if kind == "leaf":
            return self.leaf(shape, self.choose(["real", "pos"]))
        if kind == "reuse":
            return self.choose(reusable)
        self.ops += 1
        self.kinds.add(kind)
        return getattr(self, "gen_" + kind)(shape, depth - 1)

    def positive(self, shape, depth: int) -> Var:
        """A Var of ``shape`` whose values are >= POSITIVE_FLOOR."""
        shape = tuple(shape)
        reusable = self.existing(shape, POSITIVE_FLOOR)
        options = ["leaf"] + (["reuse"] if reusable else []) + ["exp", "square_plus", "sigmoid", "rpow"]
        kind = self.choose(options)
        if kind == "leaf":
            return self.leaf(shape, "pos")
        if kind == "reuse":
            return self.choose(reusable)
        a = self.squash(self.exact(shape, depth), 3.0)
        if kind == "exp":
            return self.emit(self.choose([f"{a.name}.exp()", f"lib.exp({a.name})"]), shape,
                             math.exp(a.bound), math.exp(-a.bound))
        if kind == "sigmoid":
            low = 1 / (1 + math.exp(a.bound))
            return self.emit(self.choose([f"{a.name}.sigmoid()", f"lib.sigmoid({a.name})"]), shape, 1.0, low)
        if kind == "rpow":  # 2 ** a
            return self.emit(f"2 ** {a.name}", shape, 2 ** a.bound, 2 ** -a.bound)
        c = self.choose([1, 0.5])
        return self.emit(f"{a.name} * {a.name} + {c}", shape, a.bound ** 2 + c, c)

    def gen_unary(self, shape, depth):
        op = self.choose(["neg", "exp", "log", "sigmoid", "tanh", "relu", "reciprocal"])
        if op == "log":
            p = self.positive(shape, depth)
            bound = max(abs(math.log(p.low)), abs(math.log(p.bound)))
            return self.emit(self.choose([f"{p.name}.log()", f"lib.log({p.name})"]), shape, bound)
        if op == "reciprocal":
            p = self.positive(shape, depth)
            return self.emit(f"{p.name}.reciprocal()", shape, 1 / p.low, 1 / p.bound)
        a = self.exact(shape, depth)
        n = a.name
        if op == "neg":
            return self.emit(self.choose([f"-{n}", f"lib.neg({n})", f"{n}.neg()"]), shape, a.bound)
        if op == "exp":
            a = self.squash(a, 4.0)
            return self.emit(self.choose([f"{a.name}.exp()", f"lib.exp({a.name})"]), shape,
                             math.exp(a.bound), math.exp(-a.bound))
        if op == "sigmoid":
            return self.emit(self.choose([f"{n}.sigmoid()", f"lib.sigmoid({n})", f"lib.nn.functional.sigmoid({n})"]),
                             shape, 1.0, 1 / (1 + math.exp(min(a.bound, 700.0))))
        if op == "tanh":
            return self.emit(self.choose([f"{n}.tanh()", f"lib.tanh({n})", f"lib.nn.functional.tanh({n})"]),
                             shape, min(a.bound, 1.0))
        return self.emit(self.choose([f"{n}.relu()", f"lib.relu({n})", f"lib.nn.functional.relu({n})"]),
                         shape, a.bound)

    def gen_binary(self, shape, depth):
        op = self.choose(["+", "-", "*", "add", "sub", "mul"])
        sa, sb = self.operand_shapes(shape)
        a, b = self.exact(sa, depth), self.exact(sb, depth)
        if op in ("*", "mul"):
            while not self.fits(a.bound * b.bound):
                a, b = (self.squash(a, 1.0), b) if a.bound >= b.bound else (a, self.squash(b, 1.0))
            low = a.low * b.low
            expr = {"*": f"{a.name} * {b.name}", "mul": self.choose([f"lib.mul({a.name}, {b.name})",
                                                                      f"{a.name}.mul({b.name})"])}[op]
            return self.emit(expr, shape, a.bound * b.bound, low)
        a, b = self.squash(a, MAX_BOUND / 2), self.squash(b, MAX_BOUND / 2)
        low = a.low + b.low if op in ("+", "add") and a.low and b.low else 0.0
        sym = "+" if op in ("+", "add") else "-"
        expr = f"{a.name} {sym} {b.name}" if op in "+-" else \
            self.choose([f"lib.{op}({a.name}, {b.name})", f"{a.name}.{op}({b.name})"])
        return self.emit(expr, shape, a.bound + b.bound, low)

    def gen_alpha(self, shape, depth):
        sa, sb = self.operand_shapes(shape)
        alpha = self.choose([2, 0.5, -1.5])
        a = self.squash(self.exact(sa, depth), MAX_BOUND / 4)
        b = self.squash(self.exact(sb, depth), MAX_BOUND / 4)
        op = self.choose(["add", "sub"])
        expr = self.choose([f"lib.{op}({a.name}, {b.name}, alpha={alpha})", f"{a.name}.{op}({b.name}, alpha={alpha})"])
        return self.emit(expr, shape, a.bound + abs(alpha) * b.bound)

    def gen_scalar(self, shape, depth):
        form = self.choose(["a + c", "c + a", "a - c", "c - a", "a * c", "c * a", "a / c", "c / p"])
        # a bool is a Python number too, but torch refuses `-` with a bool
        c = self.choose([2, 0.5, -1.5, 3] + ([True] if "-" not in form else []))
        if form == "c / p":
            p = self.positive(shape, depth)
            return self.emit(f"{c} / {p.name}", shape, abs(c) / p.low)
        a = self.squash(self.exact(shape, depth), MAX_BOUND / 4)
        expr = form.replace("a", a.name).replace("c", repr(c))
        bound = a.bound * abs(c) if "*" in form else a.bound / abs(c) if "/" in form else a.bound + abs(c)
        return self.emit(expr, shape, bound)

    def gen_pow(self, shape, depth):
        form = self.choose(["int", "fractional", "tensor", "scalar_base"])
        if form == "int":
            p = self.choose([2, 3, 0, 1, 2.0])
            a = self.exact(shape, depth)
            a = self.squash(a, MAX_BOUND ** (1 / max(p, 1)))
            expr = self.choose([f"{a.name} ** {p}", f"lib.pow({a.name}, {p})", f"{a.name}.pow({p})"])
            return self.emit(expr, shape, max(a.bound ** p, 1.0))
        if form == "fractional":
            p = self.choose([0.5, -1, 1.5, -2, -0.5])
            a = self.positive(shape, depth)
            if not self.fits(max(a.bound ** p, a.low ** p)):
                a = self.leaf(shape, "pos")
            bound = max(a.bound ** p, a.low ** p)
            return self.emit(self.choose([f"{a.name} ** {p}", f"lib.pow({a.name}, {p})"]), shape, bound,
                             min(a.bound ** p, a.low ** p))
        if form == "tensor":
            sa, sb = self.operand_shapes(shape)
            base = self.positive(sa, depth)
            e = self.squash(self.exact(sb, depth), 2.0)
            if not self.fits(max(base.bound, 1 / base.low) ** e.bound):
                base = self.leaf(sa, "pos")
            bound = max(base.bound, 1 / base.low) ** e.bound
            return self.emit(self.choose([f"{base.name} ** {e.name}", f"lib.pow({base.name}, {e.name})"]), shape,
                             bound, min(base.low, 1 / base.bound) ** e.bound)
        c = self.choose([2, 0.5, 2.718])
        e = self.squash(self.exact(shape, depth), 5.0)
        bound = max(c, 1 / c) ** e.bound
        return self.emit(self.choose([f"{c} ** {e.name}", f"lib.pow({c}, {e.name})"]), shape, bound, 1 / bound)

    def gen_divide(self, shape, depth):
        sa, sb = self.operand_shapes(shape)
        d = self.positive(sb, depth)
        a = self.exact(sa, depth)
        a = self.squash(a, MAX_BOUND * d.low)
        expr = self.choose([f"{a.name} / {d.name}", f"lib.div({a.name}, {d.name})", f"{a.name}.div({d.name})"])
        return self.emit(expr, shape, a.bound / d.low, a.low / d.bound if a.low else 0.0)

    def gen_reduce(self, shape, depth):
        op = self.choose(["sum", "mean"])
        rank = len(shape)
        forms = ["dim"] if rank <= 2 else []
        if rank == 0:
            forms.append("all")
        if 1 in shape:
            forms.append("keepdim")
        if rank <= 1:
            forms.append("tuple")
        if not forms:  # a rank-3 shape without a 1: no reduction gives it
            return self.gen_unary(shape, depth)
        form = self.choose(forms)
        if form == "all":
            in_shape = tuple(self.choose(SIZES) for _ in range(self.integer(1, 3)))
            a = self.exact(in_shape, depth)
            count = int(np.prod(in_shape))
            expr = self.choose([f"{a.name}.{op}()", f"lib.{op}({a.name})"])
            return self.emit(expr, shape, a.bound * (count if op == "sum" else 1))
        if form == "dim":
            d = self.integer(0, rank)
            k = self.choose(SIZES)
            in_shape = shape[:d] + (k,) + shape[d:]
            dim = self.choose([d, d - rank - 1])
            a = self.exact(in_shape, depth)
            expr = self.choose([f"{a.name}.{op}({dim})", f"{a.name}.{op}(dim={dim})", f"lib.{op}({a.name}, dim={dim})"])
            return self.emit(expr, shape, a.bound * (k if op == "sum" else 1))
        if form == "keepdim":
            ones = [i for i, n in enumerate(shape) if n == 1]
            dims = sorted(self.distinct(ones, 1, 2))
            in_shape = list(shape)
            count = 1
            for d in dims:
                in_shape[d] = self.choose(SIZES)
                count *= in_shape[d]
            a = self.exact(in_shape, depth)
            dim = dims[0] if len(dims) == 1 and self.boolean() else tuple(dims)
            return self.emit(f"{a.name}.{op}({dim!r}, keepdim=True)", shape,
                             a.bound * (count if op == "sum" else 1))
        # tuple: two new dims
        d1, d2 = sorted(self.distinct(range(rank + 2), 2, 2))
        k1, k2 = self.choose(SIZES), self.choose(SIZES)
        in_shape = list(shape)
        in_shape.insert(d1, k1)
        in_shape.insert(d2, k2)
        a = self.exact(in_shape, depth)
        dims = (d2 - rank - 2, d1) if self.boolean() else (d1, d2)
        return self.emit(f"{a.name}.{op}({dims!r})", shape, a.bound * (k1 * k2 if op == "sum" else 1))

    def gen_shape(self, shape, depth):
        rank = len(shape)
        forms = []
        if 1 in shape:
            forms.append("unsqueeze")
        if rank <= 2:
            forms += ["squeeze_dim", "squeeze_all"] if 1 not in shape else ["squeeze_dim"]
        if any(n != 1 for n in shape):
            forms.append("squeeze_noop")
        if rank >= 2:
            forms.append("permute")
        if rank == 2:
            forms.append("transpose")
        if not forms:  # (1, 1, 1)
            return self.gen_unary(shape, depth)
        form = self.choose(forms)
        if form == "unsqueeze":
            d = self.choose([i for i, n in enumerate(shape) if n == 1])
            a = self.exact(shape[:d] + shape[d + 1:], depth)
            dim = self.choose([d, d - rank])
            return self.emit(self.choose([f"{a.name}.unsqueeze({dim})", f"lib.unsqueeze({a.name}, {dim})"]), shape,
                             a.bound, a.low)
        if form == "squeeze_dim":
            d = self.integer(0, rank)
            a = self.exact(shape[:d] + (1,) + shape[d:], depth)
            dim = self.choose([d, d - rank - 1, (d,)])
            return self.emit(self.choose([f"{a.name}.squeeze({dim!r})", f"lib.squeeze({a.name}, {dim!r})"]), shape,
                             a.bound, a.low)
        if form == "squeeze_all":
            in_shape = list(shape)
            for _ in range(self.integer(1, 3 - rank)):
                in_shape.insert(self.integer(0, len(in_shape)), 1)
            a = self.exact(in_shape, depth)
            return self.emit(f"{a.name}.squeeze()", shape, a.bound, a.low)
        if form == "squeeze_noop":
            d = self.choose([i for i, n in enumerate(shape) if n != 1])
            a = self.exact(shape, depth)
            return self.emit(f"{a.name}.squeeze({d})", shape, a.bound, a.low)
        if form == "transpose":
            a = self.exact(shape[::-1], depth)
            return self.emit(f"{a.name}.T", shape, a.bound, a.low)
        perm = tuple(self.permutation(range(rank)))
        in_shape = [0] * rank
        for i, p in enumerate(perm):
            in_shape[p] = shape[i]
        a = self.exact(in_shape, depth)
        expr = self.choose([f"{a.name}.permute{perm!r}", f"{a.name}.permute({perm!r})",
                            f"lib.permute({a.name}, {perm!r})"])
        return self.emit(expr, shape, a.bound, a.low)

    def gen_matmul(self, shape, depth):
        k = self.choose(SIZES)
        if len(shape) == 2:
            sa, sb = (shape[0], k), (k, shape[1])
            fns = ["@", "lib.matmul", "lib.mm", ".matmul"]
        elif len(shape) == 1 and self.boolean():
            sa, sb = (shape[0], k), (k,)
            fns = ["@", "lib.matmul", "lib.mv"]
        elif len(shape) == 1:
            sa, sb = (k,), (k, shape[0])
            fns = ["@", "lib.matmul"]
        else:
            sa, sb = (k,), (k,)
            fns = ["@", "lib.matmul", "lib.dot"]
        a, b = self.exact(sa, depth), self.exact(sb, depth)
        while not self.fits(k * a.bound * b.bound):
            a, b = (self.squash(a, 1.0), b) if a.bound >= b.bound else (a, self.squash(b, 1.0))
        fn = self.choose(fns)
        expr = {"@": f"{a.name} @ {b.name}", ".matmul": f"{a.name}.matmul({b.name})"}.get(
            fn, f"{fn}({a.name}, {b.name})")
        return self.emit(expr, shape, k * a.bound * b.bound)

    def gen_bce(self, shape, depth):
        if shape == ():
            in_shape = self.choose([(3,), (2, 3), (3, 1), ()])
            reduction = self.choose(["mean", "sum", None])
        else:
            in_shape, reduction = shape, "none"
        z = self.exact(in_shape, depth)
        if self.boolean():
            y = self.constant(in_shape, "prob")
        else:
            t = self.exact(in_shape, depth)
            y = self.emit(f"{t.name}.sigmoid()", in_shape, 1.0)
        kwargs, w_max, pw_max = [], 1.0, 1.0
        if self.boolean():
            w = self.constant(self.choose(self.operand_shapes(in_shape)), "pos")
            kwargs.append(f"weight={w.name}")
            w_max = w.bound
        if self.boolean():
            pw = self.constant(self.choose(self.operand_shapes(in_shape)), "pos")
            kwargs.append(f"pos_weight={pw.name}")
            pw_max = pw.bound
        if reduction is not None:
            kwargs.append(f"reduction={reduction!r}")
        count = int(np.prod(in_shape)) if reduction == "sum" else 1
        per_element = w_max * (pw_max + 1) * (z.bound + 1)
        if not self.fits(per_element * count):
            z = self.squash(z, 1.0)
            per_element = w_max * (pw_max + 1) * 2
        args = ", ".join([z.name, y.name] + kwargs)
        return self.emit(f"lib.nn.functional.binary_cross_entropy_with_logits({args})", shape, per_element * count)

    # ---- the rest of the op surface (issue 3)
    def opaque(self, var: Var, operands) -> Var:
        """Mark ``var`` as one node whose chain of torch nodes is not compared (see ``OPAQUE``)."""
        self.program.opaque[var.name] = [v.name for v in operands]
        return var

    def bounded(self, shape, depth: int, limit: float) -> Var:
        """A Var of ``shape`` with ``|value| <= limit < 1`` (``limit * tanh(a)`` unless already within)."""
        a = self.exact(shape, depth)
        if a.bound <= limit:
            return a
        return self.emit(f"{a.name}.tanh() * {limit}", shape, limit)

    def probability(self, shape, depth: int) -> Var:
        """Values in [0.04, 0.96]: ``sigmoid`` of a squashed operand (BCE inputs must be in (0, 1))."""
        a = self.squash(self.exact(shape, depth), 3.0)
        low = 1 / (1 + math.exp(a.bound))
        return self.emit(f"{a.name}.sigmoid()", shape, 1 - low, low)

    def index_literal(self, values) -> str:
        return f"lib.tensor({np.asarray(values, dtype=np.int64).tolist()!r})"

    def gen_math(self, shape, depth):
        op = self.choose(["sqrt", "rsqrt", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "expm1",
                          "log1p", "log2", "log10", "abs", "sign", "square", "erf", "clamp"])
        if op in ("sqrt", "rsqrt", "log1p", "log2", "log10"):
            p = self.positive(shape, depth)
            n = p.name
            if op == "sqrt":
                return self.emit(self.choose([f"{n}.sqrt()", f"lib.sqrt({n})"]), shape, math.sqrt(p.bound),
                                 math.sqrt(p.low))
            if op == "rsqrt":
                return self.emit(self.choose([f"{n}.rsqrt()", f"lib.rsqrt({n})"]), shape, 1 / math.sqrt(p.low),
                                 1 / math.sqrt(p.bound))
            if op == "log1p":
                return self.emit(self.choose([f"{n}.log1p()", f"lib.log1p({n})"]), shape, math.log1p(p.bound),
                                 math.log1p(p.low))
            base = 2 if op == "log2" else 10
            bound = max(abs(math.log(p.low, base)), abs(math.log(p.bound, base)))
            return self.emit(self.choose([f"{n}.{op}()", f"lib.{op}({n})"]), shape, bound)
        if op in ("asin", "acos"):
            a = self.bounded(shape, depth, 0.9)
            return self.emit(self.choose([f"{a.name}.{op}()", f"lib.{op}({a.name})"]), shape, math.pi)
        a = self.exact(shape, depth)
        if op in ("tan", "sinh", "cosh", "expm1", "square"):
            limit = {"tan": 1.0, "sinh": 3.0, "cosh": 3.0, "expm1": 4.0, "square": MAX_BOUND ** 0.5}[op]
            a = self.squash(a, limit)
            n, b = a.name, a.bound
            if op == "square":
                return self.emit(self.choose([f"{n}.square()", f"lib.square({n})"]), shape, b * b, a.low ** 2)
            bound = {"tan": math.tan(b), "sinh": math.sinh(b), "cosh": math.cosh(b), "expm1": math.expm1(b)}[op]
            return self.emit(self.choose([f"{n}.{op}()", f"lib.{op}({n})"]), shape, bound, 1.0 if op == "cosh" else 0.0)
        n = a.name
        if op in ("sin", "cos", "erf", "sign"):
            return self.emit(self.choose([f"{n}.{op}()", f"lib.{op}({n})"]), shape, 1.0)
        if op == "atan":
            return self.emit(self.choose([f"{n}.atan()", f"lib.atan({n})"]), shape, math.pi / 2)
        if op == "abs":
            return self.emit(self.choose([f"{n}.abs()", f"lib.abs({n})"]), shape, a.bound, a.low)
        # clamp with number bounds (ties at a bound pass the gradient, as PyTorch's clamp)
        lo, hi = self.choose([-1.5, -0.5, 0.0, 0.25]), self.choose([0.5, 1.0, 2.0])
        form = self.choose(["both", "min", "max"])
        args = {"both": [f"{lo}, {hi}", f"min={lo}, max={hi}"], "min": [f"min={lo}", f"{lo}"],
                "max": [f"max={hi}", f"None, {hi}"]}[form]
        fn = self.choose(["clamp", "clip"])
        expr = self.choose([f"{n}.{fn}({self.choose(args)})", f"lib.{fn}({n}, {self.choose(args)})"])
        bound = max(abs(lo), abs(hi)) if form == "both" else max(a.bound, abs(lo) if form == "min" else abs(hi))
        low = max(lo, a.low) if form == "min" and lo > 0 else a.low if form == "min" else 0.0
        return self.emit(expr, shape, bound, low)

    def comparison(self, shape, depth) -> str:
        """A bool mask of a shape that broadcasts to ``shape``: a comparison of two operands or with 0."""
        sa, sb = self.operand_shapes(shape)
        a = self.exact(sa, depth)
        if self.boolean():
            return self.choose([f"{a.name} > 0", f"{a.name} <= 0.5", f"{a.name}.lt(0)", f"lib.ge({a.name}, 0)"])
        b = self.exact(sb, depth)
        return self.choose([f"{a.name} > {b.name}", f"{a.name} < {b.name}", f"{a.name} >= {b.name}",
                            f"lib.gt({a.name}, {b.name})", f"{a.name}.le({b.name})"])

    def gen_binary2(self, shape, depth):
        op = self.choose(["atan2", "maximum", "minimum", "where", "lerp", "clamp_tensor"])
        sa, sb = self.operand_shapes(shape)
        if op == "atan2":  # a positive second operand keeps away from atan2's singularity at (0, 0)
            a, p = self.exact(sa, depth), self.positive(sb, depth)
            return self.emit(self.choose([f"lib.atan2({a.name}, {p.name})", f"{a.name}.atan2({p.name})"]), shape,
                             math.pi)
        if op == "clamp_tensor":  # bounds broadcast against the input (min > max gives max, as PyTorch)
            a = self.exact(shape, depth)
            lo, hi = self.exact(sa, depth), self.exact(sb, depth)
            form = self.choose(["min", "max", "both"])
            if form == "both":
                expr = self.choose([f"lib.clamp({a.name}, {lo.name}, {hi.name})",
                                    f"{a.name}.clamp(min={lo.name}, max={hi.name})"])
                return self.emit(expr, shape, max(a.bound, lo.bound, hi.bound))
            expr = self.choose([f"lib.clamp({a.name}, {form}={lo.name})", f"{a.name}.clamp({form}={lo.name})",
                                f"lib.clip({a.name}, {form}={lo.name})"])
            return self.emit(expr, shape, max(a.bound, lo.bound), max(a.low, lo.low) if form == "min" else 0.0)
        if op == "where":
            form = self.choose(["tensors", "number", "method"])
            if form == "number":
                a = self.exact(shape, depth)
                mask = self.comparison(self.choose(self.operand_shapes(shape)), depth)
                c = self.choose([0.5, -1.0, 0])
                expr = self.choose([f"lib.where({mask}, {a.name}, {c})", f"lib.where({mask}, {c}, {a.name})"])
                return self.emit(expr, shape, max(a.bound, abs(c)))
            a, b = self.exact(sa, depth), self.exact(sb, depth)
            mask = self.comparison(self.choose(self.operand_shapes(shape)), depth)
            expr = f"lib.where({mask}, {a.name}, {b.name})" if form == "tensors" else \
                f"{a.name}.where({mask}, {b.name})"
            return self.emit(expr, shape, max(a.bound, b.bound), min(a.low, b.low))
        a, b = self.exact(sa, depth), self.exact(sb, depth)
        if op in ("maximum", "minimum"):  # ties split the gradient, as PyTorch
            low = max(a.low, b.low) if op == "maximum" else min(a.low, b.low)
            return self.emit(self.choose([f"lib.{op}({a.name}, {b.name})", f"{a.name}.{op}({b.name})"]), shape,
                             max(a.bound, b.bound), low)
        # lerp with a number or a tensor weight (which broadcasts too)
        a, b = self.squash(a, MAX_BOUND / 8), self.squash(b, MAX_BOUND / 8)
        if self.boolean():
            w = self.choose([0.3, 0.75, -0.5])
            weight, w_bound = repr(w), abs(w)
        else:
            w = self.squash(self.exact(self.choose(self.operand_shapes(shape)), depth), 2.0)
            weight, w_bound = w.name, w.bound
        expr = self.choose([f"lib.lerp({a.name}, {b.name}, {weight})", f"{a.name}.lerp({b.name}, {weight})"])
        return self.emit(expr, shape, a.bound + w_bound * (a.bound + b.bound))

    def gen_activation(self, shape, depth):
        rank = len(shape)
        ops = ["leaky_relu", "elu", "gelu", "silu", "softplus", "hardtanh", "softmax", "log_softmax"]
        op = self.choose(ops)
        a = self.exact(shape, depth)
        n, b = a.name, a.bound
        F = "lib.nn.functional"
        if op == "leaky_relu":
            slope = self.choose([None, 0.2, 0.01])
            arg = "" if slope is None else self.choose([f", {slope}", f", negative_slope={slope}"])
            return self.emit(f"{F}.leaky_relu({n}{arg})", shape, b)
        if op == "elu":
            alpha = self.choose([None, 0.5, 2.0])
            arg = "" if alpha is None else f", alpha={alpha}"
            return self.emit(f"{F}.elu({n}{arg})", shape, max(b, alpha or 1.0))
        if op == "gelu":
            arg = self.choose(["", ", approximate='none'", ", approximate='tanh'"])
            return self.emit(f"{F}.gelu({n}{arg})", shape, b)
        if op == "silu":
            return self.emit(f"{F}.silu({n})", shape, b + 0.3)
        if op == "softplus":
            beta, threshold = self.choose([1, 2, 0.5]), self.choose([20, 1, 5])
            form = self.choose(["default", "beta", "both", "positional"])
            arg = {"default": "", "beta": f", beta={beta}", "both": f", beta={beta}, threshold={threshold}",
                   "positional": f", {beta}, {threshold}"}[form]
            beta = 1 if form == "default" else beta
            low = math.log1p(math.exp(-beta * b)) / beta if beta * b < 30 else 0.0
            return self.emit(f"{F}.softplus({n}{arg})", shape, b + math.log(2) / beta, low)
        if op == "hardtanh":  # ties at a bound get no gradient (PyTorch's hardtanh_backward)
            lo, hi = self.choose([(-1.0, 1.0), (-0.5, 0.5), (0.0, 2.0)])
            arg = self.choose(["", f", {lo}, {hi}", f", min_val={lo}, max_val={hi}"]) if (lo, hi) != (-1.0, 1.0) \
                else self.choose(["", ", -1.0, 1.0"])
            return self.emit(f"{F}.hardtanh({n}{arg})", shape, max(abs(lo), abs(hi)))
        dims = list(range(-max(rank, 1), max(rank, 1)))
        d = self.choose(dims)
        size = shape[d] if rank else 1
        expr = self.choose([f"{F}.{op}({n}, dim={d})", f"{F}.{op}({n}, {d})", f"lib.{op}({n}, {d})",
                            f"{n}.{op}({d})", f"{n}.{op}(dim={d})"])
        if op == "softmax":
            low = math.exp(-2 * min(b, 300.0)) / size
            return self.emit(expr, shape, 1.0, low if low >= POSITIVE_FLOOR else 0.0)
        return self.emit(expr, shape, 2 * b + math.log(size))

    def reduction_input(self, shape, tuple_dims: bool):
        """An input shape, ``dim`` and ``keepdim`` that reduce it to ``shape``, and the elements per result.

        ``dim`` is ``None`` for a whole-tensor reduction (only for a 0-d ``shape``); an int or,
        when ``tuple_dims``, a tuple of one or two dims (negative ones too).
        """
        rank = len(shape)
        forms = (["dim"] if rank < MAX_RANK else []) + (["all"] if rank == 0 else []) + \
            (["keepdim"] if 1 in shape else []) + (["tuple"] if tuple_dims and rank <= 1 else [])
        if not forms:
            return None
        form = self.choose(forms)
        if form == "all":
            in_shape = tuple(self.choose(SIZES) for _ in range(self.integer(0, 3)))
            return in_shape, None, False, max(int(np.prod(in_shape)), 1)
        if form == "dim":
            d = self.integer(0, rank)
            k = self.choose(SIZES)
            dim = self.choose([d, d - rank - 1])
            if tuple_dims and self.integer(0, 3) == 0:
                dim = (dim,)
            return shape[:d] + (k,) + shape[d:], dim, False, k
        if form == "keepdim":
            ones = [i for i, n in enumerate(shape) if n == 1]
            dims = sorted(self.distinct(ones, 1, 2 if tuple_dims else 1))
            in_shape, count = list(shape), 1
            for d in dims:
                in_shape[d] = self.choose(SIZES)
                count *= in_shape[d]
            dim = dims[0] if len(dims) == 1 and (not tuple_dims or self.boolean()) else tuple(dims)
            return tuple(in_shape), dim, True, count
        d1, d2 = sorted(self.distinct(range(rank + 2), 2, 2))
        k1, k2 = self.choose(SIZES), self.choose(SIZES)
        in_shape = list(shape)
        in_shape.insert(d1, k1)
        in_shape.insert(d2, k2)
        dims = (d2 - rank - 2, d1) if self.boolean() else (d1, d2)
        return tuple(in_shape), dims, False, k1 * k2

    def reduce_call(self, fn: str, a: Var, dim, keepdim: bool, extra: str = "", positional: bool = True,
                    function: str | None = None) -> str:
        """``a.fn(dim, keepdim=True, extra)`` or ``lib.fn(a, …)`` (``dim`` by keyword unless ``positional``)."""
        args = [] if dim is None else [self.choose([f"{dim!r}", f"dim={dim!r}"]) if positional else f"dim={dim!r}"]
        args += (["keepdim=True"] if keepdim else []) + ([extra] if extra else [])
        inner = ", ".join(args)
        if function is not None:
            return f"{function}({a.name}{', ' if inner else ''}{inner})"
        return self.choose([f"{a.name}.{fn}({inner})", f"lib.{fn}({a.name}{', ' if inner else ''}{inner})"])

    def gen_reduce2(self, shape, depth):
        op = self.choose(["prod", "var", "std", "amax", "amin", "max", "min", "logsumexp", "norm", "vector_norm",
                          "linalg_norm", "cumsum", "sum", "mean"])
        if op == "cumsum":
            if not shape:
                a = self.exact(shape, depth)
                return self.emit(f"{a.name}.cumsum(0)", shape, a.bound, a.low)
            d = self.choose(list(range(-len(shape), len(shape))))
            a = self.squash(self.exact(shape, depth), MAX_BOUND / 3)
            expr = self.choose([f"{a.name}.cumsum({d})", f"lib.cumsum({a.name}, dim={d})"])
            return self.emit(expr, shape, a.bound * shape[d])
        if op in ("max", "min"):
            return self.gen_selection(op, shape, depth)
        reduction = self.reduction_input(shape, tuple_dims=op != "prod")
        if reduction is None:  # a rank-3 shape without a 1: no reduction gives it
            return self.gen_math(shape, depth)
        in_shape, dim, keepdim, count = reduction
        if op == "logsumexp" and dim is None:  # logsumexp needs dims
            dim = tuple(range(len(in_shape))) if in_shape else 0
        a = self.exact(in_shape, depth)
        if op == "prod":
            if not self.fits(a.bound ** count):
                a = self.squash(a, 1.0)
            return self.emit(self.reduce_call("prod", a, dim, keepdim), shape, a.bound ** count, a.low ** count)
        if op in ("var", "std"):
            # n - correction > 0: without degrees of freedom the gradient departs from torch's nan (docs/ops.md)
            correction = min(self.choose([0, 1, 2]), count - 1)
            extra = "" if correction == 1 and self.boolean() else f"correction={correction}"
            scale = count / (count - correction)
            if not self.fits(a.bound ** 2 * scale):
                a = self.squash(a, 1.0)
            bound = a.bound ** 2 * scale
            out = self.emit(self.reduce_call(op, a, dim, keepdim, extra), shape,
                            bound if op == "var" else math.sqrt(bound))
            if op == "std":
                self.program.stds.append(out.name)
            return out
        if op in ("amax", "amin"):  # ties share the gradient equally
            return self.emit(self.reduce_call(op, a, dim, keepdim), shape, a.bound, a.low)
        if op == "logsumexp":
            return self.emit(self.reduce_call("logsumexp", a, dim, keepdim), shape, a.bound + math.log(count))
        a = self.squash(a, MAX_BOUND / count)
        if op in ("sum", "mean"):
            return self.emit(self.reduce_call(op, a, dim, keepdim), shape, a.bound * (count if op == "sum" else 1),
                             a.low if op == "mean" else 0.0)
        # norms; the gradient at a zero vector is 0, as PyTorch's
        p = self.choose([2, 1, 3])
        bound = a.bound * count ** (1 / p)
        if op == "norm":  # Tensor.norm / torch.norm: the second positional parameter is p
            extra = "" if p == 2 and self.boolean() else f"p={p}"
            return self.emit(self.reduce_call("norm", a, dim, keepdim, extra, positional=False), shape, bound)
        if op == "vector_norm":
            extra = "" if p == 2 and self.boolean() else f"ord={p}"
            return self.emit(self.reduce_call("", a, dim, keepdim, extra, positional=False,
                                              function="lib.linalg.vector_norm"), shape, bound)
        # linalg.norm without ord: the 2-norm of the flattened tensor, of vectors along an int dim,
        # the Frobenius norm over a pair of dims
        return self.emit(self.reduce_call("", a, dim, keepdim, positional=False, function="lib.linalg.norm"), shape,
                         a.bound * math.sqrt(count))

    def gen_selection(self, op, shape, depth):
        """``max``/``min``: whole tensor (ties share the gradient) or along a dim (values; one index)."""
        rank = len(shape)
        if rank == 0 and self.boolean():
            in_shape = tuple(self.choose(SIZES) for _ in range(self.integer(0, 3)))
            a = self.exact(in_shape, depth)
            return self.emit(self.choose([f"{a.name}.{op}()", f"lib.{op}({a.name})"]), shape, a.bound, a.low)
        keep = 1 in shape and (rank == MAX_RANK or self.boolean())
        if not keep and rank == MAX_RANK:
            return self.gen_math(shape, depth)
        if keep:
            d = self.choose([i for i, n in enumerate(shape) if n == 1])
            in_shape = shape[:d] + (self.choose(SIZES),) + shape[d + 1:]
        else:
            d = self.integer(0, rank)
            in_shape = shape[:d] + (self.choose(SIZES),) + shape[d:]
        a = self.exact(in_shape, depth)
        dim = self.choose([d, d - len(in_shape)])
        args = f"{dim}, keepdim=True" if keep else self.choose([f"{dim}", f"dim={dim}"])
        call = self.choose([f"{a.name}.{op}({args})", f"lib.{op}({a.name}, {args})"])
        return self.emit(call + self.choose([".values", "[0]"]), shape, a.bound, a.low)

    def gen_linalg2(self, shape, depth):
        rank = len(shape)
        forms = ["einsum"]
        if rank == 2:
            forms += ["outer", "batched"]
        if rank == 3:
            forms += ["batched", "bmm"]
        form = self.choose(forms)
        if form == "einsum":
            return self.gen_einsum(shape, depth)
        k = self.choose(SIZES)
        if form == "outer":
            a, b = self.exact(shape[:1], depth), self.exact(shape[1:], depth)
            while not self.fits(a.bound * b.bound):
                a, b = (self.squash(a, 1.0), b) if a.bound >= b.bound else (a, self.squash(b, 1.0))
            return self.emit(self.choose([f"lib.outer({a.name}, {b.name})", f"{a.name}.outer({b.name})"]), shape,
                             a.bound * b.bound)
        if form == "bmm":
            sa, sb = shape[:1] + (shape[1], k), shape[:1] + (k, shape[2])
            fns = ["lib.bmm", ".bmm"]
        else:
            kind = self.choose((["nd_vec"] if rank < MAX_RANK else []) + ["vec_nd"] + (["nd_nd"] if rank == 3 else []))
            if kind == "nd_vec":
                sa, sb = shape + (k,), (k,)
            elif kind == "vec_nd":
                sa, sb = (k,), shape[:-1] + (k, shape[-1])
            else:
                ba, bb = self.operand_shapes(shape[:-2])
                sa, sb = ba + (shape[-2], k), bb + (k, shape[-1])
            fns = ["@", "lib.matmul", ".matmul"]
        a, b = self.exact(sa, depth), self.exact(sb, depth)
        while not self.fits(k * a.bound * b.bound):
            a, b = (self.squash(a, 1.0), b) if a.bound >= b.bound else (a, self.squash(b, 1.0))
        fn = self.choose(fns)
        expr = {"@": f"{a.name} @ {b.name}", ".matmul": f"{a.name}.matmul({b.name})",
                ".bmm": f"{a.name}.bmm({b.name})"}.get(fn, f"{fn}({a.name}, {b.name})")
        return self.emit(expr, shape, k * a.bound * b.bound)

    def gen_einsum(self, shape, depth):
        if len(shape) > MAX_RANK:
            return self.gen_math(shape, depth)
        equation = self.choose(EINSUM[len(shape)])
        inputs, _, output = equation.partition("->")
        if "->" not in equation:  # implicit output: the letters used once, in alphabetical order
            letters = inputs.replace(",", "")
            output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        sizes = dict(zip(output, shape))
        for c in inputs.replace(",", ""):
            sizes.setdefault(c, self.choose(SIZES))
        count = int(np.prod([sizes[c] for c in set(inputs.replace(",", "")) - set(output)] or [1]))
        operands = [self.exact(tuple(sizes[c] for c in term), depth) for term in inputs.split(",")]
        while not self.fits(count * math.prod(v.bound for v in operands)):
            i = max(range(len(operands)), key=lambda j: operands[j].bound)
            operands[i] = self.squash(operands[i], 1.0)
        names = ", ".join(v.name for v in operands)
        expr = self.choose([f"lib.einsum({equation!r}, {names})", f"lib.einsum({equation!r}, [{names}])"])
        out = self.emit(expr, shape, count * math.prod(v.bound for v in operands))
        return self.opaque(out, operands)

    def gen_shape2(self, shape, depth):
        rank = len(shape)
        forms = ["reshape", "index"]
        if rank >= 1:
            forms += ["flatten", "expand", "cat", "stack", "split", "flip", "repeat", "narrow", "gather",
                      "index_select"]
        if rank >= 2:
            forms.append("transpose")
        return getattr(self, "shape_" + self.choose(forms))(shape, depth)

    def shape_reshape(self, shape, depth):
        in_shape = self.choose(same_numel_shapes(int(np.prod(shape))))
        a = self.exact(in_shape, depth)
        target = list(shape)
        if target and self.boolean():
            target[self.integer(0, len(target) - 1)] = -1
        target = tuple(target)
        forms = [f"{a.name}.reshape({target!r})", f"lib.reshape({a.name}, {target!r})", f"{a.name}.view({target!r})"]
        if target:
            sizes = ", ".join(map(str, target))
            forms += [f"{a.name}.reshape({sizes})", f"{a.name}.view({sizes})"]
        return self.emit(self.choose(forms), shape, a.bound, a.low)

    def shape_flatten(self, shape, depth):
        rank = len(shape)
        if rank == MAX_RANK:  # flatten would need a rank-4 input
            return self.shape_reshape(shape, depth)
        if rank == 1 and self.boolean():
            a = self.exact(self.choose(same_numel_shapes(shape[0])), depth)
            return self.emit(self.choose([f"{a.name}.flatten()", f"lib.flatten({a.name})"]), shape, a.bound, a.low)
        s = self.integer(0, rank - 1)
        n = shape[s]
        f1 = self.choose([f for f in (1, 2, 3) if n % f == 0])
        in_shape = shape[:s] + (f1, n // f1) + shape[s + 1:]
        a = self.exact(in_shape, depth)
        start, end = self.choose([s, s - rank - 1]), self.choose([s + 1, s - rank])
        expr = self.choose([f"{a.name}.flatten({start}, {end})", f"lib.flatten({a.name}, start_dim={start}, "
                                                                    f"end_dim={end})"])
        return self.emit(expr, shape, a.bound, a.low)

    def shape_transpose(self, shape, depth):
        rank = len(shape)
        i, j = sorted(self.distinct(range(rank), 2, 2))
        in_shape = list(shape)
        in_shape[i], in_shape[j] = in_shape[j], in_shape[i]
        a = self.exact(in_shape, depth)
        forms = [f"{a.name}.transpose({i}, {j})", f"lib.transpose({a.name}, {j - rank}, {i})"]
        if (i, j) == (rank - 2, rank - 1):
            forms.append(f"{a.name}.mT")
        return self.emit(self.choose(forms), shape, a.bound, a.low)

    def shape_expand(self, shape, depth):
        in_shape = self.choose(self.operand_shapes(shape))
        a = self.exact(in_shape, depth)
        lead = len(shape) - len(in_shape)
        sizes = [n if i < lead or in_shape[i - lead] == 1 or self.boolean() else -1
                 for i, n in enumerate(shape)]
        forms = [f"{a.name}.expand({', '.join(map(str, sizes))})", f"{a.name}.expand({tuple(sizes)!r})",
                 f"lib.broadcast_to({a.name}, {tuple(shape)!r})", f"{a.name}.broadcast_to({tuple(shape)!r})"]
        return self.emit(self.choose(forms), shape, a.bound, a.low)

    def shape_cat(self, shape, depth):
        rank = len(shape)
        d = self.integer(0, rank - 1)
        n = shape[d]
        parts = self.choose(compositions(n))
        pieces = [self.exact(shape[:d] + (m,) + shape[d + 1:], depth) for m in parts]
        names = ", ".join(v.name for v in pieces)
        dim = self.choose([d, d - rank])
        expr = self.choose([f"lib.cat([{names}], dim={dim})", f"lib.cat(({names},), {dim})"])
        return self.emit(expr, shape, max(v.bound for v in pieces), min(v.low for v in pieces))

    def shape_stack(self, shape, depth):
        rank = len(shape)
        d = self.integer(0, rank - 1)
        if shape[d] > 3:  # a reshape made a long dimension: few pieces are enough
            return self.shape_cat(shape, depth)
        piece = shape[:d] + shape[d + 1:]
        pieces = [self.exact(piece, depth) for _ in range(shape[d])]
        names = ", ".join(v.name for v in pieces)
        dim = self.choose([d, d - rank])
        expr = self.choose([f"lib.stack([{names}], dim={dim})", f"lib.stack(({names},), {dim})"])
        return self.emit(expr, shape, max(v.bound for v in pieces), min(v.low for v in pieces))

    def shape_split(self, shape, depth):
        """One piece of ``split``/``chunk`` (the others are dropped: their gradient is zero)."""
        rank = len(shape)
        d = self.integer(0, rank - 1)
        s = shape[d]
        form = self.choose(["split", "sections", "chunk"])
        if form == "sections":
            sizes = self.choose([p for n in range(s, s + 3) for p in compositions(n) if s in p])
            n = sum(sizes)
            i = self.choose([j for j, m in enumerate(sizes) if m == s])
            call = self.choose([f"split({list(sizes)!r}, {d})", f"split({list(sizes)!r}, dim={d - rank})"])
        else:
            n = self.integer(s, max(s, 4))
            full = n // s  # pieces of size s (a split of size s; chunk size ceil(n / chunks) = s)
            if form == "split":
                call = self.choose([f"split({s}, {d})", f"split({s}, dim={d - rank})"])
            else:
                chunks = -(-n // s)
                if -(-n // chunks) != s:
                    chunks = n // s
                if -(-n // chunks) != s:
                    form, call = "split", f"split({s}, {d})"
                else:
                    call = self.choose([f"chunk({chunks}, {d})", f"chunk({chunks}, dim={d - rank})"])
            i = self.integer(0, full - 1)
        in_shape = shape[:d] + (n,) + shape[d + 1:]
        a = self.exact(in_shape, depth)
        expr = self.choose([f"{a.name}.{call}[{i}]", f"lib.{call.replace('(', f'({a.name}, ', 1)}[{i}]"])
        return self.emit(expr, shape, a.bound, a.low)

    def shape_flip(self, shape, depth):
        rank = len(shape)
        dims = self.distinct(range(rank), 1, rank)
        dims = [self.choose([d, d - rank]) for d in dims]
        a = self.exact(shape, depth)
        forms = [f"{a.name}.flip({tuple(dims)!r})", f"lib.flip({a.name}, {dims!r})", f"{a.name}.flip(dims={dims!r})"]
        if len(dims) == 1:
            forms.append(f"{a.name}.flip({dims[0]})")
        return self.emit(self.choose(forms), shape, a.bound, a.low)

    def shape_repeat(self, shape, depth):
        rank = len(shape)
        lead = self.integer(0, rank - 1)
        reps = [n if i < lead else self.choose([r for r in (1, 2, 3) if n % r == 0]) for i, n in enumerate(shape)]
        in_shape = tuple(n // r for n, r in zip(shape[lead:], reps[lead:]))
        a = self.exact(in_shape, depth)
        expr = self.choose([f"{a.name}.repeat({', '.join(map(str, reps))})", f"{a.name}.repeat({tuple(reps)!r})"])
        return self.emit(expr, shape, a.bound, a.low)

    def shape_narrow(self, shape, depth):
        rank = len(shape)
        d = self.integer(0, rank - 1)
        length = shape[d]
        n = self.integer(length, length + 2)
        start = self.integer(0, n - length)
        if self.boolean():
            start -= n  # a negative start counts from the end, as in PyTorch
        a = self.exact(shape[:d] + (n,) + shape[d + 1:], depth)
        dim = self.choose([d, d - rank])
        expr = self.choose([f"{a.name}.narrow({dim}, {start}, {length})",
                            f"lib.narrow({a.name}, {dim}, {start}, {length})"])
        return self.emit(expr, shape, a.bound, a.low)

    def shape_gather(self, shape, depth):
        rank = len(shape)
        d = self.integer(0, rank - 1)
        in_shape = tuple(self.choose(SIZES) if j == d else self.integer(n, max(n, 3))
                         for j, n in enumerate(shape))
        index = self.rng.integers(0, in_shape[d], size=shape)
        a = self.exact(in_shape, depth)
        dim = self.choose([d, d - rank])
        idx = self.index_literal(index)
        expr = self.choose([f"{a.name}.gather({dim}, {idx})", f"lib.gather({a.name}, {dim}, {idx})"])
        return self.emit(expr, shape, a.bound, a.low)

    def shape_index_select(self, shape, depth):
        rank = len(shape)
        d = self.integer(0, rank - 1)
        n = self.choose(SIZES)
        index = self.rng.integers(0, n, size=shape[d])  # duplicates accumulate in the gradient
        a = self.exact(shape[:d] + (n,) + shape[d + 1:], depth)
        dim = self.choose([d, d - rank])
        idx = self.index_literal(index)
        expr = self.choose([f"{a.name}.index_select({dim}, {idx})", f"lib.index_select({a.name}, {dim}, {idx})"])
        return self.emit(expr, shape, a.bound, a.low)

    def shape_index(self, shape, depth):
        """``a[...]`` with ints, slices, ``None``, ``...``, one integer list / tensor or one bool mask."""
        rank = len(shape)
        if rank == 1 and self.integer(0, 2) == 0:  # a whole-tensor bool mask: a 1-D result
            in_shape = self.choose([s for s in MASK_SHAPES if int(np.prod(s)) >= shape[0]] or [(shape[0] + 1,)])
            flat = np.zeros(int(np.prod(in_shape)), dtype=bool)
            flat[self.rng.choice(flat.size, size=shape[0], replace=False)] = True
            a = self.exact(in_shape, depth)
            mask = f"lib.tensor({flat.reshape(in_shape).tolist()!r})"
            return self.emit(f"{a.name}[{mask}]", shape, a.bound, a.low)
        advanced = self.boolean() and rank >= 1
        adv_at = self.integer(0, rank - 1) if advanced else -1
        items, in_shape = [], []
        for j, n in enumerate(shape):
            if not advanced:
                while len(in_shape) < MAX_RANK + 1 and self.integer(0, 3) == 0:  # an int drops a dim
                    m = self.choose(SIZES)
                    items.append(str(self.integer(-m, m - 1)))
                    in_shape.append(m)
            if j == adv_at:
                kind = self.choose(["list", "tensor", "mask"])
                if kind == "mask":
                    m = self.integer(n, max(n, 3))
                    mask = np.zeros(m, dtype=bool)
                    mask[self.rng.choice(m, size=n, replace=False)] = True
                    items.append(repr(mask.tolist()) if self.boolean() else f"lib.tensor({mask.tolist()!r})")
                else:
                    m = self.choose(SIZES)
                    index = self.rng.integers(-m, m, size=n).tolist()
                    items.append(repr(index) if kind == "list" else self.index_literal(index))
                in_shape.append(m)
                continue
            form = self.choose(["full", "slice"] + (["none"] if n == 1 and not advanced else []))
            if form == "none":
                items.append("None")
            elif form == "full":
                items.append(":")
                in_shape.append(n)
            else:
                step = self.choose([1, 2])
                span = (n - 1) * step + 1
                m = self.integer(span, span + 2)
                start = self.integer(0, m - span)
                stop = start + span
                text_start = "" if start == 0 else str(self.choose([start, start - m]))
                text_stop = "" if stop == m else str(stop)
                items.append(f"{text_start}:{text_stop}" + (f":{step}" if step != 1 else ""))
                in_shape.append(m)
        if not advanced:
            while len(in_shape) < MAX_RANK + 1 and self.integer(0, 3) == 0:
                m = self.choose(SIZES)
                items.append(str(self.integer(-m, m - 1)))
                in_shape.append(m)
        # a run of full slices may be written as `...` (once), trailing full slices dropped
        if self.boolean():
            full = [i for i, x in enumerate(items) if x == ":"]
            if full:
                i = self.choose(full)
                j = i
                while j + 1 < len(items) and items[j + 1] == ":":
                    j += 1
                items[i:j + 1] = ["..."]
        elif self.boolean():
            while items and items[-1] == ":":
                items.pop()
        if not items:
            items = ["..."]
        a = self.exact(tuple(in_shape), depth)
        return self.emit(f"{a.name}[{', '.join(items)}]", shape, a.bound, a.low)

    def gen_loss(self, shape, depth):
        op = self.choose(["mse", "l1", "smooth_l1", "huber", "bce", "cross_entropy", "cross_entropy_probs",
                          "nll", "kl_div", "cosine_similarity", "normalize"])
        if op == "cosine_similarity":
            return self.loss_cosine(shape, depth)
        if op == "normalize":
            if not shape:
                return self.gen_activation(shape, depth)
            d = self.choose(list(range(-len(shape), len(shape))))
            p = self.choose([None, 1, 3])
            a = self.exact(shape, depth)
            arg = self.choose([f", dim={d}", f", {p or 2}, {d}"]) if p is None else f", p={p}, dim={d}"
            if p is None and len(shape) >= 2 and self.boolean():
                arg = ""  # dim=1 by default
            return self.emit(f"lib.nn.functional.normalize({a.name}{arg})", shape, 1.0)
        if op in ("cross_entropy", "nll"):
            return self.loss_classes(op, shape, depth)
        if op in ("cross_entropy_probs", "kl_div"):
            return self.loss_distributions(op, shape, depth)
        if shape:
            in_shape, reduction = shape, "none"
        else:
            in_shape = self.choose([(3,), (2, 3), (3, 1), (), (2, 1, 3)])
            reduction = self.choose(["mean", "sum", None])
        count = max(int(np.prod(in_shape)), 1) if reduction == "sum" else 1
        kwargs = [] if reduction is None else [f"reduction={reduction!r}"]
        if op == "bce":
            x = self.probability(in_shape, depth)
            y = self.constant(in_shape, "prob") if self.boolean() else self.probability(in_shape, depth)
            w = 1.0
            if self.boolean():
                weight = self.constant(self.choose(self.operand_shapes(in_shape)), "pos")
                kwargs.insert(0, f"weight={weight.name}")
                w = weight.bound
            per_element = -math.log(min(x.low, 1 - x.bound)) * w
            args = ", ".join([x.name, y.name] + kwargs)
            return self.emit(f"lib.nn.functional.binary_cross_entropy({args})", shape, per_element * count)
        # target of the input's shape or (values only, see OPAQUE) of one that broadcasts to it
        target_shape = in_shape if self.integer(0, 3) else self.choose(self.operand_shapes(in_shape))
        x = self.exact(in_shape, depth)
        y = self.constant(target_shape, "real") if self.boolean() else self.exact(target_shape, depth)
        x, y = self.squash(x, 30.0), self.squash(y, 30.0)
        diff = x.bound + y.bound
        if op == "smooth_l1" and self.boolean():
            kwargs.append(f"beta={self.choose([0.5, 2.0])}")
        if op == "huber" and self.boolean():
            kwargs.append(f"delta={self.choose([0.5, 2.0])}")
        per_element = diff * diff if op == "mse" else max(diff * diff, diff) if op != "l1" else diff
        args = ", ".join([x.name, y.name] + kwargs)
        out = self.emit(f"lib.nn.functional.{op}_loss({args})", shape, per_element * count)
        if op == "l1" or target_shape != in_shape:
            return self.opaque(out, [x, y])
        return out

    def loss_cosine(self, shape, depth):
        rank = len(shape)
        if rank == MAX_RANK:
            return self.gen_math(shape, depth)
        d = self.integer(0, rank)
        in_shape = shape[:d] + (self.choose(SIZES),) + shape[d:]
        sa, sb = self.operand_shapes(in_shape)
        sa, sb = in_shape, in_shape if self.boolean() else sb
        a, b = self.exact(sa, depth), self.exact(sb, depth)
        dim = self.choose([d, d - rank - 1])
        arg = self.choose([f", dim={dim}", f", {dim}", f", dim={dim}, eps=1e-6"])
        if dim == 1 and rank >= 1 and self.boolean():
            arg = ""
        return self.emit(f"lib.nn.functional.cosine_similarity({a.name}, {b.name}{arg})", shape, 1.0)

    def class_shapes(self, shape):
        """(input shape, target shape, reduction) of a classification loss whose result has ``shape``."""
        if shape:
            target, reduction = shape, "none"
        else:
            target = self.choose([(), (2,), (3,), (2, 2)])
            reduction = self.choose(["mean", "sum", None])
        classes = self.choose(SIZES)
        in_shape = (classes,) if target == () else target[:1] + (classes,) + target[1:]
        return in_shape, target, reduction, classes

    def loss_classes(self, op, shape, depth):
        in_shape, target_shape, reduction, classes = self.class_shapes(shape)
        x = self.squash(self.exact(in_shape, depth), 100.0)
        if op == "nll":
            if self.boolean():
                x = self.emit(f"{x.name}.log_softmax({0 if len(in_shape) == 1 else 1})", in_shape,
                              2 * x.bound + math.log(classes))
        target = self.rng.integers(0, classes, size=target_shape)
        kwargs, w = [], 1.0
        # one ignored sample, never all of them: a 'mean' over no sample is 0/0 = nan, outside the safe domain
        if target.size > 1 and self.integer(0, 2) == 0:
            ignore = self.choose([-100, 0] if classes > 1 else [-100])
            if ignore == 0:  # the other samples are of other classes
                target = self.rng.integers(1, classes, size=target_shape)
                kwargs.append("ignore_index=0")
            target.flat[self.rng.integers(0, target.size)] = ignore
        if self.boolean():
            weight = self.constant((classes,), "pos")
            kwargs.append(f"weight={weight.name}")
            w = weight.bound
        if op == "cross_entropy" and self.integer(0, 2) == 0:
            kwargs.append(f"label_smoothing={self.choose([0.1, 0.5])}")
        if reduction is not None:
            kwargs.append(f"reduction={reduction!r}")
        count = max(target.size, 1) if reduction == "sum" else 1
        # weighted 'mean' divides by the kept weights: at most w / 0.5 times the largest term
        per_element = (2 * x.bound + math.log(classes) + 1) * w * (4 if reduction in ("mean", None) else 1)
        fn = "cross_entropy" if op == "cross_entropy" else "nll_loss"
        args = ", ".join([x.name, self.index_literal(target)] + kwargs)
        return self.emit(f"lib.nn.functional.{fn}({args})", shape, per_element * count)

    def loss_distributions(self, op, shape, depth):
        """``cross_entropy`` with class probabilities and ``kl_div`` (log-probability input)."""
        if op == "cross_entropy_probs":
            in_shape, _, reduction, classes = self.class_shapes(shape)  # 'none' drops the class dim
            class_dim = 0 if len(in_shape) == 1 else 1
        else:
            if shape:
                in_shape, reduction = shape, "none"
            else:
                in_shape = self.choose([(3,), (2, 3), (2, 1, 3)])
                reduction = self.choose(["mean", "sum", "batchmean", None])
            class_dim = len(in_shape) - 1
            classes = in_shape[-1] if in_shape else 1
        x = self.squash(self.exact(in_shape, depth), 100.0)
        log_target = op == "kl_div" and self.boolean()
        if self.boolean():
            t = self.constant(in_shape, "prob")
            if log_target:
                t = self.emit(f"({t.name} + 0.05).log()", in_shape, 3.0)
        else:
            z = self.squash(self.exact(in_shape, depth), 10.0)
            fn = "log_softmax" if log_target else "softmax"
            t = self.emit(f"{z.name}.{fn}({class_dim})", in_shape, 2 * z.bound + 3 if log_target else 1.0)
        kwargs = []
        if op == "kl_div":
            x = self.emit(f"{x.name}.log_softmax({class_dim})", in_shape, 2 * x.bound + math.log(classes))
            if log_target:
                kwargs.append("log_target=True")
        else:
            if self.boolean():
                kwargs.append(f"label_smoothing={self.choose([0.1, 0.5])}")
            if self.boolean():
                kwargs.append(f"weight={self.constant((classes,), 'pos').name}")
        if reduction is not None:
            kwargs.append(f"reduction={reduction!r}")
        count = max(int(np.prod(in_shape)), 1)
        per_element = 2 * (x.bound + 1) * (t.bound + 1) * 2 * count
        fn = "cross_entropy" if op == "cross_entropy_probs" else "kl_div"
        args = ", ".join([x.name, t.name] + kwargs)
        if not self.fits(per_element):
            per_element = MAX_BOUND / 2  # the operands are bounded: a loose bound is enough here
        out = self.emit(f"lib.nn.functional.{fn}({args})", shape, per_element)
        return self.opaque(out, [x, t]) if op == "kl_div" else out


class RandomBuilder(Builder):
    """The same programs drawn with ``random.Random`` (fast, no shrinking: the coverage test's)."""

    def __init__(self, seed_value: int):
        self.random = random.Random(seed_value)
        super().__init__(None)

    def choose(self, options):
        return self.random.choice(list(options))

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    def boolean(self) -> bool:
        return self.random.random() < 0.5

    def distinct(self, options, low: int, high: int) -> list:
        options = list(options)
        return self.random.sample(options, self.random.randint(low, min(high, len(options))))

    def permutation(self, options) -> list:
        return self.random.sample(list(options), len(options))


@st.composite
def programs(draw, max_depth: int = 5) -> Program:
    return build_program(Builder(draw), max_depth)


def build_program(builder: Builder, max_depth: int = 5, root_kind: str | None = None) -> Program:
    """A random program; ``root_kind`` forces the family of the last op (``gen_<kind>``)."""
    shapes = [s for s in ROOT_SHAPES if len(s) <= 2] if root_kind == "matmul" else ROOT_SHAPES
    shape = builder.choose(shapes)
    depth = builder.integer(2, max_depth)
    if root_kind is None:
        root = builder.exact(shape, depth)
    else:
        builder.ops += 1
        builder.kinds.add(root_kind)
        root = getattr(builder, "gen_" + root_kind)(shape, depth - 1)
    program = builder.program
    program.root = root.name
    if root.shape != ():
        program.seed = np.round(builder.rng.normal(size=root.shape), 3).tolist()
    return program


# ============================================================================
# Running a program in both libraries
# ============================================================================


SPLIT_NODES = ("SplitBackward0", "SplitWithSizesBackward0")
# torch's nll_loss backward on a non-contiguous 4-D input raises this (x.permute(1, 2, 3, 0); with
# create_graph=True also x.permute(1, 0, 2, 3)); symgrad computes it, torch has nothing to compare with
TORCH_NLL2D_ERROR = ("RuntimeError", "grad_input must be contiguous")
CONSTANT_COMPARISON_ERROR = "'bool' object has no attribute 'astype'"
EXTREME_OPS = ("amax(", "amin(", "max(", "min(")  # KNOWN_BUGS["create_graph_extreme"]
NORM_NAN_OPS = ("normalize(", "cosine_similarity(", "norm(", "std(")  # see the second-order test


def graph_signature(root, leaves, opaque=()):
    """(name, children) of every node below ``root``; leaves by position; sharing as ("seen", k).

    ``opaque`` holds ``(result, operands)`` pairs of tensors whose ``grad_fn`` is compared by name
    only: its signature continues at the operands' own nodes, skipping whatever chain lies between
    (the ops listed in ``OPAQUE``).
    """
    seen: dict[int, int] = {}
    keep = [result.grad_fn for result, _ in opaque]  # keep visited wrappers alive so that id() stays unique
    operands_of = {id(result.grad_fn): operands for result, operands in opaque if result.grad_fn is not None}

    def operand(tensor):
        if tensor.grad_fn is not None:
            return visit(tensor.grad_fn)
        return ("leaf", [i for i, leaf in enumerate(leaves) if tensor is leaf]) if tensor.requires_grad else None

    def visit(node):
        if node is None:
            return None
        keep.append(node)
        if id(node) in seen:
            return ("seen", seen[id(node)])
        seen[id(node)] = len(seen)
        if hasattr(node, "variable"):
            return (node.name(), "leaf", [i for i, leaf in enumerate(leaves) if node.variable is leaf])
        if id(node) in operands_of:
            return (node.name(), "opaque", tuple(operand(t) for t in operands_of[id(node)]))
        # a split piece is output `nr` of PyTorch's one shared node, output 0 of its own node in symgrad
        # (a documented departure, docs/ops.md): the piece number is not compared
        return (node.name(), tuple((visit(child), "piece" if child is not None and child.name() in SPLIT_NODES
                                    else nr) for child, nr in node.next_functions))

    return visit(root)


def run(program: Program, lib):
    namespace = {"lib": lib}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notes (torch) and NumPy overflow notes (symgrad)
        try:
            exec(compile(program.source(), "<random program>", "exec"), namespace)  # noqa: S102 - generated here
        except Exception as error:  # noqa: BLE001 - compared with torch's (the generator should avoid them)
            return {"error": (type(error).__name__, str(error).replace("torch.", "symgrad.").split(" Hint:")[0])}
    root = namespace[program.root]
    leaves = [namespace[name] for name in program.leaves]
    return {
        "value": root.detach().numpy().copy(),
        "requires_grad": root.requires_grad,
        "grad_fn": None if root.grad_fn is None else root.grad_fn.name(),
        "graph": graph_signature(root.grad_fn, leaves, [(namespace[name], [namespace[o] for o in operands])
                                                        for name, operands in program.opaque.items()]),
        "grads": [None if leaf.grad is None else leaf.grad.detach().numpy().copy() for leaf in leaves],
        "zero_std": zero_std(program, namespace),
    }


def zero_std(program: Program, namespace) -> bool:
    """Whether a std of the program is 0 up to rounding (copies of one value: index_select([1, 1, 1])).

    The gradient of std there is 0/0: symgrad's symbolic ``x - mean(x)`` is exactly 0 (gradient 0,
    PyTorch's too when its mean rounds exactly), while torch's ``(x - mean) / std`` divides rounding
    noise by rounding noise (-0.008 in one measured case).  Gradients are not compared then.
    """
    return any(np.any(np.abs(namespace[name].detach().numpy()) < 1e-12) for name in program.stds
               if name in namespace)


def run_second_order(program: Program, lib):
    namespace = {"lib": lib}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec(compile(program.second_order_source(), "<random program>", "exec"), namespace)  # noqa: S102
        except Exception as error:  # noqa: BLE001 - compared with torch's
            return {"error": (type(error).__name__, str(error).replace("torch.", "symgrad.").split(" Hint:")[0])}
    grads, hvp = namespace["grads"], namespace["hvp"]
    if grads is None:
        return {"grads": None}
    return {"grads": [None if g is None else as_array(g) for g in grads], "hvp": [as_array(h) for h in hvp],
            "zero_std": zero_std(program, namespace)}


def as_array(t) -> np.ndarray:
    """A copy of ``t``'s values (torch's second-order gradients may be ZeroTensors, which need ``force``)."""
    t = t.detach()
    return (t.numpy(force=True) if isinstance(t, torch.Tensor) else t.numpy()).copy()


def close(actual, expected, what: str, source: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}\n{source}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True,
                               err_msg=f"{what} differs from torch in\n{source}")


_settings = settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                     print_blob=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.filter_too_much])


def _seeded(test):
    return seed(int(SEED))(test) if SEED is not None else test


@_seeded
@_settings
@given(program=programs())
def test_random_program_matches_torch(program):
    source = program.source()
    expected = run(program, torch)
    if expected.get("error") == TORCH_NLL2D_ERROR:  # torch's own limitation (TORCH_NLL2D_ERROR)
        return
    actual = run(program, symgrad)
    if "error" in expected or "error" in actual:
        assert actual.get("error") == expected.get("error"), f"error\n{source}"
        return
    close(actual["value"], expected["value"], "forward value", source)
    assert actual["requires_grad"] == expected["requires_grad"], source
    assert actual["grad_fn"] == expected["grad_fn"], f"root grad_fn\n{source}"
    assert actual["graph"] == expected["graph"], f"grad_fn graph\n{source}"
    assert len(actual["grads"]) == len(expected["grads"])
    if expected["zero_std"]:
        return  # torch's gradient is rounding noise there (zero_std)
    for i, (a, e) in enumerate(zip(actual["grads"], expected["grads"])):
        assert (a is None) == (e is None), f"x{i}.grad: {a} vs {e}\n{source}"
        if e is not None:
            close(a, e, f"x{i}.grad", source)


@_seeded
@_settings
@given(program=programs())
def test_random_program_second_order_matches_torch(program):
    """``create_graph=True`` gradients and the Hessian-vector product through them, as values.

    Whether a gradient has a ``grad_fn`` is not compared here: symgrad's symbolic
    simplification makes some gradients constant (``x / x``) where torch's
    still carry a graph (test_backward.py pins that down); the values agree,
    and torch's extra Hessian terms are then zero.
    """
    source = program.second_order_source()
    expected = run_second_order(program, torch)
    if expected.get("error") == TORCH_NLL2D_ERROR:  # torch's own limitation (TORCH_NLL2D_ERROR)
        return
    actual = run_second_order(program, symgrad)
    if "error" in expected or "error" in actual:
        assert actual.get("error") == expected.get("error"), f"error\n{source}"
        return
    if expected["grads"] is None:
        assert actual["grads"] is None, source
        return
    if expected["zero_std"]:
        return  # torch's gradient is rounding noise there (zero_std)
    if any(name in source for name in EXTREME_OPS) and any(
            a is not None and e is not None and a.shape == e.shape and (np.isnan(a) & np.isfinite(e)).any()
            for a, e in zip(actual["grads"], expected["grads"])):
        return  # KNOWN_BUGS["create_graph_extreme"]: nan where torch's gradient is finite
    for i, (a, e) in enumerate(zip(actual["grads"], expected["grads"])):
        assert (a is None) == (e is None), f"grads[{i}]: {a} vs {e}\n{source}"
        if e is not None:
            close(a, e, f"grads[{i}]", source)
    # The Hessian-vector product is compared normwise: each entry is a sum over paths whose terms
    # have the magnitude of the largest entries, so an entry that cancels to 1e-6 of them carries
    # rounding error (in torch as in symgrad) of about eps * the largest entry.  Measured case: an
    # entry of -8.9e-6 next to entries of 29 was off by 5e-13 in torch and 2e-12 in symgrad from
    # the 50-digit mpmath value.  atol = 1e-10 * max |entry| keeps that scale and still fails on
    # any wrong term.
    expected_hvp = expected["hvp"]
    if any(name in source for name in NORM_NAN_OPS) and all(np.isfinite(g).all() for g in expected["grads"]
                                                             if g is not None):
        # PyTorch's double backward of a norm or std divides by it, so at a zero vector (normalize(0),
        # cosine_similarity with a zero operand, std of one element with correction=0) torch's
        # Hessian-vector product is nan where its gradient is finite; symgrad differentiates the
        # masked or eps-clamped formula (std of one element is the constant 0), finite there: torch's
        # nan entries accept any finite symgrad value (a deliberate difference, reported).
        expected_hvp = [np.where(np.isnan(e) & np.isfinite(a), a, e) if a.shape == e.shape else e
                        for a, e in zip(actual["hvp"], expected_hvp)]
    scale = max([float(np.nanmax(np.abs(e))) for e in expected_hvp if e.size and not np.isnan(e).all()] + [0.0])
    for i, (a, e) in enumerate(zip(actual["hvp"], expected_hvp)):
        assert a.shape == e.shape, f"hvp[{i}]: shape {a.shape} vs {e.shape}\n{source}"
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL + RTOL * scale, equal_nan=True,
                                   err_msg=f"hvp[{i}] differs from torch in\n{source}")


KINDS = ["unary", "binary", "scalar", "alpha", "pow", "divide", "reduce", "shape", "matmul", "bce", "math", "binary2",
         "activation", "reduce2", "linalg2", "shape2", "loss"]
WANTED = [".exp()", ".log()", "sigmoid", "tanh", "relu", "reciprocal", " ** ", "lib.pow(", " @ ", "lib.mm(",
          "lib.mv(", "lib.dot(", ".sum(", ".mean(", "keepdim=True", ".squeeze(", ".unsqueeze(", ".permute", ".T",
          "alpha=", "binary_cross_entropy_with_logits", "pos_weight=", "reduction='none'", " / ", "lib.neg(", "-v",
          # elementwise math
          "sqrt(", "rsqrt(", "sin(", "cos(", "tan(", "asin(", "acos(", "atan(", "atan2(", "sinh(", "cosh(", "expm1(",
          "log1p(", "log2(", "log10(", "abs(", "sign(", "square(", "erf(", ".clamp(", "lib.clamp(", "clip(",
          "maximum(", "minimum(", "lib.where(", ".where(", " > ", "lib.gt(", "lerp(",
          # activations
          "leaky_relu(", "negative_slope=", "elu(", "gelu(", "approximate='tanh'", "silu(", "softplus(", "threshold=",
          "hardtanh(", "softmax(", "log_softmax(",
          # reductions
          "prod(", "var(", "std(", "correction=", "amax(", "amin(", ".max(", ".min(", "lib.max(", ".values", "[0]",
          "logsumexp(", ".norm(", "p=1", "vector_norm(", "ord=3", "linalg.norm(", "cumsum(", "dim=(",
          # linear algebra
          "bmm(", "einsum(", "outer(", ".matmul(",
          # shapes
          "reshape(", ".view(", "flatten(", "transpose(", ".mT", ".expand(", "broadcast_to(", "lib.cat(",
          "lib.stack(", "split(", "chunk(", "flip(", ".repeat(", "narrow(", "gather(", "index_select(", ", None",
          "...", ":2", "[True", "lib.tensor([[True", "[[",
          # losses
          "mse_loss(", "l1_loss(", "smooth_l1_loss(", "beta=", "huber_loss(", "delta=", "binary_cross_entropy(",
          "weight=", "cross_entropy(", "label_smoothing=", "ignore_index=", "nll_loss(", "kl_div(", "log_target=True",
          "reduction='batchmean'", "cosine_similarity(", "normalize("]


def test_programs_cover_the_op_table():
    """The strategy reaches every op (a guard against a generator that silently stops drawing some).

    Mixed programs (Hypothesis' draws) must draw every family of ops; then each
    family, forced as the last op of small programs (drawn with ``random``, which
    is much faster), must reach every fragment of WANTED between them.
    """
    kinds, seen = set(), set()

    @settings(max_examples=100, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def mixed(data):
        builder = Builder(data.draw)
        builder.exact(data.draw(st.sampled_from(ROOT_SHAPES)), 4)
        kinds.update(builder.kinds)

    mixed()
    assert sorted(set(KINDS) - kinds) == []
    for kind in KINDS:
        for k in range(COVERAGE_EXAMPLES):
            source = build_program(RandomBuilder(k), max_depth=2, root_kind=kind).source()
            seen.update(fragment for fragment in WANTED if fragment in source)
    assert sorted(set(WANTED) - seen) == []


def as_function(program: Program):
    """The program as ``f(x0, x1, …)`` over its leaves (leaf definitions dropped), and the leaves' values."""
    namespace = {"lib": symgrad}
    leaf_lines = [line for line in program.lines if line.split(" = ")[0] in program.leaves]
    exec("\n".join(leaf_lines), namespace)  # noqa: S102 - generated here
    leaves = [namespace[name] for name in program.leaves]
    body = [f"    {line}" for line in program.lines if line not in leaf_lines]
    source = f"def f({', '.join(program.leaves)}):\n" + "\n".join(body + [f"    return {program.root}"]) + "\n"
    exec(compile(source, "<random program>", "exec"), namespace)  # noqa: S102 - generated here
    return namespace["f"], [leaf.detach().numpy() for leaf in leaves], [i for i, t in enumerate(leaves)
                                                                        if t.requires_grad]


def eager_value_and_grads(f, values, wrt, seed_value):
    tensors = [symgrad.tensor(v, requires_grad=i in wrt) for i, v in enumerate(values)]
    out = f(*tensors)
    if out.requires_grad:
        out.backward(None if seed_value is None else symgrad.tensor(seed_value, dtype=symgrad.float64))
    grads = [np.zeros_like(values[i]) if tensors[i].grad is None else tensors[i].grad.numpy() for i in wrt]
    return out.detach().numpy(), grads


@_seeded
@_settings
@given(program=programs())
def test_random_program_compiled_matches_eager(program):
    """symgrad.compile of the program, called away from its trace point, equals the facade there.

    The facade is compared with torch above; here the compiled module (with and
    without the optimisation passes) must give the same value and gradients at
    moved arguments, which also checks that nothing of the trace point is baked in.
    """
    f, values, wrt = as_function(program)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eager_value_and_grads(f, values, wrt, program.seed)
    except Exception:  # noqa: BLE001 - programs torch rejects too (compared above)
        return
    moved = [v * 1.05 for v in values]
    expected_value, expected_grads = eager_value_and_grads(f, moved, wrt, program.seed)
    source = program.source()
    for optimize in (True, False):
        try:
            compiled = symgrad.compile(f, *values, wrt=wrt, optimize=optimize)
            value = compiled.forward(*moved)
            seed_value = np.ones(np.shape(value)) if program.seed is None else np.asarray(program.seed)
            grads = compiled.vjp(*moved, seed=seed_value)
        except AttributeError as error:
            if str(error) == CONSTANT_COMPARISON_ERROR:  # KNOWN_BUGS["constant_comparison"]
                return
            raise
        close(np.asarray(value), expected_value, f"compiled value (optimize={optimize})", source)
        for i, (a, e) in enumerate(zip(grads, expected_grads)):
            close(np.asarray(a), e, f"compiled gradient {i} (optimize={optimize})", source)
        functions = compiled._last.program.functions
        if "value_and_grad_scalar" in functions:  # the per-element version, compared with the NumPy one
            with np.errstate(all="ignore"):
                unrolled, vectorised = (functions[name](*moved) for name in ("value_and_grad_scalar",
                                                                             "value_and_grad"))
            for i, (a, e) in enumerate(zip(unrolled, vectorised)):
                close(np.asarray(a), np.asarray(e), f"per-element output {i}", source)
