"""Parsers reject wrong lengths, non-canonical encodings, the identity and invalid points.

Every rejection is a ProtocolError, never a crash or a pysodium ValueError.
"""

from __future__ import annotations

from collections.abc import Callable

import pysodium
import pytest

from strongroom.errors import ProtocolError
from strongroom.opaque import (
    IdentityKSF,
    LoginClient,
    LoginServer,
    OpaqueConfig,
    RegistrationClient,
    RegistrationServer,
    ServerSetup,
    _group,
)
from strongroom.opaque.messages import (
    KE1_SIZE,
    KE2_SIZE,
    REGISTRATION_RECORD_SIZE,
    REGISTRATION_REQUEST_SIZE,
    REGISTRATION_RESPONSE_SIZE,
)

CFG = OpaqueConfig(ksf=IdentityKSF())
CRED = b"user"
PASSWORD = b"hunter2"

# Bad 32-byte element encodings, each for a different reason.
FIELD_P = bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
BAD_ELEMENTS = {
    "identity": bytes(32),
    "non-canonical identity (p)": FIELD_P,
    "negative field element": b"\x01" + bytes(31),
    "top bit set": bytes(31) + b"\x80",
    "not a ristretto255 encoding": b"\x0a" + bytes(30) + b"\x0a",
    "all ones": b"\xff" * 32,
}
_G = pysodium.crypto_scalarmult_ristretto255_base(b"\x07" + bytes(31))
BAD_ELEMENTS["valid point with top bit set"] = _G[:31] + bytes([_G[31] | 0x80])


@pytest.fixture(scope="module")
def flow() -> dict[str, object]:
    setup = ServerSetup.generate()
    request, reg_state = RegistrationClient.start(PASSWORD, config=CFG)
    response = RegistrationServer.respond(setup, request, CRED, config=CFG)
    record, _ = RegistrationClient.finish(reg_state, response, config=CFG)
    ke1, login_state = LoginClient.start(PASSWORD, config=CFG)
    ke2, _ = LoginServer.start(setup, record, ke1, CRED, config=CFG)
    return {"setup": setup, "request": request, "reg_state": reg_state, "response": response,
                "record": record, "ke1": ke1, "login_state": login_state, "ke2": ke2}


def _parsers(flow: dict) -> dict[str, tuple[Callable[[bytes], object], bytes, list[int]]]:
    """name -> (consume(message), valid message, offsets of its element fields)."""
    s = flow["setup"]
    return {
        "registration request": (
            lambda m: RegistrationServer.respond(s, m, CRED, config=CFG), flow["request"], [0]),
        "registration response": (
            lambda m: RegistrationClient.finish(flow["reg_state"], m, config=CFG),
            flow["response"], [0, 32]),
        "record": (
            lambda m: LoginServer.start(s, m, flow["ke1"], CRED, config=CFG),
            flow["record"], [0]),
        "KE1": (
            lambda m: LoginServer.start(s, flow["record"], m, CRED, config=CFG),
            flow["ke1"], [0, 64]),
        "KE2": (
            lambda m: LoginClient.finish(flow["login_state"], m, config=CFG),
            flow["ke2"], [0, 224]),
    }


def test_sizes() -> None:
    assert (REGISTRATION_REQUEST_SIZE, REGISTRATION_RESPONSE_SIZE, REGISTRATION_RECORD_SIZE,
            KE1_SIZE, KE2_SIZE) == (32, 64, 192, 96, 320)


@pytest.mark.parametrize("name", ["registration request", "registration response", "record",
                                  "KE1", "KE2"])
def test_wrong_lengths(flow: dict, name: str) -> None:
    consume, valid, _ = _parsers(flow)[name]
    for bad in (b"", valid[:-1], valid + b"\x00", valid * 2):
        with pytest.raises(ProtocolError):
            consume(bad)


@pytest.mark.parametrize("name", ["registration request", "registration response", "record",
                                  "KE1", "KE2"])
@pytest.mark.parametrize("reason", sorted(BAD_ELEMENTS))
def test_bad_elements(flow: dict, name: str, reason: str) -> None:
    consume, valid, offsets = _parsers(flow)[name]
    for offset in offsets:
        bad = valid[:offset] + BAD_ELEMENTS[reason] + valid[offset + 32:]
        with pytest.raises(ProtocolError):
            consume(bad)


def test_bad_element_values_are_really_rejected_by_the_group_check() -> None:
    for reason, value in BAD_ELEMENTS.items():
        with pytest.raises(ProtocolError):
            _group.deserialize_element(value, reason)
    generator = _group.scalar_mult_base(b"\x01" + bytes(31))
    assert _group.deserialize_element(generator) == generator
    # libsodium 1.0.18 accepts the generator with the top bit set; we must not.
    with pytest.raises(ProtocolError):
        _group.deserialize_element(generator[:31] + bytes([generator[31] | 0x80]))


def test_identity_results_become_protocol_errors() -> None:
    generator = _group.scalar_mult_base(b"\x01" + bytes(31))
    with pytest.raises(ProtocolError):
        _group.scalar_mult(bytes(32), generator)  # pysodium raises ValueError here
    with pytest.raises(ProtocolError):
        _group.scalar_mult_base(bytes(32))
    with pytest.raises(ProtocolError):
        _group.scalar_invert(bytes(32))


def test_non_canonical_scalars() -> None:
    order = bytes.fromhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
    order_plus_one = bytes([order[0] + 1]) + order[1:]
    for bad in (order, order_plus_one, b"\xff" * 32, bytes(32), bytes(33)):
        with pytest.raises(ProtocolError):
            _group.deserialize_scalar(bad)
    one = b"\x01" + bytes(31)
    assert _group.deserialize_scalar(one) == one


def test_non_bytes_messages_are_type_errors(flow: dict) -> None:
    with pytest.raises(TypeError):
        RegistrationServer.respond(flow["setup"], "abc", CRED, config=CFG)  # type: ignore[arg-type]


def test_reflected_blinded_element_is_refused(flow: dict) -> None:
    # A server that answers with the blinded element itself (OPRF key 1).
    request = flow["request"]
    reflected = request + flow["setup"].server_public_key
    with pytest.raises(ProtocolError):
        RegistrationClient.finish(flow["reg_state"], reflected, config=CFG)
    ke1, ke2 = flow["ke1"], flow["ke2"]
    with pytest.raises(ProtocolError):
        LoginClient.finish(flow["login_state"], ke1[:32] + ke2[32:], config=CFG)
