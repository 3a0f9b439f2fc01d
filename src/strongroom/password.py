"""Password mode, the whole journey, for a chat app: enable, open on a new device, change,
disable, status — with rollback detection on.

A chat app configures :class:`VaultAccess` once (the vault URL and public key
it ships with, the user's token, a private directory on the device) and then::

    repo = strongroom.Repository.create(backend, key)
    strongroom.password.enable(repo, access, "correct horse")     # deposit K
    repo.backup(["/data/chats"])                                     # head advanced

    # a new device, with only the password and the app's login:
    with strongroom.password.open_with_password(backend, access, "correct horse") as repo:
        repo.restore("latest", "/restore")                           # head verified first

Every ``Repository`` opened with ``vault=access`` (``open_with_password``
does that) verifies the vault's backup head before it lists or restores
snapshots and advances it after a backup or forget: a storage provider that
hides snapshots, serves an older repository, deletes ``ext/vault.json`` or
puts back an old one gets ``RollbackDetected``.  The protocol is
``docs/spec/vault-protocol.md``; the SDK guide is ``docs/sdk.md``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .crypto.keys import BackupKey
from .errors import RollbackDetected, UsageError, VaultError
from .vault.params import KsfBounds

if TYPE_CHECKING:
    from .api import Repository
    from .client.flows import VaultLocator
    from .client.rollback import HeadGuard, LocalHeads
    from .client.vault_client import VaultClient
    from .realms.client import RecoveryResult
    from .realms.locator import RealmLocator
    from .storage.base import Backend

Rng = Callable[[int], bytes]
Clock = Callable[[], float]


class _Access:
    """What :class:`VaultAccess` and :class:`RealmAccess` share: this device's remembered
    heads and the clients the access opened (closed with it)."""

    device_dir: str | os.PathLike[str] | None
    _clients: list[VaultClient]

    def heads(self) -> LocalHeads | None:
        """This device's record of the heads it saw (None without ``device_dir``)."""
        from .client.rollback import LocalHeads

        return LocalHeads(self.device_dir) if self.device_dir is not None else None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the clients this access opened."""
        clients, self._clients = self._clients, []
        for c in clients:
            c.close()


@dataclass
class VaultAccess(_Access):
    """How this device reaches the Backup Key Vault, and what it remembers.

    ``url`` and ``pinned_key`` come from the app's configuration (as a chat app
    ships its vault's keys), never from storage.  ``device_dir`` is a private
    directory (0700) where the device keeps the highest backup head it saw
    per repository: without it, a vault that rolls its own head back goes
    unnoticed.  ``on_skip`` decides what happens when a rollback check cannot
    run (no token, vault unreachable): None raises; a callable hears the
    reason and the operation goes on (the CLI warns).  ``ksf`` are the Argon2id
    parameters of new records (default ``DEFAULT_KSF``); ``bounds`` what this
    device accepts from the vault before it spends a guess.
    """

    url: str
    #: The account's bearer token or JWT, or a callable that returns a fresh one (the
    #: client asks it again once after a 401: a token that expired during a long backup).
    token: str | Callable[[], str] | None
    account: str | None = None
    pinned_key: bytes | None = None
    device_dir: str | os.PathLike[str] | None = None
    ksf: dict[str, int] | None = None
    bounds: KsfBounds = field(default_factory=KsfBounds)
    on_skip: Callable[[str], None] | None = None
    transport: Any = None
    timeout: float = 15.0
    _clients: list[VaultClient] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        return f"<VaultAccess {self.url} account={self.account}>"

    def client(self, account: str | None = None) -> VaultClient:
        """A vault client for ``account`` (default: this access's, else the token's own)."""
        from .client.vault_client import VaultClient

        if not self.token:
            raise UsageError("no vault token given")
        account = account or self.account
        for c in self._clients:
            if account in (None, c.account):
                return c.for_slot("")  # one connection pool per access
        c = VaultClient(self.url, account, self.token, transport=self.transport,
                        timeout=self.timeout)
        self._clients.append(c)
        if account is None:  # the token's own account
            self.account = c.account = c.whoami()
            c._set_account(c.account)
        return c



@dataclass(frozen=True)
class RealmConfig:
    """One realm of a threshold realm set (``docs/spec/realms.md``): its URL, the
    account's credential there, and its public key as the app ships it (the pin)."""

    url: str
    token: str | Callable[[], str] | None = field(repr=False)
    pinned_key: bytes | None = None


