"""The ristretto255 prime-order group, through libsodium (pysodium 0.7.19).

This is the only module that touches libsodium's group functions (through the
library pysodium loads, see ``_lib``).  Every function takes and
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

import ctypes
from collections.abc import Callable
from typing import Any

import pysodium

from strongroom.errors import ProtocolError

ELEMENT_SIZE = 32  # Noe / Npk: a serialized ristretto255 element
SCALAR_SIZE = 32  # Nok / Nsk: a serialized scalar
IDENTITY = bytes(ELEMENT_SIZE)
_ZERO_SCALAR = bytes(SCALAR_SIZE)
_HASH_SIZE = 64  # crypto_core_ristretto255_HASHBYTES, NONREDUCEDSCALARBYTES

if not pysodium.sodium_version_check(1, 0, 18):  # pysodium's own bound for ristretto255
    raise ImportError("ristretto255 needs libsodium 1.0.18 or later")
# The library pysodium loaded, called through a ``ctypes.PyDLL`` handle: the same C
# functions with the same arguments and checks as pysodium 0.7.19's wrappers, but the
# interpreter lock stays held for the call (pysodium's ``CDLL`` releases and retakes it
# around every call, even a 1 µs scalar reduction).  A vault worker thread that released
# it this way handed it to the event loop or another worker, and waited to get it back,
# about 10 times per login (docs/vault-operations.md §8, 2026-12-03).  A
# multiplication takes ~65 µs on the shared development machine.
_lib = ctypes.PyDLL(pysodium.sodium._name)
_lib.crypto_core_ristretto255_is_valid_point.restype = ctypes.c_int


def _arg(data: bytes, size: int, what: str) -> bytes:
    if not isinstance(data, bytes):
        data = bytes(data)
    if len(data) != size:
        raise ValueError(f"{what} must be {size} bytes")
    return data


def _call(fn: Any, size: int, *args: bytes, checked: bool = True) -> bytes:
    out = ctypes.create_string_buffer(size)
    if fn(out, *args) != 0 and checked:
        raise ValueError("libsodium refused the operation")
    return out.raw


def _is_valid_point(p: bytes) -> bool:
    return len(p) == ELEMENT_SIZE and _lib.crypto_core_ristretto255_is_valid_point(
        _arg(p, ELEMENT_SIZE, "point")) == 1


def _scalarmult(n: bytes, p: bytes) -> bytes:
    return _call(_lib.crypto_scalarmult_ristretto255, ELEMENT_SIZE,
                 _arg(n, SCALAR_SIZE, "scalar"), _arg(p, ELEMENT_SIZE, "point"))


def _scalarmult_base(n: bytes) -> bytes:
    return _call(_lib.crypto_scalarmult_ristretto255_base, ELEMENT_SIZE,
                 _arg(n, SCALAR_SIZE, "scalar"))


def _from_hash(r: bytes) -> bytes:
    return _call(_lib.crypto_core_ristretto255_from_hash, ELEMENT_SIZE,
                 _arg(r, _HASH_SIZE, "hash"))


def _reduce(s: bytes) -> bytes:  # void in C
    return _call(_lib.crypto_core_ristretto255_scalar_reduce, SCALAR_SIZE,
                 _arg(s, _HASH_SIZE, "wide scalar"), checked=False)


def _invert(s: bytes) -> bytes:
    return _call(_lib.crypto_core_ristretto255_scalar_invert, SCALAR_SIZE,
                 _arg(s, SCALAR_SIZE, "scalar"))


def _scalar_op(fn: Any) -> Callable[[bytes, bytes], bytes]:
    def op(x: bytes, y: bytes) -> bytes:  # void in C
        return _call(fn, SCALAR_SIZE, _arg(x, SCALAR_SIZE, "scalar"),
                     _arg(y, SCALAR_SIZE, "scalar"), checked=False)
    return op


_scalar_add = _scalar_op(_lib.crypto_core_ristretto255_scalar_add)
_scalar_sub = _scalar_op(_lib.crypto_core_ristretto255_scalar_sub)
_scalar_mul = _scalar_op(_lib.crypto_core_ristretto255_scalar_mul)


def _add(p: bytes, q: bytes) -> bytes:
    return _call(_lib.crypto_core_ristretto255_add, ELEMENT_SIZE,
                 _arg(p, ELEMENT_SIZE, "point"), _arg(q, ELEMENT_SIZE, "point"))


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
