"""Every domain-separation label of the vault and of the password option.

The engine's labels (derived from K) live in :mod:`strongroom.crypto.labels`;
these are derived from OPAQUE outputs and from the vault's own root, never
from K.  ``docs/spec/vault-protocol.md`` §5 lists exactly these constants and
a test checks they are distinct from each other and from the engine's.
"""

from __future__ import annotations

#: HKDF-SHA256 info: key that wraps K, derived from the OPAQUE ``export_key`` (client only).
WRAP_K = b"strongroom/v1/vault/wrap-k"
#: HKDF-SHA256 info: key that seals the wrapped K in a login-finish answer, from the session key.
RELEASE = b"strongroom/v1/vault/release"
#: AEAD associated-data prefix of a record at rest (followed by account id and generation).
RECORD_AD = b"strongroom/v1/vault/record"
#: AEAD associated-data prefix of a login session's server state at rest.
SESSION_AD = b"strongroom/v1/vault/session"
#: AEAD associated-data of the vault's sealed secrets file (OPRF seed, AKE key, record key).
SECRETS_AD = b"strongroom/v1/vault/secrets"

ALL_LABELS = (WRAP_K, RELEASE, RECORD_AD, SESSION_AD, SECRETS_AD)

__all__ = ["ALL_LABELS", "RECORD_AD", "RELEASE", "SECRETS_AD", "SESSION_AD", "WRAP_K"]
