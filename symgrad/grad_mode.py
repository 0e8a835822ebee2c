"""Grad modes: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (context managers and decorators)."""

from __future__ import annotations

import functools
import threading

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]


class _State(threading.local):
    enabled = True
    # while symgrad.compile traces: ids of argument tensors whose ops are recorded although they
    # do not require grad (the compiled program recomputes everything from its arguments)
    traced: frozenset | None = None


_state = _State()


def is_grad_enabled() -> bool:
    """Whether operations are being recorded for autograd.

    >>> import symgrad
    >>> symgrad.is_grad_enabled()
    True
    """
    return _state.enabled


class _GradMode:
    """Base: sets the mode on enter, restores the previous one on exit; also a decorator.

    ``no_grad`` and ``enable_grad`` also decorate without parentheses
    (``@symgrad.no_grad``), as in PyTorch.
    """

    _mode: bool

    def __new__(cls, orig_func=None):
        if cls is not set_grad_enabled and orig_func is not None:
            if not callable(orig_func):
                raise TypeError(f"{cls.__name__}() takes no arguments")
            return cls()(orig_func)
        return super().__new__(cls)

    def __enter__(self):
        self._previous = _state.enabled
        _state.enabled = self._mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self._previous
        return False

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            previous = _state.enabled
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = previous
        return wrapper


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Disable recording: results of operations do not require grad.

    >>> import symgrad
    >>> w = symgrad.ones(2, requires_grad=True)
    >>> with symgrad.no_grad():
    ...     (w * 2).requires_grad
    False
    """

    _mode = False


class enable_grad(_GradMode):  # noqa: N801
    """Re-enable recording inside a ``no_grad`` block.

    >>> import symgrad
    >>> with symgrad.no_grad(), symgrad.enable_grad():
    ...     (symgrad.ones(2, requires_grad=True) * 2).requires_grad
    True
    """

    _mode = True


class set_grad_enabled(_GradMode):  # noqa: N801
    """Set recording on or off; takes effect immediately and also works as a context manager.

    >>> import symgrad
    >>> with symgrad.set_grad_enabled(False):
    ...     symgrad.is_grad_enabled()
    False
    """

    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._previous = _state.enabled
        _state.enabled = self._mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.enabled = self._previous
        return False

    def __call__(self, fn):
        _state.enabled = self._previous  # used as a decorator: only calls of fn change the mode
        return super().__call__(fn)
