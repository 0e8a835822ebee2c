"""``torch.nn.functional``-compatible functions, generated from the op table (``Api.nn`` names)."""

from __future__ import annotations

from ..functional import public_function
from ..ops.registry import REGISTRY

__all__: list[str] = []


def _publish() -> None:
    for op in list(REGISTRY.values()):
        if op.api is None:
            continue
        for name in op.api.nn:
            globals()[name] = public_function(op, op.api.signature)
            __all__.append(name)


_publish()
