"""The names the vault uses from :mod:`strongroom.opaque`, in one place.

The OPAQUE package re-exports its API from ``__init__``; while it was being
written the names lived in submodules, so this looks in both.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("strongroom.opaque", "strongroom.opaque.server", "strongroom.opaque.client",
            "strongroom.opaque.config", "strongroom.opaque.messages")


def __getattr__(name: str) -> Any:
    for mod in _MODULES:
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        if hasattr(m, name):
            return getattr(m, name)
    raise AttributeError(f"strongroom.opaque has no {name}")
