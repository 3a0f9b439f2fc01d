"""Password-protected backups, client side: enable, recover, change password, disable, status.

The repository says which vault holds its key in the plaintext object
``ext/vault.json`` (names under ``ext/`` belong to this layer; the engine never
touches them): the vault URL, the account id, the vault's pinned AKE public
key, and the OPAQUE parameters (KSF and context).  Nothing in it is secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..crypto.keys import BackupKey
from ..errors import (
    AttemptsExhausted,
    FormatError,
    InvalidLogin,
    ObjectNotFound,
    ServerKeyMismatch,
    UsageError,
    VaultProtocolError,
)
from ..storage.base import Backend
from ..vault import _opaque as opaque
from ..vault import labels
from ..vault.sealing import derive
from .keywrap import open_release, unwrap_key, wrap_key
from .vault_client import VaultClient

LOCATOR = "ext/vault.json"
FORMAT = "strongroom-vault-locator/1"
DEFAULT_KSF = {"memory_kib": 65536, "iterations": 3, "parallelism": 1}
#: What a client accepts from a locator, per Argon2id parameter (inclusive): the largest
#: memory a phone can spare for a moment (1 GiB), passes and lanes far above any default.
KSF_BOUNDS = {"memory_kib": (8, 1 << 20), "iterations": (1, 64), "parallelism": (1, 16)}
LOCATOR_CAP = 64 * 1024
Rng = Callable[[int], bytes]


@dataclass(frozen=True)
class VaultLocator:
    """Which vault holds this repository's key, and how to talk to it."""

    url: str
    account: str
    server_public_key: bytes
    ksf: dict[str, int]
    context: bytes

    def config(self) -> Any:
        """The OPAQUE configuration both sides use."""
        return opaque.OpaqueConfig(ksf=opaque.Argon2idKSF(**self.ksf), context=self.context)

    def to_json(self) -> bytes:
        """The bytes of ``ext/vault.json``."""
        doc = {"format": FORMAT, "url": self.url, "account": self.account,
               "server_public_key": _b64e(self.server_public_key),
               "opaque": {"ksf": {"name": "argon2id", **self.ksf}, "context": _b64e(self.context)}}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> VaultLocator:
        """Parse ``ext/vault.json`` strictly; ``FormatError`` (exit 12) if it is not one.

        The provider writes these bytes: NaN/Infinity, deep nesting, wrong types
        and out-of-range numbers are refused, and the key-stretching parameters
        must lie within :data:`KSF_BOUNDS` — checked here, before any guess is
        spent, so a planted ``memory_kib`` cannot exhaust the device's memory.
        """
        from ..repo.sealed import json_int, json_str, strict_json

        what = LOCATOR
        d = strict_json(data, what, LOCATOR_CAP)
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise FormatError(f"{what} is not a vault locator of this version",
                              hint="it may have been written by a newer Strongroom, or tampered with")
        opaque_doc = d.get("opaque")
        if not isinstance(opaque_doc, dict):
            raise FormatError(f"{what}: no OPAQUE parameters")
        ksf_doc = opaque_doc.get("ksf")
        if not isinstance(ksf_doc, dict) or ksf_doc.get("name") != "argon2id":
            raise FormatError(f"{what}: no argon2id key-stretching parameters")
        ksf = {k: json_int(ksf_doc, k, what, lo, hi) for k, (lo, hi) in KSF_BOUNDS.items()}
        if ksf["memory_kib"] < 8 * ksf["parallelism"]:
            raise FormatError(f"{what}: memory_kib must be at least 8 x parallelism")
        try:
            key = _b64d(json_str(d, "server_public_key", what, 64))
            context = _b64d(json_str(opaque_doc, "context", what, 4096))
        except VaultProtocolError:
            raise FormatError(f"{what}: a key or the context is not base64url") from None
        if len(key) != 32:
            raise FormatError(f"{what}: the vault public key is not 32 bytes")
        return cls(json_str(d, "url", what, 2048), json_str(d, "account", what, 128), key, ksf,
                   context)


def read_locator(backend: Backend) -> VaultLocator | None:
    """The repository's vault locator, or None if it is not password-protected."""
    from ..repo.sealed import fetch_capped

    try:
        return VaultLocator.from_json(fetch_capped(backend, LOCATOR, LOCATOR_CAP))
    except ObjectNotFound:
        return None


