"""Concurrency limits: a wrapper backend and a bounded parallel map.

``LimitBackend`` caps how many calls run against ``inner`` at once (providers
throttle or reset connections when a client opens too many).  ``parallel_map``
is what the engine uses to upload or download many objects at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from ..cancel import adopt, current
from .base import Backend, ObjectInfo

T = TypeVar("T")
R = TypeVar("R")


class LimitBackend(Backend):
    """At most ``max_concurrent`` calls into ``inner`` at any time."""

    def __init__(self, inner: Backend, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self.inner = inner
        self.location = inner.location
        self.max_concurrent = max_concurrent
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def get(self, name: str) -> bytes:
        with self._slots:
            return self.inner.get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        with self._slots:
            return self.inner.get_range(name, offset, length)

    def put(self, name: str, data: bytes) -> None:
        with self._slots:
            self.inner.put(name, data)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        with self._slots:
            return self.inner.put_if_absent(name, data)

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._slots:
            return iter(list(self.inner.list(prefix)))

    def delete(self, name: str) -> None:
        with self._slots:
            self.inner.delete(name)

    def stat(self, name: str) -> ObjectInfo:
        with self._slots:
            return self.inner.stat(name)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"<LimitBackend {self.max_concurrent} {self.inner!r}>"


def parallel_map(fn: Callable[[T], R], items: Iterable[T], limit: int) -> list[R]:
    """Apply ``fn`` to every item with at most ``limit`` running at once; results in order.

    The first exception is raised after the calls already running finish;
    items not yet started are not started.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    todo = list(items)
    if limit == 1 or len(todo) <= 1:
        return [fn(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(limit, len(todo)), initializer=adopt,
                            initargs=(current(),)) as pool:
        futures: list[Future[R]] = [pool.submit(fn, item) for item in todo]
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for f in futures:
                f.cancel()
            raise failed.exception()  # type: ignore[misc]
        return [f.result() for f in futures]


__all__ = ["LimitBackend", "parallel_map"]
