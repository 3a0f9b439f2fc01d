"""RFC 9497 OPRF, suite ristretto255-SHA512, base mode (modeOPRF = 0x00).

Functions follow the RFC's names and argument order:

* :func:`hash_to_group`, :func:`hash_to_scalar` (RFC 9497 §4.1, via RFC 9380
  ``expand_message_xmd`` with SHA-512 and the ristretto255 one-way map);
* :func:`derive_key_pair` (§3.2.1), used by RFC 9807 for the per-credential
  OPRF key and for every Diffie-Hellman key pair;
* :func:`blind`, :func:`blind_evaluate`, :func:`finalize` (§3.3.1).

Elements and scalars are their 32-byte serializations.  ``mode`` exists only
so the VOPRF/POPRF key-derivation vectors can be checked; OPAQUE uses 0.
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.errors import ProtocolError

from . import _group
from ._kdf import sha512

MODE_OPRF = 0x00
SUITE_ID = b"ristretto255-SHA512"
OUTPUT_SIZE = 64  # Nh of SHA-512


def context_string(mode: int = MODE_OPRF) -> bytes:
    """``"OPRFV1-" || I2OSP(mode, 1) || "-" || identifier`` (RFC 9497 §3.1)."""
    return b"OPRFV1-" + bytes([mode]) + b"-" + SUITE_ID


_CONTEXT = context_string(MODE_OPRF)
_HASH_TO_GROUP_DST = b"HashToGroup-" + _CONTEXT
_HASH_TO_SCALAR_DST = b"HashToScalar-" + _CONTEXT


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.1 expand_message_xmd with SHA-512 (b=64, s=128 bytes)."""
    ell = -(-length // 64)
    if ell > 255 or length > 65535 or len(dst) > 255:
        raise ValueError("expand_message_xmd: length or DST too long")
    dst_prime = dst + bytes([len(dst)])
    b0 = sha512(bytes(128) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime)
    blocks = [sha512(b0 + b"\x01" + dst_prime)]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1], strict=True))
        blocks.append(sha512(mixed + bytes([i]) + dst_prime))
    return b"".join(blocks)[:length]


def hash_to_group(msg: bytes, dst: bytes = _HASH_TO_GROUP_DST) -> bytes:
    """HashToGroup: ristretto255 hash_to_ristretto255 (RFC 9380 Appendix B)."""
    return _group.element_from_uniform_bytes(expand_message_xmd(msg, dst, 64))


def hash_to_scalar(msg: bytes, dst: bytes = _HASH_TO_SCALAR_DST) -> bytes:
    """HashToScalar: 64 bytes of expand_message_xmd, little-endian, mod the order."""
    return _group.reduce_wide(expand_message_xmd(msg, dst, 64))


def derive_key_pair(seed: bytes, info: bytes, mode: int = MODE_OPRF) -> tuple[bytes, bytes]:
    """DeriveKeyPair(seed, info) -> (skS, pkS) (RFC 9497 §3.2.1)."""
    secret = derive_secret_key(seed, info, mode)
    return secret, _group.scalar_mult_base(secret)


def derive_secret_key(seed: bytes, info: bytes, mode: int = MODE_OPRF) -> bytes:
    """The skS half of DeriveKeyPair, without the (unneeded) public key."""
    if len(info) > 0xFFFF:
        raise ValueError("info too long")
    derive_input = seed + len(info).to_bytes(2, "big") + info
    dst = b"DeriveKeyPair" + context_string(mode)
    for counter in range(256):
        secret = hash_to_scalar(derive_input + bytes([counter]), dst)
        if not _group.is_zero_scalar(secret):
            return secret
    raise ProtocolError("DeriveKeyPair failed")  # probability ~2^-64000


def blind(input_: bytes, rng: Callable[[int], bytes]) -> tuple[bytes, bytes]:
    """Blind(input) -> (blind, blinded_element) with a random blind from ``rng``."""
    return blind_with(input_, _group.random_scalar(rng))


def blind_with(input_: bytes, blind_scalar: bytes) -> tuple[bytes, bytes]:
    """Blind with a given blind scalar (the deterministic twin used by vectors)."""
    if len(input_) > 0xFFFF:
        raise ValueError("OPRF input must be shorter than 65536 bytes")
    element = hash_to_group(input_)
    # from_hash never yields the identity in practice; RFC 9497 still says check.
    if element == _group.IDENTITY:
        raise ProtocolError("input hashes to the identity element")
    return blind_scalar, _group.scalar_mult(blind_scalar, element)


def blind_evaluate(secret_key: bytes, blinded_element: bytes) -> bytes:
    """BlindEvaluate(skS, blindedElement) = skS * blindedElement."""
    return _group.scalar_mult(secret_key, blinded_element)


def finalize(input_: bytes, blind_scalar: bytes, evaluated_element: bytes) -> bytes:
    """Finalize(input, blind, evaluatedElement) -> 64-byte OPRF output."""
    unblinded = _group.scalar_mult(_group.scalar_invert(blind_scalar), evaluated_element)
    return _output_hash(input_, unblinded)


def evaluate(secret_key: bytes, input_: bytes) -> bytes:
    """Evaluate(skS, input): the unblinded PRF, for tests and cross-checks."""
    return _output_hash(input_, _group.scalar_mult(secret_key, hash_to_group(input_)))


def _output_hash(input_: bytes, element: bytes) -> bytes:
    return sha512(
        len(input_).to_bytes(2, "big") + input_
        + len(element).to_bytes(2, "big") + element
        + b"Finalize"
    )
