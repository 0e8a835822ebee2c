"""The ``Einsum`` primitive: a sum of products over index labels, closed under adjoints.

``Einsum('ij,jk->ik', a, b)`` is NumPy's ``einsum`` with every operand's
labels written out (letters only, no ``...``) and every label of one size.
Two extensions make the adjoint of an einsum an einsum again, so
:mod:`symgrad.derive` needs one rule:

* an output label may repeat (``'i->ii'``): the values sit on that diagonal,
  zeros elsewhere — the adjoint of taking a diagonal (``'ii->i'``);
* an output label may be absent from the inputs (``'i->ij'``): the result is
  constant along it — the adjoint of summing over a label.

The printed NumPy call realises them with ``np.eye`` and ``np.ones`` operands
(:meth:`Einsum.numpy_form`).  Single-operand einsums without repeated labels
fold to ``Sum``/``Permute``/``Reshape``/``BroadcastTo`` (:func:`einsum`).
"""

from __future__ import annotations

import string

import numpy as np
import sympy as sp
from sympy.core.symbol import Str

from .nodes import TensorExpr, _tuple, broadcast_to, permute, reduce_sum, reshape

__all__ = ["Einsum", "einsum", "split_subscripts", "einsum_adjoint_subscripts", "numpy_einsum_form"]


def split_subscripts(subscripts: str) -> tuple[list[str], str]:
    """``'ij,jk->ik'`` as ``(['ij', 'jk'], 'ik')``.

    >>> split_subscripts("ii->")
    (['ii'], '')
    """
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


def _label_sizes(inputs: list[str], operand_shapes, output: str, shape) -> dict[str, int]:
    sizes: dict[str, int] = {}
    pairs = [*zip(inputs, operand_shapes)] + ([(output, shape)] if shape is not None else [])
    for labels, dims in pairs:
        if len(labels) != len(dims):
            raise ValueError(f"subscripts {labels!r} for a tensor of shape {tuple(dims)}")
        for label, size in zip(labels, dims):
            if sizes.setdefault(label, int(size)) != int(size):
                raise ValueError(f"label {label} has sizes {sizes[label]} and {size}")
    return sizes


class Einsum(TensorExpr):
    """``out[output] = Σ over the other labels of Π operand_k[inputs_k]`` (see the module docstring)."""

    def __new__(cls, subscripts: str, shape, *operands: TensorExpr):
        obj = sp.Basic.__new__(cls, Str(subscripts), _tuple(shape), *operands)
        obj.shape = tuple(int(s) for s in shape)
        obj.dtype = np.result_type(*(x.dtype for x in operands))
        return obj

    @property
    def subscripts(self) -> str:
        return self.args[0].name

    def label_sizes(self) -> dict[str, int]:
        inputs, output = split_subscripts(self.subscripts)
        return _label_sizes(inputs, [x.shape for x in self.inputs], output, self.shape)

    def numpy_form(self) -> tuple[str, list[tuple[str, int]]]:
        """Subscripts for ``np.einsum`` and its extra operands (see :func:`numpy_einsum_form`).

        >>> from symgrad.symbolic import TensorSymbol
        >>> Einsum("i->ii", (3, 3), TensorSymbol("g", (3,), "float64")).numpy_form()
        ('i,ia->ia', [('eye', 3)])
        """
        return numpy_einsum_form(self.subscripts, self.shape)


def numpy_einsum_form(subscripts: str, shape) -> tuple[str, list[tuple[str, int]]]:
    """Subscripts for ``np.einsum`` and the extra operands, ``('eye', n)`` or ``('ones', n)``, they read.

    A repeated output label becomes a fresh label tied to it by an identity
    matrix; an output label no input has comes from a vector of ones (sizes
    from the result ``shape``).

    >>> numpy_einsum_form("ij->ijk", (2, 3, 4))
    ('ij,k->ijk', [('ones', 4)])
    """
    inputs, output = split_subscripts(subscripts)
    present = set("".join(inputs))
    fresh = iter(c for c in string.ascii_letters if c not in subscripts)
    extra_labels, extras, written = [], [], []
    for label, size in zip(output, shape):
        if label in written:
            new = next(fresh)
            extra_labels.append(label + new)
            extras.append(("eye", int(size)))
            written.append(new)
            continue
        written.append(label)
        if label not in present:
            extra_labels.append(label)
            extras.append(("ones", int(size)))
    return ",".join(inputs + extra_labels) + "->" + "".join(written), extras


def einsum(subscripts: str, operands, shape=None) -> TensorExpr:
    """The einsum of ``operands`` (result ``shape`` needed only for labels no operand has).

    >>> from symgrad.symbolic import TensorSymbol
    >>> a = TensorSymbol("a", (2, 3), "float64"); b = TensorSymbol("b", (3, 4), "float64")
    >>> einsum("ij,jk->ik", [a, b]).shape
    (2, 4)
    >>> type(einsum("ij->j", [a])).__name__
    'Sum'
    """
    operands = list(operands)
    inputs, output = split_subscripts(subscripts)
    if len(inputs) != len(operands):
        raise ValueError(f"{subscripts!r} for {len(operands)} operands")
    sizes = _label_sizes(inputs, [x.shape for x in operands], output, shape)
    missing = [label for label in output if label not in sizes]
    if missing:
        raise ValueError(f"sizes of output labels {missing} unknown")
    shape = tuple(sizes[label] for label in output)
    if len(operands) == 1 and _distinct(inputs[0]) and _distinct(output):
        return _fold_single(inputs[0], output, operands[0], sizes)
    return Einsum(subscripts, shape, *operands)


def _distinct(labels: str) -> bool:
    return len(set(labels)) == len(labels)


def _fold_single(labels: str, output: str, x: TensorExpr, sizes: dict[str, int]) -> TensorExpr:
    """A one-operand einsum without repeated labels: sum, transpose, then broadcast over new labels."""
    x = reduce_sum(x, [i for i, label in enumerate(labels) if label not in output])
    kept = [label for label in labels if label in output]
    order = [label for label in output if label in kept]
    x = permute(x, [kept.index(label) for label in order])
    x = reshape(x, tuple(sizes[label] if label in kept else 1 for label in output))
    return broadcast_to(x, tuple(sizes[label] for label in output))


def einsum_adjoint_subscripts(subscripts: str, k: int) -> str:
    """The subscripts of the adjoint for operand ``k``: the incoming gradient and the other operands.

    >>> einsum_adjoint_subscripts("ij,jk->ik", 0)
    'ik,jk->ij'
    """
    inputs, output = split_subscripts(subscripts)
    others = [s for j, s in enumerate(inputs) if j != k]
    return ",".join([output, *others]) + "->" + inputs[k]
