"""RFC 9807 §3.3 (envelope Store/Recover) and §4/§5 credential helpers.

The envelope holds no ciphertext: it is a nonce and a MAC from which the
client re-derives its AKE key pair, so only the right password (through the
OPRF output) can rebuild the MAC key.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.errors import InvalidLogin

from . import oprf
from ._kdf import NH, expand, extract, hmac_sha512, mac_equal
from .config import OpaqueConfig
from .messages import MASKED_RESPONSE_SIZE, NN, NSEED

_DH_KEY_INFO = b"OPAQUE-DeriveDiffieHellmanKeyPair"


def derive_dh_key_pair(seed: bytes) -> tuple[bytes, bytes]:
    """RFC 9807 §6.4.2 DeriveDiffieHellmanKeyPair(seed) for ristretto255."""
    return oprf.derive_key_pair(seed, _DH_KEY_INFO)


def randomized_password(oprf_output: bytes, config: OpaqueConfig) -> bytes:
    """Extract("", oprf_output || Stretch(oprf_output)) (RFC 9807 §5.3)."""
    return extract(b"", oprf_output + config.ksf.stretch(oprf_output))


def masking_key(randomized_pwd: bytes) -> bytes:
    """Expand(randomized_password, "MaskingKey", Nh)."""
    return expand(randomized_pwd, b"MaskingKey", NH)


def credential_response_pad(masking_key_: bytes, masking_nonce: bytes) -> bytes:
    """Expand(masking_key, masking_nonce || "CredentialResponsePad", Npk + Nn + Nm)."""
    return expand(masking_key_, masking_nonce + b"CredentialResponsePad", MASKED_RESPONSE_SIZE)


def xor(a: bytes, b: bytes) -> bytes:
    """Bytewise XOR of two equal-length strings."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def cleartext_credentials(
    server_public_key: bytes,
    client_public_key: bytes,
    server_identity: bytes | None,
    client_identity: bytes | None,
) -> tuple[bytes, bytes, bytes]:
    """CreateCleartextCredentials: (serialized, server_identity, client_identity).

    Absent identities default to the public keys (RFC 9807 §4.1.2).
    """
    if server_identity == b"" or client_identity == b"":
        # RFC 9807 encodes identities as <1..2^16-1>: empty means "use the key", i.e. None.
        raise ValueError("an identity must be None or non-empty")
    s_id = server_public_key if server_identity is None else server_identity
    c_id = client_public_key if client_identity is None else client_identity
    serialized = (
        server_public_key
        + len(s_id).to_bytes(2, "big") + s_id
        + len(c_id).to_bytes(2, "big") + c_id
    )
    return serialized, s_id, c_id


@dataclass(frozen=True, repr=False)
class _EnvelopeKeys:
    auth_key: bytes
    export_key: bytes
    seed: bytes


def _envelope_keys(randomized_pwd: bytes, envelope_nonce: bytes) -> _EnvelopeKeys:
    return _EnvelopeKeys(
        expand(randomized_pwd, envelope_nonce + b"AuthKey", NH),
        expand(randomized_pwd, envelope_nonce + b"ExportKey", NH),
        expand(randomized_pwd, envelope_nonce + b"PrivateKey", NSEED),
    )


def store(
    randomized_pwd: bytes,
    server_public_key: bytes,
    server_identity: bytes | None,
    client_identity: bytes | None,
    envelope_nonce: bytes,
) -> tuple[bytes, bytes, bytes, bytes]:
    """Store: (envelope, client_public_key, masking_key, export_key)."""
    keys = _envelope_keys(randomized_pwd, envelope_nonce)
    _, client_public_key = derive_dh_key_pair(keys.seed)
    creds, _, _ = cleartext_credentials(
        server_public_key, client_public_key, server_identity, client_identity
    )
    auth_tag = hmac_sha512(keys.auth_key, envelope_nonce + creds)
    return envelope_nonce + auth_tag, client_public_key, masking_key(randomized_pwd), keys.export_key


@dataclass(frozen=True, repr=False)
class Recovered:
    """What a successful Recover yields to the client (secret: no repr)."""

    client_private_key: bytes
    client_identity: bytes
    server_identity: bytes
    export_key: bytes


def recover(
    randomized_pwd: bytes,
    server_public_key: bytes,
    envelope: bytes,
    server_identity: bytes | None,
    client_identity: bytes | None,
) -> Recovered:
    """Recover: re-derive the client key pair; InvalidLogin if the MAC does not match."""
    envelope_nonce, auth_tag = envelope[:NN], envelope[NN:]
    keys = _envelope_keys(randomized_pwd, envelope_nonce)
    client_private_key, client_public_key = derive_dh_key_pair(keys.seed)
    creds, s_id, c_id = cleartext_credentials(
        server_public_key, client_public_key, server_identity, client_identity
    )
    expected_tag = hmac_sha512(keys.auth_key, envelope_nonce + creds)
    if not mac_equal(expected_tag, auth_tag):
        # Wrong password and tampered envelope are deliberately the same error.
        raise InvalidLogin()
    return Recovered(client_private_key, c_id, s_id, keys.export_key)