@dataclass
class RealmAccess(_Access):
    """How this device reaches a threshold realm set: ``n`` independent vaults, any
    ``threshold`` of which recover the key (a strict majority).

    Used everywhere a :class:`VaultAccess` is (``enable``, ``open_with_password``,
    ``recover_key``, ``change_password``, ``disable``, ``status``,
    ``Repository.open(vault=...)``).  ``register_threshold`` (default: every
    realm) is how many realms must accept an enable or a password change.
    The realm list and its order come from the app's configuration.
    """

    realms: list[RealmConfig]
    threshold: int
    account: str
    register_threshold: int | None = None
    device_dir: str | os.PathLike[str] | None = None
    ksf: dict[str, int] | None = None
    bounds: KsfBounds = field(default_factory=KsfBounds)
    on_skip: Callable[[str], None] | None = None
    timeout: float = 15.0
    #: After opening with the password, re-register the set when a reachable realm was
    #: left out (stale or lost record): ``open_with_password`` repairs it (realms.md §4.3).
    repair: bool = True
    _clients: list[VaultClient] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        return (f"<RealmAccess {self.threshold} of {len(self.realms)} account={self.account}>")

    @property
    def url(self) -> str:
        """A name of the set (what this device keys its remembered heads by)."""
        return "realms:" + ",".join(r.url for r in self.realms)

    def clients(self) -> list[VaultClient]:
        """One vault client per realm, in the configured order."""
        from .client.vault_client import VaultClient

        if not self._clients:
            for r in self.realms:
                if not r.token:
                    raise UsageError(f"no token given for the realm at {r.url}")
            self._clients = [VaultClient(r.url, self.account, r.token, timeout=self.timeout)
                             for r in self.realms]
        return list(self._clients)

    def pins(self) -> list[bytes | None]:
        """The configured public keys, in order."""
        return [r.pinned_key for r in self.realms]



@dataclass(frozen=True)
class RealmInfo:
    """One realm of this backup's set, as ``status`` reports it."""

    url: str
    index: int
    exists: bool
    locked: bool
    attempts_left: int
    error: str | None = None


@dataclass(frozen=True)
class SlotInfo:
    """One slot of the account at the vault."""

    slot: str
    exists: bool
    locked: bool
    attempts_left: int


@dataclass(frozen=True)
class PasswordStatus:
    """What ``status`` reports: this backup's slot and every slot of the account."""

    enabled: bool
    vault: str
    account: str
    slot: str | None
    exists: bool
    locked: bool
    attempts_left: int
    attempt_limit: int
    slots: list[SlotInfo]
    #: A realm set's realms (realms.md); empty for a single vault.  ``attempts_left``
    #: above is then what the set still allows: the threshold-th highest of theirs.
    realms: list[RealmInfo] = field(default_factory=list)
    threshold: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        from dataclasses import asdict

        return asdict(self)


def _check_url(loc: VaultLocator, access: VaultAccess) -> None:
    nodes = [u.strip().rstrip("/") for u in access.url.split(",")]  # a replicated vault's nodes
    if loc.url.rstrip("/") not in nodes:
        raise UsageError(f"this repository names the vault at {loc.url}, not the configured "
                         f"{access.url}")
    if access.pinned_key is not None and access.pinned_key != loc.server_public_key:
        raise UsageError("this repository names a vault whose key is not the configured one",
                         hint="the repository's vault locator may have been tampered with")


def _refuse_a_vanished_locator(repo: Repository, heads: LocalHeads | None) -> None:
    """No locator, yet this device saw the repository protected by a password: a provider
    serving an older state or hiding snapshots may not turn the guard off (``RollbackDetected``)."""
    if heads is not None and heads.knows(repo.id):
        raise RollbackDetected(
            "the repository's vault locator (ext/vault.json) is gone, but this device saw the "
            "repository protected by a password: the storage provider may be serving an older "
            "state or hiding snapshots",
            hint="if you turned the password off yourself on another device, remove "
                 f"{Path(heads.directory) / (repo.id + '.json')} on this one")


