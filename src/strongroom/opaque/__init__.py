"""RFC 9497 OPRF and RFC 9807 OPAQUE-3DH (ristretto255, SHA-512): pure protocol, no I/O.

Each protocol step is a ``start``/``finish`` call on a per-role class that
returns the message to send (bytes) and a small frozen state::

    setup = ServerSetup.generate()
    request, reg_state = RegistrationClient.start(password, config=cfg)
    response = RegistrationServer.respond(setup, request, cred_id, config=cfg)
    record, export_key = RegistrationClient.finish(reg_state, response, config=cfg)

    ke1, c_state = LoginClient.start(password, config=cfg)
    ke2, s_state = LoginServer.start(setup, record, ke1, cred_id, config=cfg)
    ke3, session_key, export_key = LoginClient.finish(c_state, ke2, config=cfg)
    session_key = LoginServer.finish(s_state, ke3)

The profile (ciphersuite, KSF, sizes) is ``docs/spec/vault-protocol.md`` §1.
"""

from __future__ import annotations

from .client import ClientLoginState, ClientRegistrationState, LoginClient, RegistrationClient
from .config import Argon2idKSF, IdentityKSF, OpaqueConfig
from .messages import (
    KE1_SIZE,
    KE2_SIZE,
    KE3_SIZE,
    REGISTRATION_RECORD_SIZE,
    REGISTRATION_REQUEST_SIZE,
    REGISTRATION_RESPONSE_SIZE,
    RegistrationRecord,
)
from .server import LoginServer, RegistrationServer, ServerLoginState, ServerSetup

__all__ = [
    "KE1_SIZE",
    "KE2_SIZE",
    "KE3_SIZE",
    "REGISTRATION_RECORD_SIZE",
    "REGISTRATION_REQUEST_SIZE",
    "REGISTRATION_RESPONSE_SIZE",
    "Argon2idKSF",
    "ClientLoginState",
    "ClientRegistrationState",
    "IdentityKSF",
    "LoginClient",
    "LoginServer",
    "OpaqueConfig",
    "RegistrationClient",
    "RegistrationRecord",
    "RegistrationServer",
    "ServerLoginState",
    "ServerSetup",
]
