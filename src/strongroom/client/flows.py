"""Password-protected backups, client side: enable, recover, change password, disable, status.

The repository says which vault holds its key in the plaintext object
``ext/vault.json`` (names under ``ext/`` belong to this layer; the engine never
touches them): the vault URL, the account id, the vault's pinned AKE public
key, and the OPAQUE parameters (KSF and context).  Nothing in it is secret.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..crypto.hashing import equal, hmac_sha256, sha256
from ..crypto.keys import BackupKey
from ..errors import (
    AttemptsExhausted,
    FormatError,
    InvalidLogin,
    ObjectNotFound,
    ServerKeyMismatch,
    UsageError,
    VaultError,
    VaultProtocolError,
)
from ..storage.base import Backend
from ..vault import _opaque as opaque
from ..vault import labels
from ..vault.params import DEFAULT_KSF, HARD_BOUNDS, KsfBounds
from ..vault.sealing import derive, frame
from .keywrap import open_release, unwrap_key, wrap_key

if TYPE_CHECKING:
    # Only annotations: the HTTP client (httpx) is imported by whoever makes one, so
    # reading a repository's locator (every password-mode check) does not import it.
    from .vault_client import VaultClient

LOCATOR = "ext/vault.json"
FORMAT_V1 = "strongroom-vault-locator/1"
FORMAT = "strongroom-vault-locator/2"
#: Kept for readers of version-1 locators; new records take their parameters from the
#: caller or :data:`DEFAULT_KSF`, never from storage (spec §2.2).
KSF_BOUNDS = HARD_BOUNDS
LOCATOR_CAP = 64 * 1024
SLOT_BYTES = 16
#: This device's bounds unless the caller gives others: no weaker than DEFAULT_KSF.
CLIENT_BOUNDS = KsfBounds()
Rng = Callable[[int], bytes]
Clock = Callable[[], float]


@dataclass(frozen=True)
class VaultLocator:
    """Which vault and slot hold this repository's key (``ext/vault.json``, spec §6).

    Version 2 carries a MAC under a key from K: a device that has K (its own,
    or just recovered) checks it, so a provider that rewrote the locator is
    caught.  The key-stretching parameters are not here: the vault keeps them
    with the record (§2.2).  ``legacy_ksf`` is what a version-1 locator said;
    it is shown, never used.
    """

    url: str
    account: str
    server_public_key: bytes
    context: bytes
    slot: str = ""
    created: int = 0
    mac: bytes | None = field(default=None, repr=False)
    legacy_ksf: dict[str, int] | None = None

    def config(self, ksf: dict[str, int]) -> Any:
        """The OPAQUE configuration of a record with parameters ``ksf``."""
        return opaque.OpaqueConfig(ksf=opaque.Argon2idKSF(**ksf), context=self.context)

    def _mac_input(self) -> bytes:
        return frame(labels.LOCATOR_MAC, FORMAT.encode(), self.url.encode(),
                     self.account.encode(), self.slot.encode(), self.server_public_key,
                     self.context, self.created.to_bytes(8, "big"))

    def signed(self, key: BackupKey) -> VaultLocator:
        """This locator with its MAC under ``HKDF(K, LOCATOR_MAC)``."""
        return replace(self, mac=hmac_sha256(key.derive(labels.LOCATOR_MAC), self._mac_input()), legacy_ksf=None)

    def verify(self, key: BackupKey) -> None:
        """``FormatError`` unless this (version-2) locator's MAC verifies under K.

        A version-1 locator has no MAC; it is accepted (records made before
        version 2 keep working) and rewritten as version 2 by ``change-password``.
        """
        if self.legacy_ksf is not None and self.mac is None:
            return
        want = hmac_sha256(key.derive(labels.LOCATOR_MAC), self._mac_input())
        if self.mac is None or not equal(self.mac, want):
            raise FormatError(f"{LOCATOR} does not authenticate under this backup's key: the "
                              "storage provider (or someone with write access) altered it",
                              hint="the repository's password settings cannot be trusted; "
                                   "open it with the 64-digit key, turn the password off and "
                                   "enable a new one")

    def to_json(self) -> bytes:
        """The bytes of ``ext/vault.json`` (version 2; sign it first)."""
        if self.mac is None:
            raise ValueError("sign the locator before writing it")
        doc = {"format": FORMAT, "url": self.url, "account": self.account, "slot": self.slot,
               "server_public_key": _b64e(self.server_public_key),
               "context": _b64e(self.context), "created": self.created, "mac": _b64e(self.mac)}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> VaultLocator:
        """Parse ``ext/vault.json`` strictly; ``FormatError`` (exit 12) if it is not one.

        The provider writes these bytes: NaN/Infinity, deep nesting, wrong types
        and out-of-range numbers are refused before anything is computed or sent.
        """
        from ..repo.sealed import json_int, json_str, strict_json

        what = LOCATOR
        d = strict_json(data, what, LOCATOR_CAP)
        if not isinstance(d, dict) or d.get("format") not in (FORMAT, FORMAT_V1):
            raise FormatError(f"{what} is not a vault locator of this version",
                              hint="it may have been written by a newer Strongroom, or tampered with")
        url, account = json_str(d, "url", what, 2048), json_str(d, "account", what, 128)
        try:
            key = _b64d(json_str(d, "server_public_key", what, 64))
            if d["format"] == FORMAT_V1:
                opaque_doc = d.get("opaque")
                ksf_doc = opaque_doc.get("ksf") if isinstance(opaque_doc, dict) else None
                if not isinstance(ksf_doc, dict) or ksf_doc.get("name") != "argon2id":
                    raise FormatError(f"{what}: no argon2id key-stretching parameters")
                ksf = {k: json_int(ksf_doc, k, what, lo, hi) for k, (lo, hi) in KSF_BOUNDS.items()}
                context = _b64d(json_str(opaque_doc, "context", what, 4096))  # type: ignore[arg-type]
                loc = cls(url, account, key, context, legacy_ksf=ksf)
            else:
                slot = json_str(d, "slot", what, 64)
                if not _SLOT.match(slot):
                    raise FormatError(f"{what}: the slot id is malformed")
                loc = cls(url, account, key, _b64d(json_str(d, "context", what, 4096)), slot,
                          json_int(d, "created", what, 0, 2**63 - 1),
                          _b64d(json_str(d, "mac", what, 64)))
                if loc.mac is None or len(loc.mac) != 32:
                    raise FormatError(f"{what}: the MAC is not 32 bytes")
        except VaultProtocolError:
            raise FormatError(f"{what}: a key, the context or the MAC is not base64url") from None
        if len(key) != 32:
            raise FormatError(f"{what}: the vault public key is not 32 bytes")
        return loc


_SLOT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def read_locator(backend: Backend) -> VaultLocator | None:
    """The repository's vault locator, or None if it is not password-protected."""
    from ..repo.sealed import fetch_capped

    try:
        return VaultLocator.from_json(fetch_capped(backend, LOCATOR, LOCATOR_CAP))
    except ObjectNotFound:
        return None


