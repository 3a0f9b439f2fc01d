"""The Backup Key Vault without HTTP: records, the guess counter, logins.

Every change of a record goes through ``RecordStore.transact`` and follows
:func:`strongroom.vault.counter.step`.  The order that makes the guess limit
hold: for a login start, the counted guess (and the login session) is
*committed durably before the KE2 leaves this object*; if the commit fails the
caller gets :class:`VaultStoreError` and no KE2 at all.  The KE2 is computed
before the lock is taken (to keep the lock short) but never returned unless
the commit succeeded.

Unknown accounts get a fake KE2 (``LoginServer.start`` with no record) and a
phantom counter that moves exactly like a real one, so "attempts left" never
tells a registered account from an unregistered one.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import (
    AttemptsExhausted,
    BackupHeadConflict,
    InvalidLogin,
    ProtocolError,
    UsageError,
    VaultProtocolError,
    VaultSessionInvalid,
    VaultStoreError,
)
from . import _opaque as opaque
from . import labels
from .counter import Counter, Event, Out, State, absent, step
from .sealing import derive, frame, open_sealed, seal, unframe
from .store import Mutation, RecordRow, RecordStore, SessionRow

MAX_WRAPPED_KEY = 256
MAX_ACCOUNT_ID = 128
HEAD_TAG_SIZE = 32
MAX_HEAD_COUNTER = 2**63 - 1  # fits SQLite INTEGER and PostgreSQL BIGINT


@dataclass(frozen=True)
class VaultPolicy:
    """Per-vault rules."""

    attempt_limit: int = 10
    session_ttl: float = 120.0  # seconds between KE2 and KE3

    def __post_init__(self) -> None:
        if not 1 <= self.attempt_limit <= 1_000_000:
            raise UsageError("attempt limit must be between 1 and 1000000")
        if self.session_ttl <= 0:
            raise UsageError("session lifetime must be positive")


@dataclass(frozen=True)
class VaultSecrets:
    """The vault's long-term secrets, held in memory only after the keystore opens them."""

    setup: Any  # opaque.ServerSetup (OPRF seed + AKE key pair)
    record_key: bytes  # AES-256 key of records and sessions at rest

    def __repr__(self) -> str:
        return "<VaultSecrets>"


@dataclass(frozen=True)
class LoginStarted:
    """The answer to a login start: KE2, its session id and the attempts left."""

    session_id: str
    ke2: bytes
    attempts_left: int


@dataclass(frozen=True)
class RecordStatus:
    """What the owner may know about their record."""

    exists: bool
    locked: bool
    attempts_left: int
    attempt_limit: int


@dataclass(frozen=True)
class BackupHead:
    """An account's rollback-detection head: a counter and a MAC the vault cannot compute."""

    counter: int  # 0 = never advanced
    tag: bytes | None


def check_account_id(account_id: str) -> bytes:
    """Validate an account id; return it as the OPAQUE credential identifier."""
    if not isinstance(account_id, str) or not 1 <= len(account_id) <= MAX_ACCOUNT_ID:
        raise UsageError(f"account id must be 1 to {MAX_ACCOUNT_ID} characters")
    if not account_id.isprintable():
        raise UsageError("account id must be printable")
    return account_id.encode("utf-8")


