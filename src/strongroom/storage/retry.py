"""A wrapper backend that retries transient failures with exponential backoff.

Only ``TransientStorageError`` is retried (timeouts, connection resets, 5xx,
throttling); ``ObjectNotFound`` and ``PermanentStorageError`` pass through at
once, so a misconfigured bucket or a full disk fails fast.  Delays use "full
jitter": attempt ``n`` sleeps a uniform random time in
``[0, min(max_delay, base_delay * 2**(n-1))]``, which spreads out clients that
failed together.  ``sleep`` and ``rng`` are parameters so tests are exact.

A pause honours the current operation's cancellation token
(:func:`strongroom.cancel.pause`): a cancelled backup or restore stops
waiting at once and raises ``Cancelled`` instead of retrying.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..cancel import pause
from ..errors import ObjectNotFound, TransientStorageError
from .base import Backend, ObjectInfo, check_name

T = TypeVar("T")


class RetryBackend(Backend):
    """Retry ``inner``'s transient errors up to ``attempts`` calls in total."""

    def __init__(
        self,
        inner: Backend,
        *,
        attempts: int = 6,
        base_delay: float = 0.25,
        max_delay: float = 10.0,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.inner = inner
        self.location = inner.location
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rng = rng

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1-based), with full jitter."""
        cap = min(self.max_delay, self.base_delay * float(2 ** (attempt - 1)))
        return self._rng() * cap

    def _call(self, action: str, name: str, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except TransientStorageError as exc:
                if attempt == self.attempts:
                    text = str(exc)
                    if self.location not in text:  # name the backend and object once
                        text = f"{self.location}: cannot {action} {name}: {text}"
                    raise TransientStorageError(
                        f"{text} (gave up after {self.attempts} attempts)") from exc
                pause(self.delay(attempt), self._sleep)  # Cancelled ends the wait
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, name: str) -> bytes:
        return self._call("get", name, lambda: self.inner.get(name))

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self._call("get", name, lambda: self.inner.get_range(name, offset, length))

    def put(self, name: str, data: bytes) -> None:
        self._call("put", name, lambda: self.inner.put(name, data))

    def put_if_absent(self, name: str, data: bytes) -> bool:
        check_name(name)
        tried = [0]

        def attempt() -> bool:
            tried[0] += 1
            created = self.inner.put_if_absent(name, data)
            if created or tried[0] == 1:
                return created
            # An earlier attempt may have created the object and then lost the
            # answer (connection reset after the server committed).  If what is
            # stored is byte-for-byte our data, that earlier attempt was ours:
            # names that rely on put_if_absent carry a random part (spec).
            return self._stored_equals(name, data)

        return self._call("put_if_absent", name, attempt)

    def _stored_equals(self, name: str, data: bytes) -> bool:
        try:
            return self.inner.get(name) == data
        except ObjectNotFound:
            return False

    def list(self, prefix: str = "") -> Iterator[str]:
        # A listing is retried whole: a half-consumed iterator cannot resume.
        return iter(self._call("list", prefix or "/", lambda: list(self.inner.list(prefix))))

    def delete(self, name: str) -> None:
        self._call("delete", name, lambda: self.inner.delete(name))

    def stat(self, name: str) -> ObjectInfo:
        return self._call("stat", name, lambda: self.inner.stat(name))

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"<RetryBackend {self.inner!r}>"


__all__ = ["RetryBackend"]
