"""The 3DH key schedule of RFC 9807 §6.4."""

from __future__ import annotations

from dataclasses import dataclass

from . import _group
from ._kdf import derive_secret, extract, hmac_sha512, sha512


def preamble(
    context: bytes,
    client_identity: bytes,
    ke1: bytes,
    server_identity: bytes,
    credential_response: bytes,
    server_nonce: bytes,
    server_public_keyshare: bytes,
) -> bytes:
    """RFC 9807 §6.4.1 Preamble: the transcript both MACs cover."""
    return b"".join(
        (
            b"OPAQUEv1-",
            len(context).to_bytes(2, "big"), context,
            len(client_identity).to_bytes(2, "big"), client_identity,
            ke1,
            len(server_identity).to_bytes(2, "big"), server_identity,
            credential_response,
            server_nonce,
            server_public_keyshare,
        )
    )


@dataclass(frozen=True, repr=False)
class SessionKeys:
    """The outputs of the key schedule and the two MACs (all secret)."""

    handshake_secret: bytes
    session_key: bytes
    km2: bytes
    km3: bytes
    server_mac: bytes
    client_mac: bytes


def derive_keys(dh1: bytes, dh2: bytes, dh3: bytes, preamble_: bytes) -> SessionKeys:
    """DeriveKeys plus both MACs (RFC 9807 §6.4.2, §6.4.3, §6.4.4)."""
    prk = extract(b"", dh1 + dh2 + dh3)
    transcript_hash = sha512(preamble_)
    handshake_secret = derive_secret(prk, b"HandshakeSecret", transcript_hash)
    session_key = derive_secret(prk, b"SessionKey", transcript_hash)
    km2 = derive_secret(handshake_secret, b"ServerMAC", b"")
    km3 = derive_secret(handshake_secret, b"ClientMAC", b"")
    server_mac = hmac_sha512(km2, transcript_hash)
    client_mac = hmac_sha512(km3, sha512(preamble_ + server_mac))
    return SessionKeys(handshake_secret, session_key, km2, km3, server_mac, client_mac)


def server_dh(
    server_private_keyshare: bytes,
    server_private_key: bytes,
    client_public_keyshare: bytes,
    client_public_key: bytes,
) -> tuple[bytes, bytes, bytes]:
    """The server's three Diffie-Hellman values (dh1, dh2, dh3)."""
    return (
        _group.scalar_mult(server_private_keyshare, client_public_keyshare),
        _group.scalar_mult(server_private_key, client_public_keyshare),
        _group.scalar_mult(server_private_keyshare, client_public_key),
    )


def client_dh(
    client_private_keyshare: bytes,
    client_private_key: bytes,
    server_public_keyshare: bytes,
    server_public_key: bytes,
) -> tuple[bytes, bytes, bytes]:
    """The client's three Diffie-Hellman values (dh1, dh2, dh3)."""
    return (
        _group.scalar_mult(client_private_keyshare, server_public_keyshare),
        _group.scalar_mult(client_private_keyshare, server_public_key),
        _group.scalar_mult(client_private_key, server_public_keyshare),
    )
