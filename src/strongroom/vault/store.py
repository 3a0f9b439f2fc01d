"""The record store contract shared by the SQLite and PostgreSQL stores.

A store keeps four kinds of rows, keyed by *record key* or session id.  A
record key names one slot of one account (spec §2.2): the account id alone
for the account's legacy slot (records from before slots existed), else
``account id || 0x1F || slot id`` (:func:`record_key`).  Account ids are
printable, so the unit separator cannot occur in one and a key splits back
unambiguously (:func:`split_record_key`).

* records: the counter (state, used, limit, generation) in the clear, and the
  OPAQUE record with the wrapped K only as ``sealed`` (AEAD under the vault's
  record key, so a dump of the database shows neither); ``mac`` binds the
  counter columns to the sealed record, so an edit of them is refused;
* login sessions: the sealed OPAQUE server state of one login between KE2 and
  KE3, with its expiry, so any vault node can finish a login another began;
* accounts (standalone mode): the SHA-256 of each account's bearer token;
* backup heads: per account, the rollback-detection head ``(counter, tag)``
  that clients advance after each change of their snapshot list.  Only a
  counter and a MAC the vault cannot compute (no K); it outlives
  re-registration and record deletion so that it never goes backwards.

``transact`` is the one way to change a record: it runs ``fn`` while holding
the account's lock, applies the returned :class:`Mutation` and commits durably
before returning.  If the commit fails or its outcome is unknown it raises
:class:`~strongroom.errors.VaultStoreError` and the caller MUST NOT send
anything that depends on it (a guess may have been counted: it stays counted).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .counter import State

#: Separates account id and slot id in a record key; never in an account id (not printable).
SLOT_SEPARATOR = "\x1f"


def record_key(account_id: str, slot: str) -> str:
    """The store key of ``slot`` of ``account_id`` ("" = the legacy slot: the account id)."""
    return account_id if not slot else f"{account_id}{SLOT_SEPARATOR}{slot}"


def split_record_key(key: str) -> tuple[str, str]:
    """``(account id, slot id)`` of a record key (slot "" for the legacy slot)."""
    account, _sep, slot = key.partition(SLOT_SEPARATOR)
    return account, slot


def slot_prefix(account_id: str) -> str:
    """What every slot key of ``account_id`` (except the legacy one) starts with."""
    return account_id + SLOT_SEPARATOR


@dataclass(frozen=True)
class RecordRow:
    """One account's record as stored."""

    account_id: str
    state: State
    used: int
    limit: int
    generation: int
    sealed: bytes | None  # sealed OPAQUE record + wrapped K; None unless ACTIVE
    #: HMAC of every other field under a key from the vault's root (spec §5); None only
    #: in a row written before the MAC existed, or by someone without the root.
    mac: bytes | None = None

    #: The columns, in the order ``from_db`` reads them.
    COLUMNS = "account_id, state, used, lim, generation, sealed, mac"

    @classmethod
    def from_db(cls, r: tuple[Any, ...] | None) -> RecordRow | None:
        """The record from a row of :attr:`COLUMNS`.

        A state value that is not one of :class:`State` (an edited column) reads
        as a row whose MAC cannot verify, so the vault refuses it.
        """
        if r is None:
            return None
        sealed = None if r[5] is None else bytes(r[5])  # psycopg returns memoryview
        mac = None if r[6] is None else bytes(r[6])
        try:
            state = State(r[1])
        except ValueError:
            state, mac = State.LOCKED, None
        return cls(r[0], state, r[2], r[3], r[4], sealed, mac)

    def __repr__(self) -> str:
        return (
            f"RecordRow({self.account_id!r}, {self.state.value}, used={self.used}, "
            f"limit={self.limit}, generation={self.generation})"
        )


@dataclass(frozen=True)
class SessionRow:
    """One login between KE2 and KE3."""

    session_id: str
    account_id: str
    expires_at: float
    generation: int
    sealed_state: bytes  # sealed OPAQUE ServerLoginState
    sealed_record: bytes | None  # copy of the record's ``sealed`` (None for a fake login)

    def __repr__(self) -> str:
        return f"SessionRow({self.session_id!r}, {self.account_id!r}, expires_at={self.expires_at})"


_KEEP: Any = object()


@dataclass(frozen=True)
class Mutation:
    """What ``transact`` writes: all of it, or nothing, in one transaction."""

    row: RecordRow | None = _KEEP  # new record row; None deletes it; default keeps it
    add_session: SessionRow | None = None
    drop_sessions: bool = False  # every session of the account (except add_session)
    result: Any = None

    @property
    def keeps_row(self) -> bool:
        """True when the record row is left as it is."""
        return self.row is _KEEP


