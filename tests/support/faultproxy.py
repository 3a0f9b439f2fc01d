"""A misbehaving HTTP proxy for fault tests: drops, delays and 5xx at random.

It sits on a free loopback port in front of an HTTP server (SeaweedFS S3) and
handles each request in turn.  A seeded RNG picks a fate per request:

* ``ok``          forward the request and relay the answer;
* ``delay``       wait ``delay`` seconds, then forward;
* ``error``       answer 500 or 503 (S3 XML ``InternalError``/``SlowDown``) without forwarding;
* ``drop``        close the connection without forwarding (request lost);
* ``drop_after``  forward, let the server act, then close without answering (answer lost:
                  the nastiest case, the client does not know its write happened).

``down = True`` simulates a network loss (every connection is closed at once);
``cut_after_put_bytes`` turns the network off by itself once that many request
body bytes of PUTs went through.  ``put_bytes`` counts PUT body bytes forwarded,
so a test can check that a resumed backup does not upload again what is stored.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


@dataclass
class Faults:
    """Probabilities per request (the rest is ``ok``)."""

    drop: float = 0.0
    drop_after: float = 0.0
    error: float = 0.0
    delay: float = 0.0
    delay_seconds: float = 0.05
    status: int | None = None  # answer every request with this status (e.g. 403)


@dataclass
class FaultProxy:
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager)."""

    upstream: str
    faults: Faults = field(default_factory=Faults)
    seed: int = 1
    down: bool = False
    cut_after_put_bytes: int | None = None
    fault_limit: int | None = None  # inject at most this many faults, then behave

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._up_host, self._up_port = parts.hostname or "127.0.0.1", parts.port or 80
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self.fates: Counter[str] = Counter()
        self.log: list[tuple[str, str, str, int]] = []  # (method, path, fate, status)
        self.requests = 0
        self.put_bytes = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self) -> FaultProxy:
        t = threading.Thread(target=self._accept, name="faultproxy", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stopping = True
        self._listener.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _fate(self) -> str:
        with self._lock:
            self.requests += 1
            if self.down:
                fate = "down"
            elif self.faults.status is not None:
                fate = "status"
            else:
                r, f = self._rng.random(), self.faults
                fate = "ok"
                for name, p in (("drop", f.drop), ("drop_after", f.drop_after),
                                ("error", f.error), ("delay", f.delay)):
                    if r < p:
                        fate = name
                        break
                    r -= p
                if fate != "ok" and self.fault_limit is not None:
                    if self.fault_limit <= 0:
                        fate = "ok"
                    else:
                        self.fault_limit -= 1
            self.fates[fate] += 1
            return fate

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                request = _read_request(reader, conn)
                if request is None or not self._handle(conn, *request):
                    return
        except (OSError, ValueError):
            return
        finally:
            reader.close()
            conn.close()

    def _handle(self, conn: socket.socket, method: str, path: str,
                headers: list[tuple[str, str]], body: bytes) -> bool:
        """Answer one request; False closes the connection."""
        fate = self._fate()
        if fate in ("down", "drop"):
            self.log.append((method, path, fate, 0))
            return False
        if fate == "status":
            _reply(conn, self.faults.status or 500, "Refused", _xml("AccessDenied"))
            return True
        if fate == "error":
            status = self._rng.choice([500, 503])
            _reply(conn, status, "Error", _xml("InternalError" if status == 500 else "SlowDown"))
            return True
        if fate == "delay":
            time.sleep(self.faults.delay_seconds)
        status, reason, resp_headers, resp_body = self._forward(method, path, headers, body)
        if method == "PUT":
            with self._lock:
                self.put_bytes += len(body)
                if self.cut_after_put_bytes is not None and self.put_bytes >= self.cut_after_put_bytes:
                    self.down = True
        self.log.append((method, path, fate, status))
        if fate == "drop_after":
            return False
        _reply(conn, status, reason, resp_body, resp_headers, head=(method == "HEAD"))
        return True

    def _forward(self, method: str, path: str, headers: list[tuple[str, str]],
                 body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        up = http.client.HTTPConnection(self._up_host, self._up_port, timeout=60)
        try:
            up.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                if k.lower() not in _HOP:
                    up.putheader(k, v)
            up.endheaders(body if body else None)
            resp = up.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            up.close()


def _read_request(reader, conn: socket.socket):  # type: ignore[no-untyped-def]
    line = reader.readline(65536)
    if not line:
        return None
    method, path, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while True:
        h = reader.readline(65536).decode("latin-1").rstrip("\r\n")
        if not h:
            break
        k, _, v = h.partition(":")
        headers.append((k.strip(), v.strip()))
    lower = {k.lower(): v for k, v in headers}
    if lower.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in lower.get("transfer-encoding", "").lower():
        body = _read_chunked(reader)
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        headers.append(("Content-Length", str(len(body))))
    else:
        body = reader.read(int(lower.get("content-length", "0") or 0))
    return method, path, headers, body


def _read_chunked(reader) -> bytes:  # type: ignore[no-untyped-def]
    """Collect a chunked request body (forwarded with a Content-Length instead)."""
    parts = []
    while True:
        size = int(reader.readline(65536).split(b";")[0].strip(), 16)
        if size == 0:
            while reader.readline(65536) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(reader.read(size))
        reader.readline(65536)


def _reply(conn: socket.socket, status: int, reason: str, body: bytes,
           headers: list[tuple[str, str]] | None = None, head: bool = False) -> None:
    out = [f"HTTP/1.1 {status} {reason}"]
    for k, v in headers or [("Content-Type", "application/xml")]:
        if k.lower() not in _HOP and k.lower() != "content-length":
            out.append(f"{k}: {v}")
    length = next((v for k, v in headers or [] if k.lower() == "content-length"), None)
    out.append(f"Content-Length: {length if head and length is not None else len(body)}")
    conn.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + (b"" if head else body))


def _xml(code: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>injected by the fault proxy</Message></Error>").encode()


__all__ = ["FaultProxy", "Faults"]
