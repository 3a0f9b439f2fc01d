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
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import (
    AttemptsExhausted,
    BackupHeadConflict,
    InvalidLogin,
    ProtocolError,
    UsageError,
    VaultAuthError,
    VaultProtocolError,
    VaultSessionInvalid,
    VaultStoreError,
)
from . import _opaque as opaque
from . import labels
from .account_id import check_account_id
from .counter import Counter, Event, Out, State, absent, step
from .params import check_ksf, encode_ksf
from .sealing import derive, frame, open_sealed, seal, unframe
from .store import Mutation, RecordRow, RecordStore, SessionRow, record_key, split_record_key

MAX_WRAPPED_KEY = 256
HEAD_TAG_SIZE = 32
MAX_HEAD_COUNTER = 2**63 - 1  # fits SQLite INTEGER and PostgreSQL BIGINT
PROOF_SIZE = 32
REG_NONCE = 16
_REG_ID_SIZE = REG_NONCE + 8 + 16  # nonce || u64be(expiry) || truncated HMAC
#: A slot id (spec §2.2): the client picks 128 random bits for each new backup.
SLOT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_log = logging.getLogger("strongroom.vault")


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
class RegistrationStarted:
    """The answer to a registration start: the OPAQUE response and the id finish must quote."""

    response: bytes
    registration_id: str


@dataclass(frozen=True)
class RecordStatus:
    """What the owner may know about their record."""

    exists: bool
    locked: bool
    attempts_left: int
    attempt_limit: int
    #: The record's Argon2id parameters (spec §2.2); None without a record, or for a
    #: record registered before the vault kept them.
    ksf: dict[str, int] | None = None


@dataclass(frozen=True)
class SlotStatus:
    """One slot of an account, for ``GET …/slots``."""

    slot: str  # "" = the account's legacy slot
    status: RecordStatus


@dataclass(frozen=True)
class BackupHead:
    """An account's rollback-detection head: a counter and a MAC the vault cannot compute."""

    counter: int  # 0 = never advanced
    tag: bytes | None


