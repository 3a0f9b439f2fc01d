"""Rollback detection in password mode: the backup head kept by the vault.

The storage provider can delete a snapshot object or serve the whole
repository as it was earlier; every object it serves is genuine, so the
repository alone cannot tell (``docs/spec/backup-format.md`` §14).  The vault
can: per account it keeps a monotonic *backup head* ``(counter, tag)`` that
the client advances, by exactly one, after each change of the snapshot list::

    K_head = HKDF-SHA256(K, info = "strongroom/v1/vault/backup-head")
    tag    = HMAC-SHA256(K_head, frame(label, repo id, u64(counter), newest id, set hash))

The vault cannot compute a tag (it has no K); it can only withhold or roll
back its own head, which a counter kept on the device (:class:`LocalHeads`)
detects on that device.  Next to each head the client writes a plain
*head record* into the repository (``ext/backup-head/<counter>.<tag>``) that
lists the snapshot ids the tag covers, so a mismatch can name the snapshots
that are missing.  The record needs no secrecy (snapshot ids are object
names the provider sees anyway) and no MAC of its own: it is authentic
exactly when it recomputes the vault's tag.

Rules that avoid false alarms: snapshots present but not yet in the head
are fine (a backup whose advance did not happen, e.g. no vault token);
snapshots in the head but absent from the listing are a rollback, unless
this client is removing them (forget advances the head *before* deleting).
The spec is ``docs/spec/vault-protocol.md`` §10.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..crypto.hashing import equal, hmac_sha256, sha256
from ..crypto.keys import BackupKey
from ..errors import BackupHeadConflict, LocalWriteError, ObjectNotFound, RollbackDetected
from ..securefile import check_private_dir, ensure_private_dir, write_secret_file
from ..storage.base import Backend
from ..vault import labels
from ..vault.sealing import frame

RECORD_PREFIX = "ext/backup-head/"
RECORD_FORMAT = "strongroom-backup-head/1"
RECORD_CAP = 16 * 1024 * 1024  # like a snapshot's (backup-format spec): ids of every snapshot
_SNAPSHOT_ID = re.compile(r"^[0-9a-f]{1,128}$")
_RECORD_NAME = re.compile(r"^([0-9a-f]{16})\.([0-9a-f]{64})$")


class HeadVault(Protocol):
    """What this module needs from the vault client (``VaultClient`` has it)."""

    url: str
    account: str
    slot: str

    def head(self) -> tuple[int, bytes | None]: ...

    def advance_head(self, counter: int, tag: bytes) -> None: ...


class SnapshotLister(Protocol):
    """What this module needs from a repository (``strongroom.api.Repository`` has it)."""

    id: str

    def snapshots(self) -> Sequence[Any]: ...


def head_key(key: BackupKey) -> bytes:
    """K_head: the 32-byte HMAC key of backup-head tags."""
    return key.derive(labels.BACKUP_HEAD)


def set_hash(snapshot_ids: Iterable[str]) -> bytes:
    """SHA-256 over the framed, sorted snapshot ids (ASCII hex)."""
    return sha256(frame(*(s.encode("ascii") for s in sorted(snapshot_ids))))


@dataclass(frozen=True)
class HeadState:
    """What one head commits to: its counter, the newest snapshot and all live snapshots."""

    counter: int
    newest: str  # "" when there are no snapshots
    snapshots: tuple[str, ...]  # sorted

    def tag(self, k_head: bytes, repo_id: str) -> bytes:
        """HMAC-SHA256 of this state under K_head (the spec's byte layout)."""
        msg = frame(labels.BACKUP_HEAD, repo_id.encode("ascii"), self.counter.to_bytes(8, "big"),
                    self.newest.encode("ascii"), set_hash(self.snapshots))
        return hmac_sha256(k_head, msg)

    def to_json(self, repo_id: str) -> bytes:
        """The bytes of the head record stored in the repository."""
        doc = {"format": RECORD_FORMAT, "repository": repo_id, "counter": self.counter,
               "newest": self.newest, "snapshots": list(self.snapshots)}
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> HeadState | None:
        """Parse a head record strictly; None if it is not one (a forged record fails the tag
        anyway).  NaN/Infinity, deep nesting, wrong types and oversize records are refused."""
        from ..errors import FormatError
        from ..repo.sealed import strict_json

        try:
            d = strict_json(data, "head record", RECORD_CAP)
        except FormatError:
            return None
        if not isinstance(d, dict) or d.get("format") != RECORD_FORMAT:
            return None
        snaps_doc, newest, counter = d.get("snapshots"), d.get("newest"), d.get("counter")
        if (not isinstance(snaps_doc, list) or not all(type(x) is str for x in snaps_doc)
                or type(newest) is not str or type(counter) is not int
                or not 1 <= counter <= 2**63 - 1):
            return None
        snaps = tuple(sorted(snaps_doc))
        ok = (all(_SNAPSHOT_ID.match(x) for x in snaps)
              and (newest in snaps if snaps else newest == ""))
        return cls(counter, newest, snaps) if ok else None


def record_name(counter: int, tag: bytes) -> str:
    """Where the head record of ``(counter, tag)`` lives in the repository."""
    return f"{RECORD_PREFIX}{counter:016x}.{tag.hex()}"


class LocalHeads:
    """The highest head counter this device has seen, per repository (JSON files).

    Kept next to the device key (``<config dir>/heads/<repository id>.json``):
    a vault that later answers with a lower counter has rolled its head back.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, repo_id: str) -> Path:
        if not re.match(r"^[0-9A-Za-z_-]{1,128}$", repo_id):
            raise ValueError("invalid repository id")
        return self.directory / f"{repo_id}.json"

    def _doc(self, repo_id: str) -> dict[str, Any]:
        if os.path.lexists(self.directory):
            # Another local user who could write here could lower the counter or drop the
            # file (switching the alarm off): such a directory is refused, not read.
            check_private_dir(self.directory)
        try:
            d = json.loads(self._path(repo_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return d if isinstance(d, dict) else {}

    def load(self, repo_id: str, vault: HeadVault) -> int:
        """The counter last seen for this repository at this vault account and slot (0 if none)."""
        return self._counter_of(self._doc(repo_id), vault)

    @staticmethod
    def _counter_of(d: dict[str, Any], vault: HeadVault) -> int:
        if (d.get("vault") != vault.url or d.get("account") != vault.account
                or d.get("slot", "") != vault.slot):
            return 0
        counter = d.get("counter")
        return counter if isinstance(counter, int) and counter >= 0 else 0

    def check_slot(self, repo_id: str, slot: str, created: int) -> None:
        """``RollbackDetected`` if the repository names an older slot than this device saw.

        A slot is replaced only by a new ``enable`` (after ``disable``), whose
        locator is created later; a provider that puts back the locator of a
        disabled slot (whose head froze when it was disabled) would otherwise
        pass the head check with the snapshot list of that time (spec §10.3).
        """
        d = self._doc(repo_id)
        seen_slot, seen_created = d.get("slot", ""), d.get("created", 0)
        if (isinstance(seen_slot, str) and seen_slot != slot and isinstance(seen_created, int)
                and created <= seen_created):
            raise RollbackDetected(
                "the repository names an older password slot than this device saw: the storage "
                "provider may be serving the repository as it was before the password was "
                "turned off and on again",
                hint=f"if that is not the case, remove {self._path(repo_id)} on this device")

    def knows(self, repo_id: str) -> bool:
        """Whether this device has seen this repository in password mode (a head >= 1)."""
        if os.path.lexists(self.directory):
            check_private_dir(self.directory)
        try:
            d = json.loads(self._path(repo_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return True  # unreadable or damaged: err on the side of the alarm
        counter = d.get("counter") if isinstance(d, dict) else None
        return not (isinstance(counter, int) and counter <= 0)

    def forget(self, repo_id: str) -> None:
        """Drop what this device remembers of the repository (after its own ``disable``)."""
        try:
            self._path(repo_id).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LocalWriteError(f"cannot update {self._path(repo_id)}: {exc.strerror}") from None

    def save(self, repo_id: str, vault: HeadVault, counter: int, created: int = 0) -> None:
        """Remember ``counter`` (and the slot's locator time) if higher than stored (atomic)."""
        old = self._doc(repo_id)
        seen = self._counter_of(old, vault)
        if counter <= seen and old.get("created", 0) >= created:
            return
        path = self._path(repo_id)
        doc = {"vault": vault.url, "account": vault.account, "slot": vault.slot,
               "created": created, "counter": max(counter, seen)}
        try:
            # Private (0700, refused if others can write: they could reset the counter) and
            # written 0600 through a random temporary name, never through a planted link.
            ensure_private_dir(self.directory, top=self.directory.parent)
            write_secret_file(path, (json.dumps(doc) + "\n").encode("utf-8"))
        except OSError as exc:
            raise LocalWriteError(f"cannot keep the backup head counter in {path}: "
                                  f"{exc.strerror}") from None


def listing(repo: SnapshotLister) -> tuple[str, tuple[str, ...]]:
    """(newest snapshot id or "", sorted ids) of what the repository lists now."""
    snaps = list(repo.snapshots())  # oldest first
    return (snaps[-1].id if snaps else ""), tuple(sorted(s.id for s in snaps))


class HeadGuard:
    """Verify and advance one repository's backup head at one vault account."""

    def __init__(self, repo: SnapshotLister, backend: Backend, key: BackupKey, vault: HeadVault,
                 local: LocalHeads | None = None, *, created: int = 0) -> None:
        self.repo, self.backend, self.vault, self.local = repo, backend, vault, local
        self.created = created  # the locator's creation time (LocalHeads.check_slot)
        self._k_head = head_key(key)

    def __repr__(self) -> str:
        return f"<HeadGuard {self.repo.id[:8]} {self.vault.account}>"

    # -- reading the committed state -------------------------------------------------

    def committed(self) -> HeadState | None:
        """The state the vault's head commits to, authenticated; None if there is no head.

        Raises ``RollbackDetected`` if the vault's counter is below what this
        device saw, if the head's tag does not authenticate, or if the
        repository withholds the head record and its listing does not match.
        """
        for _ in range(3):
            counter, tag = self.vault.head()
            seen = self.local.load(self.repo.id, self.vault) if self.local else 0
            if counter < seen:
                raise RollbackDetected(
                    f"the vault's backup head went back from #{seen} (seen by this device) to "
                    f"#{counter}: the vault rolled back or lost its record",
                    hint="the vault operator should restore the vault's database; until then "
                         "this device cannot rule out a storage rollback")
            if counter == 0 or tag is None:
                return None
            state = self._record(counter, tag)
            if state is not None:
                return state
            if self.vault.head()[0] != counter:
                continue  # another device advanced meanwhile and cleaned the record up
            return self._without_record(counter, tag)
        raise BackupHeadConflict("the backup head kept moving while it was read")

    def _record(self, counter: int, tag: bytes) -> HeadState | None:
        from ..errors import DataDamaged
        from ..repo.sealed import fetch_capped

        try:
            data = fetch_capped(self.backend, record_name(counter, tag), RECORD_CAP)
        except ObjectNotFound:
            return None
        except DataDamaged:
            data = b""  # oversize: not a record this client wrote
        state = HeadState.from_json(data)
        if state is None or state.counter != counter or not equal(
                state.tag(self._k_head, self.repo.id), tag):
            raise RollbackDetected(
                f"the backup head #{counter} does not authenticate: the head at the vault or its "
                "record in the repository was tampered with",
                hint="the snapshot list cannot be trusted; ask the vault operator and the storage "
                     "provider")
        return state

    def _without_record(self, counter: int, tag: bytes) -> HeadState:
        newest, ids = listing(self.repo)
        state = HeadState(counter, newest, ids)
        if equal(state.tag(self._k_head, self.repo.id), tag):
            return state  # the listing is exactly what the head commits to
        if self._records_of(counter):
            raise RollbackDetected(
                f"the backup head #{counter} does not authenticate: its tag matches neither the "
                "repository's record of that head nor its snapshot list (the head at the vault "
                "or the repository was tampered with)")
        older = self._newest_record_counter()
        have = f"its newest head record is #{older}" if older else "it has no head record"
        raise RollbackDetected(
            f"the storage provider is serving an older snapshot list: the vault's backup head is "
            f"#{counter}, but the repository does not match it and {have}")

    def authenticates(self, counter: int, tag: bytes) -> bool:
        """Whether ``(counter, tag)`` is a head this repository's K made: its record
        recomputes the tag, or (no record) the current listing does.  Never raises
        ``RollbackDetected``: it only picks among heads a realm set reports (realms.md §8)."""
        try:
            if self._record(counter, tag) is not None:
                return True
        except RollbackDetected:
            return False
        newest, ids = listing(self.repo)
        return equal(HeadState(counter, newest, ids).tag(self._k_head, self.repo.id),
                                   tag)

    def _records_of(self, counter: int) -> list[str]:
        prefix = f"{RECORD_PREFIX}{counter:016x}."
        return [n for n in self.backend.list(prefix) if _RECORD_NAME.match(n[len(RECORD_PREFIX):])]

    def _newest_record_counter(self) -> int:
        best = 0
        for name in self.backend.list(RECORD_PREFIX):
            m = _RECORD_NAME.match(name[len(RECORD_PREFIX):])
            if m:
                best = max(best, int(m.group(1), 16))
        return best

    # -- the two operations ------------------------------------------------------------

    def verify(self) -> int:
        """Check the repository's listing against the vault's head; return the head counter.

        ``RollbackDetected`` names the snapshots the provider is hiding.
        """
        state = self.committed()
        if state is None:
            return 0
        _newest, ids = listing(self.repo)
        _raise_if_hidden(state, set(ids))
        self._remember(state.counter)
        return state.counter

    def advance(self, *, removed: Iterable[str] = (), attempts: int = 5) -> int:
        """After a change of the snapshot list: move the head to the current listing.

        ``removed`` are snapshots this client is deleting (forget): they leave
        the new head and may already be gone.  Any other snapshot of the
        current head missing from the listing is a rollback: the head is then
        not advanced (``RollbackDetected``), so a hidden snapshot is never
        laundered into a new head.  Returns the new counter.
        """
        gone = set(removed)
        for _ in range(attempts):
            state = self.committed()
            newest, ids = listing(self.repo)
            if state is not None:
                _raise_if_hidden(state, set(ids) | gone)
            ids = tuple(i for i in ids if i not in gone)
            if newest in gone:
                newest = self._newest_of(ids)
            if state is not None and state.snapshots == ids and state.newest == newest:
                self._remember(state.counter)
                return state.counter
            new = HeadState((state.counter if state else 0) + 1, newest, ids)
            tag = new.tag(self._k_head, self.repo.id)
            # The record goes first: a head at the vault always has its record.
            self.backend.put(record_name(new.counter, tag), new.to_json(self.repo.id))
            try:
                self.vault.advance_head(new.counter, tag)
            except BackupHeadConflict:
                if self.vault.head() != (new.counter, tag):  # (an identical twin may have won)
                    self.backend.delete(record_name(new.counter, tag))
                continue  # another device advanced first: re-read its head, build on it
            self._remember(new.counter)
            self._drop_records_before(new.counter, keep=record_name(new.counter, tag))
            return new.counter
        raise BackupHeadConflict("other devices kept advancing the backup head; try again")

    def forget(self, forget: Callable[..., Any], **policy: Any) -> Any:
        """Run ``forget(**policy)`` (``Repository.forget``) with the head advanced around it.

        A dry run first says what will go; the head moves to the remaining set
        *before* anything is deleted, so a crash in between leaves extra
        snapshots (harmless), never a head naming deleted ones.
        """
        if policy.get("dry_run"):
            self.verify()
            return forget(**policy)
        plan = forget(**{**policy, "dry_run": True})
        self.advance(removed=plan.remove)
        result = forget(**policy)
        if set(result.remove) - set(plan.remove):
            # A concurrent backup changed what the policy removes.
            self.advance(removed=result.remove)
        return result

    # -- helpers -----------------------------------------------------------------------

    def _newest_of(self, ids: tuple[str, ...]) -> str:
        keep = set(ids)
        alive = [s.id for s in self.repo.snapshots() if s.id in keep]
        return alive[-1] if alive else ""

    def _remember(self, counter: int) -> None:
        if self.local is not None:
            self.local.save(self.repo.id, self.vault, counter, self.created)

    def _drop_records_before(self, counter: int, keep: str) -> None:
        for name in list(self.backend.list(RECORD_PREFIX)):
            m = _RECORD_NAME.match(name[len(RECORD_PREFIX):])
            if name != keep and m and int(m.group(1), 16) <= counter:
                self.backend.delete(name)


def _raise_if_hidden(state: HeadState, present: set[str]) -> None:
    missing = [s for s in state.snapshots if s not in present]
    if not missing:
        return
    if state.newest in missing:
        raise RollbackDetected(
            f"the storage provider is hiding the newest snapshot {state.newest[:8]} "
            f"(recorded by backup head #{state.counter}); it serves an older snapshot list"
            + (f"; also missing: {', '.join(s[:8] for s in missing if s != state.newest)}"
               if len(missing) > 1 else ""))
    raise RollbackDetected(
        f"the storage provider is hiding snapshot{'s' if len(missing) > 1 else ''} "
        f"{', '.join(s[:8] for s in missing)} (recorded by backup head #{state.counter})")


__all__ = ["RECORD_PREFIX", "HeadGuard", "HeadState", "LocalHeads", "head_key", "listing",
           "record_name", "set_hash"]
