"""RFC 9807 Appendix C vectors (ristretto255 OPRF and AKE group), every value checked.

Randomness comes from the vectors through the ``_from_parts`` twins.  The
intermediate values are recomputed with the same internal building blocks the
protocol steps use, and the protocol's own outputs are compared byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from strongroom.opaque import (
    IdentityKSF,
    LoginClient,
    LoginServer,
    OpaqueConfig,
    RegistrationClient,
    RegistrationServer,
    ServerSetup,
    _ake,
    _envelope,
    _group,
    oprf,
)
from strongroom.opaque.messages import KE2, RegistrationRecord

_SHARED = Path(__file__).parents[2].parent / "shared" / "vectors"
_LOCAL = Path(__file__).parent / "data"
_NAME = "opaque_ristretto255_sha512.json"


def _load() -> dict:
    path = _SHARED / _NAME if (_SHARED / _NAME).exists() else _LOCAL / _NAME
    return json.loads(path.read_text())


VECTORS = _load()
H = bytes.fromhex


def _config(vector: dict) -> OpaqueConfig:
    cfg = vector["config"]
    assert (cfg["OPRF"], cfg["Group"], cfg["KSF"]) == ("ristretto255-SHA512", "ristretto255", "Identity")
    assert (cfg["Hash"], cfg["KDF"], cfg["MAC"]) == ("SHA512", "HKDF-SHA512", "HMAC-SHA512")
    return OpaqueConfig(ksf=IdentityKSF(), context=H(cfg["Context"]))


def _identities(inputs: dict) -> tuple[bytes | None, bytes | None]:
    client = H(inputs["client_identity"]) if "client_identity" in inputs else None
    server = H(inputs["server_identity"]) if "server_identity" in inputs else None
    return client, server


def test_vector_file_is_the_recorded_one() -> None:
    # The local copy is the file PROVENANCE.md names (by SHA-256), and so is
    # the shared copy when the repository sits beside ../shared/vectors.
    provenance = (_LOCAL / "PROVENANCE.md").read_text()
    copies = [_LOCAL / _NAME] + ([_SHARED / _NAME] if (_SHARED / _NAME).exists() else [])
    for copy in copies:
        digest = hashlib.sha256(copy.read_bytes()).hexdigest()
        assert f"`{_NAME}`" in provenance and f"`{digest}`" in provenance, copy


def test_all_ristretto255_vectors_present() -> None:
    assert [v["name"] for v in VECTORS["real"]] == [
        "OPAQUE-3DH Real Test Vector 1",
        "OPAQUE-3DH Real Test Vector 2",
    ]
    assert [v["name"] for v in VECTORS["fake"]] == ["OPAQUE-3DH Fake Test Vector 1"]


@pytest.mark.parametrize("vector", VECTORS["real"], ids=lambda v: v["name"])
def test_real_vector(vector: dict) -> None:
    i, mid, out = vector["inputs"], vector["intermediates"], vector["outputs"]
    config = _config(vector)
    client_id, server_id = _identities(i)
    assert (client_id is not None) == vector["client_server_identities"]
    password, cred_id = H(i["password"]), H(i["credential_identifier"])
    setup = ServerSetup.from_parts(H(i["oprf_seed"]), H(i["server_private_key"]))
    assert setup.server_public_key.hex() == i["server_public_key"]
    assert setup.oprf_key(cred_id).hex() == mid["oprf_key"]

    # Registration.
    request, reg_state = RegistrationClient._start_from_parts(password, H(i["blind_registration"]))
    assert request.hex() == out["registration_request"]
    response = RegistrationServer.respond(setup, request, cred_id, config=config)
    assert response.hex() == out["registration_response"]
    record, export_key = RegistrationClient._finish_from_parts(
        reg_state, response, config=config, client_identity=client_id,
        server_identity=server_id, envelope_nonce=H(i["envelope_nonce"]),
    )
    assert record.hex() == out["registration_upload"]
    assert export_key.hex() == out["export_key"]
    parsed = RegistrationRecord.parse(record)
    assert parsed.client_public_key.hex() == mid["client_public_key"]
    assert parsed.envelope.hex() == mid["envelope"]
    assert parsed.masking_key.hex() == vector["supplementary_not_in_rfc"]["masking_key"]

    # Envelope intermediates, through the same helpers Store/Recover use.
    evaluated = H(out["registration_response"])[:32]
    oprf_output = oprf.finalize(password, H(i["blind_registration"]), evaluated)
    rwd = _envelope.randomized_password(oprf_output, config)
    assert rwd.hex() == mid["randomized_password"]
    keys = _envelope._envelope_keys(rwd, H(i["envelope_nonce"]))
    assert keys.auth_key.hex() == mid["auth_key"]
    assert keys.export_key.hex() == out["export_key"]

    # Login.
    ke1, client_state = LoginClient._start_from_parts(
        password, H(i["blind_login"]), H(i["client_nonce"]), H(i["client_keyshare_seed"])
    )
    assert ke1.hex() == out["KE1"]
    ke2, server_state = LoginServer._start_from_parts(
        setup, parsed, ke1, cred_id, config=config, client_identity=client_id,
        server_identity=server_id, masking_nonce=H(i["masking_nonce"]),
        server_nonce=H(i["server_nonce"]), server_keyshare_seed=H(i["server_keyshare_seed"]),
    )
    assert ke2.hex() == out["KE2"]
    ke3, session_key, login_export_key = LoginClient.finish(
        client_state, ke2, config=config, client_identity=client_id, server_identity=server_id,
        expected_server_public_key=H(i["server_public_key"]),
    )
    assert ke3.hex() == out["KE3"]
    assert session_key.hex() == out["session_key"]
    assert login_export_key.hex() == out["export_key"]
    assert LoginServer.finish(server_state, ke3).hex() == out["session_key"]
    # The serialized server state survives a round trip through a database.
    restored = type(server_state).from_bytes(server_state.to_bytes())
    assert LoginServer.finish(restored, ke3).hex() == out["session_key"]

    # Key schedule intermediates.
    ks_secret, ks_public = _envelope.derive_dh_key_pair(H(i["server_keyshare_seed"]))
    msg = KE2.parse(ke2)
    assert msg.server_public_keyshare == ks_public
    preamble = _ake.preamble(
        config.context,
        client_id or parsed.client_public_key,
        ke1,
        server_id or setup.server_public_key,
        msg.credential_response,
        msg.server_nonce,
        msg.server_public_keyshare,
    )
    dh = _ake.server_dh(ks_secret, setup.server_private_key, ke1[64:], parsed.client_public_key)
    schedule = _ake.derive_keys(*dh, preamble)
    assert schedule.handshake_secret.hex() == mid["handshake_secret"]
    assert schedule.km2.hex() == mid["server_mac_key"]
    assert schedule.km3.hex() == mid["client_mac_key"]
    assert schedule.server_mac == msg.server_mac
    assert schedule.client_mac.hex() == out["KE3"]
    assert schedule.session_key.hex() == out["session_key"]


@pytest.mark.parametrize("vector", VECTORS["fake"], ids=lambda v: v["name"])
def test_fake_vector(vector: dict) -> None:
    i, out = vector["inputs"], vector["outputs"]
    config = _config(vector)
    client_id, server_id = _identities(i)
    setup = ServerSetup.from_parts(H(i["oprf_seed"]), H(i["server_private_key"]))
    assert setup.server_public_key.hex() == i["server_public_key"]
    # The fake record's public key belongs to the vector's fake private key.
    assert _group.scalar_mult_base(H(i["client_private_key"])).hex() == i["client_public_key"]
    fake_record = RegistrationRecord(H(i["client_public_key"]), H(i["masking_key"]), bytes(96))
    ke2, _state = LoginServer._start_from_parts(
        setup, fake_record, H(i["KE1"]), H(i["credential_identifier"]), config=config,
        client_identity=client_id, server_identity=server_id,
        masking_nonce=H(i["masking_nonce"]), server_nonce=H(i["server_nonce"]),
        server_keyshare_seed=H(i["server_keyshare_seed"]),
    )
    assert ke2.hex() == out["KE2"]
    # And the public entry point builds the same KE2 when given the same bytes
    # in the order it draws them: masking key, masking nonce, server nonce, seed.
    draws = [H(i["masking_key"]), H(i["masking_nonce"]), H(i["server_nonce"]),
             H(i["server_keyshare_seed"])]
    setup_with_vector_key = _with_fake_key(setup, H(i["client_public_key"]))
    ke2_public, _ = LoginServer.start(
        setup_with_vector_key, None, H(i["KE1"]), H(i["credential_identifier"]),
        config=config, client_identity=client_id, server_identity=server_id,
        rng=_Replay(draws),
    )
    assert ke2_public.hex() == out["KE2"]


class _Replay:
    """An rng that returns prepared byte strings in order (checks the sizes asked)."""

    def __init__(self, draws: list[bytes]) -> None:
        self._draws = list(draws)

    def __call__(self, n: int) -> bytes:
        value = self._draws.pop(0)
        assert len(value) == n
        return value


def _with_fake_key(setup: ServerSetup, fake_public_key: bytes) -> ServerSetup:
    import dataclasses

    return dataclasses.replace(setup, fake_client_public_key=fake_public_key)