def check_slot(slot: str) -> str:
    """Validate a slot id ("" is the account's legacy slot); return it."""
    if slot == "":
        return slot
    if not isinstance(slot, str) or not SLOT_RE.match(slot):
        raise UsageError("slot id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    return slot


def _key(account_id: str, slot: str) -> str:
    check_account_id(account_id)
    return record_key(account_id, check_slot(slot))


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
        self._row_key = derive(secrets.record_key, labels.ROW_MAC)
        self._reg_key = derive(secrets.record_key, labels.REGISTRATION_ID)
        self._last_purge = float("-inf")
        self._purge_lock = threading.Lock()

    @property
    def server_public_key(self) -> bytes:
        """The vault's AKE public key, which clients pin."""
        return bytes(self._secrets.setup.server_public_key)

    # -- registration -------------------------------------------------------

    def registration_start(self, account_id: str, request: bytes, *,
                           slot: str = "") -> RegistrationStarted:
        """Answer an OPAQUE registration request under a fresh, one-time OPRF key.

        The key is derived from a random nonce that only this answer carries
        (inside ``registration_id``), never from the account's live record, so
        a registration start tells nothing about the live record's password
        (spec §2.1): no uncounted OPRF evaluation exists.
        """
        rk = _key(account_id, slot)
        nonce = self._rng(REG_NONCE)
        expires = int(self._clock() + self.policy.session_ttl)
        response = bytes(_protocol(
            opaque.RegistrationServer.respond, self._secrets.setup, request,
            _cid(rk, nonce), config=self.config))
        raw = nonce + expires.to_bytes(8, "big") + self._reg_mac(rk, nonce, expires)
        return RegistrationStarted(response, _b64(raw))

    def registration_finish(self, account_id: str, record: bytes, wrapped_key: bytes, *,
                            registration_id: str, proof_verifier: bytes,
                            proof: bytes | None = None, slot: str = "",
                            ksf: dict[str, int] | None = None) -> None:
        """Store a new OPAQUE record and wrapped K; resets the counter and ends old logins.

        ``proof_verifier`` is SHA-256 of the client's record proof (derived from
        K, spec §5).  Replacing an ACTIVE record that has a verifier needs
        ``proof`` with that hash (``VaultAuthError`` otherwise): a caller with
        the account's token but without K cannot replace the record.  ``ksf``
        (the client's Argon2id parameters) is kept in the sealed record and
        handed out before each guess (spec §2.2); a slot (not the legacy one)
        must have it.
        """
        rk = _key(account_id, slot)
        _check_record(record)
        if ksf is not None:
            try:
                ksf = check_ksf(ksf)
            except ValueError as exc:
                raise VaultProtocolError(f"key-stretching parameters: {exc}") from None
        elif slot:
            raise VaultProtocolError("a slot's registration must give its key-stretching parameters")
        if not 1 <= len(wrapped_key) <= MAX_WRAPPED_KEY:
            raise VaultProtocolError(f"wrapped key must be 1 to {MAX_WRAPPED_KEY} bytes")
        if not isinstance(proof_verifier, bytes) or len(proof_verifier) != PROOF_SIZE:
            raise VaultProtocolError(f"proof verifier must be {PROOF_SIZE} bytes")
        nonce = self._check_registration_id(rk, registration_id)
        parts = [record, wrapped_key, _cid(rk, nonce), proof_verifier]
        payload = frame(*parts, encode_ksf(ksf)) if ksf is not None else frame(*parts)
        account_id = rk  # from here on: the store's key of this slot

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            cur = self._verified(cur)
            if cur is not None and cur.state is State.ACTIVE:
                self._require_proof(cur, proof)
            gen = (cur.generation if cur else 0) + 1
            c, _outs = step(self._counter(cur), Event.REGISTER, limit=self.policy.attempt_limit)
            sealed = self._seal_record(account_id, gen, payload)
            return Mutation(row=self._row(account_id, c, gen, sealed), drop_sessions=True)

        self.store.transact(account_id, fn)

    def _check_registration_id(self, account_id: str, registration_id: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(registration_id + "=" * (-len(registration_id) % 4))
        except (ValueError, TypeError):
            raw = b""
        if len(raw) != _REG_ID_SIZE:
            raise VaultSessionInvalid("unknown or expired registration")
        nonce, expires = raw[:REG_NONCE], int.from_bytes(raw[REG_NONCE:REG_NONCE + 8], "big")
        good = hmac.compare_digest(raw[REG_NONCE + 8:], self._reg_mac(account_id, nonce, expires))
        if not good or expires < self._clock():
            raise VaultSessionInvalid("unknown or expired registration")
        return nonce

    def _reg_mac(self, account_id: str, nonce: bytes, expires: int) -> bytes:
        msg = frame(labels.REGISTRATION_ID, account_id.encode(), nonce, expires.to_bytes(8, "big"))
        return hmac.new(self._reg_key, msg, hashlib.sha256).digest()[:16]

    def _require_proof(self, cur: RecordRow, proof: bytes | None) -> None:
        verifier = self._open_payload(cur).verifier
        if verifier is None:
            return  # a record from before the proof existed (spec §2.1)
        if not isinstance(proof, bytes) or len(proof) != PROOF_SIZE or not hmac.compare_digest(
                hashlib.sha256(proof).digest(), verifier):
            raise VaultAuthError(
                "replacing or deleting this record needs proof that the caller has its backup key")

    # -- login ---------------------------------------------------------------

    def login_start(self, account_id: str, ke1: bytes, *, slot: str = "") -> LoginStarted:
        """Count a guess, commit it, then hand out KE2; ``AttemptsExhausted`` if locked."""
        account_id = _key(account_id, slot)
        self._maybe_purge()
        if self.store.locks_per_record:
            # One transaction: KE2 is computed from the row read under the lock (the
            # lock holds up no other record), so there is no separate read to repeat.
            def fn(cur: RecordRow | None, sess: SessionRow | None) -> Mutation:
                if cur is not None and cur.state is State.LOCKED:
                    return Mutation(result="locked")
                ke2, session_id, sealed_state = self._answer(account_id, cur, ke1)
                m = self._count_guess_fn(account_id, cur, session_id, sealed_state)(cur, sess)
                return replace(m, result=(m.result, ke2, session_id))

            outcome = self.store.transact(account_id, fn)
            if outcome == "locked" or outcome[0] == "locked":
                raise AttemptsExhausted()
            if not isinstance(outcome[0], int):  # "changed": cannot be, the row is the one read
                raise VaultStoreError("the record changed during the login; try again")
            return LoginStarted(outcome[2], outcome[1], outcome[0])
        for _ in range(3):
            row = self.store.get(account_id)
            if row is not None and row.state is State.LOCKED:
                raise AttemptsExhausted()
            ke2, session_id, sealed_state = self._answer(account_id, row, ke1)
            outcome = self.store.transact(
                account_id, self._count_guess_fn(account_id, row, session_id, sealed_state)
            )
            if outcome == "locked":
                raise AttemptsExhausted()
            if outcome != "changed":
                return LoginStarted(session_id, ke2, outcome)
        raise VaultStoreError("the record changed during the login; try again")

    def _answer(self, account_id: str, row: RecordRow | None, ke1: bytes) -> tuple[bytes, str, bytes]:
        """KE2 for the record ``row`` (verified here; a fake one without), its session id
        and the sealed server state; nothing of it leaves before the guess is committed."""
        row = self._verified(row)
        if row is not None and row.state is State.ACTIVE:
            payload = self._open_payload(row)
            record, cid = payload.record, payload.cid
        else:
            # The fake record's credential identifier is fixed per account, so its
            # evaluated element is as stable as a real record's (spec §1.7).
            record, cid = None, self._fake_cid(account_id)
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
        return ke2, session_id, sealed_state

    def _count_guess_fn(
        self, account_id: str, seen: RecordRow | None, session_id: str, sealed_state: bytes
    ) -> Callable[[RecordRow | None, SessionRow | None], Mutation]:
        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            cur = self._verified(cur)
            if cur is not None and cur.state is State.LOCKED:
                return Mutation(result="locked")
            if _identity(cur) != _identity(seen):
                return Mutation(result="changed")  # re-registered meanwhile: recompute KE2
            c, outs = step(self._counter(cur), Event.LOGIN_START, limit=self.policy.attempt_limit)
            gen = cur.generation if cur else 0
            erase = Out.ERASE_RECORD in outs
            sealed = None if erase or cur is None else cur.sealed
            row = self._row(account_id, c, gen, sealed)
            session = SessionRow(
                session_id, account_id, self._clock() + self.policy.session_ttl, gen,
                sealed_state, cur.sealed if cur is not None else None,
            )
            return Mutation(row=row, add_session=session,
                            drop_sessions=Out.DROP_OTHER_SESSIONS in outs, result=c.attempts_left)

        return fn

    def login_finish(self, account_id: str, session_id: str, ke3: bytes, *,
                     slot: str = "") -> bytes:
        """Check KE3 once; on success reset the counter and return the sealed wrapped K.

        Raises ``InvalidLogin`` (with ``attempts_left``) for a wrong KE3 and
        ``VaultSessionInvalid`` for an unknown, consumed or expired session.
        """
        account = account_id
        account_id = _key(account_id, slot)
        now = self._clock()

        def fn(cur: RecordRow | None, sess: SessionRow | None) -> Mutation:
            cur = self._verified(cur)
            if sess is None or sess.expires_at < now or cur is None or cur.generation != sess.generation:
                return Mutation(result=("stale", None))
            c = self._counter(cur)
            session_key = self._finish_or_none(account_id, sess, ke3)
            if session_key is None or sess.sealed_record is None:
                step(c, Event.KE3_INVALID, limit=self.policy.attempt_limit)
                return Mutation(result=("invalid", c.attempts_left))
            nxt, _outs = step(c, Event.KE3_VALID, limit=self.policy.attempt_limit)
            row = self._row(account_id, nxt, cur.generation, sess.sealed_record)
            wrapped = _Payload.parse(
                self._open_sealed_record(account_id, cur.generation, sess.sealed_record),
                account_id).wrapped
            release_ad = frame(account.encode(), session_id.encode())  # spec §5
            released = seal(derive(session_key, labels.RELEASE), wrapped, release_ad, self._rng)
            return Mutation(row=row, result=("ok", released))

        # Not synced to disk: a power cut can only undo a reset (more guesses
        # counted, the safe side) or a session's consumption (a replayed KE3
        # gets the wrapped K sealed under a session key only the client has).
        kind, value = self.store.transact(account_id, fn, take_session=session_id, durable=False)
        if kind == "stale":
            raise VaultSessionInvalid()
        if kind == "invalid":
            raise InvalidLogin(attempts_left=value)
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

    def status(self, account_id: str, *, slot: str = "") -> RecordStatus:
        """Whether a record exists, whether it is locked, the attempts left, its parameters.

        The parameters are what the client stretches the password with: they come
        from here, before the guess, never from the storage provider (spec §2.2).
        """
        return self._status(self.store.get(_key(account_id, slot)))

    def _status(self, row: RecordRow | None) -> RecordStatus:
        row = self._verified(row)
        c = self._counter(row)
        ksf = None
        if row is not None and row.state is State.ACTIVE:
            ksf = self._open_payload(row).ksf
        return RecordStatus(c.state is State.ACTIVE, c.state is State.LOCKED, c.attempts_left,
                            c.limit, ksf)

    def slots(self, account_id: str) -> list[SlotStatus]:
        """Every slot of the account that has a record (legacy slot first), with its status."""
        check_account_id(account_id)
        out = []
        for key in self.store.record_keys(account_id):
            acct, slot = split_record_key(key)
            if acct == account_id:
                out.append(SlotStatus(slot, self._status(self.store.get(key))))
        return out

    def delete(self, account_id: str, proof: bytes | None = None, *, slot: str = "") -> bool:
        """Erase the account's record, counter and sessions; True if a record existed.

        An ACTIVE record with a proof verifier is erased only with its proof
        (``VaultAuthError`` otherwise), as for a re-registration.  Other slots
        of the account are untouched.
        """
        account_id = _key(account_id, slot)

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            cur = self._verified(cur)
            if cur is not None and cur.state is State.ACTIVE:
                self._require_proof(cur, proof)
            step(self._counter(cur), Event.DELETE, limit=self.policy.attempt_limit)
            existed = cur is not None and cur.state is State.ACTIVE
            return Mutation(row=None, drop_sessions=True, result=existed)

        return bool(self.store.transact(account_id, fn))

    # -- backup head (rollback detection) ----------------------------------------

    def head(self, account_id: str, *, slot: str = "") -> BackupHead:
        """The slot's backup head; counter 0 and no tag if never advanced."""
        account_id = _key(account_id, slot)
        got = self.store.get_head(account_id)
        return BackupHead(0, None) if got is None else BackupHead(got[0], got[1])

    def advance_head(self, account_id: str, counter: int, tag: bytes, *,
                     slot: str = "", catch_up: bool = False) -> BackupHead:
        """Move the head to ``(counter, tag)`` if ``counter`` is exactly the old one + 1.

        ``BackupHeadConflict`` (with ``current``) otherwise: the vault never
        moves a head backwards or skips a step, so a device that saw counter n
        can tell later whether the vault rolled its head back.  Each slot has
        its own head.  ``catch_up`` (a realm's lagging head, realms.md §8; the
        caller has checked the record proof) takes any counter above the old one.
        """
        account_id = _key(account_id, slot)
        if isinstance(counter, bool) or not isinstance(counter, int) or not 1 <= counter <= MAX_HEAD_COUNTER:
            raise VaultProtocolError(f"head counter must be 1 to {MAX_HEAD_COUNTER}")
        if not isinstance(tag, bytes) or len(tag) != HEAD_TAG_SIZE:
            raise VaultProtocolError(f"head tag must be {HEAD_TAG_SIZE} bytes")
        ok, current = (self.store.advance_head(account_id, counter, tag, catch_up=True)
                       if catch_up else self.store.advance_head(account_id, counter, tag))
        if not ok:
            err = BackupHeadConflict(
                f"the backup head is at {current}; only {current + 1} can follow it"
                if not catch_up else f"the backup head is at {current}, not below {counter}")
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

    def _open_payload(self, row: RecordRow) -> _Payload:
        assert row.sealed is not None
        plain = self._open_sealed_record(row.account_id, row.generation, row.sealed)
        return _Payload.parse(plain, row.account_id)

    def _fake_cid(self, account_id: str) -> bytes:
        nonce = hmac.new(self._reg_key, frame(labels.FAKE_CID, account_id.encode()),
                         hashlib.sha256).digest()[:REG_NONCE]
        return _cid(account_id, nonce)

    # -- row integrity (spec §5: the counter columns are bound to the sealed record) ----

    def _row_mac(self, account_id: str, state: State, used: int, limit: int, gen: int,
                 sealed: bytes | None) -> bytes:
        msg = frame(labels.ROW_MAC, account_id.encode(), state.value.encode(),
                    str(used).encode(), str(limit).encode(), str(gen).encode(), sealed or b"")
        return hmac.new(self._row_key, msg, hashlib.sha256).digest()

    def _row(self, account_id: str, c: Counter, gen: int, sealed: bytes | None) -> RecordRow:
        mac = self._row_mac(account_id, c.state, c.used, c.limit, gen, sealed)
        return RecordRow(account_id, c.state, c.used, c.limit, gen, sealed, mac)

    def _verified(self, row: RecordRow | None) -> RecordRow | None:
        """``row`` if its MAC verifies; otherwise the record is refused (never reset)."""
        if row is None:
            return None
        want = self._row_mac(row.account_id, row.state, row.used, row.limit, row.generation,
                             row.sealed)
        if row.mac is None or not hmac.compare_digest(row.mac, want):
            _log.error("record of account %r failed its integrity check (edited columns?); "
                       "refused", row.account_id)
            raise AttemptsExhausted(
                "the vault refuses this record: it failed its integrity check",
                hint="the vault operator must restore the vault database from a backup")
        return row

    def sign_unsigned_rows(self) -> int:
        """Give every row written before the row MAC existed its MAC; return how many.

        Run once when a vault starts on a database from an older version (the
        stores add the column); from then on a row without a valid MAC is refused.
        """
        n = 0
        for row in self.store.unsigned_rows():
            def fn(cur: RecordRow | None, _s: SessionRow | None, old: RecordRow = row) -> Mutation:
                if cur is None or cur.mac is not None or cur != old:
                    return Mutation()
                return Mutation(row=self._row(cur.account_id, self._counter(cur),
                                              cur.generation, cur.sealed))
            self.store.transact(row.account_id, fn)
            n += 1
        if n:
            _log.warning("signed %d record rows written by an older vault version", n)
        return n

    def _maybe_purge(self) -> None:
        now = self._clock()
        with self._purge_lock:
            if now - self._last_purge < self.policy.session_ttl:
                return
            self._last_purge = now
        self.store.purge_sessions(now)


@dataclass(frozen=True)
class _Payload:
    """What a sealed record holds: the OPAQUE record, the wrapped K, the credential
    identifier it was registered under, and SHA-256 of the record proof."""

    record: bytes
    wrapped: bytes
    cid: bytes
    verifier: bytes | None
    ksf: dict[str, int] | None = None

    @classmethod
    def parse(cls, plain: bytes, account_id: str) -> _Payload:
        for n in (5, 4):
            try:
                parts = unframe(plain, n)
            except ValueError:
                continue
            # Version 3 (slots) adds the Argon2id parameters; version 2 has four parts.
            ksf = check_ksf(json.loads(parts[4])) if n == 5 else None
            return cls(parts[0], parts[1], parts[2], parts[3], ksf)
        # Version 1 records: frame(record, wrapped K); identifier = the account id.
        record, wrapped = unframe(plain, 2)
        return cls(record, wrapped, account_id.encode(), None)

    def __repr__(self) -> str:
        return "<record payload>"


def _cid(account_id: str, nonce: bytes) -> bytes:
    """The OPAQUE credential identifier of one registration (spec §2.1)."""
    return frame(account_id.encode(), nonce)


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
    "RegistrationStarted",
    "SlotStatus",
    "Vault",
    "VaultPolicy",
    "VaultSecrets",
    "check_account_id",
    "check_slot",
]
