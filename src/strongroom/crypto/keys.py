"""The backup key K, its 64-digit form, and subkeys derived from it.

K is 32 random bytes, never derived from a password.  Every key that touches
data is derived from K with HKDF-SHA256 under a label from
:mod:`strongroom.crypto.labels`, so one derived key leaking tells nothing about
another.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import InvalidKeyFormat
from . import labels
from .hashing import equal

KEY_SIZE = 32
_SEPARATORS = re.compile(r"[\s\-_]+")
_HEX = re.compile(r"^[0-9a-f]*$")


def hkdf(ikm: bytes, info: bytes, *, salt: bytes | None = None, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``ikm`` under ``info`` and optional ``salt``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


class BackupKey:
    """K: the 32-byte key every backup secret is derived from.

    ``repr`` never shows the key; use :meth:`digits` to show it to its owner.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes | bytearray) or len(raw) != KEY_SIZE:
            raise ValueError("a backup key is exactly 32 bytes")
        self._raw = bytes(raw)

    @classmethod
    def generate(cls, rng: Callable[[int], bytes] = os.urandom) -> BackupKey:
        """Make a new random key from ``rng`` (the OS CSPRNG by default)."""
        return cls(rng(KEY_SIZE))

    @classmethod
    def from_bytes(cls, raw: bytes) -> BackupKey:
        """Wrap 32 raw bytes as a key."""
        return cls(raw)

    @classmethod
    def parse(cls, text: str) -> BackupKey:
        """Read a 64-digit key typed by a person: spaces, dashes and case are ignored."""
        if not isinstance(text, str):
            raise InvalidKeyFormat()
        compact = _SEPARATORS.sub("", text).lower()
        # Say what is wrong without echoing the (secret) input.
        if not _HEX.match(compact):
            raise InvalidKeyFormat("that key contains characters other than 0-9 and a-f")
        if len(compact) != 2 * KEY_SIZE:
            raise InvalidKeyFormat(f"that key has {len(compact)} digits; a key has 64")
        return cls(bytes.fromhex(compact))

    def digits(self) -> str:
        """The key as 64 lowercase hex digits in 16 space-separated groups of 4."""
        h = self._raw.hex()
        return " ".join(h[i : i + 4] for i in range(0, len(h), 4))

    def secret_bytes(self) -> bytes:
        """The 32 raw bytes (handle with care)."""
        return self._raw

    def derive(self, label: bytes, *, salt: bytes | None = None, length: int = 32) -> bytes:
        """A subkey of K for ``label`` (one of :mod:`strongroom.crypto.labels`)."""
        return hkdf(self._raw, label, salt=salt, length=length)

    def keycheck(self, repo_id: bytes) -> bytes:
        """The 32-byte key-check value stored in the plaintext config of ``repo_id``."""
        return self.derive(labels.KEYCHECK, salt=repo_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BackupKey):
            return NotImplemented
        return equal(self._raw, other._raw)

    __hash__ = None  # type: ignore[assignment]  # keys are not dict keys: no hash of a secret

    def __repr__(self) -> str:
        return "<BackupKey>"

    __str__ = __repr__


__all__ = ["KEY_SIZE", "BackupKey", "hkdf"]