def head_guard(repo: Repository, access: VaultAccess | RealmAccess) -> HeadGuard | None:
    """The rollback guard of an open repository (None: not in password mode).

    ``RollbackDetected`` at once if this device saw the repository in password
    mode and its locator is gone, or names an older slot; ``FormatError`` if
    the locator does not authenticate under K.
    """
    if isinstance(access, RealmAccess):
        return _realm_head_guard(repo, access)
    from .client import flows
    from .client.rollback import HeadGuard

    backend, key = repo.backend, repo.backup_key
    loc = flows.read_locator(backend)
    heads = access.heads()
    if loc is None:
        _refuse_a_vanished_locator(repo, heads)
        return None
    loc.verify(key)
    _check_url(loc, access)
    if heads is not None:
        heads.check_slot(repo.id, loc.slot, loc.created)
    if not access.token:
        _skip(access, "rollback check skipped: no vault token to read the backup head with")
        return None
    client = access.client(loc.account).for_slot(loc.slot)
    return HeadGuard(repo.lister(), backend, key, client, heads, created=loc.created)


def _skip(access: VaultAccess | RealmAccess, why: str) -> None:
    if access.on_skip is None:
        raise VaultError(why)
    access.on_skip(why)


def enable(repo: Repository, access: VaultAccess | RealmAccess, password: str | bytes, *,
           rng: Rng = os.urandom, clock: Clock = time.time) -> VaultLocator | RealmLocator:
    """Protect an open repository with ``password``: a new slot at the vault, the locator,
    the first backup head.  Checks everything it can before it writes (``UsageError`` if
    already enabled; ``RollbackDetected`` if the repository's state is suspect)."""
    if isinstance(access, RealmAccess):
        return _realm_enable(repo, access, password, rng=rng, clock=clock)
    from .client import flows

    head_guard(repo, access)  # raises on a vanished locator this device knew
    client = access.client()
    loc = flows.enable(repo.backend, repo.backup_key, client, password, ksf=access.ksf,
                       bounds=access.bounds, pinned_key=access.pinned_key, rng=rng, clock=clock)
    repo.attach_guard(head_guard(repo, access))
    repo.advance_head()
    return loc


def open_with_password(backend: Backend, access: VaultAccess | RealmAccess, password: str | bytes, *,
                       confirm_last: Callable[[], bool] | None = None,
                       rng: Rng = os.urandom, clock: Clock = time.time) -> Repository:
    """Open a password-protected repository on any device: one guess at the vault.

    ``InvalidLogin`` (``attempts_left``) for a wrong password, ``AttemptsExhausted``
    when the key is gone.  The returned repository has rollback detection on.
    """
    if isinstance(access, RealmAccess):
        from .api import Repository as _Repository

        got = _realm_recover_result(backend, access, password, confirm_last=confirm_last,
                                    rng=rng)
        repo = _Repository.open(backend, got.key, vault=access, rng=rng, clock=clock)
        try:
            _realm_repair(repo, access, password, got.excluded, rng=rng)
        except BaseException:
            repo.close()
            raise
        return repo
    from .api import Repository
    from .client import flows

    loc = flows.read_locator(backend)
    if loc is None:
        raise UsageError("this repository has no password set up",
                         hint="open it with its 64-digit key")
    _check_url(loc, access)
    key = flows.recover(loc, access.client(loc.account), password, confirm_last=confirm_last,
                        bounds=access.bounds, rng=rng)
    return Repository.open(backend, key, vault=access, rng=rng, clock=clock)


def recover_key(backend: Backend, access: VaultAccess | RealmAccess, password: str | bytes, *,
                confirm_last: Callable[[], bool] | None = None,
                rng: Rng = os.urandom) -> BackupKey | None:
    """K from the vault with ``password`` (one guess); None if the repository has no password."""
    if isinstance(access, RealmAccess):
        from .realms.locator import read_realm_locator

        if read_realm_locator(backend) is None:
            return None
        return _realm_recover(backend, access, password, confirm_last=confirm_last, rng=rng)
    from .client import flows

    loc = flows.read_locator(backend)
    if loc is None:
        return None
    _check_url(loc, access)
    return flows.recover(loc, access.client(loc.account), password, confirm_last=confirm_last,
                         bounds=access.bounds, rng=rng)


