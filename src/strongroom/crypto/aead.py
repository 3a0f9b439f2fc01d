"""Thin AEAD sealing over AES-256-GCM (pyca ``cryptography``).

Nonce safety (argued in ``docs/spec/backup-format.md``, "AEAD"): every stored
object gets its own key, derived from K with HKDF under a fresh random 256-bit
salt stored in the object.  Within one object the nonce is a counter chosen by
the format (e.g. a frame's byte offset in its pack), so a (key, nonce) pair is
never used twice unless two objects draw the same 256-bit salt.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import DataDamaged
from .keys import BackupKey

SALT_SIZE = 32
TAG_SIZE = 16
NONCE_SIZE = 12
#: The nonce reserved for an object's own header (never a frame offset).
HEADER_NONCE = (1 << 96) - 1


class ObjectCipher:
    """AES-256-GCM under the per-object key ``HKDF(K, salt, label)``."""

    __slots__ = ("_aead",)

    def __init__(self, key: BackupKey, label: bytes, salt: bytes) -> None:
        if len(salt) != SALT_SIZE:
            raise ValueError("salt must be 32 bytes")
        self._aead = AESGCM(key.derive(label, salt=salt))

    def seal(self, nonce: int, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``; ``nonce`` unique within this object."""
        return self._aead.encrypt(nonce.to_bytes(NONCE_SIZE, "big"), plaintext, aad)

    def open(self, nonce: int, ciphertext: bytes, aad: bytes, what: str) -> bytes:
        """Decrypt or raise ``DataDamaged`` naming ``what`` (never the key or data)."""
        try:
            return self._aead.decrypt(nonce.to_bytes(NONCE_SIZE, "big"), ciphertext, aad)
        except (InvalidTag, ValueError) as exc:
            raise DataDamaged(f"{what} is damaged or was tampered with") from exc

    def __repr__(self) -> str:
        return "<ObjectCipher>"


__all__ = ["HEADER_NONCE", "NONCE_SIZE", "SALT_SIZE", "TAG_SIZE", "ObjectCipher"]