def enable(backend: Backend, key: BackupKey, client: VaultClient, password: str | bytes, *,
           ksf: dict[str, int] | None = None, bounds: KsfBounds = CLIENT_BOUNDS,
           pinned_key: bytes | None = None, rng: Rng = os.urandom,
           clock: Clock = time.time) -> VaultLocator:
    """Register ``password`` in a new slot, deposit K wrapped, write ``ext/vault.json``.

    Everything that can fail without writing is checked first: no locator yet
    (``UsageError``: use ``change_password``), the parameters within ``bounds``,
    the vault's key against ``pinned_key`` (the app's configuration; without
    it, trusted on first use and pinned in the locator).  The new slot is a
    fresh random id, so it never touches another backup's record or head; if
    anything fails after the registration, the slot is left unused and the
    repository stays as it was.  The caller advances the head afterwards.
    """
    if read_locator(backend) is not None:
        raise UsageError("this repository is already protected by a password",
                         hint="change the password instead, or turn it off first",
                         reason="already-enabled")
    chosen = _check_bounds(dict(ksf or DEFAULT_KSF), bounds)
    info = client.info()
    presented = _b64d(info.get("server_public_key", ""))
    if len(presented) != 32:
        raise VaultProtocolError("the vault's public key is not 32 bytes")
    if pinned_key is not None and presented != pinned_key:
        raise _pin_error()
    slot = rng(SLOT_BYTES).hex()
    loc = VaultLocator(client.url, client.account, presented, _b64d(info.get("context", "")),
                       slot, int(clock())).signed(key)
    _register(client.for_slot(slot), loc, key, _pw(password), chosen, rng)
    backend.put(LOCATOR, loc.to_json())
    return loc


