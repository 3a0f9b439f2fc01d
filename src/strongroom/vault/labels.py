"""Every domain-separation label of the vault and of the password option.

The engine's labels (derived from K) live in :mod:`strongroom.crypto.labels`;
these are derived from OPAQUE outputs and from the vault's own root, never
from K — except ``BACKUP_HEAD``, which the client derives from K for the
rollback-detection head (the vault only stores its MAC and cannot compute it).  ``docs/spec/vault-protocol.md`` §5 lists exactly these constants and
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

#: HKDF-SHA256 info: key (from the record key) of the MAC over a record row's counter columns,
#: and the first field of that MAC's input.
ROW_MAC = b"strongroom/v2/vault/row-mac"
#: HKDF-SHA256 info: key (from the record key) authenticating registration ids, and the first
#: field of their MAC input.
REGISTRATION_ID = b"strongroom/v2/vault/registration-id"
#: HKDF-SHA256 info deriving the record proof from K (client only); the vault keeps SHA-256 of it.
RECORD_PROOF = b"strongroom/v2/vault/record-proof"
#: First field of a fake record's credential identifier nonce (unknown accounts).
FAKE_CID = b"strongroom/v2/vault/fake-credential-id"

#: HKDF-SHA256 info deriving K_head from K (client only), and the first field of the
#: MAC input of a backup head's tag.
BACKUP_HEAD = b"strongroom/v1/vault/backup-head"

#: HKDF-SHA256 info deriving the vault locator's MAC key from K (client only), and the first
#: field of that MAC's input (spec §6).
LOCATOR_MAC = b"strongroom/v3/vault/locator-mac"

ALL_LABELS = (WRAP_K, RELEASE, RECORD_AD, SESSION_AD, SECRETS_AD, BACKUP_HEAD, ROW_MAC,
              REGISTRATION_ID, RECORD_PROOF, FAKE_CID, LOCATOR_MAC)

__all__ = ["ALL_LABELS", "BACKUP_HEAD", "FAKE_CID", "LOCATOR_MAC", "RECORD_AD", "RECORD_PROOF", "REGISTRATION_ID", "RELEASE", "ROW_MAC", "SECRETS_AD", "SESSION_AD", "WRAP_K"]
