"""The retry wrapper: backoff with full jitter on transient errors only, and the
parallel helpers.  A scripted backend fails on cue; time and randomness are
parameters, so the delays are asserted exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.errors import ObjectNotFound, PermanentStorageError, TransientStorageError
from strongroom.storage.base import Backend, ObjectInfo
from strongroom.storage.limit import LimitBackend, parallel_map
from strongroom.storage.memory import MemoryBackend
from strongroom.storage.retry import RetryBackend


class Flaky(Backend):
    """A memory backend that raises the queued errors first, and can drop answers."""

    def __init__(self) -> None:
        self.inner = MemoryBackend()
        self.location = "flaky:test"
        self.errors: list[Exception] = []
        self.calls = 0
        self.lose_answer_after_put = 0  # store the object, then fail as if the reply was lost

    def _next(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)

    def get(self, name: str) -> bytes:
        self._next()
        return self.inner.get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self._next()
        return self.inner.get_range(name, offset, length)

    def put(self, name: str, data: bytes) -> None:
        self._next()
        self.inner.put(name, data)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        self._next()
        created = self.inner.put_if_absent(name, data)
        if self.lose_answer_after_put:
            self.lose_answer_after_put -= 1
            raise TransientStorageError("connection reset after the write")
        return created

    def list(self, prefix: str = "") -> Iterator[str]:
        self._next()
        return self.inner.list(prefix)

    def delete(self, name: str) -> None:
        self._next()
        self.inner.delete(name)

    def stat(self, name: str) -> ObjectInfo:
        self._next()
        return self.inner.stat(name)


def _retrying(flaky: Flaky, sleeps: list[float], attempts: int = 4) -> RetryBackend:
    return RetryBackend(flaky, attempts=attempts, base_delay=1.0, max_delay=3.0,
                        sleep=sleeps.append, rng=lambda: 0.5)


def test_transient_errors_are_retried_with_capped_jittered_backoff() -> None:
    flaky, sleeps = Flaky(), []
    flaky.inner.put("x", b"1")
    flaky.errors = [TransientStorageError("503")] * 3
    assert _retrying(flaky, sleeps).get("x") == b"1"
    assert sleeps == [0.5, 1.0, 1.5]  # 0.5 * min(3, 1, 2, 4)
    assert flaky.calls == 4


def test_gives_up_after_attempts_naming_backend_and_object() -> None:
    flaky, sleeps = Flaky(), []
    flaky.errors = [TransientStorageError("timeout")] * 10
    with pytest.raises(TransientStorageError, match=r"^flaky:test: cannot put data/x: timeout "
                                                    r"\(gave up after 4 attempts\)$"):
        _retrying(flaky, sleeps).put("data/x", b"1")
    assert flaky.calls == 4 and len(sleeps) == 3
    assert list(flaky.inner.list()) == []


@pytest.mark.parametrize("error", [PermanentStorageError("flaky:test: cannot put x: 403"),
                                   ObjectNotFound("object not found: x")])
def test_permanent_errors_fail_fast(error: Exception) -> None:
    flaky, sleeps = Flaky(), []
    flaky.errors = [error]
    with pytest.raises(type(error)) as info:
        _retrying(flaky, sleeps).get("x")
    assert info.value is error
    assert flaky.calls == 1 and sleeps == []


def test_put_if_absent_answer_lost_after_create_still_reports_created() -> None:
    flaky, sleeps = Flaky(), []
    flaky.lose_answer_after_put = 1
    assert _retrying(flaky, sleeps).put_if_absent("snapshots/s", b"mine") is True
    assert flaky.inner.get("snapshots/s") == b"mine"


def test_put_if_absent_retry_does_not_claim_someone_elses_object() -> None:
    flaky, sleeps = Flaky(), []
    flaky.inner.put("snapshots/s", b"theirs")
    flaky.errors = [TransientStorageError("503")]
    assert _retrying(flaky, sleeps).put_if_absent("snapshots/s", b"mine") is False
    assert flaky.inner.get("snapshots/s") == b"theirs"


def test_list_is_retried_whole() -> None:
    flaky, sleeps = Flaky(), []
    flaky.inner.put("a/1", b"")
    flaky.errors = [TransientStorageError("reset")]
    assert list(_retrying(flaky, sleeps).list("a/")) == ["a/1"]


def test_delay_grows_to_the_cap() -> None:
    r = RetryBackend(MemoryBackend(), base_delay=0.25, max_delay=2.0, rng=lambda: 1.0)
    assert [r.delay(n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    with pytest.raises(ValueError):
        RetryBackend(MemoryBackend(), attempts=0)


class Counting(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.peak = 0
        self.guard = threading.Lock()

    def put(self, name: str, data: bytes) -> None:
        with self.guard:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.01)  # hold the slot long enough for others to pile up
        super().put(name, data)
        with self.guard:
            self.now -= 1


def test_limit_backend_caps_concurrency() -> None:
    inner = Counting()
    limited = LimitBackend(inner, 2)
    parallel_map(lambda i: limited.put(f"x/{i}", b"1"), range(20), limit=8)
    assert inner.peak == 2
    assert len(list(limited.list("x/"))) == 20


def test_parallel_map_keeps_order_limit_and_first_error() -> None:
    inner = Counting()
    assert parallel_map(lambda i: i * i, range(10), limit=3) == [i * i for i in range(10)]
    parallel_map(lambda i: inner.put(f"y/{i}", b""), range(12), limit=3)
    assert inner.peak <= 3

    def boom(i: int) -> int:
        if i == 2:
            raise PermanentStorageError("cannot put y/2")
        return i

    with pytest.raises(PermanentStorageError, match="y/2"):
        parallel_map(boom, range(50), limit=2)
    with pytest.raises(ValueError):
        parallel_map(boom, [], limit=0)


def test_a_pause_ends_when_the_operation_is_cancelled() -> None:
    # The real wait (no sleep given): a long backoff ends within a fraction of a second
    # of cancel(), as Cancelled, and the failing call is not tried again.
    from strongroom.cancel import Cancel, active
    from strongroom.errors import Cancelled

    flaky = Flaky()
    flaky.errors = [TransientStorageError("503")] * 10
    retrying = RetryBackend(flaky, attempts=10, base_delay=30.0, max_delay=30.0,
                            rng=lambda: 1.0)
    token = Cancel()
    timer = threading.Timer(0.1, token.cancel)
    timer.start()
    started = time.monotonic()
    with active(token), pytest.raises(Cancelled):
        retrying.get("x")
    stopped = time.monotonic() - started
    timer.join()
    assert flaky.calls == 1 and stopped < 2.0  # not 30 s: the backoff was cut short
    # Outside an operation (and with a fake sleep) the pause is a plain wait.
    sleeps: list[float] = []
    flaky.errors = [TransientStorageError("503")]
    flaky.inner.put("x", b"1")
    assert _retrying(flaky, sleeps).get("x") == b"1" and sleeps == [0.5]


class FailingPacks(MemoryBackend):
    """Every pack upload fails as a transient error; everything else works."""

    def __init__(self) -> None:
        super().__init__()
        self.pack_puts = 0

    def put(self, name: str, data: bytes) -> None:
        if name.startswith("data/"):
            self.pack_puts += 1
            raise TransientStorageError("503 slow down")
        super().put(name, data)


def test_a_backup_waiting_on_a_failing_store_stops_when_cancelled(tmp_path: Path) -> None:
    # End to end: the pack upload runs on a worker thread of the packer's pool and keeps
    # failing; its 30 s backoff there ends with cancel() from another thread.
    import os

    import strongroom
    from strongroom.errors import Cancelled

    src = tmp_path / "src"
    src.mkdir()
    (src / "photo.jpg").write_bytes(os.urandom(6 << 20))
    store = FailingPacks()
    key = strongroom.BackupKey.generate()
    strongroom.Repository.create(store, key).close()
    repo = strongroom.Repository.open(
        RetryBackend(store, attempts=10, base_delay=30.0, max_delay=30.0, rng=lambda: 1.0),
        key)
    token = strongroom.Cancel()
    timer = threading.Timer(0.3, token.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        repo.backup([src], cancel=token)
    stopped = time.monotonic() - started
    timer.join()
    assert store.pack_puts >= 1  # it was waiting to retry an upload when cancelled
    assert stopped < 3.0  # not 30 s: the backoff was cut short
    assert repo.snapshots() == [] and repo.check().ok
    repo.close()