def enable(backend: Backend, key: BackupKey, client: VaultClient, password: str | bytes, *,
           ksf: dict[str, int] | None = None, pinned_key: bytes | None = None,
           rng: Rng = os.urandom) -> VaultLocator:
    """Register ``password`` with the vault, deposit K wrapped, write ``ext/vault.json``.

    ``pinned_key`` is the vault key from configuration; without it the key the
    vault presents now is trusted on first use and pinned from then on.
    """
    old = read_locator(backend)
    if pinned_key is None and old is not None and old.url == client.url:
        pinned_key = old.server_public_key
    info = client.info()
    presented = _b64d(info.get("server_public_key", ""))
    if pinned_key is not None and presented != pinned_key:
        raise _pin_error()
    loc = VaultLocator(client.url, client.account, presented, dict(ksf or DEFAULT_KSF),
                       _b64d(info.get("context", "")))
    _register(client, loc, key, _pw(password), rng)
    backend.put(LOCATOR, loc.to_json())
    start_head(backend, key, client)
    return loc


def start_head(backend: Backend, key: BackupKey, client: VaultClient) -> int:
    """Advance the vault's backup head to the repository's current snapshot list.

    Done at ``enable`` so that from then on a missing head is suspicious; a
    head left by an earlier enable is verified first (``RollbackDetected``).
    Returns the head counter (0 when there is no repository at ``backend``).
    """
    from ..api import Repository
    from ..errors import RepositoryNotFound
    from .rollback import HeadGuard

    try:
        repo = Repository.open(backend, key)
    except RepositoryNotFound:
        return 0  # the key is deposited before the repository exists (library use)
    with repo:
        return HeadGuard(repo, backend, key, client).advance()


def record_proof(key: BackupKey, account: str) -> bytes:
    """The record proof: shows the vault that the caller holds K (spec §2.1, §5)."""
    return derive(key.secret_bytes(), labels.RECORD_PROOF + b"\x00" + account.encode("utf-8"))


def _register(client: VaultClient, loc: VaultLocator, key: BackupKey, pw: bytes, rng: Rng) -> None:
    cfg = loc.config()
    request, state = opaque.RegistrationClient.start(pw, config=cfg, rng=rng)
    response, registration_id = client.registration_start(request)
    try:
        record, export_key = opaque.RegistrationClient.finish(
            state, response, config=cfg, rng=rng, expected_server_public_key=loc.server_public_key)
    except ServerKeyMismatch:
        raise _pin_error() from None
    proof = record_proof(key, loc.account)
    client.registration_finish(registration_id, record, wrap_key(export_key, key, loc.account, rng),
                               hashlib.sha256(proof).digest(), proof)


def recover(loc: VaultLocator, client: VaultClient, password: str | bytes, *,
            confirm_last: Callable[[], bool] | None = None, rng: Rng = os.urandom) -> BackupKey:
    """Get K back with the password: one guess at the vault.

    If only one attempt is left, ``confirm_last()`` is asked first (False
    aborts with nothing spent).  Raises ``InvalidLogin`` with
    ``attempts_left`` and a hint, or ``AttemptsExhausted`` with what is left to do.
    """
    status = client.status()
    if status.get("locked"):
        raise AttemptsExhausted()
    if status.get("attempts_left") == 1 and confirm_last is not None and not confirm_last():
        raise UsageError("stopped before the last attempt; nothing was spent")
    cfg = loc.config()
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
    return unwrap_key(export_key, wrapped, loc.account)


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
                    new_password: str | bytes, *, rng: Rng = os.urandom) -> VaultLocator:
    """Re-register the same K under a new password; no backup data is touched."""
    loc = read_locator(backend)
    if loc is None:
        raise UsageError("this repository has no password; use 'strongroom enable --password'")
    _register(client, loc, key, _pw(new_password), rng)
    return loc


def disable(backend: Backend, client: VaultClient, key: BackupKey) -> bool:
    """Delete the vault record and ``ext/vault.json``; True if the vault had a record.

    ``key`` (K) gives the record proof the vault asks for before it deletes.
    """
    existed = client.delete(record_proof(key, client.account))
    backend.delete(LOCATOR)
    return existed


DISABLED_NOTE = ("the vault record is deleted: from now on only the 64-digit key opens this "
                 "backup — make sure you have it")


def status(backend: Backend, client: VaultClient) -> dict[str, Any]:
    """The locator and the vault's view of the record, for display."""
    loc = read_locator(backend)
    st = client.status()
    return {"vault": client.url, "account": client.account, "password_enabled": loc is not None,
            **st}


def _pin_error() -> VaultProtocolError:
    return VaultProtocolError(
        "the vault presented a different public key than the one pinned for this repository",
        hint="this may be an impostor vault; check --vault, or re-enable deliberately if the "
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
    "DISABLED_NOTE",
    "LOCATOR",
    "VaultLocator",
    "change_password",
    "disable",
    "enable",
    "read_locator",
    "record_proof",
    "recover",
    "start_head",
    "status",
    "wrong_password",
]
