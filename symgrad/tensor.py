"""The ``Tensor`` facade: PyTorch's names and behaviour over a NumPy array.

Every op goes through :func:`apply`: the op record infers shape and dtype
(raising PyTorch's errors before anything is computed), computes the eager
NumPy value, and — when grad mode is on and an operand requires grad —
records a light :class:`~symgrad.autograd.graph.Node`.  No SymPy is built
here; ``backward`` hands the recorded graph to the compiler.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from . import dtypes
from ._tensor_str import tensor_repr
from .autograd.graph import AccumulateGrad, Node, VersionCounter
from .grad_mode import _state as _grad_state
from .ops import elementwise as ew
from .ops import structural as st
from .ops.registry import Op, broadcast_error_shapes

__all__ = ["Tensor", "Size", "apply"]

_SCALARS = (bool, int, float)

_NON_LEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute "
    "won't be populated during autograd.backward(). If you indeed want the .grad field to be populated "
    "for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor "
    "by mistake, make sure you access the leaf Tensor instead. See github.com/pytorch/pytorch/pull/30531 "
    "for more information.")


class Size(tuple):
    """A tensor's shape: a tuple printed as PyTorch prints ``torch.Size``.

    >>> Size((5, 3))
    symgrad.Size([5, 3])
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"symgrad.Size([{', '.join(map(str, self))}])"

    def numel(self) -> int:
        """Number of elements in a tensor of this shape."""
        return int(np.prod(self, dtype=np.int64))


