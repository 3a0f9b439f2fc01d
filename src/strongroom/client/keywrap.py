"""Wrapping K for the vault (client side only).

``wrap_key``: K sealed with AES-256-GCM under
``HKDF-SHA256(export_key, "strongroom/v1/vault/wrap-k")`` with the account
id as associated data.  The export key comes out of OPAQUE on the client
only, so the vault stores a wrapped K it cannot open, and the password alone
(without the vault's OPRF key) cannot open it either.

``open_release``: the vault's login-finish answer is the wrapped K sealed
under ``HKDF-SHA256(session_key, "strongroom/v1/vault/release")`` with
``frame(account_id, session_id)`` as associated data.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..crypto.keys import BackupKey
from ..errors import VaultProtocolError
from ..vault import labels
from ..vault.sealing import derive, frame, open_sealed, seal


def _wrap_ad(account_id: str) -> bytes:
    return frame(labels.WRAP_K, account_id.encode("utf-8"))


def wrap_key(export_key: bytes, key: BackupKey, account_id: str,
             rng: Callable[[int], bytes] = os.urandom) -> bytes:
    """K sealed under a key from the OPAQUE export key (60 bytes)."""
    return seal(derive(export_key, labels.WRAP_K), key.secret_bytes(), _wrap_ad(account_id), rng)


def unwrap_key(export_key: bytes, wrapped: bytes, account_id: str) -> BackupKey:
    """Inverse of :func:`wrap_key`; ``VaultProtocolError`` if it does not open."""
    try:
        raw = open_sealed(derive(export_key, labels.WRAP_K), wrapped, _wrap_ad(account_id),
                          "wrapped backup key")
    except VaultProtocolError:
        raise VaultProtocolError(
            "the vault returned a wrapped key that this password does not open",
            hint="the record may belong to another repository; check the vault URL and the account",
        ) from None
    if len(raw) != 32:
        raise VaultProtocolError("the wrapped backup key has the wrong length")
    return BackupKey.from_bytes(raw)


def open_release(session_key: bytes, sealed: bytes, account_id: str, session_id: str) -> bytes:
    """The wrapped K out of a login-finish answer."""
    ad = frame(account_id.encode("utf-8"), session_id.encode("utf-8"))
    return open_sealed(derive(session_key, labels.RELEASE), sealed, ad, "released key")


__all__ = ["open_release", "unwrap_key", "wrap_key"]
