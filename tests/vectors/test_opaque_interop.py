"""Interoperability with an independent RFC 9807 implementation: opaque-ke 3.0 (Rust).

``opaquepy`` wraps opaque-ke with ristretto255, 3DH, an empty context, no
identities and the ``argon2`` crate's default Argon2id (m=19456 KiB, t=2,
p=1, 16-byte zero salt, 64-byte output).  Our side uses the same KSF, so
every mix of client and server must work, and a password registered by one
client must open with the other (which checks the KSF input and encoding).
Messages cross as opaquepy's base64url strings of the RFC wire bytes.
"""

from __future__ import annotations

import base64

import pytest

from strongroom.errors import InvalidLogin
from strongroom.opaque import (
    Argon2idKSF,
    LoginClient,
    LoginServer,
    OpaqueConfig,
    RegistrationClient,
    RegistrationServer,
    ServerSetup,
)

op = pytest.importorskip("opaquepy.lib")

CONFIG = OpaqueConfig(ksf=Argon2idKSF(memory_kib=19456, iterations=2, parallelism=1))
PASSWORD = "correct horse battery staple"


def _d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _their_client_registers(setup: ServerSetup, cred: bytes) -> bytes:
    request, state = op.register_client(PASSWORD)
    response = RegistrationServer.respond(setup, _d(request), cred, config=CONFIG)
    return _d(op.register_client_finish(state, PASSWORD, _e(response)))


def _our_client_registers(setup: ServerSetup, cred: bytes) -> tuple[bytes, bytes]:
    request, state = RegistrationClient.start(PASSWORD.encode(), config=CONFIG)
    response = RegistrationServer.respond(setup, request, cred, config=CONFIG)
    return RegistrationClient.finish(state, response, config=CONFIG)


def test_their_client_with_our_server() -> None:
    setup = ServerSetup.generate()
    record = _their_client_registers(setup, b"alice")
    ke1, client_state = op.login_client(PASSWORD)
    ke2, server_state = LoginServer.start(setup, record, _d(ke1), b"alice", config=CONFIG)
    ke3, their_session = op.login_client_finish(client_state, PASSWORD, _e(ke2))
    assert LoginServer.finish(server_state, _d(ke3)) == _d(their_session)


def test_our_client_with_their_server() -> None:
    their_setup = op.create_setup()
    request, state = RegistrationClient.start(PASSWORD.encode(), config=CONFIG)
    response = _d(op.register(their_setup, _e(request), "alice"))
    record, export_key = RegistrationClient.finish(state, response, config=CONFIG)
    password_file = op.register_finish(_e(record))
    ke1, client_state = LoginClient.start(PASSWORD.encode(), config=CONFIG)
    ke2, their_state = op.login(their_setup, password_file, _e(ke1), "alice")
    ke3, session, login_export = LoginClient.finish(client_state, _d(ke2), config=CONFIG)
    assert _d(op.login_finish(_e(ke3), their_state)) == session
    assert login_export == export_key


def test_their_registration_opens_with_our_client() -> None:
    setup = ServerSetup.generate()
    record = _their_client_registers(setup, b"bob")
    ke1, client_state = LoginClient.start(PASSWORD.encode(), config=CONFIG)
    ke2, server_state = LoginServer.start(setup, record, ke1, b"bob", config=CONFIG)
    ke3, session, _ = LoginClient.finish(client_state, ke2, config=CONFIG)
    assert LoginServer.finish(server_state, ke3) == session
    # Other Argon2id parameters give another randomized password: refused.
    other = OpaqueConfig(ksf=Argon2idKSF(memory_kib=19456, iterations=3, parallelism=1))
    ke1, client_state = LoginClient.start(PASSWORD.encode(), config=other)
    ke2, _ = LoginServer.start(setup, record, ke1, b"bob", config=other)
    with pytest.raises(InvalidLogin):
        LoginClient.finish(client_state, ke2, config=other)


def test_our_registration_opens_with_their_client() -> None:
    setup = ServerSetup.generate()
    record, _ = _our_client_registers(setup, b"carol")
    ke1, client_state = op.login_client(PASSWORD)
    ke2, server_state = LoginServer.start(setup, record, _d(ke1), b"carol", config=CONFIG)
    ke3, their_session = op.login_client_finish(client_state, PASSWORD, _e(ke2))
    assert LoginServer.finish(server_state, _d(ke3)) == _d(their_session)


def test_their_client_rejects_our_fake_ke2_and_wrong_passwords() -> None:
    setup = ServerSetup.generate()
    ke1, client_state = op.login_client(PASSWORD)
    fake, _ = LoginServer.start(setup, None, _d(ke1), b"nobody", config=CONFIG)
    with pytest.raises(ValueError, match="InvalidLogin"):  # opaque-ke's InvalidLoginError
        op.login_client_finish(client_state, PASSWORD, _e(fake))

    record = _their_client_registers(setup, b"dave")
    ke1, client_state = op.login_client("wrong password")
    ke2, _server_state = LoginServer.start(setup, record, _d(ke1), b"dave", config=CONFIG)
    with pytest.raises(ValueError, match="InvalidLogin"):
        op.login_client_finish(client_state, "wrong password", _e(ke2))
