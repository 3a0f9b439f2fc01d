"""RFC 9497 Appendix A.1 vectors, suite ristretto255-SHA512.

Base mode (the one OPAQUE uses): every value of every vector.  VOPRF/POPRF:
the key derivation (skSm, pkSm) and the blinding, which share the code path
with a mode-specific context string; their proofs and the POPRF tweak are not
implemented because Strongroom does not use those modes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from strongroom.opaque import oprf

_SHARED = Path(__file__).parents[2].parent / "shared" / "vectors"
_LOCAL = Path(__file__).parent / "data"
_NAME = "oprf_ristretto255_sha512.json"


def _load() -> dict:
    path = _SHARED / _NAME if (_SHARED / _NAME).exists() else _LOCAL / _NAME
    return json.loads(path.read_text())


VECTORS = _load()
MODES = VECTORS["modes"]
H = bytes.fromhex


def test_vector_file_is_the_recorded_one() -> None:
    # The local copy is the file PROVENANCE.md names (by SHA-256), and so is
    # the shared copy when the repository sits beside ../shared/vectors.
    provenance = (_LOCAL / "PROVENANCE.md").read_text()
    copies = [_LOCAL / _NAME] + ([_SHARED / _NAME] if (_SHARED / _NAME).exists() else [])
    for copy in copies:
        digest = hashlib.sha256(copy.read_bytes()).hexdigest()
        assert f"`{_NAME}`" in provenance and f"`{digest}`" in provenance, copy


@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_context_string(mode_name: str) -> None:
    mode = MODES[mode_name]
    assert oprf.context_string(mode["mode"]).hex() == mode["contextString"]


@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_derive_key_pair(mode_name: str) -> None:
    mode = MODES[mode_name]
    secret, public = oprf.derive_key_pair(H(mode["Seed"]), H(mode["KeyInfo"]), mode["mode"])
    assert secret.hex() == mode["skSm"]
    if "pkSm" in mode:
        assert public.hex() == mode["pkSm"]


BASE_CASES = list(enumerate(MODES["OPRF"]["vectors"]))


@pytest.mark.parametrize(("index", "vector"), BASE_CASES)
def test_base_mode_vector(index: int, vector: dict) -> None:
    secret = H(MODES["OPRF"]["skSm"])
    assert vector["Batch"] == 1
    input_, blind = H(vector["Input"][0]), H(vector["Blind"][0])
    _, blinded = oprf.blind_with(input_, blind)
    assert blinded.hex() == vector["BlindedElement"][0]
    evaluated = oprf.blind_evaluate(secret, blinded)
    assert evaluated.hex() == vector["EvaluationElement"][0]
    output = oprf.finalize(input_, blind, evaluated)
    assert output.hex() == vector["Output"][0]
    # The unblinded PRF gives the same output: blinding is transparent.
    assert oprf.evaluate(secret, input_) == output


def test_base_mode_has_both_rfc_vectors() -> None:
    assert len(BASE_CASES) == 2


@pytest.mark.parametrize("mode_name", ["VOPRF", "POPRF"])
def test_blinding_in_verifiable_modes(mode_name: str) -> None:
    mode = MODES[mode_name]
    dst = b"HashToGroup-" + oprf.context_string(mode["mode"])
    checked = 0
    for vector in mode["vectors"]:
        for input_hex, blind_hex, blinded_hex in zip(
            vector["Input"], vector["Blind"], vector["BlindedElement"], strict=True
        ):
            element = oprf.hash_to_group(H(input_hex), dst)
            blinded = oprf.blind_evaluate(H(blind_hex), element)  # r * P
            assert blinded.hex() == blinded_hex
            checked += 1
    assert checked >= 4


def test_voprf_evaluation_is_key_times_blinded_element() -> None:
    mode = MODES["VOPRF"]
    for vector in mode["vectors"]:
        for blinded_hex, evaluated_hex in zip(
            vector["BlindedElement"], vector["EvaluationElement"], strict=True
        ):
            assert oprf.blind_evaluate(H(mode["skSm"]), H(blinded_hex)).hex() == evaluated_hex


def test_random_blinding_is_transparent() -> None:
    import os

    secret, _ = oprf.derive_key_pair(os.urandom(32), b"round trip")
    for input_ in (b"", b"password", bytes(300)):
        blind, blinded = oprf.blind(input_, os.urandom)
        output = oprf.finalize(input_, blind, oprf.blind_evaluate(secret, blinded))
        assert output == oprf.evaluate(secret, input_)
    with pytest.raises(ValueError):
        oprf.blind(bytes(65536), os.urandom)
