"""The OPAQUE key stretching gives RFC 9106 bytes and lets other threads run.

An app runs a password login from its asyncio event loop through a worker
thread (``strongroom.aio``); the loop stays responsive only if Argon2id does
not hold the GIL.  libsodium's ``crypto_pwhash`` (through pysodium's ctypes
call) releases it; pyca/cryptography's Argon2id does not, so the KSF uses the
former for one lane.  The bytes must not change: the vault's records were
registered with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from tests.support.heartbeat import thread_stall

from strongroom.opaque import Argon2idKSF

PARAMS = [(8, 1), (64, 1), (256, 2), (1024, 3), (19456, 2)]
MESSAGES = [b"", b"x", bytes(range(64)), b"correct horse battery staple" * 9]


@pytest.mark.parametrize(("memory_kib", "iterations"), PARAMS)
def test_libsodium_stretch_equals_pyca(memory_kib: int, iterations: int) -> None:
    ksf = Argon2idKSF(memory_kib=memory_kib, iterations=iterations, parallelism=1)
    for msg in MESSAGES:
        pyca = Argon2id(salt=bytes(16), length=64, iterations=iterations, lanes=1,
                        memory_cost=memory_kib).derive(msg)
        assert ksf.stretch(msg) == pyca


def test_several_lanes_still_use_pyca() -> None:
    ksf = Argon2idKSF(memory_kib=256, iterations=1, parallelism=2)
    pyca = Argon2id(salt=bytes(16), length=64, iterations=1, lanes=2,
                    memory_cost=256).derive(b"pw")
    assert ksf.stretch(b"pw") == pyca


def _longest_stall(work: Callable[[], object]) -> float:
    return thread_stall(work)[1]


def test_default_stretch_does_not_hold_the_gil() -> None:
    # The default parameters (64 MiB, 3 passes): ~150 ms of work.  A held GIL
    # would stall the heartbeat for all of it; the best of three runs filters
    # out scheduler noise on a loaded machine (a held GIL is never noise).
    ksf = Argon2idKSF()
    started = time.perf_counter()
    ksf.stretch(b"pw")
    work = time.perf_counter() - started
    stall = min(_longest_stall(lambda: ksf.stretch(b"password")) for _ in range(3))
    assert stall < 0.05, f"stretching ({work * 1000:.0f} ms) stalled other threads {stall * 1000:.0f} ms"


def test_the_stall_measurement_sees_a_held_gil() -> None:
    # The same measurement against pyca's Argon2id, which holds the GIL: it must
    # report the stall, or the test above could not fail.
    ksf = Argon2idKSF(memory_kib=65536, iterations=3, parallelism=1)
    stall = min(_longest_stall(lambda: ksf._stretch_pyca(b"password")) for _ in range(2))
    assert stall > 0.05
