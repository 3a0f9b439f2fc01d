"""``_group`` calls libsodium through its own ``PyDLL`` handle (the interpreter lock kept
for the call): every function answers exactly as pysodium 0.7.19's wrapper of the same C
function does, refusals included."""

from __future__ import annotations

import os

import pysodium
import pytest

from strongroom.errors import ProtocolError
from strongroom.opaque import _group


def _scalar() -> bytes:
    return bytes(pysodium.crypto_core_ristretto255_scalar_reduce(os.urandom(64)))


def test_each_binding_equals_pysodiums() -> None:
    for _ in range(32):
        a, b, wide = _scalar(), _scalar(), os.urandom(64)
        p = bytes(pysodium.crypto_core_ristretto255_from_hash(os.urandom(64)))
        q = bytes(pysodium.crypto_scalarmult_ristretto255_base(b))
        assert _group._from_hash(wide) == pysodium.crypto_core_ristretto255_from_hash(wide)
        assert _group._reduce(wide) == pysodium.crypto_core_ristretto255_scalar_reduce(wide)
        assert _group._scalarmult(a, p) == pysodium.crypto_scalarmult_ristretto255(a, p)
        assert _group._scalarmult_base(a) == pysodium.crypto_scalarmult_ristretto255_base(a)
        assert _group._invert(a) == pysodium.crypto_core_ristretto255_scalar_invert(a)
        assert _group._scalar_add(a, b) == pysodium.crypto_core_ristretto255_scalar_add(a, b)
        assert _group._scalar_sub(a, b) == pysodium.crypto_core_ristretto255_scalar_sub(a, b)
        assert _group._scalar_mul(a, b) == pysodium.crypto_core_ristretto255_scalar_mul(a, b)
        assert _group._add(p, q) == pysodium.crypto_core_ristretto255_add(p, q)
        assert _group._is_valid_point(p) is True
        bad = bytes([p[0] ^ 1]) + p[1:]
        assert _group._is_valid_point(bad) is (
            pysodium.crypto_core_ristretto255_is_valid_point(bad) is True)


def test_refusals_are_pysodiums() -> None:
    zero, p = bytes(32), _group.GENERATOR
    for ours, theirs, args in (
        (_group._scalarmult, pysodium.crypto_scalarmult_ristretto255, (zero, p)),
        (_group._scalarmult_base, pysodium.crypto_scalarmult_ristretto255_base, (zero,)),
        (_group._invert, pysodium.crypto_core_ristretto255_scalar_invert, (b"\x00" * 31 + b"\x00",)),
        (_group._add, pysodium.crypto_core_ristretto255_add, (b"\xff" * 32, p)),
    ):
        with pytest.raises(ValueError):
            theirs(*args)
        with pytest.raises(ValueError):
            ours(*args)
    # Wrong lengths never reach libsodium (pysodium's is_valid_point would read past them).
    for short in (b"", b"x" * 31, b"x" * 33):
        assert _group._is_valid_point(short) is False
        with pytest.raises(ValueError):
            _group._scalarmult(short, p)
        with pytest.raises(ValueError):
            _group._reduce(short)
    with pytest.raises(ProtocolError):
        _group.scalar_mult(zero, p)
    s = _scalar()
    assert _group._scalarmult(bytearray(s), p) == _group._scalarmult(s, p)  # bytes-like in