def change_password(repo: Repository, access: VaultAccess | RealmAccess, new_password: str | bytes, *,
                    rng: Rng = os.urandom, clock: Clock = time.time
                    ) -> VaultLocator | RealmLocator:
    """Re-register this backup's K under ``new_password`` (same slot, one vault transaction)."""
    if isinstance(access, RealmAccess):
        from .realms import flows as realm_flows

        repo.verify_head()
        return realm_flows.change_password(
            repo.backend, repo.backup_key, access.clients(), new_password,
            register_threshold=access.register_threshold, pins=access.pins(), ksf=access.ksf,
            bounds=access.bounds, rng=rng, warn=access.on_skip)
    from .client import flows

    loc = flows.read_locator(repo.backend)
    if loc is not None:
        _check_url(loc, access)
    repo.verify_head()
    return flows.change_password(repo.backend, repo.backup_key,
                                 access.client(loc.account if loc else None), new_password,
                                 ksf=access.ksf, bounds=access.bounds, rng=rng, clock=clock)


def disable(repo: Repository, access: VaultAccess | RealmAccess) -> bool:
    """Delete this backup's slot at the vault and its locator; only the 64-digit key opens
    it afterwards.  Other slots of the account are untouched.  True if a record existed."""
    if isinstance(access, RealmAccess):
        from .realms import flows as realm_flows

        repo.verify_head()
        got = realm_flows.disable(repo.backend, repo.backup_key, access.clients())
        realm_heads = access.heads()
        if realm_heads is not None:
            realm_heads.forget(repo.id)
        repo.attach_guard(None)
        return any(v is True for v in got.values())
    from .client import flows

    loc = flows.read_locator(repo.backend)
    if loc is not None:
        _check_url(loc, access)
    repo.verify_head()
    existed = flows.disable(repo.backend, access.client(loc.account if loc else None),
                            repo.backup_key)
    heads = access.heads()
    if heads is not None:
        heads.forget(repo.id)
    repo.attach_guard(None)
    return existed


def status(backend: Backend, access: VaultAccess | RealmAccess) -> PasswordStatus:
    """This backup's slot at the vault (attempts left, locked) and the account's slots."""
    if isinstance(access, RealmAccess):
        return _realm_status(backend, access)
    from .client import flows

    loc = flows.read_locator(backend)
    if loc is not None:
        _check_url(loc, access)
    client = access.client(loc.account if loc else None)
    st = flows.status(backend, client)
    slots = [SlotInfo(str(x.get("slot", "")), bool(x.get("exists")), bool(x.get("locked")),
                      int(x.get("attempts_left", 0))) for x in st["slots"]]
    return PasswordStatus(loc is not None, client.url, client.account,
                          loc.slot if loc else None, bool(st.get("exists")),
                          bool(st.get("locked")), int(st.get("attempts_left", 0)),
                          int(st.get("attempt_limit", 0)), slots)


def attempts_left(backend: Backend, access: VaultAccess | RealmAccess) -> int:
    """How many password attempts this backup has left (0: the key is gone)."""
    st = status(backend, access)
    if not st.enabled:
        raise UsageError("this repository has no password set up")
    return st.attempts_left


# -- threshold realm sets (docs/spec/realms.md) ---------------------------------------------

def _realm_head_guard(repo: Repository, access: RealmAccess) -> HeadGuard | None:
    from .client import flows
    from .client.rollback import HeadGuard
    from .realms.flows import RealmHeads
    from .realms.locator import read_realm_locator

    loc = read_realm_locator(repo.backend)
    heads = access.heads()
    if loc is None:
        if flows.read_locator(repo.backend) is not None:
            raise UsageError("this repository names a single vault, not a realm set",
                             hint="configure its vault instead of the realms")
        _refuse_a_vanished_locator(repo, heads)
        return None
    loc.verify(repo.backup_key)
    if heads is not None:
        heads.check_slot(repo.id, loc.slot, loc.created)
    from .realms.client import record_proof

    realm_heads = RealmHeads(loc, access.clients(), record_proof(repo.backup_key, loc.account))
    guard = HeadGuard(repo.lister(), repo.backend, repo.backup_key, realm_heads, heads,
                      created=loc.created)
    realm_heads.authentic = guard.authenticates  # a lying realm's tag is told apart (§8)
    return guard


