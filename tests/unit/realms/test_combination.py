"""The combination step of realms.md §4.2, recomputed straight from the spec's formulas.

Reads the messages of ``docs/spec/realm-vectors.json`` and, with Python integers
modulo the group order, libsodium's ristretto255 point operations, hashlib, and
pyca's HKDF/AES-GCM only (none of ``strongroom.realms``), recomputes the shares
from the polynomial, ``N = r^{-1}·(λ_1 Z_1 + λ_2 Z_2)``, ``y``, the unlock tags,
``e = λ_1 e_1 + λ_2 e_2`` and K from ``c``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pysodium
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

L = 2**252 + 27742317777372353535851937790883648493
DOC = json.loads((Path(__file__).resolve().parents[3] / "docs/spec/realm-vectors.json")
                 .read_text())


def _int(h: str) -> int:
    return int.from_bytes(bytes.fromhex(h), "little")


def _sc(n: int) -> bytes:
    return (n % L).to_bytes(32, "little")


def _frame(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _hkdf(ikm: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(ikm)


def _msg(op: str, realm: int) -> dict:  # type: ignore[type-arg]
    return next(m for m in DOC["messages"] if m["op"] == op and m["realm"] == realm)


def test_combination_from_the_spec_formulas() -> None:
    inp, mid = DOC["inputs"], DOC["intermediate"]
    account, slot = inp["account"].encode(), inp["slot"].encode()
    # Shares: s_i = s + a_1·i (k = 2), P_i = s_i·B, as registered.
    s, a1 = _int(mid["s"]), _int(mid["s_coefficients"][0])
    e, b1 = _int(mid["e"]), _int(mid["e_coefficients"][0])
    for i in (1, 2, 3):
        req = _msg("register", i)["request"]
        assert req["oprf_share"] == _sc(s + a1 * i).hex()
        assert req["key_share"] == _sc(e + b1 * i).hex()
        assert req["public_share"] == pysodium.crypto_scalarmult_ristretto255_base(
            _sc(s + a1 * i)).hex()
    # λ_1 = 2/(2-1) = 2, λ_2 = 1/(1-2) = -1 (mod L).
    lam = {1: 2, 2: L - 1}
    assert {int(k): _int(v) for k, v in mid["lagrange_1_2"].items()} == lam
    z = {i: bytes.fromhex(_msg("evaluate", i)["response"]["evaluation"]) for i in (1, 2)}
    combined = pysodium.crypto_core_ristretto255_add(
        pysodium.crypto_scalarmult_ristretto255(_sc(lam[1]), z[1]),
        pysodium.crypto_scalarmult_ristretto255(_sc(lam[2]), z[2]))
    n_elem = pysodium.crypto_scalarmult_ristretto255(_sc(pow(_int(mid["blind_r"]), -1, L)),
                                                     combined)
    assert n_elem.hex() == mid["N"]
    # y = SHA-512(I2OSP(64, 2) || pw' || I2OSP(32, 2) || N || "Finalize").
    pw2 = bytes.fromhex(mid["pw_stretched"])
    y = hashlib.sha512(len(pw2).to_bytes(2, "big") + pw2 + b"\x00\x20" + n_elem
                       + b"Finalize").digest()
    assert y.hex() == mid["y"]
    unlock_key = _hkdf(y, b"strongroom/v4/realms/unlock-key")
    for i, rid in zip((1, 2, 3), inp["realm_ids"], strict=True):
        tag = hmac.new(unlock_key, _frame(b"strongroom/v4/realms/unlock-tag", bytes.fromhex(rid),
                                          account, slot, bytes([i])), hashlib.sha256).digest()
        assert _msg("unlock", i)["request"]["tag"] == tag.hex()
        assert _msg("register", i)["request"]["unlock_tag"] == tag.hex()
    # e from two released shares, then K from c.
    rel = {i: _msg("unlock", i)["response"] for i in (1, 2)}
    e_comb = (lam[1] * _int(rel[1]["key_share"]) + lam[2] * _int(rel[2]["key_share"])) % L
    assert e_comb == e
    k_enc = _hkdf(_frame(_hkdf(y, b"strongroom/v4/realms/wrap"), _sc(e_comb)),
                  b"strongroom/v4/realms/k")
    c = bytes.fromhex(rel[1]["wrapped_key"])
    assert c[:12].hex() == mid["c_nonce"]
    k = AESGCM(k_enc).decrypt(c[:12], c[12:], _frame(b"strongroom/v4/realms/k", account, slot))
    assert k.hex() == inp["K"]
