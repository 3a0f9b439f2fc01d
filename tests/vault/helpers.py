"""Client-side steps used by the vault tests, driving a core ``Vault`` directly."""

from __future__ import annotations

import hashlib
import socket
import threading
from typing import Self

from strongroom.vault import _opaque as opaque
from strongroom.vault.core import Vault

from .conftest import DetRng, small_config

#: The record proof the test client "derives from K" (any 32 bytes the vault keeps SHA-256 of).
PROOF = b"P" * 32


def register(vault: Vault, account: str, password: bytes, wrapped: bytes = b"W" * 60) -> bytes:
    """Register ``password`` for ``account`` (replacing a record with ``PROOF``); the export key."""
    rng = DetRng(b"reg" + account.encode() + password)
    cfg = small_config()
    req, st = opaque.RegistrationClient.start(password, config=cfg, rng=rng)
    started = vault.registration_start(account, req)
    record, export_key = opaque.RegistrationClient.finish(st, started.response, config=cfg, rng=rng)
    vault.registration_finish(account, record, wrapped, registration_id=started.registration_id,
                              proof_verifier=hashlib.sha256(PROOF).digest(), proof=PROOF)
    return export_key


def ke1_for(password: bytes, seed: bytes = b"ke1") -> tuple[bytes, object]:
    """A KE1 and the client state for it."""
    return opaque.LoginClient.start(password, config=small_config(), rng=DetRng(seed))


def client_finish(state: object, ke2: bytes) -> tuple[bytes, bytes, bytes]:
    """KE3, session key, export key — or InvalidLogin."""
    return opaque.LoginClient.finish(state, ke2, config=small_config())


class RecordingProxy:
    """Listens on loopback; keeps every byte each connection sent, answers ``reply``
    (a bare 502 unless told; None: no answer at all), closes."""

    def __init__(self, reply: bytes | None = (b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n"
                                              b"connection: close\r\n\r\n")) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.received.append(data)
                if self.reply is not None:
                    conn.sendall(self.reply)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # close() does not wake a blocked accept(): shut the socket down first.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()
