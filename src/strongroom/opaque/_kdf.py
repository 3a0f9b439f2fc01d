"""SHA-512, HMAC-SHA512 and HKDF-SHA512 from pyca/cryptography (RFC 9807 §2.1).

pysodium's HKDF needs libsodium >= 1.0.19 (Debian 12 ships 1.0.18), so the
key-derivation functions come from ``cryptography``.  MACs are always
compared with :func:`hmac.compare_digest` (:func:`mac_equal`) so that a
forged MAC costs the same time however many bytes it gets right.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

NH = 64  # Nh: SHA-512 output size
NM = 64  # Nm: HMAC-SHA512 output size
NX = 64  # Nx: HKDF-SHA512 PRK size

_SHA512 = hashes.SHA512()
_EMPTY_SALT = bytes(NH)  # RFC 5869: an absent salt is HashLen zero bytes, same as ""


def sha512(data: bytes) -> bytes:
    """SHA-512 of ``data``."""
    digest = hashes.Hash(_SHA512)
    digest.update(data)
    return digest.finalize()


def hmac_sha512(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA512 of ``data`` under ``key`` (RFC 9807 MAC)."""
    mac = crypto_hmac.HMAC(key, _SHA512)
    mac.update(data)
    return mac.finalize()


def mac_equal(expected: bytes, received: bytes) -> bool:
    """Constant-time MAC comparison."""
    return hmac.compare_digest(expected, received)


def extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-512 (RFC 5869 §2.2)."""
    return hmac_sha512(salt or _EMPTY_SALT, ikm)


def expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand with SHA-512 (RFC 5869 §2.3)."""
    return HKDFExpand(_SHA512, length, info).derive(prk)


def expand_label(secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """RFC 9807 §6.4.1 Expand-Label: the label is prefixed with ``OPAQUE-``."""
    full_label = b"OPAQUE-" + label
    custom_label = (
        length.to_bytes(2, "big")
        + len(full_label).to_bytes(1, "big")
        + full_label
        + len(context).to_bytes(1, "big")
        + context
    )
    return expand(secret, custom_label, length)


def derive_secret(secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    """RFC 9807 §6.4.1 Derive-Secret: Expand-Label to Nx bytes."""
    return expand_label(secret, label, transcript_hash, NX)
