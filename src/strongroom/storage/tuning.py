"""How hard to drive a backend: parallel requests and pack size it prefers.

A local disk is busy with two or three writers; a network store hides its
per-request latency only with several requests in flight, and charges a fixed
cost per request (signing, a round trip, the server's metadata write), so it
prefers fewer, larger objects.  A backend class states its preference as class
attributes ``preferred_concurrency`` and ``preferred_pack_size``; wrappers
(retry, read-ahead, limit) expose theirs through ``inner``, and a
``LimitBackend`` caps the concurrency at its own limit.

These are hints for the engine, not part of the storage contract: a backend
without them gets the local defaults.
"""

from __future__ import annotations

from .base import Backend

MiB = 1024 * 1024

#: Defaults for backends that state nothing (local folders, memory).
DEFAULT_CONCURRENCY = 3
#: Network backends (S3, rclone): restic uses 5 connections to S3 by default.
NETWORK_CONCURRENCY = 6
NETWORK_PACK_SIZE = 16 * MiB


def _chain(backend: Backend) -> list[Backend]:
    """The backend and every backend it wraps, outermost first."""
    out = [backend]
    while isinstance(getattr(out[-1], "inner", None), Backend) and len(out) < 16:
        out.append(out[-1].inner)  # type: ignore[attr-defined]
    return out


def preferred_concurrency(backend: Backend) -> int:
    """How many requests the engine should keep in flight against ``backend``."""
    chain = _chain(backend)
    value = DEFAULT_CONCURRENCY
    for b in reversed(chain):  # the innermost real backend states it
        stated = getattr(type(b), "preferred_concurrency", None)
        if isinstance(stated, int) and stated >= 1:
            value = stated
            break
    for b in chain:
        cap = getattr(b, "max_concurrent", None)
        if isinstance(cap, int) and cap >= 1:
            value = min(value, cap)
    return value


def preferred_pack_size(backend: Backend) -> int | None:
    """The pack size a new repository on ``backend`` should use (None: the format default)."""
    for b in reversed(_chain(backend)):
        stated = getattr(type(b), "preferred_pack_size", None)
        if isinstance(stated, int) and stated > 0:
            return stated
    return None


__all__ = ["preferred_concurrency", "preferred_pack_size"]
