"""Every domain-separation label Strongroom uses, in one place.

Each label is versioned (``strongroom/v1/...``) so that a future format can
derive unrelated keys from the same K.  The spec (``docs/spec/backup-format.md``
section "Key derivation") lists exactly these constants; a test checks that
they are distinct.
"""

from __future__ import annotations

#: HKDF info for the key-check value stored in the plaintext config (salt: repository id).
KEYCHECK = b"strongroom/v1/keycheck"
#: HKDF info for the repository key RK (salt: repository id); every key below is
#: derived from RK, not K, so objects are bound to their repository.
REPOSITORY = b"strongroom/v1/repository"
#: HKDF info for the HMAC-SHA256 key that authenticates the plaintext config.
CONFIG = b"strongroom/v1/config"
#: HKDF info for the key of the keyed BLAKE3 that names blobs (chunk ids).
BLOB_ID = b"strongroom/v1/blob-id"
#: HKDF info for the master of the per-pack data keys (salted per pack).
PACK = b"strongroom/v1/pack"
#: HKDF info for the master of the per-index keys (salted per index object).
INDEX = b"strongroom/v1/index"
#: HKDF info for the master of the per-snapshot-manifest keys (salted per manifest).
SNAPSHOT = b"strongroom/v1/snapshot"
#: HKDF info for the master of the lock-object keys (salted per lock).
LOCK = b"strongroom/v1/lock"

ALL_LABELS = (KEYCHECK, REPOSITORY, CONFIG, BLOB_ID, PACK, INDEX, SNAPSHOT, LOCK)

__all__ = ["ALL_LABELS", "BLOB_ID", "CONFIG", "INDEX", "KEYCHECK", "LOCK", "PACK", "REPOSITORY",
           "SNAPSHOT"]
