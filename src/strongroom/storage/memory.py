"""The in-memory backend: the reference implementation of the storage contract."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ..errors import ObjectNotFound
from .base import Backend, ObjectInfo, check_name


class MemoryBackend(Backend):
    """Objects in a dict, guarded by a lock.  For tests and as the reference."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.location = f"memory:{id(self):x}"

    def get(self, name: str) -> bytes:
        check_name(name)
        with self._lock:
            try:
                return self._objects[name]
            except KeyError:
                raise ObjectNotFound(f"object not found: {name}", object=name) from None

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        return self.get(name)[offset : offset + length]

    def put(self, name: str, data: bytes) -> None:
        check_name(name)
        with self._lock:
            self._objects[name] = bytes(data)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        check_name(name)
        with self._lock:
            if name in self._objects:
                return False
            self._objects[name] = bytes(data)
            return True

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            names = [n for n in self._objects if n.startswith(prefix)]
        return iter(names)

    def delete(self, name: str) -> None:
        check_name(name)
        with self._lock:
            self._objects.pop(name, None)

    def stat(self, name: str) -> ObjectInfo:
        return ObjectInfo(name, len(self.get(name)))