class Vault:
    """Registration, login and record management on top of a :class:`RecordStore`."""

    def __init__(
        self,
        store: RecordStore,
        secrets: VaultSecrets,
        config: Any,
        policy: VaultPolicy = VaultPolicy(),
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.store, self._secrets, self.config, self.policy = store, secrets, config, policy
        self._clock, self._rng = clock, rng
        self._last_purge = float("-inf")
        self._purge_lock = threading.Lock()

    @property
    def server_public_key(self) -> bytes:
        """The vault's AKE public key, which clients pin."""
        return bytes(self._secrets.setup.server_public_key)

    # -- registration -------------------------------------------------------

    def registration_start(self, account_id: str, request: bytes) -> bytes:
        """Answer an OPAQUE registration request (stateless)."""
        cid = check_account_id(account_id)
        return bytes(_protocol(
            opaque.RegistrationServer.respond, self._secrets.setup, request, cid, config=self.config
        ))

    def registration_finish(self, account_id: str, record: bytes, wrapped_key: bytes) -> None:
        """Store a new OPAQUE record and wrapped K; resets the counter and ends old logins."""
        check_account_id(account_id)
        _check_record(record)
        if not 1 <= len(wrapped_key) <= MAX_WRAPPED_KEY:
            raise VaultProtocolError(f"wrapped key must be 1 to {MAX_WRAPPED_KEY} bytes")

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            gen = (cur.generation if cur else 0) + 1
            c, _outs = step(self._counter(cur), Event.REGISTER, limit=self.policy.attempt_limit)
            sealed = self._seal_record(account_id, gen, frame(record, wrapped_key))
            row = RecordRow(account_id, c.state, c.used, c.limit, gen, sealed)
            return Mutation(row=row, drop_sessions=True)

        self.store.transact(account_id, fn)

    # -- login ---------------------------------------------------------------

    def login_start(self, account_id: str, ke1: bytes) -> LoginStarted:
        """Count a guess, commit it, then hand out KE2; ``AttemptsExhausted`` if locked."""
        cid = check_account_id(account_id)
        self._maybe_purge()
        for _ in range(3):
            row = self.store.get(account_id)
            if row is not None and row.state is State.LOCKED:
                raise AttemptsExhausted()
            real = row is not None and row.state is State.ACTIVE
            record = self._open_record(row)[0] if row is not None and real else None
            ke2, server_state = _protocol(
                opaque.LoginServer.start,
                self._secrets.setup,
                record,
                ke1,
                cid,
                config=self.config,
                rng=self._rng,
            )
            session_id = _b64(self._rng(18))
            sealed_state = seal(
                self._secrets.record_key,
                server_state.to_bytes(),
                frame(labels.SESSION_AD, account_id.encode(), session_id.encode()),
                self._rng,
            )
            outcome = self.store.transact(
                account_id, self._count_guess_fn(account_id, row, session_id, sealed_state)
            )
            if outcome == "locked":
                raise AttemptsExhausted()
            if outcome != "changed":
                return LoginStarted(session_id, ke2, outcome)
        raise VaultStoreError("the record changed during the login; try again")

    def _count_guess_fn(
        self, account_id: str, seen: RecordRow | None, session_id: str, sealed_state: bytes
    ) -> Callable[[RecordRow | None, SessionRow | None], Mutation]:
        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            if cur is not None and cur.state is State.LOCKED:
                return Mutation(result="locked")
            if _identity(cur) != _identity(seen):
                return Mutation(result="changed")  # re-registered meanwhile: recompute KE2
            c, outs = step(self._counter(cur), Event.LOGIN_START, limit=self.policy.attempt_limit)
            gen = cur.generation if cur else 0
            erase = Out.ERASE_RECORD in outs
            sealed = None if erase or cur is None else cur.sealed
            row = RecordRow(account_id, c.state, c.used, c.limit, gen, sealed)
            session = SessionRow(
                session_id, account_id, self._clock() + self.policy.session_ttl, gen,
                sealed_state, cur.sealed if cur is not None else None,
            )
            return Mutation(row=row, add_session=session,
                            drop_sessions=Out.DROP_OTHER_SESSIONS in outs, result=c.attempts_left)

        return fn

    def login_finish(self, account_id: str, session_id: str, ke3: bytes) -> bytes:
        """Check KE3 once; on success reset the counter and return the sealed wrapped K.

        Raises ``InvalidLogin`` (with ``attempts_left``) for a wrong KE3 and
        ``VaultSessionInvalid`` for an unknown, consumed or expired session.
        """
        check_account_id(account_id)
        now = self._clock()

        def fn(cur: RecordRow | None, sess: SessionRow | None) -> Mutation:
            if sess is None or sess.expires_at < now or cur is None or cur.generation != sess.generation:
                return Mutation(result=("stale", None))
            c = self._counter(cur)
            session_key = self._finish_or_none(account_id, sess, ke3)
            if session_key is None or sess.sealed_record is None:
                step(c, Event.KE3_INVALID, limit=self.policy.attempt_limit)
                return Mutation(result=("invalid", c.attempts_left))
            nxt, _outs = step(c, Event.KE3_VALID, limit=self.policy.attempt_limit)
            row = RecordRow(account_id, nxt.state, nxt.used, nxt.limit, cur.generation, sess.sealed_record)
            wrapped = unframe(self._open_sealed_record(account_id, cur.generation, sess.sealed_record), 2)[1]
            release_ad = frame(account_id.encode(), session_id.encode())
            released = seal(derive(session_key, labels.RELEASE), wrapped, release_ad, self._rng)
            return Mutation(row=row, result=("ok", released))

        # Not synced to disk: a power cut can only undo a reset (more guesses
        # counted, the safe side) or a session's consumption (a replayed KE3
        # gets the wrapped K sealed under a session key only the client has).
        kind, value = self.store.transact(account_id, fn, take_session=session_id, durable=False)
        if kind == "stale":
            raise VaultSessionInvalid()
        if kind == "invalid":
            err = InvalidLogin()
            err.attempts_left = value  # type: ignore[attr-defined]
            raise err
        return bytes(value)

    def _finish_or_none(self, account_id: str, sess: SessionRow, ke3: bytes) -> bytes | None:
        ad = frame(labels.SESSION_AD, account_id.encode(), sess.session_id.encode())
        state_bytes = open_sealed(self._secrets.record_key, sess.sealed_state, ad, "login session")
        try:
            state = opaque.ServerLoginState.from_bytes(state_bytes)
            return bytes(opaque.LoginServer.finish(state, ke3))
        except (InvalidLogin, ProtocolError, ValueError):
            # A malformed KE3 spends the session exactly like a wrong one.
            return None

    # -- status and delete ----------------------------------------------------

    def status(self, account_id: str) -> RecordStatus:
        """Whether a record exists, whether it is locked, and the attempts left."""
        check_account_id(account_id)
        c = self._counter(self.store.get(account_id))
        return RecordStatus(c.state is State.ACTIVE, c.state is State.LOCKED, c.attempts_left, c.limit)

    def delete(self, account_id: str) -> bool:
        """Erase the account's record, counter and sessions; True if a record existed."""
        check_account_id(account_id)

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            step(self._counter(cur), Event.DELETE, limit=self.policy.attempt_limit)
            existed = cur is not None and cur.state is State.ACTIVE
            return Mutation(row=None, drop_sessions=True, result=existed)

        return bool(self.store.transact(account_id, fn))

    # -- backup head (rollback detection) ----------------------------------------

    def head(self, account_id: str) -> BackupHead:
        """The account's backup head; counter 0 and no tag if never advanced."""
        check_account_id(account_id)
        got = self.store.get_head(account_id)
        return BackupHead(0, None) if got is None else BackupHead(got[0], got[1])

    def advance_head(self, account_id: str, counter: int, tag: bytes) -> BackupHead:
        """Move the head to ``(counter, tag)`` if ``counter`` is exactly the old one + 1.

        ``BackupHeadConflict`` (with ``current``) otherwise: the vault never
        moves a head backwards or skips a step, so a device that saw counter n
        can tell later whether the vault rolled its head back.
        """
        check_account_id(account_id)
        if isinstance(counter, bool) or not isinstance(counter, int) or not 1 <= counter <= MAX_HEAD_COUNTER:
            raise VaultProtocolError(f"head counter must be 1 to {MAX_HEAD_COUNTER}")
        if not isinstance(tag, bytes) or len(tag) != HEAD_TAG_SIZE:
            raise VaultProtocolError(f"head tag must be {HEAD_TAG_SIZE} bytes")
        ok, current = self.store.advance_head(account_id, counter, tag)
        if not ok:
            err = BackupHeadConflict(
                f"the backup head is at {current}; only {current + 1} can follow it")
            err.current = current
            raise err
        return BackupHead(counter, tag)

    # -- helpers --------------------------------------------------------------

    def _counter(self, row: RecordRow | None) -> Counter:
        if row is None:
            return absent(self.policy.attempt_limit)
        return Counter(row.state, row.used, row.limit)

    def _seal_record(self, account_id: str, gen: int, payload: bytes) -> bytes:
        ad = frame(labels.RECORD_AD, account_id.encode(), str(gen).encode())
        return seal(self._secrets.record_key, payload, ad, self._rng)

    def _open_sealed_record(self, account_id: str, gen: int, blob: bytes) -> bytes:
        ad = frame(labels.RECORD_AD, account_id.encode(), str(gen).encode())
        return open_sealed(self._secrets.record_key, blob, ad, "stored record")

    def _open_record(self, row: RecordRow) -> tuple[bytes, bytes]:
        assert row.sealed is not None
        record, wrapped = unframe(self._open_sealed_record(row.account_id, row.generation, row.sealed), 2)
        return record, wrapped

    def _maybe_purge(self) -> None:
        now = self._clock()
        with self._purge_lock:
            if now - self._last_purge < self.policy.session_ttl:
                return
            self._last_purge = now
        self.store.purge_sessions(now)


def _identity(row: RecordRow | None) -> tuple[bool, int]:
    """What must not change between reading a record and counting a guess on it."""
    if row is None or row.state is not State.ACTIVE:
        return (False, -1)
    return (True, row.generation)


def _check_record(record: bytes) -> None:
    if not isinstance(record, bytes):
        raise VaultProtocolError("registration record must be bytes")
    _protocol(opaque.RegistrationRecord.parse, record)


def _protocol(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call an OPAQUE step, mapping its rejections to ``VaultProtocolError``."""
    try:
        return fn(*args, **kw)
    except ProtocolError as exc:
        raise VaultProtocolError(f"invalid OPAQUE message: {exc.message}") from exc
    except ValueError as exc:
        raise VaultProtocolError("invalid OPAQUE message") from exc


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


__all__ = [
    "BackupHead",
    "LoginStarted",
    "RecordStatus",
    "Vault",
    "VaultPolicy",
    "VaultSecrets",
    "check_account_id",
]