def record_proof(key: BackupKey, account: str) -> bytes:
    """The record proof: shows the vault that the caller holds K (spec §2.1, §5)."""
    return derive(key.secret_bytes(), labels.RECORD_PROOF + b"\x00" + account.encode("utf-8"))


def _register(client: VaultClient, loc: VaultLocator, key: BackupKey, pw: bytes,
              ksf: dict[str, int], rng: Rng) -> None:
    cfg = loc.config(ksf)
    request, state = opaque.RegistrationClient.start(pw, config=cfg, rng=rng)
    response, registration_id = client.registration_start(request)
    try:
        record, export_key = opaque.RegistrationClient.finish(
            state, response, config=cfg, rng=rng, expected_server_public_key=loc.server_public_key)
    except ServerKeyMismatch:
        raise _pin_error() from None
    proof = record_proof(key, loc.account)
    client.registration_finish(registration_id, record, wrap_key(export_key, key, loc.account, rng),
                               sha256(proof), proof, ksf)


def _check_bounds(ksf: Any, bounds: KsfBounds) -> dict[str, int]:
    try:
        return bounds.check(ksf)
    except ValueError as exc:
        raise UsageError(f"key-stretching parameters refused: {exc}") from None


def record_ksf(status: dict[str, Any], bounds: KsfBounds = CLIENT_BOUNDS) -> dict[str, int]:
    """The Argon2id parameters the vault keeps with the record, checked against ``bounds``.

    A record from before the vault kept them (protocol 2) was registered with
    :data:`DEFAULT_KSF` by every Strongroom front end; storage is never asked.
    """
    got = status.get("ksf")
    if got is None:
        return dict(DEFAULT_KSF)
    try:
        return bounds.check(got)
    except ValueError as exc:
        raise VaultProtocolError(
            f"the vault's key-stretching parameters for this backup are outside what this "
            f"device accepts ({exc}); no attempt was spent") from None


def recover(loc: VaultLocator, client: VaultClient, password: str | bytes, *,
            confirm_last: Callable[[], bool] | None = None, bounds: KsfBounds = CLIENT_BOUNDS,
            rng: Rng = os.urandom) -> BackupKey:
    """Get K back with the password: one guess at the vault, in the locator's slot.

    Before the guess: the slot must hold a record, not be locked, and its
    parameters (from the vault) must lie within ``bounds``.  If only one
    attempt is left, ``confirm_last()`` is asked first (False aborts with
    nothing spent).  Raises ``InvalidLogin`` with ``attempts_left``, or
    ``AttemptsExhausted``.  After the guess, the locator is checked under the
    recovered K (``FormatError`` if the provider altered it).
    """
    client = client.for_slot(loc.slot)
    status = client.status()
    if status.get("locked"):
        raise AttemptsExhausted()
    if not status.get("exists"):
        raise VaultError("the vault holds no key for this backup (its record was deleted, or "
                         "the repository names a slot that does not exist)",
                         hint="use the 64-digit key")
    cfg = loc.config(record_ksf(status, bounds))
    # A key in the locator other than the vault's own would fail the login only after the
    # guess was counted: ask the vault first (storage could have rewritten it).
    if _b64d(client.info().get("server_public_key", "")) != loc.server_public_key:
        raise _pin_error()
    if status.get("attempts_left") == 1 and confirm_last is not None and not confirm_last():
        raise UsageError("stopped before the last attempt; nothing was spent")
    ke1, state = opaque.LoginClient.start(_pw(password), config=cfg, rng=rng)
    answer = client.login_start(ke1)
    try:
        ke3, session_key, export_key = opaque.LoginClient.finish(
            state, answer.ke2, config=cfg, expected_server_public_key=loc.server_public_key)
    except InvalidLogin:
        raise wrong_password(answer.attempts_left) from None
    except ServerKeyMismatch:
        raise _pin_error() from None
    sealed = client.login_finish(answer.session_id, ke3)
    wrapped = open_release(session_key, sealed, loc.account, answer.session_id)
    key = unwrap_key(export_key, wrapped, loc.account)
    loc.verify(key)
    return key


