"""The server side of RFC 9807 OPAQUE-3DH: setup, registration and login.

The server is stateless between steps: :class:`ServerLoginState` serializes
to bytes so a vault can keep it in its database between KE2 and KE3.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.errors import InvalidLogin, ProtocolError

from . import _ake, _group, oprf
from ._envelope import cleartext_credentials, credential_response_pad, derive_dh_key_pair, xor
from ._kdf import NH, expand, mac_equal
from .config import OpaqueConfig
from .messages import (
    ENVELOPE_SIZE,
    KE1,
    KE2,
    NN,
    NSEED,
    RegistrationRecord,
    parse_ke3,
    parse_registration_request,
)

Rng = Callable[[int], bytes]

_SETUP_VERSION = 1
_STATE_VERSION = 1
_OPRF_KEY_INFO = b"OPAQUE-DeriveKeyPair"
# Strongroom's own label: the fake record key for unknown credential identifiers.
_FAKE_KEY_LABEL = b"strongroom/v1/opaque/fake-client-key"


@dataclass(frozen=True, repr=False)
class ServerSetup:
    """The server's long-term secrets: the OPRF seed and the AKE key pair.

    ``fake_client_public_key`` is derived from the OPRF seed and used in the
    fake record for unknown credential identifiers (RFC 9807 §10.9); its
    private key is discarded as soon as it is derived, never stored.
    """

    oprf_seed: bytes
    server_private_key: bytes
    server_public_key: bytes
    fake_client_public_key: bytes

    @classmethod
    def generate(cls, rng: Rng = os.urandom) -> ServerSetup:
        """Fresh random secrets (RFC 9807 §2: oprf_seed = random(Nh))."""
        return cls.from_parts(rng(NH), _group.random_scalar(rng))

    @classmethod
    def from_parts(cls, oprf_seed: bytes, server_private_key: bytes) -> ServerSetup:
        """Rebuild from a 64-byte OPRF seed and a 32-byte private scalar."""
        if len(oprf_seed) != NH:
            raise ProtocolError(f"OPRF seed: expected {NH} bytes")
        private = _group.deserialize_scalar(bytes(server_private_key), "server private key")
        fake_seed = expand(oprf_seed, _FAKE_KEY_LABEL, NSEED)
        return cls(
            bytes(oprf_seed),
            private,
            _group.scalar_mult_base(private),
            derive_dh_key_pair(fake_seed)[1],
        )

    def to_bytes(self) -> bytes:
        """``0x01 || oprf_seed[64] || server_private_key[32]`` (SECRET: wrap before storing)."""
        return bytes([_SETUP_VERSION]) + self.oprf_seed + self.server_private_key

    @classmethod
    def from_bytes(cls, data: bytes) -> ServerSetup:
        """Inverse of :meth:`to_bytes`; ProtocolError if malformed."""
        if len(data) != 1 + NH + 32 or data[0] != _SETUP_VERSION:
            raise ProtocolError("not a serialized OPAQUE server setup")
        return cls.from_parts(data[1 : 1 + NH], data[1 + NH :])

    def oprf_key(self, credential_identifier: bytes) -> bytes:
        """The per-credential OPRF key (RFC 9807 §4.1.2 / §5.3)."""
        seed = expand(self.oprf_seed, credential_identifier + b"OprfKey", 32)
        return oprf.derive_secret_key(seed, _OPRF_KEY_INFO)

    def __repr__(self) -> str:
        return f"ServerSetup(server_public_key={self.server_public_key.hex()})"


class RegistrationServer:
    """Server registration step (RFC 9807 §5.2 CreateRegistrationResponse)."""

    @staticmethod
    def respond(
        setup: ServerSetup,
        request: bytes,
        credential_identifier: bytes,
        *,
        config: OpaqueConfig | None = None,
    ) -> bytes:
        """Answer a RegistrationRequest with evaluated_message || server_public_key."""
        del config  # registration does not depend on the KSF or the context
        blinded = parse_registration_request(request)
        evaluated = oprf.blind_evaluate(setup.oprf_key(credential_identifier), blinded)
        return evaluated + setup.server_public_key


@dataclass(frozen=True, repr=False)
class ServerLoginState:
    """What the server keeps between KE2 and KE3 (SECRET: encrypt at rest)."""

    expected_client_mac: bytes
    session_key: bytes

    def to_bytes(self) -> bytes:
        """``0x01 || expected_client_mac[64] || session_key[64]``."""
        return bytes([_STATE_VERSION]) + self.expected_client_mac + self.session_key

    @classmethod
    def from_bytes(cls, data: bytes) -> ServerLoginState:
        """Inverse of :meth:`to_bytes`; ProtocolError if malformed."""
        if len(data) != 1 + 2 * NH or data[0] != _STATE_VERSION:
            raise ProtocolError("not a serialized OPAQUE server login state")
        return cls(bytes(data[1 : 1 + NH]), bytes(data[1 + NH :]))

    def __repr__(self) -> str:
        return "ServerLoginState(<secret>)"


class LoginServer:
    """Server login steps (RFC 9807 §6: GenerateKE2, ServerFinish)."""

    @staticmethod
    def start(
        setup: ServerSetup,
        record: bytes | None,
        ke1: bytes,
        credential_identifier: bytes,
        *,
        config: OpaqueConfig,
        client_identity: bytes | None = None,
        server_identity: bytes | None = None,
        rng: Rng = os.urandom,
    ) -> tuple[bytes, ServerLoginState]:
        """Answer KE1 with KE2.  ``record=None`` (unknown credential) gives a fake KE2.

        A fake KE2 is built exactly like a real one from a fake record (the
        setup's fake public key, a random masking key, a zero envelope), so
        a client cannot tell them apart; its KE3 can never verify.
        """
        if record is None:
            parsed = RegistrationRecord(
                setup.fake_client_public_key, rng(NH), bytes(ENVELOPE_SIZE)
            )
        else:
            parsed = RegistrationRecord.parse(record)
        return LoginServer._start_from_parts(
            setup, parsed, ke1, credential_identifier,
            config=config, client_identity=client_identity, server_identity=server_identity,
            masking_nonce=rng(NN), server_nonce=rng(NN), server_keyshare_seed=rng(NSEED),
        )

    @staticmethod
    def _start_from_parts(
        setup: ServerSetup,
        record: RegistrationRecord,
        ke1: bytes,
        credential_identifier: bytes,
        *,
        config: OpaqueConfig,
        client_identity: bytes | None,
        server_identity: bytes | None,
        masking_nonce: bytes,
        server_nonce: bytes,
        server_keyshare_seed: bytes,
    ) -> tuple[bytes, ServerLoginState]:
        """Deterministic twin of :meth:`start`: all randomness given explicitly."""
        request = KE1.parse(ke1)
        evaluated = oprf.blind_evaluate(
            setup.oprf_key(credential_identifier), request.blinded_message
        )
        pad = credential_response_pad(record.masking_key, masking_nonce)
        masked = xor(pad, setup.server_public_key + record.envelope)
        credential_response = evaluated + masking_nonce + masked
        _, s_id, c_id = cleartext_credentials(
            setup.server_public_key, record.client_public_key, server_identity, client_identity
        )
        keyshare_secret, keyshare_public = derive_dh_key_pair(server_keyshare_seed)
        preamble = _ake.preamble(
            config.context, c_id, request.to_bytes(), s_id, credential_response,
            server_nonce, keyshare_public,
        )
        dh = _ake.server_dh(
            keyshare_secret, setup.server_private_key,
            request.client_public_keyshare, record.client_public_key,
        )
        keys = _ake.derive_keys(*dh, preamble)
        ke2 = KE2(evaluated, masking_nonce, masked, server_nonce, keyshare_public, keys.server_mac)
        return ke2.to_bytes(), ServerLoginState(keys.client_mac, keys.session_key)

    @staticmethod
    def finish(state: ServerLoginState, ke3: bytes) -> bytes:
        """Verify KE3 and return the 64-byte session key; InvalidLogin if it does not verify."""
        client_mac = parse_ke3(ke3)
        if not mac_equal(state.expected_client_mac, client_mac):
            raise InvalidLogin()
        return state.session_key
