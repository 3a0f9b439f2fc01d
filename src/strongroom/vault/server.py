"""Assemble a running vault from settings: store, keystore, secrets, auth, app.

``VaultSettings`` is what ``strongroom vault serve`` fills from its options;
:func:`build` turns it into the ASGI app.  Secrets that unlock the keystore
(the software passphrase, the PKCS#11 PIN) come from the environment or a
prompt, never from a command-line argument (visible in ``ps``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import _opaque as opaque
from .auth import DEFAULT_JWT_MAX_LIFETIME, Authenticator, JwksFile, JwtAuth, TokenAuth
from .core import Vault, VaultPolicy
from .keystore import Keystore, Pkcs11Keystore, create_secrets, load_secrets, software_keystore_for
from .store import RecordStore

DEFAULT_PKCS11 = "/usr/lib/softhsm/libsofthsm2.so"


_log = logging.getLogger("strongroom.vault")


@dataclass
class VaultSettings:
    """Everything a vault process needs to start."""

    database: str  # a SQLite path, or postgresql://...
    secrets: str  # the sealed secrets file (created on first start)
    keystore: str = "software"  # or "pkcs11"
    passphrase: str | None = None  # software keystore
    pkcs11_module: str = DEFAULT_PKCS11
    token_label: str = "strongroom"
    key_label: str = "strongroom-vault-root"
    pin: str | None = None
    attempt_limit: int = 10
    session_ttl: float = 120.0
    context: bytes = b"strongroom/v1"
    auth: str = "tokens"  # or "jwt"
    jwt_public_key: str | None = None  # PEM file
    jwt_jwks: str | None = None  # JWKS file, keys by kid, reloaded when it changes
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_max_lifetime: int = DEFAULT_JWT_MAX_LIFETIME  # seconds a JWT may be valid for
    #: Sign record rows written by a vault version before the row MAC (once, after an
    #: upgrade).  Never automatic: a database writer could otherwise null a MAC, edit
    #: the counter and wait for a restart (spec §5).
    sign_legacy_rows: bool = False
    #: PostgreSQL only: connections this vault node holds at most (None: the store's default).
    db_connections: int | None = None
    software_kdf: dict[str, int] = field(default_factory=lambda: {"memory_kib": 65536,
                                                                 "iterations": 3, "lanes": 1})

    def __repr__(self) -> str:
        return f"<VaultSettings database={self.database!r} keystore={self.keystore}>"


def open_store(database: str, *, db_connections: int | None = None) -> RecordStore:
    """The record store named by ``database`` (``db_connections``: PostgreSQL's pool size)."""
    if database.startswith(("postgresql://", "postgres://")) or "dbname=" in database:
        from .store_postgres import DEFAULT_MAX_CONNECTIONS, PostgresStore

        return PostgresStore(database, max_connections=db_connections or DEFAULT_MAX_CONNECTIONS)
    from .store_sqlite import SqliteStore

    return SqliteStore(database)


def open_keystore(s: VaultSettings) -> Keystore:
    """The root that seals the vault's secrets."""
    if s.keystore == "software":
        if not s.passphrase:
            raise UsageError("the software keystore needs a passphrase",
                             hint="set STRONGROOM_VAULT_PASSPHRASE")
        return software_keystore_for(s.secrets, s.passphrase, os.urandom, **s.software_kdf)
    if s.keystore == "pkcs11":
        if not s.pin:
            raise UsageError("the PKCS#11 keystore needs the token PIN", hint="set STRONGROOM_VAULT_PIN")
        return Pkcs11Keystore(s.pkcs11_module, s.token_label, s.pin, s.key_label,
                              create=not Path(s.secrets).exists())
    raise UsageError(f"unknown keystore {s.keystore!r} (software or pkcs11)")


def open_auth(s: VaultSettings, store: RecordStore) -> Authenticator:
    """Standalone tokens or the chat app's JWTs."""
    if s.auth == "tokens":
        return TokenAuth(store)
    if s.auth == "jwt":
        if bool(s.jwt_public_key) == bool(s.jwt_jwks):
            raise UsageError("JWT mode needs either --jwt-public-key or --jwt-jwks (not both)")
        keys: bytes | JwksFile = (JwksFile(s.jwt_jwks) if s.jwt_jwks
                                  else Path(s.jwt_public_key or "").read_bytes())
        return JwtAuth(keys, issuer=s.jwt_issuer or "",
                       audience=s.jwt_audience or "", clock=time.time,
                       max_lifetime=s.jwt_max_lifetime)
    raise UsageError(f"unknown auth mode {s.auth!r} (tokens or jwt)")


def build_vault(s: VaultSettings) -> Vault:
    """Store + secrets (created sealed on first start) → the vault core."""
    keystore = open_keystore(s)
    if Path(s.secrets).exists():
        secrets = load_secrets(s.secrets, keystore)
    else:
        secrets = create_secrets(s.secrets, keystore)
    config = opaque.OpaqueConfig(ksf=opaque.IdentityKSF(), context=s.context)
    policy = VaultPolicy(attempt_limit=s.attempt_limit, session_ttl=s.session_ttl)
    vault = Vault(open_store(s.database, db_connections=s.db_connections), secrets, config, policy)
    if s.sign_legacy_rows:
        vault.sign_unsigned_rows()
    elif unsigned := len(vault.store.unsigned_rows()):
        _log.warning("%d record rows have no MAC (written by an older vault version) and are "
                     "refused; start once with --sign-legacy-rows after the upgrade", unsigned)
    return vault


def build_app(s: VaultSettings) -> Any:
    """The ASGI app for these settings."""
    from .app import create_app

    vault = build_vault(s)
    return create_app(vault, open_auth(s, vault.store))


__all__ = ["VaultSettings", "build_app", "build_vault", "open_auth", "open_keystore", "open_store"]
