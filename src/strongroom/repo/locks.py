"""Repository locks: shared for backup/restore/check, exclusive for forget/prune.

A lock is a sealed object ``locks/<32 hex random>`` (label ``strongroom/v1/lock``)
holding JSON ``{v, exclusive, instance, seq, hostname, boot, pid}``.  To take a
lock, a client writes its own lock object first and then lists ``locks/``: an
exclusive lock conflicts with any other live lock, a shared lock with any live
exclusive one.  On conflict the client deletes its own lock and raises
``RepositoryLocked``; if two clients race, both see each other and both back
off, so the conflict is never missed.

Liveness never relies on another machine's clock or pids (spec §9).  A holder
refreshes its lock — a new object, then the old one deleted — every
``REFRESH_EVERY`` seconds, from a background thread, so also while one long
file is read.  An observer judges a lock stale only when it has itself seen the
*same* lock object present for ``STALE_AFTER`` seconds of its own monotonic
clock (no refresh in that time), or when the lock was taken during this very
boot of this machine (same kernel boot id) by a process that no longer exists.
What an observer has seen is remembered per boot in
:class:`LockObservations`, so separate runs on one device add up.
A holder whose lock object has disappeared (an observer judged it stale) has
lost the lock: :meth:`Lock.ensure_held` raises, and a backup checks it before
it commits.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..crypto import labels
from ..crypto.keys import BackupKey
from ..errors import DataDamaged, ObjectNotFound, RepositoryLocked, StorageError
from ..storage.base import Backend
from .sealed import (
    LOCK_MAX,
    fetch_capped,
    json_bool,
    json_hex,
    json_int,
    json_str,
    named_objects,
    open_object,
    seal_object,
    strict_json,
)

LOCK_MAGIC = b"SRL1"
#: The lock document's ``v``; a reader treats any other as unreadable (spec §9).
LOCK_VERSION = 2
LOCK_PREFIX = "locks/"
#: An observer that has seen one lock object unchanged this long (its own clock) calls it stale.
STALE_AFTER = 30 * 60.0
LOCK_TTL = STALE_AFTER  # the old name
#: Holders write a new lock object this often.
REFRESH_EVERY = 5 * 60.0
REFRESH_AFTER = REFRESH_EVERY
#: A holder that could not refresh for this long no longer trusts its lock.
HOLD_MARGIN = STALE_AFTER / 2


def boot_id() -> str:
    """This kernel boot's random id (Linux), or "" where there is none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:64]
    except OSError:
        return ""


class LockObservations:
    """When this device first saw each lock object, on its own monotonic clock.

    Monotonic time is comparable between processes of one boot only, so the
    record (a small JSON file, if ``path`` is given) holds the boot id and is
    ignored after a reboot.  Without a file, only this process's sightings count.
    """

    def __init__(self, path: Path | None = None, boot: str | None = None) -> None:
        self._path = path
        self._boot = boot_id() if boot is None else boot
        self._seen: dict[str, float] = {}
        self._mutex = threading.Lock()
        if path is not None and self._boot:
            try:
                doc = json.loads(path.read_text())
                if doc.get("boot") == self._boot:
                    self._seen = {str(k): float(v) for k, v in doc["seen"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self._seen = {}

    def first_seen(self, present: Iterable[str], now: float) -> dict[str, float]:
        """Record ``present`` (the lock names listed at ``now``); their first sightings."""
        present = set(present)
        with self._mutex:
            seen = {n: self._seen.get(n, now) for n in present}
            changed = seen != self._seen
            self._seen = seen
            if changed:
                self._save()
            return dict(seen)

    def _save(self) -> None:
        if self._path is None or not self._boot:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_name(self._path.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"boot": self._boot, "seen": self._seen}))
            os.replace(tmp, self._path)
        except OSError:
            pass  # then only this process remembers


