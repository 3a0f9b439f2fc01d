"""strongroom.aio: the event loop keeps running during backup, restore and a
password login, task cancellation cancels the operation, statuses reach the loop.

The loop's responsiveness is measured with a heartbeat task (sleep 5 ms, note
how late it wakes; ``tests/support/heartbeat.py``), and the lateness is split by
cause, because on a shared machine the operating system alone makes a heartbeat
late: CI runners, or five engineers' test runs on two cores (load average 8-26
while this was measured).  The loop's thread then waits on a run queue for a
CPU that *other processes* hold; ``/proc/<thread>/schedstat`` shows that wait.

What is asserted, for the best of up to five runs:

* ``ours`` < 50 ms: the lateness minus the part of the loop thread's run-queue
  wait that this process's own threads cannot explain (they used ``c`` CPU
  seconds during the beat, so they held all CPUs for at most ``c / ncpu``: that
  much of the wait stays counted).  A call on the loop, a worker holding the
  GIL, a worker preempted while holding it, our own threads crowding out the
  loop: all of that stays in.  What is taken out is only a CPU that other
  processes held, which no library can give back.
* on a quiet machine (other processes used under 0.25 of a core during a run)
  the raw lateness itself < 50 ms: nothing subtracted at all.

Two controls show the test can fail: a call that blocks the loop, and a
worker holding the GIL (pyca's Argon2id) are both measured as ``ours`` >= 50 ms.
The probe behind this (which calls hold the GIL; what the lag is made of) is
in ``docs/sdk.md`` §6.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from tests.support.heartbeat import LoopLag, loop_lag_parts

import strongroom
from strongroom import aio, opaque

LIMIT = 0.050
RUNS = 5
#: Cores other processes may use during a run for it to count as quiet.
QUIET = 0.25


def _lags(make: Callable[[], Awaitable[object]]) -> list[LoopLag]:
    """Up to RUNS measurements of ``make()``; stops at the first that passes."""

    async def runs() -> list[LoopLag]:
        out: list[LoopLag] = []
        for _ in range(RUNS):
            lag = await loop_lag_parts(make)
            out.append(lag)
            if lag.ours < LIMIT and (lag.others >= QUIET or lag.raw < LIMIT):
                break
        return out

    return asyncio.run(runs())


def _assert_responsive(what: str, lags: list[LoopLag]) -> None:
    best = min(lags, key=lambda lag: lag.ours)
    shown = ", ".join(f"{lag.raw * 1000:.0f}/{lag.ours * 1000:.0f} ms (others "
                      f"{lag.others:.2f} cores)" for lag in lags)
    assert best.ours < LIMIT, f"{what}: this process blocked the loop; raw/ours: {shown}"
    quiet = [lag for lag in lags if lag.others < QUIET]
    if quiet:
        assert min(lag.raw for lag in quiet) < LIMIT, (
            f"{what}: the loop was late on a quiet machine; raw/ours: {shown}")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("chats")
    (src / "msgstore.db").write_bytes(os.urandom(24 << 20))
    (src / "sparse.bin").write_bytes(bytes(8 << 20))
    media = src / "Media"
    media.mkdir()
    for i in range(300):
        (media / f"IMG-{i:04}.jpg").write_bytes(os.urandom(3000))
    return src


def test_backup_and_restore_never_block_the_loop(source: Path, tmp_path: Path) -> None:
    key = strongroom.BackupKey.generate()
    strongroom.Repository.create(strongroom.storage_local(tmp_path / "repo", create=True),
                                 key).close()

    async def backup() -> None:
        repo = await aio.open(str(tmp_path / "repo"), key)
        summary = await repo.backup([source])
        assert summary.files == 302

    _assert_responsive("backup", _lags(backup))

    outs = iter(range(RUNS))

    async def restore() -> None:
        repo = await aio.open(str(tmp_path / "repo"), key)
        out = tmp_path / f"out{next(outs)}"
        summary = await repo.restore("latest", out, strip=str(source))
        assert summary.files == 302 and (out / "msgstore.db").stat().st_size == 24 << 20

    _assert_responsive("restore", _lags(restore))


def test_password_login_never_blocks_the_loop() -> None:
    # The client's half of an OPAQUE registration and login with the default
    # KSF (Argon2id, 64 MiB, 3 passes), the server's half in-process: the
    # stretching is the part that could hold the GIL.
    setup = opaque.ServerSetup.generate()
    cfg = opaque.OpaqueConfig()
    request, reg = opaque.RegistrationClient.start(b"hunter2 but longer", config=cfg)
    response = opaque.RegistrationServer.respond(setup, request, b"acct", config=cfg)
    record, export = opaque.RegistrationClient.finish(reg, response, config=cfg)

    async def login() -> None:
        ke1, state = opaque.LoginClient.start(b"hunter2 but longer", config=cfg)
        ke2, _server = opaque.LoginServer.start(setup, record, ke1, b"acct", config=cfg)
        _ke3, _session, got = await aio.call(opaque.LoginClient.finish, state, ke2,
                                             config=cfg)
        assert got == export

    _assert_responsive("password login", _lags(login))


def test_the_lag_measurement_sees_a_blocked_loop() -> None:
    async def blocking() -> None:
        await asyncio.sleep(0.02)
        time.sleep(0.2)  # noqa: ASYNC251 - on the loop itself: what a missing to_thread does

    assert min(lag.ours for lag in _lags(blocking)) >= 0.15


def test_the_lag_measurement_sees_a_worker_holding_the_gil() -> None:
    # pyca's Argon2id holds the GIL for the whole stretch (0.15 s on an idle core):
    # what the key stretching did before it moved to libsodium.  The subtraction of
    # other processes' CPU time must not hide it.
    ksf = opaque.Argon2idKSF()

    async def stretch() -> None:
        await aio.call(ksf._stretch_pyca, b"hunter2 but longer")

    assert min(lag.ours for lag in _lags(stretch)) >= LIMIT


def test_cancelling_the_task_cancels_the_backup(source: Path, tmp_path: Path) -> None:
    key = strongroom.BackupKey.generate()
    location = str(tmp_path / "repo")

    async def run() -> float:
        repo = await aio.create(location, key)
        reading = asyncio.Event()

        def on_status(status: strongroom.Status) -> None:
            if status.phase == "backup":  # the scan is over, reading begins
                reading.set()

        task = asyncio.create_task(repo.backup([source], on_status=on_status))
        await reading.wait()
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stopped = time.monotonic() - started
        assert await repo.snapshots() == []
        assert (await repo.check()).ok
        summary = await repo.backup([source])  # the lock was released; the next run works
        assert summary.files == 302
        return stopped

    stopped = asyncio.run(run())
    assert stopped < 1.0


def test_statuses_arrive_on_the_loop_thread(source: Path, tmp_path: Path) -> None:
    import threading

    key = strongroom.BackupKey.generate()
    seen: list[strongroom.Status] = []
    threads: set[int] = set()

    def on_status(status: strongroom.Status) -> None:
        threads.add(threading.get_ident())
        seen.append(status)

    async def run() -> None:
        repo = await aio.create(strongroom.storage_memory(), key)
        await repo.backup([source], on_status=on_status)
        await asyncio.sleep(0)  # let the last posted status run

    asyncio.run(run())
    assert threads == {threading.get_ident()}
    phases = [s.phase for s in seen]
    assert phases[0] == "scan" and "backup" in phases
    final = [s for s in seen if s.phase == "backup" and s.finished][-1]
    assert final.files_total == 302 and final.total == (24 << 20) + (8 << 20) + 300 * 3000
    assert final.percent == 100.0 and final.eta == 0.0


def test_a_cancel_that_comes_too_late_returns_the_result() -> None:
    from strongroom import Cancel, Cancelled

    def finishes_anyway(*, cancel: Cancel) -> int:
        time.sleep(0.2)  # past its last check: committing
        return 42

    def stops(*, cancel: Cancel) -> int:
        cancel.wait(5)
        cancel.check()
        return 0

    async def run() -> None:
        late = asyncio.create_task(aio.call(finishes_anyway, cancel=Cancel()))
        await asyncio.sleep(0.05)
        late.cancel()
        assert await late == 42 and not late.cancelled()
        token = Cancel()
        stopped = asyncio.create_task(aio.call(stops, cancel=token))
        await asyncio.sleep(0.05)
        stopped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopped
        assert token.cancelled
        with pytest.raises(Cancelled):
            token.check()
        # A timeout around an operation that stops: TimeoutError, as asyncio promises.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await aio.call(stops, cancel=Cancel())

    asyncio.run(run())

