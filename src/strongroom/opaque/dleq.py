"""RFC 9497 §2.2: the discrete-log-equality proofs of the verifiable OPRF (VOPRF).

A server that evaluates ``D[i] = k * C[i]`` proves, without revealing ``k``,
that the same ``k`` gives its public key ``B = k * A`` (``A`` the generator).
Threshold realms (``docs/spec/realms.md``) need exactly this: each realm
proves its evaluation against the public share fixed at registration, so the
client can name and leave out a realm that answers wrongly.

The functions follow the RFC's names and steps (``GenerateProof``,
``VerifyProof``, ``ComputeComposites``, ``ComputeCompositesFast``) for the
suite ristretto255-SHA512; ``mode`` picks the context string (VOPRF 0x01,
POPRF 0x02).  They pass the RFC's VOPRF proof vectors byte for byte
(``tests/vectors/test_dleq_vectors.py``).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from . import _group
from ._kdf import sha512
from .oprf import context_string, hash_to_scalar

MODE_VOPRF = 0x01
PROOF_SIZE = 2 * _group.SCALAR_SIZE  # c || s


def _i2osp2(n: int) -> bytes:
    return n.to_bytes(2, "big")


def _lv(data: bytes) -> bytes:
    return _i2osp2(len(data)) + data


def _composites(k: bytes | None, b: bytes, c: Sequence[bytes], d: Sequence[bytes],
                mode: int) -> tuple[bytes, bytes]:
    """``ComputeCompositesFast`` (server, with ``k``) or ``ComputeComposites`` (client)."""
    ctx = context_string(mode)
    seed = sha512(_lv(b) + _lv(b"Seed-" + ctx))
    dst = b"HashToScalar-" + ctx
    m = z = None
    for i, (ci, di) in enumerate(zip(c, d, strict=True)):
        transcript = _lv(seed) + _i2osp2(i) + _lv(ci) + _lv(di) + b"Composite"
        w = hash_to_scalar(transcript, dst)
        term = _group.scalar_mult(w, ci)
        m = term if m is None else _group.element_add(term, m)
        if k is None:
            zt = _group.scalar_mult(w, di)
            z = zt if z is None else _group.element_add(zt, z)
    if m is None:
        raise ValueError("a proof needs at least one element")
    if k is not None:
        z = _group.scalar_mult(k, m)
    assert z is not None
    return m, z


def _times(r: bytes, a: bytes) -> bytes:
    """``r * a``; for the generator (every proof here: ``A = G``) by libsodium's
    fixed-base multiplication, the same element at a fraction of the cost."""
    return _group.scalar_mult_base(r) if a == _group.GENERATOR else _group.scalar_mult(r, a)


def _challenge(b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes, mode: int) -> bytes:
    transcript = _lv(b) + _lv(m) + _lv(z) + _lv(t2) + _lv(t3) + b"Challenge"
    return hash_to_scalar(transcript, b"HashToScalar-" + context_string(mode))


def generate_proof(k: bytes, a: bytes, b: bytes, c: Sequence[bytes], d: Sequence[bytes],
                   r: bytes, mode: int = MODE_VOPRF) -> bytes:
    """``GenerateProof(k, A, B, C, D)`` with the random scalar ``r``; returns ``c || s``."""
    m, z = _composites(k, b, c, d, mode)
    t2, t3 = _times(r, a), _group.scalar_mult(r, m)
    ch = _challenge(b, m, z, t2, t3, mode)
    s = _group.scalar_sub(r, _group.scalar_mul(ch, k))
    return ch + s


def verify_proof(a: bytes, b: bytes, c: Sequence[bytes], d: Sequence[bytes], proof: bytes,
                 mode: int = MODE_VOPRF) -> bool:
    """``VerifyProof(A, B, C, D, proof)``: True only if ``proof`` shows ``D = k*C`` for the
    ``k`` of ``B = k*A``.  Malformed input is False, never an exception."""
    from strongroom.errors import ProtocolError

    if not isinstance(proof, bytes) or len(proof) != PROOF_SIZE:
        return False
    try:
        ch = _group.deserialize_scalar(proof[:32], "proof challenge")
        s = _group.deserialize_scalar(proof[32:], "proof response")
        m, z = _composites(None, b, c, d, mode)
        t2 = _group.element_add(_times(s, a), _group.scalar_mult(ch, b))
        t3 = _group.element_add(_group.scalar_mult(s, m), _group.scalar_mult(ch, z))
        expected = _challenge(b, m, z, t2, t3, mode)
    except (ProtocolError, ValueError):
        return False
    return hmac.compare_digest(expected, ch)


__all__ = ["MODE_VOPRF", "PROOF_SIZE", "generate_proof", "verify_proof"]
