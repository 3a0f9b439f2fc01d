"""How hard to drive a backend: how many requests the engine keeps in flight.

A local disk is busy with two or three writers; a network store hides its
per-request latency only with several requests in flight.  A backend class
states its preference as the class attribute ``preferred_concurrency``;
wrappers (retry, read-ahead, limit) expose the wrapped backend's through
``inner``, and a ``LimitBackend`` caps it at its own limit.

This is a hint for the engine, not part of the storage contract (``base.py``):
a backend that states nothing gets the local default.
"""

from __future__ import annotations

from .base import Backend

#: For backends that state nothing (local folders, memory).
DEFAULT_CONCURRENCY = 3


def _chain(backend: Backend) -> list[Backend]:
    """The backend and every backend it wraps, outermost first."""
    out = [backend]
    while isinstance(getattr(out[-1], "inner", None), Backend) and len(out) < 16:
        out.append(out[-1].inner)  # type: ignore[attr-defined]
    return out


def preferred_concurrency(backend: Backend) -> int:
    """How many uploads or downloads the engine should keep in flight against ``backend``."""
    chain = _chain(backend)
    value = DEFAULT_CONCURRENCY
    for b in reversed(chain):  # the innermost backend that states one decides
        stated = getattr(type(b), "preferred_concurrency", None)
        if isinstance(stated, int) and stated >= 1:
            value = stated
            break
    for b in chain:
        cap = getattr(b, "max_concurrent", None)
        if isinstance(cap, int) and cap >= 1:
            value = min(value, cap)
    return value


__all__ = ["DEFAULT_CONCURRENCY", "preferred_concurrency"]
