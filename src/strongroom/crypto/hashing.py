"""SHA-256, HMAC-SHA256 and constant-time comparison without ``hashlib`` or ``hmac``.

The standard ``hashlib`` (and ``hmac``, ``secrets`` and pyca's
``constant_time``, which import it) loads the system OpenSSL next to the one
inside pyca ``cryptography``: 3.5 MB of the resident set of every command,
for a few digests.  These take them from pyca instead (the same values), and
the comparison from CPython's ``_operator._compare_digest``, which is what
``hmac.compare_digest`` re-exports.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, hmac

try:
    from _operator import _compare_digest
except ImportError:  # pragma: no cover - another Python implementation
    from hmac import compare_digest as _compare_digest  # type: ignore[no-redef]

#: ``equal(a, b)``: whether two bytes (or two ASCII strings) are equal, in time that
#: depends on their lengths only (``hmac.compare_digest``).
equal: Callable[[bytes | str, bytes | str], bool] = _compare_digest


def sha256(data: bytes) -> bytes:
    """SHA-256 of ``data``."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of ``data`` under ``key``."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()
