"""The ristretto255 prime-order group, through libsodium (pysodium 0.7.19).

This is the only module that touches libsodium.  Every function takes and
returns canonical 32-byte encodings.  Two libsodium behaviours are made safe
here, because both would otherwise leak into the protocol as crashes or as
accepted garbage:

* ``crypto_core_ristretto255_is_valid_point`` accepts the identity element
  (32 zero bytes); RFC 9497 §2.1 DeserializeElement MUST reject it, so we do.
* libsodium 1.0.18's canonicity check ignores the top bit of the last byte
  (fixed upstream in 1.0.19): ``P | 0x80`` is accepted as ``P``.  We reject
  any encoding with that bit set (RFC 9496 §4.3.1 requires it to be zero).
* ``crypto_scalarmult_ristretto255`` fails (pysodium raises ``ValueError``)
  when the product is the identity; that is a peer-supplied bad input, so it
  becomes :class:`~strongroom.errors.ProtocolError`.

Everything pysodium 0.7.19 lacks is not needed: all calls below exist there.
"""

from __future__ import annotations

from collections.abc import Callable

import pysodium

from strongroom.errors import ProtocolError

ELEMENT_SIZE = 32  # Noe / Npk: a serialized ristretto255 element
SCALAR_SIZE = 32  # Nok / Nsk: a serialized scalar
IDENTITY = bytes(ELEMENT_SIZE)
_ZERO_SCALAR = bytes(SCALAR_SIZE)

# pysodium ships no type information; these are the signatures it implements.
_is_valid_point: Callable[[bytes], bool] = pysodium.crypto_core_ristretto255_is_valid_point
_scalarmult: Callable[[bytes, bytes], bytes] = pysodium.crypto_scalarmult_ristretto255
_scalarmult_base: Callable[[bytes], bytes] = pysodium.crypto_scalarmult_ristretto255_base
_from_hash: Callable[[bytes], bytes] = pysodium.crypto_core_ristretto255_from_hash
_reduce: Callable[[bytes], bytes] = pysodium.crypto_core_ristretto255_scalar_reduce
_invert: Callable[[bytes], bytes] = pysodium.crypto_core_ristretto255_scalar_invert
_scalar_add: Callable[[bytes, bytes], bytes] = pysodium.crypto_core_ristretto255_scalar_add
_scalar_sub: Callable[[bytes, bytes], bytes] = pysodium.crypto_core_ristretto255_scalar_sub
_scalar_mul: Callable[[bytes, bytes], bytes] = pysodium.crypto_core_ristretto255_scalar_mul
_add: Callable[[bytes, bytes], bytes] = pysodium.crypto_core_ristretto255_add
#: The generator (the ristretto255 base point), encoded.  ``scalar_mult_base(k)`` is
#: ``scalar_mult(k, GENERATOR)`` computed with libsodium's fixed-base tables.
GENERATOR = _scalarmult_base((1).to_bytes(SCALAR_SIZE, "little"))


def deserialize_element(data: bytes, what: str = "group element") -> bytes:
    """Return ``data`` if it is a canonical, non-identity ristretto255 element.

    Raises ProtocolError for a wrong length, a non-canonical or invalid
    encoding, or the identity element.
    """
    if len(data) != ELEMENT_SIZE:
        raise ProtocolError(f"{what}: expected {ELEMENT_SIZE} bytes, got {len(data)}")
    # libsodium's check accepts the identity; RFC 9497 says reject it.  And
    # libsodium 1.0.18 ignores the top bit (fixed in 1.0.19), so it accepts a
    # second, non-canonical encoding of every point; RFC 9496 §4.3.1 rejects it.
    if data == IDENTITY or data[31] & 0x80 or not _is_valid_point(data):
        raise ProtocolError(f"{what}: not a valid ristretto255 element")
    return bytes(data)


def deserialize_scalar(data: bytes, what: str = "scalar") -> bytes:
    """Return ``data`` if it is a canonical non-zero scalar (less than the group order)."""
    if len(data) != SCALAR_SIZE:
        raise ProtocolError(f"{what}: expected {SCALAR_SIZE} bytes, got {len(data)}")
    # A scalar is canonical iff reducing it (padded to 64 bytes) leaves it unchanged.
    if _reduce(bytes(data) + _ZERO_SCALAR) != data or data == _ZERO_SCALAR:
        raise ProtocolError(f"{what}: not a canonical non-zero scalar")
    return bytes(data)


def reduce_wide(data: bytes) -> bytes:
    """Reduce a 64-byte little-endian integer modulo the group order."""
    return _reduce(data)


def is_zero_scalar(scalar: bytes) -> bool:
    """True if ``scalar`` is zero (only possible with negligible probability)."""
    return scalar == _ZERO_SCALAR


def element_from_uniform_bytes(uniform: bytes) -> bytes:
    """The ristretto255 one-way map of 64 uniform bytes (RFC 9380 / RFC 9496)."""
    return _from_hash(uniform)


def scalar_mult(scalar: bytes, element: bytes) -> bytes:
    """Return ``scalar * element``; ProtocolError if the product is the identity."""
    try:
        return _scalarmult(scalar, element)
    except ValueError as exc:
        raise ProtocolError("a group operation produced the identity element") from exc


def scalar_mult_base(scalar: bytes) -> bytes:
    """Return ``scalar * G``; ProtocolError for the zero scalar."""
    try:
        return _scalarmult_base(scalar)
    except ValueError as exc:
        raise ProtocolError("a group operation produced the identity element") from exc


def scalar_invert(scalar: bytes) -> bytes:
    """Return ``scalar^-1`` modulo the group order; ProtocolError for zero."""
    try:
        return _invert(scalar)
    except ValueError as exc:
        raise ProtocolError("cannot invert the zero scalar") from exc


def scalar_add(a: bytes, b: bytes) -> bytes:
    """``a + b`` modulo the group order."""
    return _scalar_add(a, b)


def scalar_sub(a: bytes, b: bytes) -> bytes:
    """``a - b`` modulo the group order."""
    return _scalar_sub(a, b)


def scalar_mul(a: bytes, b: bytes) -> bytes:
    """``a * b`` modulo the group order."""
    return _scalar_mul(a, b)


def element_add(p: bytes, q: bytes) -> bytes:
    """``p + q``; ProtocolError if an input is not a valid element."""
    try:
        return _add(p, q)
    except ValueError as exc:
        raise ProtocolError("a group addition got an invalid element") from exc


def random_scalar(rng: Callable[[int], bytes]) -> bytes:
    """A uniformly random non-zero scalar (RFC 9497 RandomScalar) from ``rng``.

    64 random bytes reduced modulo the order have a bias below 2^-250.
    """
    while True:
        wide = rng(64)
        if len(wide) != 64:
            raise ValueError("rng returned the wrong number of bytes")
        scalar = _reduce(wide)
        if scalar != _ZERO_SCALAR:
            return scalar
