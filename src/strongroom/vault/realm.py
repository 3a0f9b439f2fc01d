"""A vault acting as one realm of a threshold realm set (``docs/spec/realms.md``).

A realm keeps, per slot, one Shamir share ``s_i`` of a client-chosen OPRF
key, the public share ``P_i = s_i·B``, the client's unlock tag for this
realm, a share ``e_i`` of the encryption scalar and the encrypted K ``c``.
It evaluates a blinded element under ``s_i`` with a DLEQ proof, *after* it
has counted the guess and committed it durably, and releases ``e_i`` and
``c`` only for the matching unlock tag (constant-time compare).

During a password change a record holds two registrations side by side
(the one the client keeps and the staged one, §4.3): one counter counts the
evaluations of both, so two registrations never give an attacker more
guesses than one; ``commit`` keeps one of them.

Realm records live in the vault's ``records`` table under their own store
key (:func:`realm_key`), sealed under the vault's record key with their own
AD label and bound to their counter columns by the row MAC of
vault-protocol §5, through the same :meth:`RecordStore.transact` as
protocol-3 records: an edited row is refused (410), never reset.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from typing import Any

from ..errors import (
    AttemptsExhausted,
    InvalidLogin,
    ProtocolError,
    RealmNotRegistered,
    VaultAuthError,
    VaultProtocolError,
    VaultStoreError,
)
from ..opaque import _group, dleq
from ..realms import labels as realm_labels
from ..realms.shamir import MAX_REALMS
from .account_id import check_account_id
from .core import MAX_WRAPPED_KEY, PROOF_SIZE, SLOT_RE, Vault
from .counter import Counter, State
from .params import check_ksf, encode_ksf
from .sealing import frame, open_sealed, seal, unframe
from .store import Mutation, RecordRow, SessionRow, record_key

#: Appended to the account id to make the pseudo-account whose slots hold realm records
#: (realms.md §6.1); not printable, so no account id or slot key equals a realm key.
REALM_MARK = "\x1e"
TAG_SIZE = 32
_PAYLOAD_VERSION = b"\x01"
#: A record holding two registrations during a password change (realms.md §6.1).
_PAIR_VERSION = b"\x02"


def realm_key(account_id: str, slot: str) -> str:
    """The store key of the realm record of ``slot`` of ``account_id``."""
    check_account_id(account_id)
    if not isinstance(slot, str) or not SLOT_RE.match(slot):
        raise VaultProtocolError("a realm record needs a slot id (1 to 64 of A-Z a-z 0-9 _ -)")
    return record_key(account_id + REALM_MARK, slot)


def realm_pseudo_account(account_id: str) -> str:
    """What ``vault account delete`` erases besides the account itself (its realm rows)."""
    return account_id + REALM_MARK


@dataclass(frozen=True)
class RealmRegistration:
    """What a client deposits at one realm (realms.md §4.1, §5)."""

    index: int
    oprf_share: bytes
    public_share: bytes
    unlock_tag: bytes
    key_share: bytes
    wrapped_key: bytes
    proof_verifier: bytes
    ksf: dict[str, int]

    def __repr__(self) -> str:
        return f"<RealmRegistration index={self.index}>"

    def to_bytes(self) -> bytes:
        """The sealed record's plaintext (realms.md §5)."""
        return frame(_PAYLOAD_VERSION, bytes([self.index]), self.oprf_share, self.public_share,
                     self.unlock_tag, self.key_share, self.wrapped_key, self.proof_verifier,
                     encode_ksf(self.ksf))

    @classmethod
    def parse(cls, plain: bytes) -> RealmRegistration:
        """The inverse of :meth:`to_bytes`; ``ValueError`` if it is not one."""
        import json

        parts = unframe(plain, 9)
        if parts[0] != _PAYLOAD_VERSION or len(parts[1]) != 1:
            raise ValueError("unknown realm record version")
        return cls(parts[1][0], parts[2], parts[3], parts[4], parts[5], parts[6], parts[7],
                   check_ksf(json.loads(parts[8])))


@dataclass(frozen=True)
class Evaluation:
    """A counted evaluation: ``Z_i = s_i·M``, its DLEQ proof, and the evaluations left."""

    evaluation: bytes
    proof: bytes
    attempts_left: int


@dataclass(frozen=True)
class Released:
    """What a matching unlock tag releases: the key share ``e_i`` and the encrypted K."""

    key_share: bytes
    wrapped_key: bytes

    def __repr__(self) -> str:
        return "<Released>"


@dataclass(frozen=True)
class RealmStatus:
    """The owner's view of one realm record."""

    exists: bool
    locked: bool
    attempts_left: int
    attempt_limit: int
    ksf: dict[str, int] | None
    index: int | None
    #: Each registration held (1, or 2 during a password change): its public share and KSF.
    registrations: tuple[tuple[bytes, dict[str, int]], ...] = ()


