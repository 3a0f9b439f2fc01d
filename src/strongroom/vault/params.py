"""Argon2id key-stretching parameters of a record: their bounds, shared by vault and client.

The vault keeps a record's parameters in the sealed record (spec §2.2) and
hands them out before a guess is spent; the client refuses parameters outside
its own bounds (:class:`KsfBounds`) before it computes anything, so neither a
storage provider (which never supplies them) nor a broken vault can make a
device stretch with weak or phone-exhausting parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NAMES = ("memory_kib", "iterations", "parallelism")
#: What anyone may store or accept at all (inclusive): RFC 9106's range where it is
#: smaller, 1 GiB of memory (the most a phone can spare for a moment), 64 passes, 16 lanes.
HARD_BOUNDS = {"memory_kib": (8, 1 << 20), "iterations": (1, 64), "parallelism": (1, 16)}
#: The parameters new records get unless the caller chooses others (RFC 9106 §4's
#: second recommendation, with 64 MiB).
DEFAULT_KSF = {"memory_kib": 65536, "iterations": 3, "parallelism": 1}


def check_ksf(doc: Any, bounds: Mapping[str, tuple[int, int]] = HARD_BOUNDS) -> dict[str, int]:
    """``doc`` as exactly the three integer parameters within ``bounds``; ValueError otherwise."""
    if not isinstance(doc, Mapping) or set(doc) != set(NAMES):
        raise ValueError("key-stretching parameters must be exactly " + ", ".join(NAMES))
    out = {}
    for name in NAMES:
        value, (lo, hi) = doc[name], bounds[name]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"{name} must be an integer from {lo} to {hi}")
        out[name] = value
    if out["memory_kib"] < 8 * out["parallelism"]:
        raise ValueError("memory_kib must be at least 8 x parallelism")
    return out


def encode_ksf(ksf: Mapping[str, int]) -> bytes:
    """The canonical bytes of the parameters inside a sealed record (sorted-key JSON)."""
    return json.dumps({n: int(ksf[n]) for n in NAMES}, sort_keys=True,
                      separators=(",", ":")).encode()


@dataclass(frozen=True)
class KsfBounds:
    """What a client accepts before it spends a guess: at least ``minimum`` in every
    parameter (never weaker than :data:`DEFAULT_KSF` unless the caller lowers it), at
    most ``maximum`` (what the device can afford)."""

    minimum: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_KSF))
    maximum: Mapping[str, int] = field(
        default_factory=lambda: {n: HARD_BOUNDS[n][1] for n in NAMES})

    def check(self, doc: Any) -> dict[str, int]:
        """``doc`` if within these bounds (and the hard ones); ValueError otherwise."""
        bounds = {n: (max(HARD_BOUNDS[n][0], self.minimum[n]), min(HARD_BOUNDS[n][1],
                                                                    self.maximum[n]))
                  for n in NAMES}
        return check_ksf(doc, bounds)


__all__ = ["DEFAULT_KSF", "HARD_BOUNDS", "NAMES", "KsfBounds", "check_ksf", "encode_ksf"]
