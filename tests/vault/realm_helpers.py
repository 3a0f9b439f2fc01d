"""Realm sets for the tests: in-process vaults over HTTP, with fixed or fresh randomness."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx

from strongroom.client.vault_client import VaultClient
from strongroom.vault import _opaque as opaque
from strongroom.vault.app import create_app
from strongroom.vault.auth import TokenAuth
from strongroom.vault.core import Vault, VaultPolicy, VaultSecrets
from strongroom.vault.store_sqlite import SqliteStore

from . import pg
from .conftest import Clock, DetRng, small_config

ACCOUNT = "alice"


class ForwardingHandler(BaseHTTPRequestHandler):
    """A proxy in front of one realm (``backend``): subclasses decide in :meth:`answer`."""

    backend = ""

    def upstream(self, method: str) -> httpx.Response:
        """The request, forwarded to the realm as it came."""
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {"authorization": self.headers.get("authorization", ""),
                   "content-type": "application/json"}
        return httpx.request(method, self.backend + self.path, content=body or None,
                             headers=headers, timeout=10)

    def answer(self, method: str) -> tuple[int, bytes]:
        """Status and JSON body to send back (default: the realm's own)."""
        r = self.upstream(method)
        return r.status_code, r.content

    def _forward(self, method: str) -> None:
        status, out = self.answer(method)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self) -> None:
        self._forward("GET")

    def do_POST(self) -> None:
        self._forward("POST")

    def do_DELETE(self) -> None:
        self._forward("DELETE")

    def log_message(self, *_args: object) -> None:
        pass


class _Server:
    """uvicorn in a thread on a fixed loopback port (so a realm can stop and come back)."""

    def __init__(self, app: object, port: int) -> None:
        import uvicorn

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        pg.wait_port(port)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class InProcessRealm:
    """One realm: its own database, its own secrets, served on a loopback port."""

    vault: Vault
    app: object
    port: int
    token: str
    _server: _Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._server is None:
            self._server = _Server(self.app, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

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
            realm = InProcessRealm(vault, create_app(vault, auth), pg.free_port(), token)
            realm.start()
            stack.callback(realm.stop)
            realms.append(realm)
        yield realms