class Realm:
    """The realm endpoints' logic over a :class:`Vault` (its store, secrets, policy,
    clock and randomness)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    # -- registration ---------------------------------------------------------

    def register(self, account_id: str, slot: str, reg: RealmRegistration, *,
                 proof: bytes | None = None, keep: bytes | None = None) -> None:
        """Store a realm record (generation + 1, counter 0); an active one needs its proof.

        With ``keep`` (a public share) the registration is *staged*: the record then
        holds the registration with that public share, if it has one, and ``reg``
        side by side under one counter (realms.md §4.3); any other is dropped.
        """
        key = realm_key(account_id, slot)
        payload = _check_registration(reg)
        if keep is not None and (not isinstance(keep, bytes) or len(keep) != 32):
            raise VaultProtocolError("the public share to keep is 32 bytes")
        v = self.vault

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            cur = v._verified(cur)
            regs: list[RealmRegistration] = []
            if cur is not None and cur.state is State.ACTIVE:
                held = self._open_all(cur)
                self._require_proof(held, proof)
                if keep is not None:
                    regs = [r for r in held if hmac.compare_digest(r.public_share, keep)][:1]
            gen = (cur.generation if cur else 0) + 1
            c = Counter(State.ACTIVE, 0, v.policy.attempt_limit)
            sealed = self._seal(key, gen, _to_bytes((*regs, payload)))
            return Mutation(row=v._row(key, c, gen, sealed))

        v.store.transact(key, fn)

    def commit(self, account_id: str, slot: str, public_share: bytes, proof: bytes | None) -> None:
        """Keep only the registration with ``public_share`` (the record proof needed); the
        counter is unchanged.  ``RealmNotRegistered`` if the record holds no such one."""
        key = realm_key(account_id, slot)
        if not isinstance(public_share, bytes) or len(public_share) != 32:
            raise VaultProtocolError("a public share is 32 bytes")
        v = self.vault

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            cur = v._verified(cur)
            if cur is None or cur.state is not State.ACTIVE:
                return Mutation(result="absent")
            held = self._open_all(cur)
            self._require_proof(held, proof)
            kept = [r for r in held if hmac.compare_digest(r.public_share, public_share)][:1]
            if not kept:
                return Mutation(result="absent")
            if len(held) == 1:
                return Mutation(result="ok")
            c = Counter(State.ACTIVE, cur.used, cur.limit)
            gen = cur.generation + 1
            return Mutation(row=v._row(key, c, gen, self._seal(key, gen, _to_bytes(kept))),
                            result="ok")

        if v.store.transact(key, fn) != "ok":
            raise RealmNotRegistered("this realm holds no registration with that public share")

    def _require_proof(self, held: list[RealmRegistration], proof: bytes | None) -> None:
        verifier = held[0].proof_verifier
        if not isinstance(proof, bytes) or len(proof) != PROOF_SIZE or not hmac.compare_digest(
                hashlib.sha256(proof).digest(), verifier):
            raise VaultAuthError(
                "replacing or deleting this realm record needs proof that the caller has its "
                "backup key")

    # -- status -------------------------------------------------------------------

    def status(self, account_id: str, slot: str) -> RealmStatus:
        """Whether a realm record exists, whether it is locked, evaluations left, its KSF."""
        key = realm_key(account_id, slot)
        v = self.vault
        row = v._verified(v.store.get(key))
        if row is None:
            lim = v.policy.attempt_limit
            return RealmStatus(False, False, lim, lim, None, None)
        if row.state is not State.ACTIVE:
            return RealmStatus(False, True, 0, row.limit, None, None)
        held = self._open_all(row)
        p = held[0]
        return RealmStatus(True, False, max(row.limit - row.used, 0), row.limit, p.ksf, p.index,
                           tuple((r.public_share, r.ksf) for r in held))

    # -- evaluate -------------------------------------------------------------------

    def evaluate(self, account_id: str, slot: str, blinded: bytes,
                 public_share: bytes | None = None) -> Evaluation:
        """Count a guess, commit it durably, then return ``s_i·M`` with its DLEQ proof.

        ``public_share`` picks the registration (default: the first one held); one
        counter counts the evaluations of every registration of the record.  A
        malformed element is refused before anything is counted
        (``VaultProtocolError``); a record at its limit is ``AttemptsExhausted``;
        no registration with that public share is ``RealmNotRegistered`` (not counted).
        """
        key = realm_key(account_id, slot)
        try:
            m = _group.deserialize_element(blinded, "blinded element")
        except ProtocolError as exc:
            raise VaultProtocolError(exc.message) from None
        v = self.vault
        if v.store.locks_per_record:
            # One transaction (PostgreSQL: the lock is per record, it holds up no other):
            # the evaluation is computed from the row read under the lock, so there is no
            # separate read to repeat; it is returned only after the commit.
            def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
                cur = v._verified(cur)
                _usable(cur)
                assert cur is not None
                # A public share the record does not hold raises here: rolled back, not counted.
                z, proof = self._evaluated(_pick(self._open_all(cur), public_share), m)
                row, left = self._counted(key, cur)
                return Mutation(row=row, result=Evaluation(z, proof, left))

            return v.store.transact(key, fn)  # type: ignore[no-any-return]
        for _ in range(3):
            row = v._verified(v.store.get(key))
            _usable(row)
            assert row is not None
            # Computed before the transaction (short lock), returned only after its commit.
            z, proof = self._evaluated(_pick(self._open_all(row), public_share), m)
            outcome = v.store.transact(key, self._count_fn(key, row.generation))
            if outcome[0] == "ok":
                return Evaluation(z, proof, outcome[1])
            if outcome[0] == "absent":
                raise RealmNotRegistered()
            if outcome[0] == "locked":
                raise AttemptsExhausted()
        raise VaultStoreError("the realm record changed during the evaluation; try again")

    def _evaluated(self, p: RealmRegistration, m: bytes) -> tuple[bytes, bytes]:
        """``s_i·M`` and its DLEQ proof against ``P_i`` (secret until the guess is committed)."""
        z = _group.scalar_mult(p.oprf_share, m)
        return z, dleq.generate_proof(p.oprf_share, _group.GENERATOR, p.public_share, [m], [z],
                                      _group.random_scalar(self.vault._rng))

    def _count_fn(self, key: str, generation: int) -> Any:
        v = self.vault

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            cur = v._verified(cur)
            if cur is None:
                return Mutation(result=("absent", 0))
            if cur.state is not State.ACTIVE or cur.used >= cur.limit:
                return Mutation(result=("locked", 0))
            if cur.generation != generation:
                return Mutation(result=("changed", 0))  # re-registered meanwhile: recompute
            row, left = self._counted(key, cur)
            return Mutation(row=row, result=("ok", left))

        return fn

    def _counted(self, key: str, cur: RecordRow) -> tuple[RecordRow, int]:
        """``cur`` with one more evaluation counted, and the attempts then left."""
        c = Counter(State.ACTIVE, cur.used + 1, cur.limit)
        return self.vault._row(key, c, cur.generation, cur.sealed), c.attempts_left

    # -- unlock ---------------------------------------------------------------------

    def unlock(self, account_id: str, slot: str, tag: bytes) -> Released:
        """Release ``e_i`` and ``c`` for the matching unlock tag and reset the counter.

        A wrong tag is ``InvalidLogin`` (the guess stays counted); at the limit it
        erases the record (a tombstone).  An unlock never counts a guess: it cannot
        test a password without an evaluation (realms.md §7).
        """
        key = realm_key(account_id, slot)
        if not isinstance(tag, bytes) or len(tag) != TAG_SIZE:
            raise VaultProtocolError(f"an unlock tag is {TAG_SIZE} bytes")
        v = self.vault

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            cur = v._verified(cur)
            if cur is None:
                return Mutation(result=("absent", None))
            if cur.state is not State.ACTIVE:
                return Mutation(result=("locked", None))
            match = None
            for p in self._open_all(cur):  # every registration compared, none skipped
                if hmac.compare_digest(tag, p.unlock_tag):
                    match = p
            if match is not None:
                c = Counter(State.ACTIVE, 0, cur.limit)
                return Mutation(row=v._row(key, c, cur.generation, cur.sealed),
                                result=("ok", Released(match.key_share, match.wrapped_key)))
            if cur.used >= cur.limit:
                c = Counter(State.LOCKED, cur.limit, cur.limit)
                return Mutation(row=v._row(key, c, cur.generation, None), result=("erased", None))
            return Mutation(result=("invalid", cur.limit - cur.used))

        # Not forced to disk: a lost reset keeps guesses counted, a lost erase leaves a
        # record at its limit, which answers no evaluation (realms.md §6.2 rule 3).
        kind, value = v.store.transact(key, fn, durable=False)
        if kind == "ok":
            return value  # type: ignore[no-any-return]
        if kind == "absent":
            raise RealmNotRegistered()
        if kind == "invalid":
            raise InvalidLogin(attempts_left=value)
        if kind == "erased":
            raise AttemptsExhausted(
                "wrong password; that was the last attempt: this realm has erased its share")
        raise AttemptsExhausted()

    # -- delete -----------------------------------------------------------------------

    def delete(self, account_id: str, slot: str, proof: bytes | None = None) -> bool:
        """Erase the realm record (an active one only with its proof); True if one existed."""
        key = realm_key(account_id, slot)
        v = self.vault

        def fn(cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            cur = v._verified(cur)
            if cur is not None and cur.state is State.ACTIVE:
                self._require_proof(self._open_all(cur), proof)
            return Mutation(row=None, result=cur is not None and cur.state is State.ACTIVE)

        return bool(v.store.transact(key, fn))

    # -- head catch-up ------------------------------------------------------------------

    def catch_up_head(self, account_id: str, slot: str, counter: int, tag: bytes,
                      proof: bytes | None) -> None:
        """Move this slot's backup head forward to ``(counter, tag)`` in one step, for a
        realm that missed advances (realms.md §8): any counter above the current one, and
        only with the record proof of the slot's active realm record (the caller has K).
        ``BackupHeadConflict`` (with ``current``) when the head is not below ``counter``."""
        key = realm_key(account_id, slot)
        v = self.vault
        row = v._verified(v.store.get(key))
        if row is None or row.state is not State.ACTIVE:
            raise RealmNotRegistered()
        self._require_proof(self._open_all(row), proof)
        v.advance_head(account_id, counter, tag, slot=slot, catch_up=True)

    # -- sealing ------------------------------------------------------------------------

    def _seal(self, key: str, gen: int, plain: bytes) -> bytes:
        return seal(self.vault._secrets.record_key, plain, _ad(key, gen), self.vault._rng)

    def _open_all(self, row: RecordRow) -> list[RealmRegistration]:
        """The registrations a record holds (1, or 2 during a change), oldest first."""
        if row.sealed is None:
            raise AttemptsExhausted()
        plain = open_sealed(self.vault._secrets.record_key, row.sealed,
                            _ad(row.account_id, row.generation), "stored realm record")
        try:
            if plain[4:5] == _PAIR_VERSION:
                parts = unframe(plain, 3)
                if parts[0] != _PAIR_VERSION:
                    raise ValueError("unknown realm record version")
                return [RealmRegistration.parse(parts[1]), RealmRegistration.parse(parts[2])]
            return [RealmRegistration.parse(plain)]
        except ValueError:
            raise VaultProtocolError("the stored realm record is malformed") from None


def _ad(key: str, gen: int) -> bytes:
    return frame(realm_labels.RECORD_AD, key.encode(), str(gen).encode())


def _to_bytes(regs: tuple[RealmRegistration, ...] | list[RealmRegistration]) -> bytes:
    """One registration: its own payload (version 1); two: ``frame(u8(2), first, second)``."""
    if len(regs) == 1:
        return regs[0].to_bytes()
    return frame(_PAIR_VERSION, regs[0].to_bytes(), regs[1].to_bytes())


def _pick(held: list[RealmRegistration], public_share: bytes | None) -> RealmRegistration:
    if public_share is None:
        return held[0]
    for r in held:
        if hmac.compare_digest(r.public_share, public_share):
            return r
    raise RealmNotRegistered("this realm holds no registration with that public share")


def _usable(row: RecordRow | None) -> None:
    if row is None:
        raise RealmNotRegistered()
    if row.state is not State.ACTIVE or row.used >= row.limit:
        raise AttemptsExhausted()


def _check_registration(reg: RealmRegistration) -> RealmRegistration:
    """``reg`` checked, its shares and parameters in their canonical form."""
    if isinstance(reg.index, bool) or not isinstance(reg.index, int) or not (
            1 <= reg.index <= MAX_REALMS):
        raise VaultProtocolError(f"a realm index is 1 to {MAX_REALMS}")
    try:
        s_i = _group.deserialize_scalar(reg.oprf_share, "OPRF share")
        p_i = _group.deserialize_element(reg.public_share, "public share")
        e_i = _group.deserialize_scalar(reg.key_share, "key share")
    except ProtocolError as exc:
        raise VaultProtocolError(exc.message) from None
    if not hmac.compare_digest(_group.scalar_mult_base(s_i), p_i):
        raise VaultProtocolError("the public share is not the OPRF share times the generator")
    if len(reg.unlock_tag) != TAG_SIZE:
        raise VaultProtocolError(f"an unlock tag is {TAG_SIZE} bytes")
    if not 1 <= len(reg.wrapped_key) <= MAX_WRAPPED_KEY:
        raise VaultProtocolError(f"wrapped key must be 1 to {MAX_WRAPPED_KEY} bytes")
    if len(reg.proof_verifier) != PROOF_SIZE:
        raise VaultProtocolError(f"proof verifier must be {PROOF_SIZE} bytes")
    try:
        ksf = check_ksf(reg.ksf)
    except ValueError as exc:
        raise VaultProtocolError(f"key-stretching parameters: {exc}") from None
    return replace(reg, oprf_share=s_i, public_share=p_i, key_share=e_i, ksf=ksf)


__all__ = ["REALM_MARK", "Evaluation", "Realm", "RealmRegistration", "RealmStatus", "Released",
           "realm_key", "realm_pseudo_account"]
