"""The storage contract every backend implements.

A backend stores opaque, immutable-by-convention objects under names.  A name
is a non-empty string of path segments separated by ``/`` using only
``[A-Za-z0-9._-]`` in each segment (e.g. ``config``, ``data/3f/3fa9...``).
Backends never interpret object contents; everything the repository stores is
already encrypted, except the small plaintext ``config``.

The full contract, written so others can implement it, is in
``docs/spec/storage.md``.  Summary, method by method:

* ``get(name)`` returns the whole object, or raises ``ObjectNotFound``.
* ``get_range(name, offset, length)`` returns ``length`` bytes from ``offset``;
  fewer only if the object ends first; ``ObjectNotFound`` if absent.
* ``put(name, data)`` creates or replaces the object atomically: a reader sees
  the old whole object or the new whole object, never a part.  When it
  returns, the object is durable.  Idempotent.
* ``put_if_absent(name, data)`` creates the object only if no object of that
  name exists, atomically with respect to concurrent writers; returns ``True``
  if this call created it, ``False`` if it already existed (contents untouched).
* ``list(prefix)`` yields the names starting with ``prefix`` (any order).
* ``delete(name)`` removes the object; deleting an absent object is not an
  error (idempotent).
* ``stat(name)`` returns ``ObjectInfo`` or raises ``ObjectNotFound``.

Errors: every failure is a ``StorageError``; ``TransientStorageError`` means the
same call may succeed later (timeouts, 5xx, throttling) and is what the retry
wrapper retries; everything else is permanent.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


def check_name(name: str) -> str:
    """Raise ``ValueError`` unless ``name`` is a valid object name; return it."""
    if not isinstance(name, str) or not name:
        raise ValueError("object name must be a non-empty string")
    for seg in name.split("/"):
        if not _SEGMENT.match(seg) or seg in {".", ".."}:
            raise ValueError(f"invalid object name: {name!r}")
    return name


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a valid object name (backends skip foreign files when listing)."""
    try:
        check_name(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ObjectInfo:
    """What ``stat`` knows about a stored object."""

    name: str
    size: int


class Backend(ABC):
    """A place that stores named objects.  See the module docstring for the contract."""

    #: A human-readable location, used in error messages (never contains credentials).
    location: str = "?"

    @abstractmethod
    def get(self, name: str) -> bytes:
        """Return the whole object; raise ``ObjectNotFound`` if absent."""

    @abstractmethod
    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset`` (fewer only at the end)."""

    @abstractmethod
    def put(self, name: str, data: bytes) -> None:
        """Create or atomically replace the object; durable on return."""

    @abstractmethod
    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Create the object unless it exists; ``True`` if this call created it."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield every name that starts with ``prefix``."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the object; absent is not an error."""

    @abstractmethod
    def stat(self, name: str) -> ObjectInfo:
        """Return the object's size; raise ``ObjectNotFound`` if absent."""

    def close(self) -> None:
        """Release resources (connections, subprocesses).  Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"