def _realm_enable(repo: Repository, access: RealmAccess, password: str | bytes, *,
                  rng: Rng, clock: Clock) -> RealmLocator:
    from .realms import flows as realm_flows

    _realm_head_guard(repo, access)  # raises on a vanished locator this device knew
    loc = realm_flows.enable(repo.backend, repo.backup_key, access.clients(), password,
                             account=access.account, threshold=access.threshold,
                             register_threshold=access.register_threshold, pins=access.pins(),
                             ksf=access.ksf, bounds=access.bounds, rng=rng, clock=clock)
    repo.attach_guard(_realm_head_guard(repo, access))
    repo.advance_head()
    return loc


def _realm_recover(backend: Backend, access: RealmAccess, password: str | bytes, *,
                   confirm_last: Callable[[], bool] | None, rng: Rng) -> BackupKey:
    return _realm_recover_result(backend, access, password, confirm_last=confirm_last,
                                 rng=rng).key


def _realm_recover_result(backend: Backend, access: RealmAccess, password: str | bytes, *,
                          confirm_last: Callable[[], bool] | None, rng: Rng) -> RecoveryResult:
    from .realms import flows as realm_flows

    got = realm_flows.recover(backend, access.clients(), password, bounds=access.bounds,
                              confirm_last=confirm_last, rng=rng,
                              pins={r.url: r.pinned_key for r in access.realms})
    if got.excluded and access.on_skip is not None:
        access.on_skip("realms left out of this recovery: " + "; ".join(
            f"{url}: {why}" for url, why in sorted(got.excluded.items())))
    if got.unfinished:
        # A change that did not finish there: drop the registration the locator does not
        # name (realms.md §4.3).  The recovery stands whatever this gives.
        from .realms import client as rc
        from .realms.locator import read_realm_locator

        loc = read_realm_locator(backend)
        if loc is not None:
            left = {u: v for u, v in rc.commit(loc, access.clients(), got.key,
                                               got.unfinished).items() if v is not True}
            if left and access.on_skip is not None:
                access.on_skip("could not drop an unfinished change's registration at "
                               + "; ".join(f"{u}: {v}" for u, v in sorted(left.items())))
    return got


#: Why a realm was left out that a re-registration of the set mends (realms.md §4.3):
#: not a realm that is merely down or not configured here.
_NOT_REPAIRABLE = ("VaultUnreachable", "RealmsUnavailable", "not configured")


def _realm_repair(repo: Repository, access: RealmAccess, password: str | bytes,
                  excluded: dict[str, str], *, rng: Rng) -> None:
    """After a recovery that left out a reachable realm (stale shares, a lost or erased
    record, no attempt left): re-register the whole set with the same password, which
    brings it back (realms.md §4.3, "repaired on the next contact")."""
    stale = sorted(u for u, why in excluded.items() if not why.startswith(_NOT_REPAIRABLE))
    if not stale or not access.repair:
        return
    try:
        change_password(repo, access, password, rng=rng)
    except VaultError as exc:  # RealmsUnavailable too: a realm is down now
        # The recovery succeeded: a repair that cannot run now is no reason to fail it.
        if access.on_skip is not None:
            access.on_skip(f"could not repair the realms {', '.join(stale)}: {exc.message}")
        return
    if access.on_skip is not None:
        access.on_skip("repaired: the realm set was registered again, including "
                       + ", ".join(stale))


