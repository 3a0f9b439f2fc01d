"""Sealed objects: index, snapshot and lock objects share one envelope.

Layout (see the spec, "Sealed object")::

    magic (4) | salt (32) | AES-256-GCM(nonce 0, plaintext, aad = magic || name)

Binding the object name into the AAD means a swapped or renamed object fails
authentication instead of being read as another one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ..crypto.aead import SALT_SIZE, TAG_SIZE, ObjectCipher
from ..crypto.keys import BackupKey
from ..errors import FormatError

Rng = Callable[[int], bytes]
_H32 = re.compile(r"^[0-9a-f]{32}$")


def named_objects(names: Iterable[str], prefix: str) -> list[str]:
    """The names ``<prefix><32 lowercase hex>``; anything else there is ignored (spec §1)."""
    return sorted(n for n in names if n.startswith(prefix) and _H32.match(n[len(prefix):]))


def seal_object(key: BackupKey, label: bytes, magic: bytes, name: str, plaintext: bytes,
                rng: Rng) -> bytes:
    """Encrypt ``plaintext`` as the object ``name`` under a fresh per-object key."""
    salt = rng(SALT_SIZE)
    cipher = ObjectCipher(key, label, salt)
    return magic + salt + cipher.seal(0, plaintext, magic + name.encode())


def open_object(key: BackupKey, label: bytes, magic: bytes, name: str, data: bytes) -> bytes:
    """Decrypt the object ``name``; ``FormatError``/``DataDamaged`` if it is not genuine."""
    if len(data) < len(magic) + SALT_SIZE + TAG_SIZE or data[: len(magic)] != magic:
        raise FormatError(f"{name}: not a Strongroom object of the expected kind")
    salt = data[len(magic) : len(magic) + SALT_SIZE]
    cipher = ObjectCipher(key, label, salt)
    return cipher.open(0, data[len(magic) + SALT_SIZE :], magic + name.encode(), name)
