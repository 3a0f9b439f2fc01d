"""Byte layouts of every RFC 9807 message for ristretto255/SHA-512, and their parsers.

All messages are fixed-size concatenations (RFC 9807 §4, §5, §6)::

    RegistrationRequest   blinded_message[32]                                 32
    RegistrationResponse  evaluated_message[32] server_public_key[32]         64
    Envelope              envelope_nonce[32] auth_tag[64]                     96
    RegistrationRecord    client_public_key[32] masking_key[64] envelope[96] 192
    KE1                   blinded_message[32] client_nonce[32]
                          client_public_keyshare[32]                          96
    CredentialResponse    evaluated_message[32] masking_nonce[32]
                          masked_response[128]                               192
    KE2                   credential_response[192] server_nonce[32]
                          server_public_keyshare[32] server_mac[64]          320
    KE3                   client_mac[64]                                      64

Parsers raise :class:`~strongroom.errors.ProtocolError` for a wrong length
and for any element that is non-canonical, invalid or the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.errors import ProtocolError

from ._group import deserialize_element

NN = 32  # nonce size
NSEED = 32  # key-share seed size
NPK = 32  # public key size
NOE = 32  # serialized OPRF element
NM = 64  # MAC size
NH = 64  # hash size

ENVELOPE_SIZE = NN + NM
REGISTRATION_REQUEST_SIZE = NOE
REGISTRATION_RESPONSE_SIZE = NOE + NPK
REGISTRATION_RECORD_SIZE = NPK + NH + ENVELOPE_SIZE
KE1_SIZE = NOE + NN + NPK
MASKED_RESPONSE_SIZE = NPK + ENVELOPE_SIZE
CREDENTIAL_RESPONSE_SIZE = NOE + NN + MASKED_RESPONSE_SIZE
KE2_SIZE = CREDENTIAL_RESPONSE_SIZE + NN + NPK + NM
KE3_SIZE = NM


def _require(data: bytes, size: int, name: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes")
    if len(data) != size:
        raise ProtocolError(f"{name}: expected {size} bytes, got {len(data)}")
    return bytes(data)


def parse_registration_request(data: bytes) -> bytes:
    """Return the blinded element of a RegistrationRequest."""
    data = _require(data, REGISTRATION_REQUEST_SIZE, "registration request")
    return deserialize_element(data, "registration request blinded element")


@dataclass(frozen=True)
class RegistrationResponse:
    """The server's registration answer: evaluated element and its public key."""

    evaluated_message: bytes
    server_public_key: bytes

    @classmethod
    def parse(cls, data: bytes) -> RegistrationResponse:
        """Parse and validate 64 bytes."""
        data = _require(data, REGISTRATION_RESPONSE_SIZE, "registration response")
        return cls(
            deserialize_element(data[:NOE], "registration response evaluated element"),
            deserialize_element(data[NOE:], "registration response server public key"),
        )

    def to_bytes(self) -> bytes:
        """Serialize as evaluated_message || server_public_key."""
        return self.evaluated_message + self.server_public_key


@dataclass(frozen=True, repr=False)
class RegistrationRecord:
    """What the server stores per credential: never reveals the masking key in repr."""

    client_public_key: bytes
    masking_key: bytes
    envelope: bytes

    @classmethod
    def parse(cls, data: bytes) -> RegistrationRecord:
        """Parse and validate 192 bytes."""
        data = _require(data, REGISTRATION_RECORD_SIZE, "registration record")
        return cls(
            deserialize_element(data[:NPK], "record client public key"),
            data[NPK : NPK + NH],
            data[NPK + NH :],
        )

    def to_bytes(self) -> bytes:
        """Serialize as client_public_key || masking_key || envelope."""
        return self.client_public_key + self.masking_key + self.envelope

    def __repr__(self) -> str:
        return f"RegistrationRecord(client_public_key={self.client_public_key.hex()}, ...)"


@dataclass(frozen=True)
class KE1:
    """The client's first login message."""

    blinded_message: bytes
    client_nonce: bytes
    client_public_keyshare: bytes

    @classmethod
    def parse(cls, data: bytes) -> KE1:
        """Parse and validate 96 bytes."""
        data = _require(data, KE1_SIZE, "KE1")
        return cls(
            deserialize_element(data[:NOE], "KE1 blinded element"),
            data[NOE : NOE + NN],
            deserialize_element(data[NOE + NN :], "KE1 client key share"),
        )

    def to_bytes(self) -> bytes:
        """Serialize as blinded_message || client_nonce || client_public_keyshare."""
        return self.blinded_message + self.client_nonce + self.client_public_keyshare


@dataclass(frozen=True)
class KE2:
    """The server's login answer: credential response and 3DH auth response."""

    evaluated_message: bytes
    masking_nonce: bytes
    masked_response: bytes
    server_nonce: bytes
    server_public_keyshare: bytes
    server_mac: bytes

    @classmethod
    def parse(cls, data: bytes) -> KE2:
        """Parse and validate 320 bytes."""
        data = _require(data, KE2_SIZE, "KE2")
        c = CREDENTIAL_RESPONSE_SIZE
        return cls(
            deserialize_element(data[:NOE], "KE2 evaluated element"),
            data[NOE : NOE + NN],
            data[NOE + NN : c],
            data[c : c + NN],
            deserialize_element(data[c + NN : c + NN + NPK], "KE2 server key share"),
            data[c + NN + NPK :],
        )

    @property
    def credential_response(self) -> bytes:
        """evaluated_message || masking_nonce || masked_response (part of the preamble)."""
        return self.evaluated_message + self.masking_nonce + self.masked_response

    def to_bytes(self) -> bytes:
        """Serialize the whole KE2."""
        return (
            self.credential_response
            + self.server_nonce
            + self.server_public_keyshare
            + self.server_mac
        )


def parse_ke3(data: bytes) -> bytes:
    """Return the client MAC of a KE3."""
    return _require(data, KE3_SIZE, "KE3")
