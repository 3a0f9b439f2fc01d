"""Realm sets for the tests: in-process vaults over HTTP, with fixed or fresh randomness."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from strongroom.client.vault_client import VaultClient
from strongroom.vault import _opaque as opaque
from strongroom.vault.app import create_app
from strongroom.vault.auth import TokenAuth
from strongroom.vault.core import Vault, VaultPolicy, VaultSecrets
from strongroom.vault.store_sqlite import SqliteStore

from .conftest import Clock, DetRng, LiveVault, small_config

ACCOUNT = "alice"


@dataclass
class InProcessRealm:
    """One realm: its own database, its own secrets, served on a loopback port."""

    vault: Vault
    server: LiveVault
    token: str

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> VaultClient:
        return VaultClient(self.url, ACCOUNT, self.token)


@contextlib.contextmanager
def realm_set(tmp: Path, n: int = 3, *, seed: bytes = b"realm", limit: int = 10
              ) -> Iterator[list[InProcessRealm]]:
    """``n`` in-process realms with deterministic secrets and randomness (seeded)."""
    realms: list[InProcessRealm] = []
    with contextlib.ExitStack() as stack:
        for i in range(1, n + 1):
            tag = seed + b"-" + str(i).encode()
            rng = DetRng(tag + b"-secrets")
            secrets = VaultSecrets(opaque.ServerSetup.generate(rng), rng(32))
            store = SqliteStore(tmp / f"realm{i}.db")
            stack.callback(store.close)
            vault = Vault(store, secrets, small_config(),
                          VaultPolicy(attempt_limit=limit, session_ttl=60), clock=Clock(),
                          rng=DetRng(tag))
            auth = TokenAuth(store)
            token = auth.create_account(ACCOUNT, DetRng(tag + b"-token"))
            server = stack.enter_context(LiveVault(create_app(vault, auth)))
            realms.append(InProcessRealm(vault, server, token))
        yield realms
