"""RFC 9497 §2.2 DLEQ proofs (VOPRF mode) against the RFC's vectors, byte for byte.

The first building block of threshold realms (docs/spec/realms.md): each realm
proves its evaluation against its public share.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from strongroom.opaque import _group, dleq, oprf

_NAME = "oprf_ristretto255_sha512.json"
_SHARED = Path(__file__).parents[2].parent / "shared" / "vectors" / _NAME
_PATH = _SHARED if _SHARED.exists() else Path(__file__).parent / "data" / _NAME

H = bytes.fromhex
VOPRF = json.loads(_PATH.read_text())["modes"]["VOPRF"]
GENERATOR = _group.scalar_mult_base(H("01" + "00" * 31))


@pytest.mark.parametrize("n", range(len(VOPRF["vectors"])))
def test_proof_matches_the_rfc_vector(n: int) -> None:
    v = VOPRF["vectors"][n]
    c = [H(x) for x in v["BlindedElement"]]
    d = [H(x) for x in v["EvaluationElement"]]
    proof = dleq.generate_proof(H(VOPRF["skSm"]), GENERATOR, H(VOPRF["pkSm"]), c, d,
                                H(v["ProofRandomScalar"]))
    assert proof.hex() == v["Proof"]
    assert dleq.verify_proof(GENERATOR, H(VOPRF["pkSm"]), c, d, proof)


def test_the_vectors_cover_a_batch() -> None:
    assert {v["Batch"] for v in VOPRF["vectors"]} >= {1, 2}


def test_a_wrong_evaluation_or_key_or_proof_fails() -> None:
    v = next(x for x in VOPRF["vectors"] if x["Batch"] == 1)
    c, d = [H(v["BlindedElement"][0])], [H(v["EvaluationElement"][0])]
    proof, pk = H(v["Proof"]), H(VOPRF["pkSm"])
    other_key, other_pk = oprf.derive_key_pair(os.urandom(32), b"another realm")
    wrong_eval = [oprf.blind_evaluate(other_key, c[0])]
    assert not dleq.verify_proof(GENERATOR, pk, c, wrong_eval, proof)
    assert not dleq.verify_proof(GENERATOR, other_pk, c, d, proof)
    for i in (0, 31, 32, 63):
        bad = bytearray(proof)
        bad[i] ^= 1
        assert not dleq.verify_proof(GENERATOR, pk, c, d, bytes(bad))
    assert not dleq.verify_proof(GENERATOR, pk, c, d, proof[:63])
    assert not dleq.verify_proof(GENERATOR, pk, c, d, b"\xff" * 64)  # not canonical


def test_a_fresh_proof_verifies_and_a_cheater_cannot_make_one() -> None:
    key, pk = oprf.derive_key_pair(os.urandom(32), b"realm 1")
    c = [oprf.hash_to_group(os.urandom(16)) for _ in range(3)]
    d = [oprf.blind_evaluate(key, x) for x in c]
    r = _group.random_scalar(os.urandom)
    assert dleq.verify_proof(GENERATOR, pk, c, d, dleq.generate_proof(key, GENERATOR, pk, c, d, r))
    other, _ = oprf.derive_key_pair(os.urandom(32), b"realm 2")
    forged = dleq.generate_proof(other, GENERATOR, pk, c, d, r)  # the wrong key, the claimed pk
    assert not dleq.verify_proof(GENERATOR, pk, c, d, forged)


def test_the_generator_is_multiplied_by_its_fixed_base_tables_to_the_same_element() -> None:
    """``A = G`` (every realm proof) takes libsodium's fixed-base multiplication: the same
    element as the generic one, so the proof is the same; any other ``A`` the generic one."""
    assert _group.GENERATOR == GENERATOR
    for _ in range(16):
        r = _group.random_scalar(os.urandom)
        assert dleq._times(r, GENERATOR) == _group.scalar_mult(r, GENERATOR)
    a = _group.scalar_mult_base(_group.random_scalar(os.urandom))  # another base
    key = _group.random_scalar(os.urandom)
    b = _group.scalar_mult(key, a)
    c = [oprf.hash_to_group(os.urandom(16)) for _ in range(2)]
    d = [oprf.blind_evaluate(key, x) for x in c]
    proof = dleq.generate_proof(key, a, b, c, d, _group.random_scalar(os.urandom))
    assert dleq.verify_proof(a, b, c, d, proof)
    assert not dleq.verify_proof(GENERATOR, b, c, d, proof)
