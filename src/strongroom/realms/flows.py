"""The realm-set journey over a repository: enable, recover, change password, disable,
status (``docs/spec/realms.md`` §4), and the threshold backup head (§8).

As in ``client/flows.py``: each flow checks what it can before it writes, and
the locator write (``ext/vault.json``, version 3) is the commit point of
enable and change.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..client.vault_client import VaultClient
from ..crypto.keys import BackupKey
from ..errors import (
    BackupHeadConflict,
    RealmsUnavailable,
    StrongroomError,
    UsageError,
    VaultUnreachable,
)
from ..storage.base import Backend
from ..vault.params import DEFAULT_KSF, KsfBounds
from . import client as rc
from .locator import LOCATOR, RealmLocator, read_realm_locator

Rng = Callable[[int], bytes]
Clock = Callable[[], float]
SLOT_BYTES = 16
#: A lagging realm's head is brought up by at most this many steps (realms.md §8).
MAX_HEAD_REPAIR = 64
CLIENT_BOUNDS = KsfBounds()


def _pw(password: str | bytes) -> bytes:
    return password.encode("utf-8") if isinstance(password, str) else bytes(password)


def _check_bounds(ksf: dict[str, int], bounds: KsfBounds) -> dict[str, int]:
    try:
        return bounds.check(ksf)
    except ValueError as exc:
        raise UsageError(f"key-stretching parameters refused: {exc}") from None


def enable(backend: Backend, key: BackupKey, clients: Sequence[VaultClient], password: str | bytes,
           *, account: str, threshold: int, register_threshold: int | None = None,
           pins: Sequence[bytes | None] | None = None, ksf: dict[str, int] | None = None,
           bounds: KsfBounds = CLIENT_BOUNDS, rng: Rng = os.urandom,
           clock: Clock = time.time) -> RealmLocator:
    """Register K over the realm set in a new slot, then write the version-3 locator.

    Fewer than ``register_threshold`` (default all) acceptances: what was
    registered is deleted again (with the record proof) and ``RealmsUnavailable``
    names the realms that missed it; the repository stays as it was.
    """
    from ..client.flows import read_locator

    if read_realm_locator(backend) is not None or read_locator(backend) is not None:
        raise UsageError("this repository is already protected by a password",
                         hint="change the password instead, or turn it off first",
                         reason="already-enabled")
    loc = register_new_slot(key, clients, password, account=account, threshold=threshold,
                            register_threshold=register_threshold, pins=pins, ksf=ksf,
                            bounds=bounds, rng=rng, clock=clock)
    backend.put(LOCATOR, loc.to_json())
    return loc


def register_new_slot(key: BackupKey, clients: Sequence[VaultClient], password: str | bytes, *,
                      account: str, threshold: int, register_threshold: int | None = None,
                      pins: Sequence[bytes | None] | None = None,
                      ksf: dict[str, int] | None = None, bounds: KsfBounds = CLIENT_BOUNDS,
                      rng: Rng = os.urandom, clock: Clock = time.time) -> RealmLocator:
    """Register K in a fresh slot of the realm set; the signed locator, not yet written.

    Fewer than ``register_threshold`` acceptances: what was registered is deleted
    again and ``RealmsUnavailable`` is raised."""
    chosen = _check_bounds(dict(ksf or DEFAULT_KSF), bounds)
    slot = rng(SLOT_BYTES).hex()
    try:
        got = rc.register(clients, key, _pw(password), account=account, slot=slot,
                          threshold=threshold, ksf=chosen, rng=rng, created=int(clock()),
                          register_threshold=register_threshold, pins=pins)
    except RealmsUnavailable:
        _undo(clients, slot, key, account)
        raise
    if len(clients) - len(got.missed) < (register_threshold or len(clients)):
        _undo(clients, slot, key, account)
        raise rc._unavailable("not enough realms accepted the registration; nothing was "
                              "enabled", got.missed)
    return got.locator


def _undo(clients: Sequence[VaultClient], slot: str, key: BackupKey, account: str) -> None:
    proof = rc.record_proof(key, account)
    for c in clients:
        try:
            c.for_slot(slot).realm_delete(proof)
        except StrongroomError:
            pass  # a realm that missed the registration has nothing to delete


def recover(backend: Backend, clients: Sequence[VaultClient], password: str | bytes, *,
            bounds: KsfBounds, confirm_last: Callable[[], bool] | None = None,
            rng: Rng = os.urandom, pins: Mapping[str, bytes | None] | None = None
            ) -> rc.RecoveryResult:
    """K from the realm set the locator names (``UsageError`` without one).

    ``pins`` (URL → the realm's configured public key): a locator naming another
    realm id for a pinned realm is ``ServerKeyMismatch`` before any request."""
    loc = _locator(backend)
    if pins:
        rc.check_pins(loc, pins)
    return rc.recover(loc, clients, _pw(password), bounds=bounds, rng=rng,
                      confirm_last=confirm_last)


def _locator(backend: Backend) -> RealmLocator:
    loc = read_realm_locator(backend)
    if loc is None:
        raise UsageError("this repository is not protected by a realm set",
                         reason="no-password")
    return loc


def change_password(backend: Backend, key: BackupKey, clients: Sequence[VaultClient],
                    new_password: str | bytes, *, register_threshold: int | None = None,
                    pins: Sequence[bytes | None] | None = None,
                    ksf: dict[str, int] | None = None, bounds: KsfBounds = CLIENT_BOUNDS,
                    rng: Rng = os.urandom, warn: Callable[[str], None] | None = None
                    ) -> RealmLocator:
    """Change the password so that no subset of realms accepting can strand the backup
    (realms.md §4.3).

    1. *Stage*: every realm gets the new registration (same K and slot, new
       polynomials) **next to** the current one (``keep``), under one counter.
    2. Fewer than ``k`` staged: each realm is told to keep the current
       registration again, and ``RealmsUnavailable`` says the old password still
       works.  Otherwise the new locator is written: the commit point.
    3. *Commit*: every realm that staged drops the old registration.  A realm
       where that fails keeps both (harmless: one counter; dropped on the next
       recovery); fewer than ``register_threshold`` staged is then reported as
       ``RealmsUnavailable`` after the write, otherwise ``warn`` hears of the
       realms that missed it (they are repaired on the next recovery).
    Fewer than ``register_threshold`` reachable: nothing is sent.
    """
    loc = _locator(backend)
    loc.verify(key)
    chosen = _check_bounds(dict(ksf or DEFAULT_KSF), bounds)
    by_url = {c.url: c for c in clients}
    missing = [r.url for r in loc.realms if r.url not in by_url]
    if missing:
        raise UsageError("every realm of the set must be configured to change the password: "
                         + ", ".join(missing))
    ordered = [by_url[r.url] for r in loc.realms]
    try:
        got = rc.register(ordered, key, _pw(new_password), account=loc.account, slot=loc.slot,
                          threshold=loc.threshold, ksf=chosen, rng=rng, created=loc.created,
                          register_threshold=register_threshold, pins=pins,
                          known_ids=[r.realm_id for r in loc.realms],
                          keep=[r.public_share for r in loc.realms])
    except RealmsUnavailable as exc:
        _unstage(loc, ordered, key)  # as register_new_slot's undo: a no-op where none staged
        raise RealmsUnavailable(
            "the password was not changed (the old password still opens this backup): "
            + exc.message, failures=exc.failures) from None
    # The commit point.  A failed write is not un-staged: the write may have taken
    # effect, and both registrations side by side are harmless (one counter); the next
    # recovery commits whichever the locator in storage names.
    backend.put(LOCATOR, got.locator.to_json())
    staged = [c.url for c in ordered if c.url not in got.missed]
    left = {u: str(v) for u, v in rc.commit(got.locator, ordered, key, staged).items()
            if v is not True}
    if left and warn is not None:
        warn("the new password is set; these realms still hold the old registration next to "
             "the new one (one counter for both; it is dropped on the next recovery): "
             + "; ".join(f"{u}: {w}" for u, w in sorted(left.items())))
    if got.missed:
        what = ("the new password is set, but these realms missed the change (their old "
                "registration is useless now; they are repaired on the next recovery)")
        if len(ordered) - len(got.missed) < (register_threshold or len(ordered)):
            raise rc._unavailable(what, got.missed)
        if warn is not None:
            warn(what + ": " + "; ".join(f"{u}: {w}" for u, w in sorted(got.missed.items())))
    return got.locator


def _unstage(loc: RealmLocator, clients: Sequence[VaultClient], key: BackupKey) -> None:
    """Every realm keeps ``loc``'s registration only (a change that did not commit).  A
    realm where this fails keeps both registrations under one counter: harmless."""
    rc.commit(loc, clients, key)


def disable(backend: Backend, key: BackupKey, clients: Sequence[VaultClient]) -> dict[str, Any]:
    """Delete the realm records (with the proof) and, once fewer than ``k`` can remain, the
    locator.  Returns URL → deleted (bool) or the error."""
    loc = _locator(backend)
    loc.verify(key)
    got = rc.delete(loc, clients, key)
    gone = sum(1 for v in got.values() if isinstance(v, bool))
    if len(loc.realms) - gone >= loc.threshold:
        raise rc._unavailable("too few realms deleted their records: the old password would "
                              "still open this backup; nothing else was changed",
                              {u: str(v) for u, v in got.items() if not isinstance(v, bool)})
    backend.delete(LOCATOR)
    return got


class RealmHeads:
    """The backup head over a realm set, as :class:`~strongroom.client.rollback.HeadGuard`
    needs it (``HeadVault``): read = the ``k``-th highest head, advance = every realm."""

    def __init__(self, loc: RealmLocator, clients: Sequence[VaultClient],
                 proof: bytes | None = None) -> None:
        by_url = {c.url: c for c in clients}
        #: The record proof (from K): a lagging realm is brought up in one catch-up step.
        self._proof = proof
        self._clients = [by_url[r.url].for_slot(loc.slot) for r in loc.realms if r.url in by_url]
        self.k = loc.threshold
        self.url = "realms:" + ",".join(r.url for r in loc.realms)
        self.account, self.slot = loc.account, loc.slot
        #: ``(counter, tag) -> bool``: whether a tag authenticates under K_head
        #: (``HeadGuard.authenticates``); used to pick among tags reported for one counter.
        self.authentic: Callable[[int, bytes], bool] | None = None

    def head(self) -> tuple[int, bytes | None]:
        got = rc._parallel(lambda i: self._clients[i].head(), list(range(len(self._clients))))
        heads = [v if not isinstance(v, StrongroomError) else None for v in got.values()]
        try:
            counter, tags = rc.threshold_head(heads, self.k)
        except RealmsUnavailable as exc:
            raise VaultUnreachable(exc.message) from None
        if len(tags) > 1 and self.authentic is not None:
            # Several tags for the vouched counter: a realm that lies cannot forge one
            # that authenticates, so the authentic one (most vouched first) is the head.
            for t in tags:
                if self.authentic(counter, t):
                    return counter, t
        return counter, (tags[0] if tags else None)

    def advance_head(self, counter: int, tag: bytes) -> None:
        def one(i: int) -> bool:
            c = self._clients[i]
            try:
                c.advance_head(counter, tag)
                return True
            except BackupHeadConflict as exc:
                cur = exc.current
                if not isinstance(cur, int) or cur >= counter or (
                        self._proof is None and counter - cur > MAX_HEAD_REPAIR):
                    raise
            # A realm that missed earlier advances (realms.md §8).  With the record proof:
            # one catch-up to (counter, tag), whatever the lag; without it, step by step
            # (at most MAX_HEAD_REPAIR; only the final head is ever read back).
            if self._proof is not None:
                c.realm_catch_up_head(counter, tag, self._proof)
                return True
            for step in range(cur + 1, counter + 1):
                c.advance_head(step, tag)
            return True

        got = rc._parallel(one, list(range(len(self._clients))))
        ok = sum(1 for v in got.values() if v is True)
        if ok >= self.k:
            return
        if any(isinstance(v, BackupHeadConflict) for v in got.values()):
            raise BackupHeadConflict("another device advanced the backup head at the realms")
        raise VaultUnreachable(f"fewer than {self.k} realms took the new backup head")


__all__ = ["RealmHeads", "change_password", "disable", "enable", "recover",
           "register_new_slot"]
