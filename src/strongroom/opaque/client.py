"""The client side of RFC 9807 OPAQUE-3DH: registration and login.

Errors: a wrong password, a tampered envelope or a bad server MAC all raise
the same :class:`~strongroom.errors.InvalidLogin`; a malformed message raises
:class:`~strongroom.errors.ProtocolError`; a server public key other than the
pinned one raises :class:`~strongroom.errors.ServerKeyMismatch`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.errors import InvalidLogin, ProtocolError, ServerKeyMismatch

from . import _ake, _group, oprf
from ._envelope import (
    credential_response_pad,
    derive_dh_key_pair,
    masking_key,
    randomized_password,
    recover,
    store,
    xor,
)
from ._kdf import mac_equal
from .config import OpaqueConfig
from .messages import KE1, KE2, NN, NOE, NPK, NSEED, RegistrationRecord, RegistrationResponse

Rng = Callable[[int], bytes]


def _check_bytes(value: bytes | None, name: str) -> None:
    if value is None:
        return
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes")
    if len(value) > 0xFFFF:
        raise ValueError(f"{name} must be shorter than 65536 bytes")


def _check_not_reflected(blinded: bytes, evaluated: bytes) -> None:
    # A server that echoes the blinded element is using OPRF key 1: the output
    # would then be a plain hash of the password, open to precomputation.
    if evaluated == blinded:
        raise ProtocolError("the server reflected the blinded element")


def _check_pin(expected: bytes | None, actual: bytes) -> None:
    if expected is not None and not mac_equal(expected, actual):
        raise ServerKeyMismatch()


@dataclass(frozen=True, repr=False)
class ClientRegistrationState:
    """What the client keeps between registration start and finish (secret)."""

    password: bytes
    blind: bytes
    blinded_element: bytes

    def __repr__(self) -> str:
        return "ClientRegistrationState(<secret>)"


class RegistrationClient:
    """Client registration steps (RFC 9807 §5.2)."""

    @staticmethod
    def start(
        password: bytes, *, config: OpaqueConfig | None = None, rng: Rng = os.urandom
    ) -> tuple[bytes, ClientRegistrationState]:
        """CreateRegistrationRequest: return (request[32], state)."""
        del config  # the request does not depend on the configuration
        _check_bytes(password, "password")
        return RegistrationClient._start_from_parts(password, _group.random_scalar(rng))

    @staticmethod
    def _start_from_parts(
        password: bytes, blind: bytes
    ) -> tuple[bytes, ClientRegistrationState]:
        """Deterministic twin of :meth:`start` with a given blind scalar."""
        blind, blinded = oprf.blind_with(password, blind)
        return blinded, ClientRegistrationState(password, blind, blinded)

    @staticmethod
    def finish(
        state: ClientRegistrationState,
        response: bytes,
        *,
        config: OpaqueConfig,
        client_identity: bytes | None = None,
        server_identity: bytes | None = None,
        rng: Rng = os.urandom,
        expected_server_public_key: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """FinalizeRegistrationRequest: return (record[192], export_key[64]).

        ``expected_server_public_key`` pins the vault: registration refuses a
        response carrying any other key (ServerKeyMismatch).
        """
        return RegistrationClient._finish_from_parts(
            state, response, config=config, client_identity=client_identity,
            server_identity=server_identity, envelope_nonce=rng(NN),
            expected_server_public_key=expected_server_public_key,
        )

    @staticmethod
    def _finish_from_parts(
        state: ClientRegistrationState,
        response: bytes,
        *,
        config: OpaqueConfig,
        client_identity: bytes | None,
        server_identity: bytes | None,
        envelope_nonce: bytes,
        expected_server_public_key: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """Deterministic twin of :meth:`finish` with a given envelope nonce."""
        _check_bytes(client_identity, "client_identity")
        _check_bytes(server_identity, "server_identity")
        parsed = RegistrationResponse.parse(response)
        _check_not_reflected(state.blinded_element, parsed.evaluated_message)
        _check_pin(expected_server_public_key, parsed.server_public_key)
        oprf_output = oprf.finalize(state.password, state.blind, parsed.evaluated_message)
        rwd = randomized_password(oprf_output, config)
        envelope, client_public_key, mkey, export_key = store(
            rwd, parsed.server_public_key, server_identity, client_identity, envelope_nonce
        )
        return RegistrationRecord(client_public_key, mkey, envelope).to_bytes(), export_key


@dataclass(frozen=True, repr=False)
class ClientLoginState:
    """What the client keeps between KE1 and KE3 (secret)."""

    password: bytes
    blind: bytes
    client_secret: bytes
    ke1: bytes

    def __repr__(self) -> str:
        return "ClientLoginState(<secret>)"


class LoginClient:
    """Client login steps (RFC 9807 §6: GenerateKE1, GenerateKE3)."""

    @staticmethod
    def start(
        password: bytes, *, config: OpaqueConfig | None = None, rng: Rng = os.urandom
    ) -> tuple[bytes, ClientLoginState]:
        """GenerateKE1: return (KE1[96], state)."""
        del config  # KE1 does not depend on the configuration
        _check_bytes(password, "password")
        blind = _group.random_scalar(rng)
        return LoginClient._start_from_parts(password, blind, rng(NN), rng(NSEED))

    @staticmethod
    def _start_from_parts(
        password: bytes, blind: bytes, client_nonce: bytes, client_keyshare_seed: bytes
    ) -> tuple[bytes, ClientLoginState]:
        """Deterministic twin of :meth:`start`."""
        blind, blinded = oprf.blind_with(password, blind)
        client_secret, client_keyshare = derive_dh_key_pair(client_keyshare_seed)
        ke1 = KE1(blinded, client_nonce, client_keyshare).to_bytes()
        return ke1, ClientLoginState(password, blind, client_secret, ke1)

    @staticmethod
    def finish(
        state: ClientLoginState,
        ke2: bytes,
        *,
        config: OpaqueConfig,
        client_identity: bytes | None = None,
        server_identity: bytes | None = None,
        expected_server_public_key: bytes | None = None,
    ) -> tuple[bytes, bytes, bytes]:
        """GenerateKE3: return (KE3[64], session_key[64], export_key[64]).

        Raises InvalidLogin for a wrong password or a server that cannot
        prove the registered key, ProtocolError for a malformed KE2, and
        ServerKeyMismatch if the envelope's server key is not the pinned one.
        """
        _check_bytes(client_identity, "client_identity")
        _check_bytes(server_identity, "server_identity")
        msg = KE2.parse(ke2)
        _check_not_reflected(state.ke1[:NOE], msg.evaluated_message)
        oprf_output = oprf.finalize(state.password, state.blind, msg.evaluated_message)
        rwd = randomized_password(oprf_output, config)
        pad = credential_response_pad(masking_key(rwd), msg.masking_nonce)
        unmasked = xor(pad, msg.masked_response)
        server_public_key, envelope = unmasked[:NPK], unmasked[NPK:]
        recovered = recover(rwd, server_public_key, envelope, server_identity, client_identity)
        # The envelope MAC authenticated these bytes, so a bad point here means
        # the registration itself was made with a bad key: a protocol error.
        _group.deserialize_element(server_public_key, "server public key")
        _check_pin(expected_server_public_key, server_public_key)
        preamble = _ake.preamble(
            config.context, recovered.client_identity, state.ke1, recovered.server_identity,
            msg.credential_response, msg.server_nonce, msg.server_public_keyshare,
        )
        dh = _ake.client_dh(
            state.client_secret, recovered.client_private_key,
            msg.server_public_keyshare, server_public_key,
        )
        keys = _ake.derive_keys(*dh, preamble)
        if not mac_equal(keys.server_mac, msg.server_mac):
            raise InvalidLogin()
        return keys.client_mac, keys.session_key, recovered.export_key
