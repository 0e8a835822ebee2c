"""``backward``: validate like PyTorch, run the compiled gradient, then accumulate into ``.grad``.

Everything that can fail (arguments, shapes, freed graphs, in-place
modifications) fails before the first ``.grad`` changes.
"""

from __future__ import annotations

import sys

import numpy as np

from . import tensor as _tensor_module
from .autograd import engine
from .autograd.graph import AccumulateGrad
from .tensor import Tensor, _as_operand, _make

__all__ = ["backward", "backward_source"]


def _seed(output: Tensor, gradient, index: int):
    """The array that seeds ``output``'s adjoint, or None for an implicit 1."""
    if gradient is None:
        if output._data.size != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        if not output.dtype.is_floating_point:
            raise RuntimeError("grad can be implicitly created only for real scalar outputs")
        return None
    gradient = _as_operand(gradient)
    array = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient)
    if array.shape != output._data.shape:
        raise RuntimeError(f"Mismatch in shape: grad_output[{index}] has a shape of {_size(array.shape)} and "
                           f"output[{index}] has a shape of {_size(output._data.shape)}.")
    return array.astype(output.dtype.numpy, copy=False)


def _size(shape) -> str:
    return f"symgrad.Size([{', '.join(map(str, shape))}])"


def _roots(tensors, grad_tensors):
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    if len(grad_tensors) != len(tensors):
        raise RuntimeError("grad can be implicitly created only for scalar outputs" if not grad_tensors else
                           f"Mismatch in number of gradients: got {len(grad_tensors)} but expected "
                           f"{len(tensors)}")
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    return list(tensors), [_seed(t, g, i) for i, (t, g) in enumerate(zip(tensors, grad_tensors))]


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves (``torch.autograd.backward``).

    >>> import symgrad
    >>> w = symgrad.ones(2, requires_grad=True)
    >>> symgrad.autograd.backward([(w * 3).sum()]); w.grad
    tensor([3., 3.])
    """
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order gradients) is not supported yet")
    tensors, seeds = _roots(tensors, grad_tensors)
    targets = None if inputs is None else [_target(t) for t in _as_list(inputs)]
    node_roots, node_seeds, results = [], [], []
    for t, seed in zip(tensors, seeds):
        if t._grad_fn is None:  # backward on a leaf: its gradient is the seed itself
            if targets is None or t._accumulator in targets:
                results.append((_accumulator(t), np.ones_like(t._data) if seed is None else seed.copy()))
        else:
            node_roots.append(t._grad_fn)
            node_seeds.append(seed)
    if node_roots:
        results += engine.run_backward(node_roots, node_seeds, targets, retain_graph=bool(retain_graph),
                                       namer=_CallerNames(sys._getframe(1)))
    _accumulate_all(results)


_FACADE_FILES = {__file__, _tensor_module.__file__}


class _CallerNames:
    """Names arrays after the caller's variables that hold them; consulted only when compiling.

    Generated code then reads ``def backward(x, z, y)`` instead of positional
    placeholders.  Holds the calling frame and reads it only on first use (a
    cache hit costs nothing but this object).
    """

    __slots__ = ("_frame", "_table")

    def __init__(self, frame) -> None:
        self._frame, self._table = frame, None

    def __call__(self, value) -> str | None:
        if self._table is None:
            self._table = self._read_names()
        return self._table.get(id(value))

    def _read_names(self) -> dict[int, str]:
        frame = self._frame
        while frame is not None and frame.f_code.co_filename in _FACADE_FILES:
            frame = frame.f_back
        table: dict[int, str] = {}
        if frame is not None:
            for scope in (frame.f_globals, frame.f_locals):  # locals win
                for var, obj in list(scope.items()):
                    if isinstance(obj, Tensor) and not var.startswith("_"):
                        table[id(obj._data)] = var
        return table


def _tensor_backward(self: Tensor, gradient=None, retain_graph: bool | None = None, create_graph: bool = False,
                     inputs=None) -> None:
    """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

    >>> import symgrad
    >>> w = symgrad.ones(3, requires_grad=True)
    >>> (w * 2).sum().backward(); w.grad
    tensor([2., 2., 2.])
    """
    if (gradient is None and inputs is None and not create_graph and self._grad_fn is not None
            and self._data.size == 1 and self._dtype.is_floating_point):
        # the training-loop case, `loss.backward()`, without the general argument handling
        results = engine.run_backward([self._grad_fn], [None], None, bool(retain_graph),
                                      _CallerNames(sys._getframe(1)))
        _accumulate_all(results)
        return
    backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs)


_tensor_backward.__name__ = _tensor_backward.__qualname__ = "backward"
Tensor.backward = _tensor_backward


def _as_list(x):
    return [x] if isinstance(x, Tensor) else list(x)


def _accumulator(t: Tensor) -> AccumulateGrad:
    if t._accumulator is None:
        t._accumulator = AccumulateGrad(t)
    return t._accumulator


def _target(t: Tensor):
    if not t.requires_grad:
        raise RuntimeError("One of the differentiated Tensors does not require grad")
    return _accumulator(t) if t._grad_fn is None else t._grad_fn


def _tensor_of(target):
    if isinstance(target, AccumulateGrad):
        return target.variable
    return target.retained() if target.retained is not None else None


def _accumulate_all(results) -> None:
    """Add each gradient into its tensor's ``.grad`` (copying arrays the caller may still hold)."""
    prepared = []
    for target, g in results:
        tensor = target.variable if type(target) is AccumulateGrad else _tensor_of(target)
        if tensor is None or g is None:
            continue
        if g.dtype is not tensor._dtype.numpy:
            g = g.astype(tensor._dtype.numpy)
        if g.shape != tensor._data.shape:
            g = np.broadcast_to(g, tensor._data.shape)
        prepared.append((tensor, g))
    for tensor, g in prepared:
        if tensor._grad is None:
            tensor._grad = _make(g if g.flags.writeable else g.copy(), tensor.dtype)
        else:
            tensor._grad._data += g
            tensor._grad._version_counter.value += 1


def backward_source(tensor: Tensor, gradient=None) -> str:
    '''The generated NumPy source that ``tensor.backward(gradient)`` runs (compiled if new).

    >>> import symgrad
    >>> w = symgrad.ones(3, requires_grad=True)
    >>> print(symgrad.backward_source((w * w).sum()))
    import numpy as np
    <BLANKLINE>
    <BLANKLINE>
    def backward(w):
        """Gradients of w through MulBackward0 -> SumBackward0."""
        grad_w = 2*w
        return (grad_w,)
    <BLANKLINE>
    '''
    tensors, seeds = _roots([tensor], None if gradient is None else [gradient])
    if tensor._grad_fn is None:
        raise RuntimeError("backward_source() needs a tensor computed from leaves (it has no grad_fn)")
    return engine.plan_source([tensor._grad_fn], seeds, namer=_CallerNames(sys._getframe(1)))
