"""AEAD helpers of the vault: records at rest, session states, released keys.

AES-256-GCM from pyca ``cryptography``; a sealed blob is ``nonce(12) || ct||tag``.
Keys derived from an OPAQUE session key use HKDF-SHA256 with a label from
:mod:`strongroom.vault.labels`.  Every failure to open is one error class, so a
tampered row, a wrong key and a truncated blob look the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import VaultProtocolError

NONCE = 12
TAG = 16


def derive(ikm: bytes, label: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869, no salt) of ``ikm`` under ``label``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(ikm)


def seal(key: bytes, plaintext: bytes, ad: bytes, rng: Callable[[int], bytes] = os.urandom) -> bytes:
    """AES-256-GCM seal with a fresh 12-byte nonce from ``rng``."""
    nonce = rng(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, ad)


def open_sealed(key: bytes, blob: bytes, ad: bytes, what: str = "sealed data") -> bytes:
    """Open a blob made by :func:`seal`; ``VaultProtocolError`` if it is not authentic."""
    if len(blob) < NONCE + TAG:
        raise VaultProtocolError(f"{what} is truncated")
    try:
        return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], ad)
    except InvalidTag:
        raise VaultProtocolError(f"{what} is not authentic (wrong key or tampered)") from None


def frame(*parts: bytes) -> bytes:
    """Length-prefix each part (u32 big-endian) and concatenate: unambiguous AD/payload."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def unframe(data: bytes, count: int) -> list[bytes]:
    """Inverse of :func:`frame` for exactly ``count`` parts; ``ValueError`` otherwise."""
    parts, i = [], 0
    for _ in range(count):
        if i + 4 > len(data):
            raise ValueError("framed data truncated")
        n = int.from_bytes(data[i : i + 4], "big")
        if i + 4 + n > len(data):
            raise ValueError("framed data truncated")
        parts.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    if i != len(data):
        raise ValueError("framed data has trailing bytes")
    return parts


__all__ = ["derive", "frame", "open_sealed", "seal", "unframe"]
