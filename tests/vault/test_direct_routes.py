"""``route.DirectRoutes`` answers exactly as the FastAPI app behind it would.

Two vaults with the same secrets, deterministic randomness and clock each
serve the same scripted requests (every hot endpoint, valid and not: wrong and
foreign tokens, malformed and invalid bodies, other content types, an unknown
endpoint, a wrong method, a locked record, a spent session): one through
``create_app`` (the direct path in front), one through the bare FastAPI app
(``.app`` of what ``create_app`` returns).  Status, headers and body must be
equal, byte for byte, request by request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

from strongroom.vault import _opaque as opaque
from strongroom.vault.app import create_app
from strongroom.vault.auth import TokenAuth
from strongroom.vault.core import Vault, VaultPolicy, VaultSecrets
from strongroom.vault.route import DirectRoutes
from strongroom.vault.store_sqlite import SqliteStore

from .conftest import SMALL_KSF, Clock, DetRng, small_config

SLOT = "s1"
JSON_TYPES = ("application/json; charset=utf-8", "Application/JSON", 'application/json; charset="utf-8"',
              "application/json ; charset=latin-1", "application/merge-patch+json",
              "application/json; charset=ascii; x=1")
NOT_JSON_TYPES = ("text/plain", "text/json", "application/jsonx", "application/x-json",
                  "application/json+xml", "json", "", "application/", "multipart/form-data")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pair(tmp: Path) -> tuple[Any, Any, str, str]:
    """(direct app, bare FastAPI app, alice's token, bob's token), same state in both."""
    apps = []
    tokens: list[str] = []
    for name in ("direct", "bare"):
        rng = DetRng(b"secrets")
        secrets = VaultSecrets(opaque.ServerSetup.generate(rng), rng(32))
        store = SqliteStore(tmp / f"{name}.db")
        vault = Vault(store, secrets, small_config(), VaultPolicy(attempt_limit=3, session_ttl=60),
                      clock=Clock(), rng=DetRng(b"vault"))
        auth = TokenAuth(store)
        tokens = [auth.create_account("alice", DetRng(b"a")), auth.create_account("bob", DetRng(b"b"))]
        app = create_app(vault, auth, max_body=0)
        assert isinstance(app, DirectRoutes)
        apps.append(app if name == "direct" else app.app)
    return apps[0], apps[1], tokens[0], tokens[1]


async def _script(app: Any, alice: str, bob: str) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    out: list[tuple[int, list[tuple[str, str]], bytes]] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as c:

        async def req(method: str, path: str, token: str | None = alice, body: Any = None,
                      raw: bytes | None = None, ctype: str | None = "application/json") -> Any:
            headers = {}
            if token is not None:
                headers["authorization"] = f"Bearer {token}"
            if ctype is not None:
                headers["content-type"] = ctype
            content = raw if raw is not None else (json.dumps(body).encode()
                                                    if body is not None else None)
            r = await c.request(method, path, headers=headers, content=content)
            out.append((r.status_code, sorted(r.headers.items()), r.content))
            return r

        base = f"/v1/accounts/alice/slots/{SLOT}"
        cfg = small_config()
        rq, st = opaque.RegistrationClient.start(b"pw", config=cfg, rng=DetRng(b"r"))
        r = await req("POST", f"{base}/registration/start", body={"request": _b64(rq)})
        started = r.json()
        record, _ek = opaque.RegistrationClient.finish(
            st, base64.urlsafe_b64decode(started["response"] + "=="), config=cfg, rng=DetRng(b"r"))
        await req("POST", f"{base}/registration/finish", body={
            "registration_id": started["registration_id"], "record": _b64(record),
            "wrapped_key": _b64(b"W" * 40), "proof_verifier": _b64(hashlib.sha256(b"P" * 32).digest()),
            "ksf": SMALL_KSF})
        await req("GET", f"{base}/record")
        # A complete login, then the same KE3 again (a spent session).
        ke1, cst = opaque.LoginClient.start(b"pw", config=cfg, rng=DetRng(b"k"))
        r = await req("POST", f"{base}/login/start", body={"ke1": _b64(ke1)})
        ans = r.json()
        ke3, _sk, _ek2 = opaque.LoginClient.finish(
            cst, base64.urlsafe_b64decode(ans["ke2"] + "=="), config=cfg)
        finish = {"session_id": ans["session_id"], "ke3": _b64(ke3)}
        await req("POST", f"{base}/login/finish", body=finish)
        await req("POST", f"{base}/login/finish", body=finish)
        # Tokens: none, malformed, unknown, another account's.
        for token in (None, "nonsense", "srv1_" + "A" * 43, bob):
            await req("POST", f"{base}/login/start", token=token, body={"ke1": _b64(ke1)})
        # Bodies: unparsable, invalid, empty, extra field, bad base64, other content types.
        await req("POST", f"{base}/login/start", raw=b"{not json")
        await req("POST", f"{base}/login/start", body={"ke1": 5})
        await req("POST", f"{base}/login/start", raw=b"")
        await req("POST", f"{base}/login/start", body={"ke1": _b64(ke1), "x": 1})
        await req("POST", f"{base}/login/start", body={"ke1": "!!"})
        await req("POST", f"{base}/login/start", body={"ke1": _b64(b"short")})
        await req("POST", f"{base}/login/start", body={"ke1": _b64(ke1)}, ctype="text/plain")
        # What FastAPI parses as JSON (any parameters, any case, a +json type) the direct
        # path serves itself; anything else goes to FastAPI.
        for ctype in JSON_TYPES + NOT_JSON_TYPES:
            await req("POST", f"{base}/login/start", body={"ke1": _b64(ke1)}, ctype=ctype)
        await req("POST", f"{base}/login/start", body={"ke1": _b64(ke1)}, ctype=None)
        # Paths and methods: unknown endpoint, wrong method, bad slot, empty segment, legacy.
        await req("POST", f"{base}/login/nowhere", body={})
        await req("GET", f"{base}/login/start")
        await req("POST", "/v1/accounts/alice/slots/bad!slot/login/start", body={"ke1": _b64(ke1)})
        await req("POST", f"/v1/accounts//slots/{SLOT}/login/start", body={"ke1": _b64(ke1)})
        await req("POST", "/v1/accounts/alice/login/start", body={"ke1": _b64(ke1)})
        await req("GET", "/v1/info", token=None, ctype=None)
        # Wrong KE3s until the record locks, then a locked login start.
        for i in range(4):
            r = await req("POST", f"{base}/login/start", body={"ke1": _b64(ke1)})
            if r.status_code == 200:
                await req("POST", f"{base}/login/finish",
                          body={"session_id": r.json()["session_id"], "ke3": _b64(bytes(64 + i))})
        await req("GET", f"{base}/head")
        await req("POST", f"{base}/head", body={"counter": 1, "tag": _b64(b"t" * 32)})
        await req("POST", f"{base}/head", body={"counter": 1, "tag": _b64(b"t" * 32)})
    return out


class _Counting:
    """The FastAPI app, counting the requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.inner, self.paths, self.types = app, [], []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append((scope["method"], scope["path"]))
            self.types.append(dict(scope["headers"]).get(b"content-type", b"").decode())
        await self.inner(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_direct_answers_equal_fastapis(tmp_path: Path) -> None:
    direct, bare, alice, bob = _pair(tmp_path)
    counting = direct.app = _Counting(direct.app)
    got = asyncio.run(_script(direct, alice, bob))
    # The valid hot requests never reached FastAPI; what the direct path does not take did.
    reached = set(counting.paths)
    base = f"/v1/accounts/alice/slots/{SLOT}"
    assert ("POST", f"{base}/login/finish") not in reached
    assert ("GET", f"{base}/record") not in reached
    assert {("POST", f"{base}/login/nowhere"), ("GET", f"{base}/login/start"),
            ("POST", f"{base}/login/start")} <= reached  # the last: its fallbacks
    assert not set(JSON_TYPES) & set(counting.types)
    assert set(NOT_JSON_TYPES) - {""} <= set(counting.types)
    want = asyncio.run(_script(bare, alice, bob))
    assert len(got) == len(want) > 30
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"request {i}: {g!r} != {w!r}"
    statuses = {s for s, _h, _b in got}
    assert {200, 201, 400, 401, 403, 404, 409, 410} <= statuses
