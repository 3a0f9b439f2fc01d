"""Client-side steps used by the vault tests, driving a core ``Vault`` directly."""

from __future__ import annotations

import hashlib

from strongroom.vault import _opaque as opaque
from strongroom.vault.core import Vault

from .conftest import DetRng, small_config

#: The record proof the test client "derives from K" (any 32 bytes the vault keeps SHA-256 of).
PROOF = b"P" * 32


def register(vault: Vault, account: str, password: bytes, wrapped: bytes = b"W" * 60) -> bytes:
    """Register ``password`` for ``account`` (replacing a record with ``PROOF``); the export key."""
    rng = DetRng(b"reg" + account.encode() + password)
    cfg = small_config()
    req, st = opaque.RegistrationClient.start(password, config=cfg, rng=rng)
    started = vault.registration_start(account, req)
    record, export_key = opaque.RegistrationClient.finish(st, started.response, config=cfg, rng=rng)
    vault.registration_finish(account, record, wrapped, registration_id=started.registration_id,
                              proof_verifier=hashlib.sha256(PROOF).digest(), proof=PROOF)
    return export_key


def ke1_for(password: bytes, seed: bytes = b"ke1") -> tuple[bytes, object]:
    """A KE1 and the client state for it."""
    return opaque.LoginClient.start(password, config=small_config(), rng=DetRng(seed))


def client_finish(state: object, ke2: bytes) -> tuple[bytes, bytes, bytes]:
    """KE3, session key, export key — or InvalidLogin."""
    return opaque.LoginClient.finish(state, ke2, config=small_config())
