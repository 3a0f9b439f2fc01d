"""Repository locks: shared for backup/restore/check, exclusive for forget/prune.

A lock is a sealed object ``locks/<32 hex random>`` (label ``strongroom/v1/lock``)
holding JSON ``{exclusive, time, expires, hostname, pid}``.  To take a lock, a
client writes its own lock object first and then lists ``locks/``: an
exclusive lock conflicts with any other live lock, a shared lock with any live
exclusive one.  On conflict the client deletes its own lock and raises
``RepositoryLocked``; if two clients race, both see each other and both back
off, so the conflict is never missed.  A lock whose ``expires`` has passed,
or that was taken on this host by a process that no longer exists (its holder
died), is ignored, and deleted by the next exclusive locker.
Holders refresh their lock (a new object, then the old one deleted) well
before it expires.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..crypto import labels
from ..crypto.keys import BackupKey
from ..errors import DataDamaged, ObjectNotFound, RepositoryLocked
from ..storage.base import Backend
from .sealed import named_objects, open_object, seal_object

LOCK_MAGIC = b"SRL1"
LOCK_PREFIX = "locks/"
LOCK_TTL = 30 * 60.0
REFRESH_AFTER = 5 * 60.0


class Lock:
    """A held lock; :meth:`refresh` it periodically, :meth:`release` at the end."""

    def __init__(self, backend: Backend, key: BackupKey, exclusive: bool,
                 clock: Callable[[], float], rng: Callable[[int], bytes]) -> None:
        self._backend, self._key, self._clock, self._rng = backend, key, clock, rng
        self.exclusive = exclusive
        self.name = ""
        self.taken_at = 0.0

    def _write(self) -> str:
        now = self._clock()
        name = LOCK_PREFIX + self._rng(16).hex()
        doc = {"exclusive": self.exclusive, "time": now, "expires": now + LOCK_TTL,
               "hostname": socket.gethostname(), "pid": os.getpid()}
        data = seal_object(self._key, labels.LOCK, LOCK_MAGIC, name,
                           json.dumps(doc).encode(), self._rng)
        self._backend.put_if_absent(name, data)
        self.taken_at = now
        return name

    def acquire(self) -> Lock:
        """Take the lock or raise ``RepositoryLocked`` (after removing our attempt)."""
        self.name = self._write()
        now = self._clock()
        for other in named_objects(self._backend.list(LOCK_PREFIX), LOCK_PREFIX):
            if other == self.name:
                continue
            doc = self._read(other)
            if doc is None or doc.expires < now or _holder_is_dead(doc):
                if self.exclusive:  # stale: its holder died without releasing it
                    self._backend.delete(other)
                continue
            if self.exclusive or doc.exclusive:
                self.release()
                kind = "an exclusive" if doc.exclusive else "a"
                raise RepositoryLocked(
                    f"the repository has {kind} lock held by another operation")
        return self

    def _read(self, name: str) -> _LockInfo | None:
        try:
            data = self._backend.get(name)
            doc = json.loads(open_object(self._key, labels.LOCK, LOCK_MAGIC, name, data))
            return _LockInfo(bool(doc["exclusive"]), float(doc["expires"]),
                             str(doc["hostname"]), int(doc["pid"]))
        except ObjectNotFound:
            return None  # released meanwhile
        except (DataDamaged, ValueError, KeyError, TypeError):
            # Unreadable lock: written under another key or damaged; treat as stale.
            return None

    def refresh_if_due(self) -> None:
        """Rewrite the lock with a new expiry when it is older than REFRESH_AFTER."""
        if self.name and self._clock() - self.taken_at >= REFRESH_AFTER:
            old = self.name
            self.name = self._write()
            self._backend.delete(old)

    def release(self) -> None:
        """Delete the lock object (idempotent)."""
        if self.name:
            self._backend.delete(self.name)
            self.name = ""


@dataclass(frozen=True)
class _LockInfo:
    exclusive: bool
    expires: float
    hostname: str
    pid: int


def _holder_is_dead(doc: _LockInfo) -> bool:
    """True if the lock was taken on this host by a process that no longer exists.

    A ``kill -9`` of a prune would otherwise block every backup until the lock
    expires (30 minutes).  Only locks from this very hostname are judged, and a
    live process that reused the pid keeps the lock (the safe direction).
    """
    if doc.hostname != socket.gethostname():
        return False
    pid = doc.pid
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False