class Tensor:
    """A multi-dimensional array that records operations for automatic differentiation.

    Create tensors with :func:`symgrad.tensor`, :func:`symgrad.ones`, … rather than
    with this constructor.

    >>> import symgrad
    >>> w = symgrad.tensor([1.0, 2.0], requires_grad=True)
    >>> (w * w).sum().backward()
    >>> w.grad
    tensor([2., 4.])
    """

    __slots__ = ("_data", "_dtype", "_requires_grad", "_grad", "_grad_fn", "_version_counter",
                 "_accumulator", "_retains_grad", "_name", "_base", "__weakref__")

    __array_priority__ = 1000  # numpy_array + tensor defers to Tensor.__radd__

    def __init__(self, data, *, dtype=None, requires_grad: bool = False) -> None:
        array = np.asarray(data)
        dtype = dtypes.from_numpy_dtype(array.dtype) if dtype is None else dtypes.as_dtype(dtype)
        _init(self, array.astype(dtype.numpy, copy=False), dtype)
        if requires_grad:
            self.requires_grad_(True)

    # ----------------------------------------------------------- attributes

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        """The shape, or the size of one dimension.

        >>> import symgrad
        >>> symgrad.ones(5, 3).size(), symgrad.ones(5, 3).size(-1)
        (symgrad.Size([5, 3]), 3)
        """
        if dim is None:
            return self.shape
        return self._data.shape[st.normalize_dim(dim, self._data.ndim)]

    @property
    def dtype(self) -> dtypes.DType:
        return self._dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        """Number of dimensions."""
        return self._data.ndim

    def numel(self) -> int:
        """Number of elements."""
        return self._data.size

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def grad_fn(self) -> Node | None:
        return self._grad_fn

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self._grad_fn is not None

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set whether autograd records operations on this leaf; returns ``self``.

        >>> import symgrad
        >>> symgrad.ones(2).requires_grad_().requires_grad
        True
        """
        if self._grad_fn is not None:
            if requires_grad:
                return self
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use "
                               "a computed variable in a subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        if requires_grad and not self._dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad(self) -> Tensor | None:
        if self._grad_fn is not None and not self._retains_grad and self._grad is None:
            warnings.warn(_NON_LEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__name__}")
            if value.dtype is not self._dtype:
                raise RuntimeError("assigned grad has data of a different type")
            if value._data.shape != self._data.shape:
                raise RuntimeError("assigned grad has data of a different size")
        self._grad = value

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def retain_grad(self) -> None:
        """Make ``backward`` populate ``.grad`` of this non-leaf tensor too.

        >>> import symgrad
        >>> w = symgrad.ones(2, requires_grad=True); z = w * 3; z.retain_grad()
        >>> z.sum().backward(); z.grad
        tensor([1., 1.])
        """
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_fn is not None and not self._retains_grad:
            self._retains_grad = True
            self._grad_fn.retained = weakref.ref(self)

    @property
    def T(self) -> Tensor:  # noqa: N802 - PyTorch's name
        """The tensor with its dimensions reversed (``PermuteBackward0``)."""
        return self.permute(*reversed(range(self.ndim)))

    # --------------------------------------------------------- conversions

    def detach(self) -> Tensor:
        """A tensor sharing this data, cut from the graph (``requires_grad=False``).

        >>> import symgrad
        >>> (symgrad.ones(2, requires_grad=True) * 2).detach().requires_grad
        False
        """
        out = _make(self._data, self._dtype)
        out._version_counter = self._version_counter
        return out

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place; it becomes a leaf."""
        self._grad_fn = None
        self._requires_grad = False
        return self

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared memory, like PyTorch)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                               "instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                               "instead.")
        return self._data if dtype is None else self._data.astype(dtype)

    def item(self):
        """The single value as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.reshape(()).item()

    def tolist(self):
        """Nested Python lists of the values (a number for a 0-d tensor)."""
        return self._data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def to(self, dtype) -> Tensor:
        """This tensor converted to ``dtype`` (``self`` if it already has it); differentiable.

        >>> import symgrad
        >>> symgrad.ones(2, requires_grad=True).to(symgrad.float64)
        tensor([1., 1.], dtype=symgrad.float64, grad_fn=<ToCopyBackward0>)
        """
        if isinstance(dtype, str) and dtype == "cpu":
            return self  # the only device
        dtype = dtypes.as_dtype(dtype.dtype if isinstance(dtype, Tensor) else dtype)
        return self if dtype is self._dtype else apply(ew.TO_COPY, (self,), (dtype.name,))

    def float(self) -> Tensor:
        """Converted to float32."""
        return self.to(dtypes.float32)

    def double(self) -> Tensor:
        """Converted to float64."""
        return self.to(dtypes.float64)

    def long(self) -> Tensor:
        """Converted to int64."""
        return self.to(dtypes.int64)

    def bool(self) -> Tensor:
        """Converted to bool."""
        return self.to(dtypes.bool)

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)  # f"{loss:.4f}" as with PyTorch
        return format(repr(self), spec)

    def __repr__(self) -> str:
        dtype = self._dtype
        show_dtype = dtype not in (dtypes.get_default_dtype(), dtypes.int64, dtypes.bool)
        if self._grad_fn is not None:
            suffix = f"grad_fn=<{self._grad_fn.name()}>"
        elif self._requires_grad:
            suffix = "requires_grad=True"
        else:
            suffix = None
        return tensor_repr(self._data, dtype_name=dtype.name, show_dtype=show_dtype, grad_suffix=suffix)

    __str__ = __repr__

    # Methods defined by later layers and attached there (each layer imports
    # only earlier ones): `backward` in symgrad/backward.py; every op method
    # (`add`, `sum`, `exp` …, generated from the op table), `pow`, `matmul` and
    # `@` in symgrad/functional.py.

    # ----------------------------------------------------------- arithmetic

    def __add__(self, other):
        return _binary(ew.ADD, self, other)

    def __radd__(self, other):
        return _binary(ew.ADD, self, other)  # PyTorch computes self + other: edges in that order

    def __sub__(self, other):
        return _binary(ew.SUB, self, other)

    def __rsub__(self, other):
        if isinstance(other, _SCALARS):
            return apply(ew.RSUB, (self, other))
        return _binary(ew.SUB, other, self)

    def __mul__(self, other):
        return _binary(ew.MUL, self, other)

    def __rmul__(self, other):
        return _binary(ew.MUL, self, other)

    def __truediv__(self, other):
        return _binary(ew.DIV, self, other)

    def __rtruediv__(self, other):
        if isinstance(other, _SCALARS):
            return apply(ew.MUL, (apply(ew.RECIPROCAL, (self,)), other))
        return _binary(ew.DIV, other, self)

    def __neg__(self):
        return apply(ew.NEG, (self,))

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        return self.pow(exponent)  # Tensor.pow comes from symgrad/functional.py

    def __rpow__(self, base):
        return _as_operand(base).pow(self) if not isinstance(base, _SCALARS) else apply(ew.RPOW, (self, base))

    # ---------------------------------------------------------- comparisons
    # bool tensors (never differentiable); `t == None` is False, as in PyTorch

    def __eq__(self, other):
        return _compare(ew.EQ, self, other)

    def __ne__(self, other):
        return _compare(ew.NE, self, other)

    def __lt__(self, other):
        return _compare(ew.LT, self, other)

    def __le__(self, other):
        return _compare(ew.LE, self, other)

    def __gt__(self, other):
        return _compare(ew.GT, self, other)

    def __ge__(self, other):
        return _compare(ew.GE, self, other)

    __hash__ = object.__hash__  # by identity, as PyTorch's (defining __eq__ would remove it)

    # -------------------------------------------------------------- in-place

    def add_(self, other, *, alpha=1) -> Tensor:
        """In-place ``self += alpha * other``."""
        return self._inplace(ew.ADD, (self, _as_operand(other)), () if alpha == 1 else (alpha,))

    def sub_(self, other, *, alpha=1) -> Tensor:
        """In-place ``self -= alpha * other``."""
        return self._inplace(ew.SUB, (self, _as_operand(other)), () if alpha == 1 else (alpha,))

    def mul_(self, other) -> Tensor:
        """In-place ``self *= other``."""
        return self._inplace(ew.MUL, (self, _as_operand(other)), ())

    def div_(self, other) -> Tensor:
        """In-place ``self /= other``."""
        return self._inplace(ew.DIV, (self, _as_operand(other)), ())

    def zero_(self) -> Tensor:
        """Fill with zeros in place (``ZeroBackward0`` when recorded)."""
        self._check_inplace()
        if self.requires_grad and _grad_state.enabled:
            return self._inplace(ew.ZERO, (self,), ())
        return self.fill_(0)

    def fill_(self, value) -> Tensor:
        """Fill with ``value``, a number or a 0-d tensor, in place (``FillBackward2``/``FillBackward3`` when recorded).

        >>> import symgrad
        >>> symgrad.zeros(3).fill_(2.5)
        tensor([2.5000, 2.5000, 2.5000])
        """
        if isinstance(value, Tensor) and value.ndim:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                               "dimensions.")
        self._check_inplace()
        if (self.requires_grad or isinstance(value, Tensor) and value.requires_grad) and _grad_state.enabled:
            if isinstance(value, Tensor):
                return self._inplace(ew.FILL_TENSOR, (self, value), ())
            return self._inplace(ew.FILL, (self,), (float(value),))
        self._data[...] = value
        self._version_counter.value += 1
        return self

    def pow_(self, exponent) -> Tensor:
        """In-place ``self **= exponent``."""
        if isinstance(exponent, _SCALARS):
            return self._inplace(ew.POW, (self,), (exponent,))
        return self._inplace(ew.POW_TENSOR, (self, _as_operand(exponent)), ())

    def copy_(self, src, non_blocking: bool = False) -> Tensor:
        """Copy ``src`` into this tensor (broadcast, converted to its dtype); ``CopyBackwards`` when recorded.

        >>> import symgrad
        >>> symgrad.zeros(2, 2).copy_(symgrad.tensor([1.0, 2.0]))
        tensor([[1., 2.],
                [1., 2.]])
        """
        src = _as_operand(src)
        if isinstance(src, _SCALARS):
            src = _make(np.asarray(src, dtype=self._dtype.numpy), self._dtype)
        self._check_inplace()
        recorded = self.requires_grad or src.requires_grad
        if recorded and _grad_state.enabled and self._dtype.is_floating_point:
            return self._inplace(ew.COPY, (self, src if src._dtype is self._dtype else src.to(self._dtype)), ())
        shape = broadcast_error_shapes(self._data.shape, src._data.shape)
        if shape != self._data.shape:
            raise RuntimeError(f"output with shape [{', '.join(map(str, self._data.shape))}] doesn't match the "
                               f"broadcast shape [{', '.join(map(str, shape))}]")
        np.copyto(self._data, src._data, casting="unsafe")
        self._version_counter.value += 1
        return self

    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
        """In-place :func:`symgrad.clamp` (``ClampBackward1`` for number bounds, ``ClampBackward0`` for tensors).

        >>> import symgrad
        >>> symgrad.tensor([-1.0, 0.5, 2.0]).clamp_(0, 1)
        tensor([0.0000, 0.5000, 1.0000])
        """
        operands, attrs, op = ew.CLAMP.api.signature(self, min, max)
        operands = tuple(_as_operand(x) for x in operands)
        result_dtype = op.infer(operands, attrs)[1]
        if op is ew.CLAMP and not dtypes.can_cast(result_dtype, self._dtype):  # named as C++ does, with numbers
            raise RuntimeError(f"result type {_type_word(result_dtype)} can't be cast to the desired output type "
                               f"{_CPP_TYPE_NAMES[self._dtype.name]}")
        return self._inplace(op, operands, attrs)

    clip_ = clamp_

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_
    __ipow__ = pow_

    def _check_inplace(self) -> None:
        if not _grad_state.enabled:
            return
        if self._grad_fn is None and self._requires_grad:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        base = self._base
        if base is not None and base.requires_grad:
            if base._grad_fn is None:
                raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place "
                                   "operation.")
            # PyTorch rewrites the base's history (CopySlices); without that the base's
            # gradient would silently be wrong, so refuse clearly
            raise NotImplementedError("symgrad does not support in-place operations on a view of a tensor that "
                                      "requires grad yet; use the out-of-place operation instead")

    def _inplace(self, op: Op, operands, attrs) -> Tensor:
        self._check_inplace()
        result = apply(op, operands, attrs)
        if result._data.shape != self._data.shape:
            raise RuntimeError(f"output with shape [{', '.join(map(str, self._data.shape))}] doesn't match the "
                               f"broadcast shape [{', '.join(map(str, result._data.shape))}]")
        if not dtypes.can_cast(result._dtype, self._dtype):
            raise RuntimeError(f"result type {_type_word(result._dtype)} can't be cast to the desired output "
                               f"type {_type_word(self._dtype)}")
        node = result._grad_fn
        if node is not None and self._base is not None:
            # the base would need the new history too (PyTorch's CopySlices)
            raise NotImplementedError("symgrad does not support in-place operations on a view when the result "
                                      "requires grad yet; use the out-of-place operation instead")
        if node is not None:
            _keep_original_operands(node, self._data)
        np.copyto(self._data, result._data, casting="unsafe")
        self._version_counter.value += 1
        if node is not None:
            # the recorded node now produces this tensor's (shared) data
            node.result, node.result_counter = self._data, self._version_counter
            node.result_version = self._version_counter.value
            self._version_counter.rebased = node
            self._grad_fn = node
        return self


def _keep_original_operands(node: Node, data: np.ndarray) -> None:
    """Let ``node`` keep the values an in-place op is about to overwrite (PyTorch saves the original)."""
    overwritten = [v is data for v in node.values]
    if any(overwritten):
        node.values = tuple(v.copy() if hit else v for v, hit in zip(node.values, overwritten))
        node.counters = tuple(VersionCounter() if hit else c for c, hit in zip(node.counters, overwritten))
        node.versions = tuple(0 if hit else n for n, hit in zip(node.versions, overwritten))


_CPP_TYPE_NAMES = {"float32": "float", "float64": "double", "int64": "long int", "bool": "bool"}


def _type_word(dtype: dtypes.DType) -> str:
    return {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}[dtype.name]


# ------------------------------------------------------------------- dispatch


def _init(t: Tensor, array: np.ndarray, dtype: dtypes.DType) -> None:
    t._data = array
    t._dtype = dtype
    t._requires_grad = False
    t._grad = None
    t._grad_fn = None
    t._version_counter = VersionCounter()
    t._accumulator = None
    t._retains_grad = False
    t._name = None
    t._base = None  # the tensor this one is a view of (squeeze, permute …)


def _make(array: np.ndarray, dtype: dtypes.DType) -> Tensor:
    t = Tensor.__new__(Tensor)
    _init(t, array, dtype)
    return t


def is_recorded(x: Tensor) -> bool:
    """Whether ops on ``x`` are recorded: it requires grad, or symgrad.compile is tracing it."""
    traced = _grad_state.traced
    return x.requires_grad or (traced is not None and id(x) in traced)


def _as_operand(x):
    """Tensors and Python numbers pass through; arrays and lists become tensors."""
    if type(x) is Tensor or isinstance(x, _SCALARS):
        return x
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.generic):
        return x.item()
    array = np.asarray(x)
    if array.dtype == object:
        raise TypeError(f"unsupported operand type: {type(x).__name__}")
    if isinstance(x, np.ndarray):
        return _make(array, dtypes.from_numpy_dtype(array.dtype))
    dtype = dtypes.get_default_dtype() if array.dtype.kind == "f" else dtypes.from_numpy_dtype(array.dtype)
    return _make(array.astype(dtype.numpy), dtype)


def _compare(op: Op, a, b):
    """A comparison operator: NotImplemented for what is not tensor-like (so ``t == None`` is False)."""
    if not isinstance(b, Tensor | bool | int | float | np.generic | np.ndarray | list | tuple):
        return NotImplemented
    return apply(op, (a, _as_operand(b)))


def _binary(op: Op, a, b, alpha=1) -> Tensor:
    return apply(op, (_as_operand(a), _as_operand(b)), () if alpha == 1 else (alpha,))


def _edge(x: Tensor):
    """The graph edge for a tensor operand: its grad_fn, its AccumulateGrad, or None."""
    if x._grad_fn is not None:
        return x._grad_fn
    if x._requires_grad:
        acc = x._accumulator
        if acc is None:
            acc = x._accumulator = AccumulateGrad(x)
        return acc
    return None


def apply(op: Op, operands: tuple, attrs: tuple = ()) -> Tensor:
    """Run ``op`` eagerly on ``operands`` (tensors and Python numbers) and record it if needed.

    >>> import symgrad
    >>> from symgrad.ops.elementwise import EXP
    >>> apply(EXP, (symgrad.zeros(2),))
    tensor([1., 1.])
    """
    # the eager hot path: plain loops, no generators, one pass over the operands
    shape, dtype = op.infer(operands, attrs)
    values = []
    recorded = False
    for x in operands:
        if type(x) is Tensor:
            values.append(x._data)
            if x._grad_fn is not None or x._requires_grad:
                recorded = True
        else:
            values.append(x)
    if not recorded and _grad_state.traced is not None:
        recorded = any(type(x) is Tensor and id(x) in _grad_state.traced for x in operands)
    out = op.forward(values, attrs, dtype, shape)
    result = _make(out, dtype)
    if op.view:
        base = operands[0]
        result._version_counter = base._version_counter
        result._base = base if base._base is None else base._base
    # integer results carry no gradient; symgrad.compile still records them (masks, counts computed from
    # integer arguments are part of the program it compiles)
    if recorded and _grad_state.enabled and (dtype.is_floating_point or _grad_state.traced is not None):
        edges, counters = [], []
        for x in operands:
            if type(x) is Tensor:
                edges.append(_edge(x))
                counters.append(x._version_counter)
            else:
                edges.append(None)
                counters.append(None)
        result._grad_fn = Node(op, attrs, tuple(edges), tuple(values), tuple(counters), out,
                               result._version_counter)
    return result
