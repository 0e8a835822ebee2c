"""``backward``: validate like PyTorch, run the compiled gradient, then accumulate into ``.grad``.

Everything that can fail (arguments, shapes, freed graphs, in-place
modifications) fails before the first ``.grad`` changes.
"""

from __future__ import annotations

import sys

import numpy as np

from . import tensor as _tensor_module
from .autograd import engine
from .autograd.graph import AccumulateGrad, Node
from .dtypes import from_numpy_dtype
from .tensor import Tensor, _as_operand, _edge, _make

__all__ = ["backward", "backward_source", "grad"]


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
        raise RuntimeError(f"got {len(tensors)} tensors and {len(grad_tensors)} gradients")
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
        _backward_create_graph(tensors, grad_tensors, retain_graph, inputs)
        return
    tensors, seeds = _roots(tensors, grad_tensors)
    if inputs is not None and not _as_list(inputs):
        raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    owners = {} if inputs is None else {_target(t): t for t in _as_list(inputs)}  # non-leaf inputs get .grad too
    targets = None if inputs is None else list(owners)
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
    _accumulate_all(results, owners)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool | None = None, is_grads_batched: bool = False,
         materialize_grads: bool = False) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, returned instead of accumulated.

    As ``torch.autograd.grad``; with ``create_graph=True`` the results are
    differentiable again (second and third derivatives go through the same
    symbolic pipeline).

    >>> import symgrad
    >>> x = symgrad.tensor(2.0, requires_grad=True)
    >>> (dx,) = symgrad.autograd.grad(x ** 3, x, create_graph=True)
    >>> dx
    tensor(12., grad_fn=<CompiledGradBackward0>)
    >>> symgrad.autograd.grad(dx, x)
    (tensor(12.),)
    """
    if is_grads_batched:
        raise NotImplementedError("is_grads_batched=True is not supported")
    if materialize_grads:
        if allow_unused is False:
            raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, but "
                             "got: allow_unused=False.")
        allow_unused = True
    inputs = _as_list(inputs)
    if not inputs:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    targets = [_target(t) for t in inputs]
    retain_graph = create_graph if retain_graph is None else retain_graph
    tensors, grad_tensors = _as_list(outputs), grad_outputs
    if grad_tensors is not None and not isinstance(grad_tensors, Tensor):
        grad_tensors = list(grad_tensors)
    if create_graph:
        results = _graph_gradients(tensors, grad_tensors, targets, retain_graph)
    else:
        roots, seeds = _roots(tensors, grad_tensors)
        results = [_make(g.astype(t.dtype.numpy, copy=False), t.dtype) if g is not None else None
                   for t, (_, g) in zip(inputs, _run(roots, seeds, targets, retain_graph))]
    out = []
    for i, (t, g) in enumerate(zip(inputs, results)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {i} appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired behavior.")
            if materialize_grads:
                g = _make(np.zeros_like(t._data), t.dtype)
                g._requires_grad = create_graph  # as PyTorch: differentiable zeros under create_graph
        out.append(g)
    return tuple(out)


def _run(roots: list[Tensor], seeds, targets, retain_graph) -> list:
    """Gradient arrays for ``targets`` (None where unreached), leaf roots included."""
    grads = {}
    node_roots, node_seeds = [], []
    for t, seed in zip(roots, seeds):
        if t._grad_fn is None:
            value = np.ones_like(t._data) if seed is None else seed.copy()
            acc = _accumulator(t)
            grads[acc] = value if acc not in grads else grads[acc] + value
        else:
            node_roots.append(t._grad_fn)
            node_seeds.append(seed)
    results = []
    if node_roots:
        results = engine.run_backward(node_roots, node_seeds, targets, retain_graph=bool(retain_graph),
                                      namer=_CallerNames(sys._getframe(2)))
    out = []
    for target, (_, g) in zip(targets, results or [(t, None) for t in targets]):
        extra = grads.get(target)
        if extra is not None:
            g = extra if g is None else g + extra
        out.append((target, g))
    return out


def _graph_gradients(tensors, grad_tensors, targets, retain_graph) -> list[Tensor | None]:
    """Gradients recorded as graph nodes (``create_graph=True``)."""
    roots, seeds = _roots(tensors, grad_tensors)
    seed_tensors = _seed_tensors(roots, grad_tensors)
    graph_roots = [(t._grad_fn, s, st) for t, s, st in zip(roots, seeds, seed_tensors) if t._grad_fn is not None]
    results: list[Tensor | None] = [None] * len(targets)
    if graph_roots:
        found = engine.run_backward_graph([r for r, _, _ in graph_roots], [s for _, s, _ in graph_roots], targets,
                                          bool(retain_graph), namer=_CallerNames(sys._getframe(2)))
        root_seeds = [st for _, _, st in graph_roots]
        for k, (target, value, op, uses) in enumerate(zip(targets, found.values, found.ops, found.uses)):
            if value is None:
                continue
            dtype = _tensor_of(target).dtype if type(target) is AccumulateGrad else from_numpy_dtype(value.dtype)
            value = value.astype(dtype.numpy, copy=False)
            if _has_history(found, uses, root_seeds):
                results[k] = _recorded(value, dtype, op, found.operands, root_seeds)
            else:
                results[k] = _make(value, dtype)
    for t, seed_tensor in zip(roots, seed_tensors):
        if t._grad_fn is None and t._accumulator in targets:
            # an output that is an input: its gradient is the seed itself (differentiable if the seed is)
            k = targets.index(t._accumulator)
            own = seed_tensor if seed_tensor is not None else _make(np.ones_like(t._data), t.dtype)
            results[k] = own if results[k] is None else results[k] + own
    return results


def _has_history(found, uses, seed_tensors) -> bool:
    """Whether a create_graph gradient gets a grad_fn, by PyTorch's rule as far as symbolic form allows.

    It does when it reads a seed that requires grad, or when the backward read a
    differentiable saved value and this gradient depends on a leaf (``x**2``: yes;
    ``3*x``: no — its gradient is the constant 3).
    """
    for k in uses:
        kind, payload, _ = found.operands[k]
        if kind == "seed" and seed_tensors[payload] is not None and seed_tensors[payload].requires_grad:
            return True
        if kind == "leaf" and found.differentiable:
            return True
    return False


def _seed_tensors(roots, grad_tensors) -> list:
    if grad_tensors is None:
        return [None] * len(roots)
    if isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    return [g if isinstance(g, Tensor) else None for g in grad_tensors]


def _recorded(value, dtype, op, operands, seed_tensors) -> Tensor:
    """A gradient tensor whose grad_fn reads the leaves, seeds and constants it depends on."""
    edges, values, counters = [], [], []
    for kind, payload, counter in operands:
        tensor = payload.variable if kind == "leaf" else seed_tensors[payload] if kind == "seed" else None
        if tensor is None:
            edges.append(None)
            values.append(payload if kind == "value" else np.asarray(payload))
            counters.append(counter)
        else:
            edges.append(_edge(tensor))
            values.append(tensor._data)
            counters.append(tensor._version_counter)
    result = _make(value, dtype)
    if any(e is not None for e in edges):
        result._grad_fn = Node(op, (), tuple(edges), tuple(values), tuple(counters), value, result._version_counter)
    return result


def _backward_create_graph(tensors, grad_tensors, retain_graph, inputs) -> None:
    """``backward(create_graph=True)``: ``.grad`` becomes a differentiable tensor."""
    tensors = _as_list(tensors)
    retain_graph = True if retain_graph is None else retain_graph
    if inputs is not None:
        targets = [_target(t) for t in _as_list(inputs)]
    else:
        targets = None
    roots, _ = _roots(tensors, grad_tensors)
    plan_targets = targets or engine.default_targets([t._grad_fn for t in roots if t._grad_fn is not None])
    if targets is None:  # outputs that are leaves receive their seed
        plan_targets += [_accumulator(t) for t in roots if t._grad_fn is None and _accumulator(t) not in plan_targets]
    grads = _graph_gradients(tensors, grad_tensors, plan_targets, retain_graph)
    updates = [(_tensor_of(t), g) for t, g in zip(plan_targets, grads) if g is not None]
    for tensor, g in updates:
        tensor._grad = g if tensor._grad is None else tensor._grad + g


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


def _accumulate_all(results, owners=None) -> None:
    """Add each gradient into its tensor's ``.grad`` (``owners`` maps non-leaf targets to their tensor)."""
    prepared = []
    for target, g in results:
        if type(target) is AccumulateGrad:
            tensor = target.variable
        else:
            tensor = owners.get(target) if owners else None
            tensor = _tensor_of(target) if tensor is None else tensor
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
        elif tensor._grad_fn is not None:  # a non-leaf's .grad is replaced, not updated, as in PyTorch
            tensor._grad = _make(tensor._grad._data + g, tensor.dtype)
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
