"""Every domain-separation label of threshold realms (``docs/spec/realms.md`` §2).

The client's labels are derived from the OPRF output ``y`` or from K; ``RECORD_AD``
is the realm's (the AD of a sealed realm record).  A test checks they are
distinct from each other and from the vault's and the engine's labels.
"""

from __future__ import annotations

#: Argon2id salt input: ``SHA-256(frame(SALT, account, slot))[:16]``.
SALT = b"strongroom/v4/realms/salt"
#: HKDF-SHA256 info: ``unlock_key`` from the OPRF output ``y``.
UNLOCK_KEY = b"strongroom/v4/realms/unlock-key"
#: First part of each unlock tag's HMAC input.
UNLOCK_TAG = b"strongroom/v4/realms/unlock-tag"
#: HKDF-SHA256 info: ``wrap_y`` from ``y``.
WRAP = b"strongroom/v4/realms/wrap"
#: HKDF-SHA256 info of the key that encrypts K, and first part of its AEAD associated data.
K_ENC = b"strongroom/v4/realms/k"
#: HKDF-SHA256 info of the version-3 locator's MAC key (from K), first part of its MAC input.
LOCATOR_MAC = b"strongroom/v4/realms/locator-mac"
#: AEAD associated-data prefix of a sealed realm record (the realm's, under its record key).
RECORD_AD = b"strongroom/v4/realms/record"

ALL_LABELS = (SALT, UNLOCK_KEY, UNLOCK_TAG, WRAP, K_ENC, LOCATOR_MAC, RECORD_AD)

__all__ = ["ALL_LABELS", "K_ENC", "LOCATOR_MAC", "RECORD_AD", "SALT", "UNLOCK_KEY", "UNLOCK_TAG",
           "WRAP"]
