"""OPAQUE configuration: the key stretching function (KSF) and the context.

RFC 9807 §3.2 leaves the KSF to the application.  Strongroom uses Argon2id
with a salt of 16 zero bytes and a 64-byte output (the per-user secret salt is
the OPRF key, so a fixed salt is safe: RFC 9807 §10.7).  ``IdentityKSF`` is
for the RFC test vectors only.  See ``docs/spec/vault-protocol.md`` §1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pysodium
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

ARGON2_SALT = bytes(16)
ARGON2_OUTPUT_SIZE = 64

# RFC 9106 §4's second recommended option (64 MiB, 3 passes) with one lane:
# libsodium's crypto_pwhash, which many phone apps use, computes only p = 1,
# and the lane count does not change an attacker's memory x time cost.
# The reasoning and measurements are in docs/spec/vault-protocol.md §1.3.
DEFAULT_MEMORY_KIB = 65536
DEFAULT_ITERATIONS = 3
DEFAULT_PARALLELISM = 1


@dataclass(frozen=True)
class Argon2idKSF:
    """Argon2id (RFC 9106) as the OPAQUE KSF: Stretch(msg) = Argon2id(msg, salt=0^16, 64 bytes)."""

    memory_kib: int = DEFAULT_MEMORY_KIB
    iterations: int = DEFAULT_ITERATIONS
    parallelism: int = DEFAULT_PARALLELISM

    def __post_init__(self) -> None:
        if not 1 <= self.parallelism <= 0xFFFFFF:
            raise ValueError("Argon2id parallelism must be between 1 and 2^24-1")
        if self.iterations < 1:
            raise ValueError("Argon2id iterations must be at least 1")
        if self.memory_kib < 8 * self.parallelism:
            raise ValueError("Argon2id memory must be at least 8 KiB per lane")

    def stretch(self, msg: bytes) -> bytes:
        """Return the 64-byte Argon2id hash of ``msg`` (the OPRF output).

        One lane (the default) is computed by libsodium's ``crypto_pwhash``
        through pysodium: its ctypes call releases the GIL, so other threads
        (an app's asyncio event loop) keep running during the ~0.15 s of
        stretching.  pyca/cryptography's Argon2id holds the GIL for the whole
        computation (measured: a 1 ms heartbeat thread stalled 166-181 ms,
        against 1.2-3.1 ms with libsodium; ``docs/sdk.md``), so it is used only
        for more than one lane, which libsodium does not compute.  Both give the
        same bytes (RFC 9106; ``tests/unit/opaque/test_ksf_gil.py``).
        """
        if self.parallelism == 1 and self.memory_kib * 1024 <= pysodium.crypto_pwhash_MEMLIMIT_MAX:
            return bytes(pysodium.crypto_pwhash(
                ARGON2_OUTPUT_SIZE, msg, ARGON2_SALT, self.iterations, self.memory_kib * 1024,
                pysodium.crypto_pwhash_ALG_ARGON2ID13))
        return self._stretch_pyca(msg)

    def _stretch_pyca(self, msg: bytes) -> bytes:
        kdf = Argon2id(
            salt=ARGON2_SALT,
            length=ARGON2_OUTPUT_SIZE,
            iterations=self.iterations,
            lanes=self.parallelism,
            memory_cost=self.memory_kib,
        )
        return kdf.derive(msg)


@dataclass(frozen=True)
class IdentityKSF:
    """The identity KSF (RFC 9807 Appendix C vectors only): Stretch(msg) = msg."""

    def stretch(self, msg: bytes) -> bytes:
        """Return ``msg`` unchanged."""
        return msg


KSF = Argon2idKSF | IdentityKSF


@dataclass(frozen=True)
class OpaqueConfig:
    """Parameters both sides MUST agree on: the KSF and the context string."""

    ksf: KSF = field(default_factory=Argon2idKSF)
    context: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.context, bytes):
            raise TypeError("context must be bytes")
        if len(self.context) > 0xFFFF:
            raise ValueError("context must be shorter than 65536 bytes")
