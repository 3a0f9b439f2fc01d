"""The guess counter: an explicit state machine, apart from storage and HTTP.

States (``docs/state-machines/guess-counter.dot`` draws them)::

    ABSENT      no row for the account
    ACTIVE(n)   a record with its wrapped K; n guesses used since the last success
    PHANTOM(n)  no record, but n guesses were spent on it (unknown accounts count
                exactly like real ones, so attempts-left never tells them apart)
    LOCKED      tombstone: the record and the wrapped K are erased for good

Each transition returns the new state and the exact list of outputs the vault
performs, in order.  The vault core commits the new state durably *before* it
acts on ``SEND_KE2`` / ``SEND_FAKE_KE2``: a guess is spent even if the answer
never leaves the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class State(str, Enum):
    """Where an account's record is in its life."""

    ABSENT = "absent"
    ACTIVE = "active"
    PHANTOM = "phantom"
    LOCKED = "locked"


class Event(str, Enum):
    """What can happen to a record."""

    REGISTER = "register"
    LOGIN_START = "login_start"
    KE3_VALID = "ke3_valid"
    KE3_INVALID = "ke3_invalid"
    KE3_NO_SESSION = "ke3_no_session"
    DELETE = "delete"


class Out(str, Enum):
    """What the vault does in response, in the order listed."""

    STORE_RECORD = "store_record"
    DROP_SESSIONS = "drop_sessions"
    DROP_OTHER_SESSIONS = "drop_other_sessions"
    COUNT_GUESS = "count_guess"
    ERASE_RECORD = "erase_record"
    COMMIT = "commit"
    SEND_KE2 = "send_ke2"
    SEND_FAKE_KE2 = "send_fake_ke2"
    ANSWER_LOCKED = "answer_locked"
    CONSUME_SESSION = "consume_session"
    RESET_COUNTER = "reset_counter"
    RESTORE_RECORD = "restore_record"
    RELEASE_KEY = "release_key"
    ANSWER_INVALID = "answer_invalid"
    REJECT_SESSION = "reject_session"


@dataclass(frozen=True)
class Counter:
    """A record's counter state: ``used`` guesses out of ``limit``."""

    state: State
    used: int
    limit: int

    @property
    def attempts_left(self) -> int:
        """Guesses still allowed (what the answer to a login says)."""
        return 0 if self.state is State.LOCKED else max(self.limit - self.used, 0)


def absent(limit: int) -> Counter:
    """The counter of an account the vault has never seen."""
    return Counter(State.ABSENT, 0, limit)


def step(c: Counter, event: Event, *, limit: int) -> tuple[Counter, list[Out]]:
    """Apply ``event`` to ``c``; return the new counter and the outputs, in order.

    ``limit`` is the vault's current limit, used when a row is (re)created.
    """
    if event is Event.REGISTER:
        return Counter(State.ACTIVE, 0, limit), [Out.STORE_RECORD, Out.DROP_SESSIONS, Out.COMMIT]
    if event is Event.DELETE:
        return absent(limit), [Out.ERASE_RECORD, Out.DROP_SESSIONS, Out.COMMIT]
    if event is Event.LOGIN_START:
        return _login_start(c, limit)
    if event is Event.KE3_NO_SESSION:
        return c, [Out.REJECT_SESSION]
    if event is Event.KE3_INVALID:
        return c, [Out.CONSUME_SESSION, Out.COMMIT, Out.ANSWER_INVALID]
    if event is Event.KE3_VALID:
        return _ke3_valid(c)
    raise ValueError(f"unknown event {event!r}")


def _login_start(c: Counter, limit: int) -> tuple[Counter, list[Out]]:
    if c.state is State.LOCKED:
        return c, [Out.ANSWER_LOCKED]
    real = c.state is State.ACTIVE
    send = Out.SEND_KE2 if real else Out.SEND_FAKE_KE2
    lim = c.limit if real or c.state is State.PHANTOM else limit
    used = c.used + 1
    if used < lim:
        nxt = Counter(State.ACTIVE if real else State.PHANTOM, used, lim)
        return nxt, [Out.COUNT_GUESS, Out.COMMIT, send]
    # The last allowed guess: erase now, so nothing but this one session can
    # ever open the record again; it dies with the session unless KE3 is valid.
    return Counter(State.LOCKED, lim, lim), [
        Out.COUNT_GUESS,
        Out.ERASE_RECORD,
        Out.DROP_OTHER_SESSIONS,
        Out.COMMIT,
        send,
    ]


def _ke3_valid(c: Counter) -> tuple[Counter, list[Out]]:
    if c.state is State.ACTIVE:
        return Counter(State.ACTIVE, 0, c.limit), [
            Out.CONSUME_SESSION,
            Out.RESET_COUNTER,
            Out.COMMIT,
            Out.RELEASE_KEY,
        ]
    if c.state is State.LOCKED:
        # Only the last session survives the lock; its KE3 proves the password.
        return Counter(State.ACTIVE, 0, c.limit), [
            Out.CONSUME_SESSION,
            Out.RESTORE_RECORD,
            Out.COMMIT,
            Out.RELEASE_KEY,
        ]
    # ABSENT/PHANTOM have no record: a valid KE3 cannot exist (fake KE2 only).
    raise ValueError(f"a valid KE3 is impossible in state {c.state.value}")


__all__ = ["Counter", "Event", "Out", "State", "absent", "step"]
