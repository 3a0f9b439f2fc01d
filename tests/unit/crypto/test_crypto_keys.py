"""BackupKey: 64-digit form, parsing, secrecy; HKDF; labels; AEAD sealing."""

from __future__ import annotations

import pytest

from strongroom.crypto import labels
from strongroom.crypto.aead import HEADER_NONCE, ObjectCipher
from strongroom.crypto.keys import BackupKey, hkdf
from strongroom.errors import DataDamaged, InvalidKeyFormat

RAW = bytes(range(32))
DIGITS = ("0001 0203 0405 0607 0809 0a0b 0c0d 0e0f "
          "1011 1213 1415 1617 1819 1a1b 1c1d 1e1f")


def test_digits_are_16_groups_of_4() -> None:
    assert BackupKey.from_bytes(RAW).digits() == DIGITS


@pytest.mark.parametrize("text", [
    DIGITS, DIGITS.upper(), DIGITS.replace(" ", ""), DIGITS.replace(" ", "-"),
    "  " + DIGITS.replace(" ", "\n") + "\t", DIGITS.replace(" ", " - "),
])
def test_parse_accepts_spacing_dashes_and_case(text: str) -> None:
    assert BackupKey.parse(text).secret_bytes() == RAW


@pytest.mark.parametrize("text,why", [
    (DIGITS[:-1], "63 digits"), (DIGITS + "0", "65 digits"), ("", "0 digits"),
    (DIGITS.replace("a", "g"), "characters"), (DIGITS.replace("0", "O", 1), "characters"),
])
def test_parse_rejects_bad_input_without_echoing_it(text: str, why: str) -> None:
    with pytest.raises(InvalidKeyFormat) as exc:
        BackupKey.parse(text)
    assert why in exc.value.message
    assert "0a0b" not in exc.value.message and exc.value.exit_code == 11


def test_repr_never_shows_the_key() -> None:
    key = BackupKey.from_bytes(RAW)
    assert repr(key) == str(key) == "<BackupKey>"
    assert "0a0b" not in repr(key) and "0a0b" not in f"{key}"


def test_generate_uses_the_rng_and_equality() -> None:
    key = BackupKey.generate(lambda n: RAW[:n])
    assert key == BackupKey.from_bytes(RAW) and key != BackupKey.generate()
    with pytest.raises(ValueError):
        BackupKey.from_bytes(b"short")


def test_hkdf_rfc5869_case_1() -> None:
    okm = hkdf(bytes([0x0B] * 22), bytes(range(0xF0, 0xFA)), salt=bytes(range(13)), length=42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_labels_are_versioned_and_distinct() -> None:
    assert len(set(labels.ALL_LABELS)) == len(labels.ALL_LABELS)
    assert all(lb.startswith(b"strongroom/v1/") for lb in labels.ALL_LABELS)
    key = BackupKey.from_bytes(RAW)
    assert len({key.derive(lb) for lb in labels.ALL_LABELS}) == len(labels.ALL_LABELS)


def test_keycheck_depends_on_key_and_repository() -> None:
    a, b = BackupKey.from_bytes(RAW), BackupKey.from_bytes(bytes(32))
    assert a.keycheck(b"r" * 16) != b.keycheck(b"r" * 16)
    assert a.keycheck(b"r" * 16) != a.keycheck(b"s" * 16)


def test_object_cipher_round_trip_and_tamper() -> None:
    key = BackupKey.from_bytes(RAW)
    c = ObjectCipher(key, labels.PACK, bytes(32))
    ct = c.seal(36, b"payload", b"aad")
    assert c.open(36, ct, b"aad", "x") == b"payload"
    for nonce, data, aad in [(37, ct, b"aad"), (36, ct, b"aae"),
                             (36, bytes([ct[0] ^ 1]) + ct[1:], b"aad"), (36, ct[:-1], b"aad"),
                             (HEADER_NONCE, ct, b"aad")]:
        with pytest.raises(DataDamaged) as exc:
            c.open(nonce, data, aad, "data/ab/cd")
        assert "data/ab/cd" in exc.value.message
    other = ObjectCipher(key, labels.PACK, bytes(31) + b"\x01")
    with pytest.raises(DataDamaged):
        other.open(36, ct, b"aad", "x")
    assert repr(c) == "<ObjectCipher>"