def move_to_realms(repo: Repository, old: VaultAccess | RealmAccess, new: RealmAccess,
                   password: str | bytes, *, rng: Rng = os.urandom,
                   clock: Clock = time.time,
                   on_step: Callable[[str], None] | None = None) -> RealmLocator:
    """Move this backup's password protection to the realm set ``new`` (realms.md §4.3).

    ``repo`` is open with its key; ``old`` is where the password is now (one vault or
    another realm set).  Checked first: the locator's MAC and the head under ``old``.
    Then K is registered with ``password`` in a fresh slot of ``new``, the version-3
    locator is written (the commit point: from here on ``new`` opens the backup), the
    head starts on ``new`` and the old slot is deleted (with the record proof).  No
    repository object but ``ext/vault.json`` and a head record is written: nothing
    is re-uploaded.  If the old slot cannot be deleted, ``on_skip`` of ``new`` hears
    it (``VaultError`` without one, after the move).  ``on_step`` hears each step done
    (one short sentence each: progress for a front end).
    """
    from .client import flows
    from .realms import client as rc
    from .realms import flows as realm_flows
    from .realms.locator import LOCATOR as _LOCATOR
    from .realms.locator import read_realm_locator

    backend, key = repo.backend, repo.backup_key
    old_single = flows.read_locator(backend) if isinstance(old, VaultAccess) else None
    old_set = read_realm_locator(backend) if isinstance(old, RealmAccess) else None
    if old_single is None and old_set is None:
        raise UsageError("this repository is not protected where the old access says")
    (old_single or old_set).verify(key)  # type: ignore[union-attr]
    repo.verify_head()
    step = on_step or (lambda _s: None)
    step("checked the locator and the backup head under the current protection")
    # The new slot must be newer than the old one on every device (LocalHeads.check_slot).
    old_created = (old_single or old_set).created  # type: ignore[union-attr]

    def later() -> float:
        return max(clock(), old_created + 1)

    loc = realm_flows.register_new_slot(
        key, new.clients(), password, account=new.account, threshold=new.threshold,
        register_threshold=new.register_threshold, pins=new.pins(), ksf=new.ksf,
        bounds=new.bounds, rng=rng, clock=later)
    step(f"registered the key in a new slot on {len(loc.realms)} realms")
    backend.put(_LOCATOR, loc.to_json())
    step("wrote the new locator: the realm set now opens this backup")
    repo.attach_guard(_realm_head_guard(repo, new))
    repo.advance_head()
    step("started the backup head on the realm set")
    try:
        if old_single is not None:
            assert isinstance(old, VaultAccess)
            old.client(old_single.account).for_slot(old_single.slot).delete(
                flows.record_proof(key, old_single.account))
        elif old_set is not None:
            assert isinstance(old, RealmAccess)
            left = rc.delete(old_set, old.clients(), key)
            gone = sum(1 for v in left.values() if v is True or v is False)
            if len(old_set.realms) - gone >= old_set.threshold:
                raise VaultError("the old realm set kept its records: " + "; ".join(
                    f"{u}: {v}" for u, v in sorted(left.items()) if not isinstance(v, bool)))
    except VaultError as exc:
        _skip(new, f"moved, but the old password protection could not be deleted ({exc.message});"
                   " it still opens the backup until it is deleted")
        return loc
    step("deleted the old slot")
    return loc


def _realm_status(backend: Backend, access: RealmAccess) -> PasswordStatus:
    from .realms import client as rc
    from .realms.locator import read_realm_locator

    loc = read_realm_locator(backend)
    if loc is None:
        return PasswordStatus(False, access.url, access.account, None, False, False, 0, 0, [],
                              [], access.threshold)
    infos = []
    sts = rc.status(loc, access.clients())
    for st in sts:
        infos.append(RealmInfo(st["url"], st["index"], bool(st.get("exists")),
                               bool(st.get("locked")), int(st.get("attempts_left") or 0)
                               if "error" not in st else 0, st.get("error")))
    live = sorted((r.attempts_left for r in infos if r.exists and r.error is None), reverse=True)
    left = live[loc.threshold - 1] if len(live) >= loc.threshold else 0
    limit = max([0] + [int(s.get("attempt_limit") or 0) for s in sts if "error" not in s])
    return PasswordStatus(True, access.url, loc.account, loc.slot, len(live) >= loc.threshold,
                          len(live) < loc.threshold, left, limit, [], infos, loc.threshold)


__all__ = [
    "PasswordStatus",
    "RealmAccess",
    "RealmConfig",
    "RealmInfo",
    "SlotInfo",
    "VaultAccess",
    "attempts_left",
    "change_password",
    "disable",
    "enable",
    "head_guard",
    "move_to_realms",
    "open_with_password",
    "recover_key",
    "status",
]