def wrong_password(attempts_left: int) -> InvalidLogin | AttemptsExhausted:
    """The error for a wrong password, saying how many attempts are left.

    The last allowed wrong guess is ``AttemptsExhausted``: the key is gone.
    """
    if attempts_left <= 0:
        return AttemptsExhausted(
            "wrong password; that was the last attempt: the vault has now destroyed this backup key")
    return InvalidLogin(
        f"wrong password; {attempts_left} attempt{'s' if attempts_left != 1 else ''} left",
        hint=("WARNING: one attempt left — a wrong password next time destroys the "
              "backup key permanently" if attempts_left == 1 else
              "after the last wrong attempt the vault destroys the key for good"),
        attempts_left=attempts_left)


def change_password(backend: Backend, key: BackupKey, client: VaultClient,
                    new_password: str | bytes, *, ksf: dict[str, int] | None = None,
                    bounds: KsfBounds = CLIENT_BOUNDS, rng: Rng = os.urandom,
                    clock: Clock = time.time) -> VaultLocator:
    """Re-register the same K under a new password in the same slot; no backup data is touched.

    Checked first: a locator that authenticates under K, a live record in its
    slot, the vault's key as pinned, the new parameters (the caller's or
    :data:`DEFAULT_KSF`, never the old record's or storage's) within
    ``bounds``.  The change itself is one vault transaction: until it commits
    the old password works, after it the new one.  A version-1 locator is
    then rewritten as version 2 (if that write fails, the old one still works).
    """
    loc = read_locator(backend)
    if loc is None:
        raise UsageError("this repository has no password", hint="enable one first",
                         reason="no-password")
    loc.verify(key)
    chosen = _check_bounds(dict(ksf or DEFAULT_KSF), bounds)
    slot_client = client.for_slot(loc.slot)
    st = slot_client.status()
    if st.get("locked") or not st.get("exists"):
        raise VaultError("the vault holds no live key for this backup, so there is no password "
                         "to change", hint="turn the password off, then enable a new one")
    presented = _b64d(client.info().get("server_public_key", ""))
    if presented != loc.server_public_key:
        raise _pin_error()
    _register(slot_client, loc, key, _pw(new_password), chosen, rng)
    if loc.mac is None:
        loc = replace(loc, created=int(clock())).signed(key)
        backend.put(LOCATOR, loc.to_json())
    return loc


def disable(backend: Backend, client: VaultClient, key: BackupKey) -> bool:
    """Delete this backup's slot at the vault, then ``ext/vault.json``; True if a record existed.

    ``key`` (K) checks the locator and gives the record proof the vault asks
    for.  Other slots of the account are not touched.  Interrupted after the
    vault delete, running it again finishes (the record is already gone).
    """
    loc = read_locator(backend)
    if loc is None:
        raise UsageError("this repository has no password to turn off")
    loc.verify(key)
    existed = client.for_slot(loc.slot).delete(record_proof(key, loc.account))
    backend.delete(LOCATOR)
    return existed


DISABLED_NOTE = ("the vault record is deleted: from now on only the 64-digit key opens this "
                 "backup — make sure you have it")


def status(backend: Backend, client: VaultClient) -> dict[str, Any]:
    """The locator, the vault's view of this backup's slot, and every slot of the account."""
    loc = read_locator(backend)
    st = client.for_slot(loc.slot).status() if loc is not None else {}
    return {"vault": client.url, "account": client.account, "password_enabled": loc is not None,
            "slot": loc.slot if loc is not None else None, **st, "slots": client.slots()}


def _pin_error() -> VaultProtocolError:
    return VaultProtocolError(
        "the vault presented a different public key than the one pinned for this repository",
        hint="this may be an impostor vault; check the vault URL, or re-enable deliberately if the "
             "vault operator rotated its key")


def _pw(password: str | bytes) -> bytes:
    pw = password.encode("utf-8") if isinstance(password, str) else bytes(password)
    if not pw:
        raise UsageError("the password is empty")
    return pw


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise VaultProtocolError("bad base64url from the vault") from exc


__all__ = [
    "DEFAULT_KSF",
    "DISABLED_NOTE",
    "LOCATOR",
    "KsfBounds",
    "VaultLocator",
    "change_password",
    "disable",
    "enable",
    "read_locator",
    "record_ksf",
    "record_proof",
    "recover",
    "status",
    "wrong_password",
]