Fn = Callable[[RecordRow | None, SessionRow | None], Mutation]


class RecordStore(ABC):
    """Durable storage of records, login sessions and account tokens."""

    #: True when a read is a local file read that never waits on a server or a
    #: lock (SQLite in WAL mode); the vault may then read tokens on its event loop.
    local_reads: bool = False
    #: True when ``transact``'s lock covers only the one record key (PostgreSQL's
    #: per-account advisory lock): work done inside ``fn`` then holds up no other
    #: record, and the core computes there what it would otherwise compute before
    #: the transaction from a separate read (one round trip fewer per login start).
    locks_per_record: bool = False

    @abstractmethod
    def get(self, account_id: str) -> RecordRow | None:
        """The account's record row, or None (no lock taken)."""

    @abstractmethod
    def transact(self, account_id: str, fn: Fn, *, take_session: str | None = None,
                 durable: bool = True) -> Any:
        """Run ``fn(row, session)`` under the account's lock; apply and commit.

        With ``take_session``, the session of that id *and this account* is
        deleted in the same transaction and passed to ``fn`` (None if absent),
        so a KE3 can be tried once only.  Returns ``Mutation.result``.

        ``durable=True`` (the default, and always for a counted guess) returns
        only after the commit is on stable storage.  ``durable=False`` may lose
        the change in a power cut (never in a process crash); the core uses it
        only where losing the change errs on the safe side (see the spec §4).
        """

    @abstractmethod
    def record_keys(self, account_id: str) -> list[str]:
        """The keys of every record row of ``account_id`` (its legacy key and its slots), sorted."""

    @abstractmethod
    def unsigned_rows(self) -> list[RecordRow]:
        """Every record row without a MAC (rows written before the MAC existed)."""

    @abstractmethod
    def purge_sessions(self, now: float) -> int:
        """Delete every session that expired before ``now``; return how many."""

    @abstractmethod
    def put_account(self, name: str, token_hash: bytes) -> None:
        """Create or replace the standalone account ``name`` with its token hash."""

    @abstractmethod
    def account_for_token(self, token_hash: bytes) -> str | None:
        """The account whose token hashes to ``token_hash``, or None."""

    def defer_token_lookup(self, token_hash: bytes, then: Callable[[str | None], None]) -> None:
        """Look up the account of ``token_hash`` and call ``then`` with it (None: no account).

        Here at once.  A store whose reads are round trips to a server may instead
        look it up in the first round trip of this thread's next operation and call
        ``then`` before that operation returns anything or keeps any change (if
        ``then`` raises, the operation is rolled back and the error propagates), or
        in :meth:`settle_token_lookup`, whichever comes first.
        """
        then(self.account_for_token(token_hash))

    def settle_token_lookup(self, *, run: bool = True) -> None:
        """Do this thread's deferred token lookup now, if one is pending.

        ``run=False`` drops it unchecked: only for a request that goes on to a path
        that checks its token itself.
        """

    @abstractmethod
    def list_accounts(self) -> list[tuple[str, str | None, int]]:
        """Every record key and token name: ``(key, record state or None, used)``.

        A key of a slot reads back with :func:`split_record_key`."""

    @abstractmethod
    def delete_account(self, name: str) -> bool:
        """Erase the account: its token, record, sessions and backup head, in one transaction.

        True if anything existed.  The operator's tool (``vault account delete``); it
        needs no record proof, since the operator can delete rows anyway.
        """

    @abstractmethod
    def get_head(self, account_id: str) -> tuple[int, bytes] | None:
        """The account's backup head ``(counter, tag)``, or None if never advanced."""

    @abstractmethod
    def advance_head(self, account_id: str, counter: int, tag: bytes, *,
                     catch_up: bool = False) -> tuple[bool, int]:
        """Compare-and-set: store ``(counter, tag)`` only if ``counter`` is the old counter + 1
        (with ``catch_up``: only if it is above the old counter, realms.md §8).

        The check and the write are one durable transaction under the
        account's lock, so of concurrent advances to the same counter exactly
        one wins.  Returns ``(True, counter)`` on success, ``(False, current)``
        when the counter does not follow the stored one (0 when none).
        """

    def close(self) -> None:
        """Release connections.  Idempotent."""


__all__ = ["SLOT_SEPARATOR", "Fn", "Mutation", "RecordRow", "RecordStore", "SessionRow",
           "record_key", "slot_prefix", "split_record_key"]