def default_observations(repo_id_hex: str) -> LockObservations:
    """Sightings kept in ``$STRONGROOM_STATE_DIR`` (else the XDG state dir), per repository."""
    base = os.environ.get("STRONGROOM_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "strongroom")
    return LockObservations(Path(base) / "locks" / f"{repo_id_hex}.json")


class Lock:
    """A held lock; it refreshes itself (``background``) or via :meth:`refresh_if_due`.

    ``clock`` is this process's monotonic clock (seconds); it decides when to
    refresh and, as an observer, when another lock is stale.
    """

    def __init__(self, backend: Backend, key: BackupKey, exclusive: bool,
                 clock: Callable[[], float], rng: Callable[[int], bytes], *,
                 observations: LockObservations | None = None, background: bool = False,
                 refresh_every: float = REFRESH_EVERY) -> None:
        self._backend, self._key, self._clock, self._rng = backend, key, clock, rng
        self.exclusive = exclusive
        self.name = ""
        self.instance = rng(16).hex()
        self.seq = 0
        self.taken_at = 0.0
        self.lost: str | None = None
        self._observations = observations or LockObservations()
        self._boot = boot_id()
        self._background = background
        self._refresh_every = refresh_every
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> str:
        name = LOCK_PREFIX + self._rng(16).hex()
        doc = {"v": LOCK_VERSION, "exclusive": self.exclusive, "instance": self.instance, "seq": self.seq,
               "hostname": socket.gethostname()[:255], "boot": self._boot, "pid": os.getpid()}
        data = seal_object(self._key, labels.LOCK, LOCK_MAGIC, name,
                           json.dumps(doc).encode(), self._rng)
        self._backend.put_if_absent(name, data)
        self.taken_at = self._clock()
        self.seq += 1
        return name

    def acquire(self) -> Lock:
        """Take the lock or raise ``RepositoryLocked`` (after removing our attempt)."""
        self.name = self._write()
        others = [n for n in named_objects(self._backend.list(LOCK_PREFIX), LOCK_PREFIX)
                  if n != self.name]
        now = self._clock()
        seen = self._observations.first_seen(others, now)
        for other in others:
            doc = self._read(other)
            if doc is None:
                continue  # released meanwhile
            if doc.unreadable or now - seen[other] >= STALE_AFTER or self._holder_is_dead(doc):
                if self.exclusive:  # stale: its holder died or stopped refreshing
                    self._backend.delete(other)
                continue
            if self.exclusive or doc.exclusive:
                self.release()
                kind = "an exclusive" if doc.exclusive else "a"
                raise RepositoryLocked(
                    f"the repository has {kind} lock held by another operation (from "
                    f"{doc.hostname or 'an unknown host'}); a lock that is not refreshed "
                    f"for {STALE_AFTER / 60:.0f} minutes of this device's watching is "
                    "ignored")
        if self._background:
            self._thread = threading.Thread(target=self._refresher, daemon=True,
                                            name="strongroom-lock")
            self._thread.start()
        return self

    def _read(self, name: str) -> _LockInfo | None:
        try:
            data = fetch_capped(self._backend, name, LOCK_MAX)
        except ObjectNotFound:
            return None
        except DataDamaged:
            return _LockInfo(False, "", "", 0, True)  # too large to be a lock
        try:
            doc = strict_json(open_object(self._key, labels.LOCK, LOCK_MAGIC, name, data),
                              name, LOCK_MAX)
            if not isinstance(doc, dict):
                raise DataDamaged(f"{name}: not a lock document")
            json_int(doc, "v", name, LOCK_VERSION, LOCK_VERSION)
            json_hex(doc, "instance", name, 16)
            json_int(doc, "seq", name)
            pid = json_int(doc, "pid", name, 0, 2**31)
            boot = json_str(doc, "boot", name, 64) if "boot" in doc else ""
            return _LockInfo(json_bool(doc, "exclusive", name), json_str(doc, "hostname", name),
                             boot, pid, False)
        except DataDamaged:
            # Written under another key or damaged: nothing can be learnt from it.
            return _LockInfo(False, "", "", 0, True)

    def _holder_is_dead(self, doc: _LockInfo) -> bool:
        """Taken during this boot of this machine by a process that no longer exists.

        A ``kill -9`` of a prune would otherwise block every backup for 30
        minutes.  The boot id is random per boot, so another device (even one
        with the same hostname) never matches; a live process that reused the
        pid keeps the lock (the safe direction).
        """
        if not self._boot or doc.boot != self._boot or doc.pid <= 0 or doc.pid == os.getpid():
            return False
        try:
            os.kill(doc.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # exists, owned by someone else
        return False

    def _refresher(self) -> None:
        while not self._stop.wait(self._refresh_every):
            try:
                self.refresh(force=True)
            except StorageError:
                continue  # tried again next round; ensure_held judges the gap
            if self.lost:
                return

    def refresh_if_due(self) -> None:
        """Rewrite the lock when it is older than REFRESH_EVERY (no-op with a refresher)."""
        if self._thread is None:
            self.refresh()

    def refresh(self, force: bool = False) -> None:
        """Write a new lock object and delete the old one; notice a lock taken away."""
        with self._mutex:
            if not self.name or self.lost:
                return
            if not force and self._clock() - self.taken_at < self._refresh_every:
                return
            old = self.name
            try:
                self._backend.stat(old)
            except ObjectNotFound:
                # Deleted by an observer that judged it stale: the lock is lost, and
                # writing a new one now would hide that from whoever took over.
                self.lost = f"the lock {old} was removed by another device"
                self.name = ""
                return
            self.name = self._write()
            self._backend.delete(old)

    def ensure_held(self) -> None:
        """Raise ``RepositoryLocked`` unless the lock still holds (call before committing)."""
        with self._mutex:
            if self.lost is None and self.name:
                if self._clock() - self.taken_at >= HOLD_MARGIN:
                    self.lost = (f"the lock could not be refreshed for "
                                 f"{HOLD_MARGIN / 60:.0f} minutes")
                else:
                    try:
                        self._backend.stat(self.name)
                    except ObjectNotFound:
                        self.lost = f"the lock {self.name} was removed by another device"
        if self.lost is not None:
            raise RepositoryLocked(f"{self.lost}; nothing was committed",
                                   hint="run the operation again")

    def release(self) -> None:
        """Stop refreshing and delete the lock object (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
            self._thread = None
        with self._mutex:
            if self.name:
                self._backend.delete(self.name)
                self.name = ""


@dataclass(frozen=True)
class _LockInfo:
    exclusive: bool
    hostname: str
    boot: str
    pid: int
    unreadable: bool
