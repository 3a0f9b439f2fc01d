"""Hypothesis properties of strongroom.opaque (Identity KSF or tiny Argon2id: fast)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.errors import InvalidLogin, ProtocolError
from strongroom.opaque import (
    Argon2idKSF,
    IdentityKSF,
    LoginClient,
    LoginServer,
    OpaqueConfig,
    RegistrationClient,
    RegistrationServer,
    ServerSetup,
)

SETUP = ServerSetup.generate()
CRED = b"cred"
passwords = st.binary(min_size=0, max_size=64)
identities = st.none() | st.binary(min_size=1, max_size=24)
contexts = st.binary(max_size=24)
FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

MESSAGES = {  # name -> size
    "registration request": 32,
    "registration response": 64,
    "record": 192,
    "KE1": 96,
    "KE2": 320,
    "KE3": 64,
}


def run(password: bytes, login_password: bytes, config: OpaqueConfig,
        client_id: bytes | None = None, server_id: bytes | None = None,
        tamper: tuple[str, int, int] | None = None) -> tuple[bytes, bytes, bytes, bytes]:
    """Register then log in; return (client session, server session, export keys x2)."""
    ids = {"client_identity": client_id, "server_identity": server_id}

    def wire(name: str, message: bytes) -> bytes:
        if tamper is None or tamper[0] != name:
            return message
        _, position, mask = tamper
        return message[:position] + bytes([message[position] ^ mask]) + message[position + 1:]

    request, reg_state = RegistrationClient.start(password, config=config)
    response = RegistrationServer.respond(SETUP, wire("registration request", request), CRED,
                                          config=config)
    record, export_reg = RegistrationClient.finish(
        reg_state, wire("registration response", response), config=config, **ids)
    ke1, c_state = LoginClient.start(login_password, config=config)
    ke2, s_state = LoginServer.start(SETUP, wire("record", record), wire("KE1", ke1), CRED,
                                     config=config, **ids)
    ke3, c_session, export_login = LoginClient.finish(c_state, wire("KE2", ke2), config=config,
                                                      **ids)
    s_session = LoginServer.finish(s_state, wire("KE3", ke3))
    return c_session, s_session, export_reg, export_login


@FAST
@given(password=passwords, client_id=identities, server_id=identities, context=contexts)
def test_correct_password_always_logs_in(password: bytes, client_id: bytes | None,
                                         server_id: bytes | None, context: bytes) -> None:
    config = OpaqueConfig(ksf=IdentityKSF(), context=context)
    c_session, s_session, export_reg, export_login = run(password, password, config,
                                                         client_id, server_id)
    assert c_session == s_session and len(c_session) == 64
    assert export_reg == export_login and len(export_reg) == 64


@settings(max_examples=8, deadline=None)
@given(password=passwords, context=contexts)
def test_correct_password_logs_in_with_argon2id(password: bytes, context: bytes) -> None:
    config = OpaqueConfig(ksf=Argon2idKSF(memory_kib=32, iterations=1, parallelism=2),
                          context=context)
    c_session, s_session, export_reg, export_login = run(password, password, config)
    assert c_session == s_session and export_reg == export_login


@FAST
@given(password=passwords, wrong=passwords, client_id=identities, context=contexts)
def test_wrong_password_always_fails_the_same_way(password: bytes, wrong: bytes,
                                                  client_id: bytes | None,
                                                  context: bytes) -> None:
    if wrong == password:  # cheaper than assume(): keep every example
        wrong = password + b"!"
    config = OpaqueConfig(ksf=IdentityKSF(), context=context)
    try:
        run(password, wrong, config, client_id)
    except InvalidLogin as exc:
        assert str(exc) == str(InvalidLogin())
    else:
        raise AssertionError("a wrong password logged in")


@st.composite
def tampers(draw: st.DrawFn) -> tuple[str, int, int]:
    name = draw(st.sampled_from(sorted(MESSAGES)))
    return name, draw(st.integers(0, MESSAGES[name] - 1)), draw(st.integers(1, 255))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=passwords, tamper=tampers(), client_id=identities, server_id=identities)
def test_any_changed_byte_makes_the_login_fail(password: bytes, tamper: tuple[str, int, int],
                                               client_id: bytes | None,
                                               server_id: bytes | None) -> None:
    config = OpaqueConfig(ksf=IdentityKSF())
    try:
        c_session, s_session, _, _ = run(password, password, config, client_id, server_id,
                                         tamper=tamper)
    except (InvalidLogin, ProtocolError):
        return
    raise AssertionError(f"login succeeded with {tamper[0]} changed "
                         f"(keys equal: {c_session == s_session})")


any_message = st.binary(max_size=400) | st.sampled_from(sorted(set(MESSAGES.values()))).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)
)


@FAST
@given(data=any_message)
def test_parsers_raise_only_protocol_errors(data: bytes) -> None:
    _request, reg_state = RegistrationClient.start(b"pw", config=OpaqueConfig(ksf=IdentityKSF()))
    ke1, c_state = LoginClient.start(b"pw")
    config = OpaqueConfig(ksf=IdentityKSF())
    attempts = [
        lambda: RegistrationServer.respond(SETUP, data, CRED),
        lambda: RegistrationClient.finish(reg_state, data, config=config),
        lambda: LoginServer.start(SETUP, data, ke1, CRED, config=config),
        lambda: LoginServer.start(SETUP, None, data, CRED, config=config),
        lambda: LoginClient.finish(c_state, data, config=config),
    ]
    for attempt in attempts:
        try:
            attempt()
        except (ProtocolError, InvalidLogin):
            pass
