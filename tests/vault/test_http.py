"""The vault over real HTTP (uvicorn on loopback) with the real client."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from strongroom.client import flows
from strongroom.client.vault_client import VaultClient
from strongroom.crypto.keys import BackupKey
from strongroom.errors import (
    AttemptsExhausted,
    InvalidLogin,
    VaultAuthError,
    VaultError,
    VaultProtocolError,
    VaultUnreachable,
)
from strongroom.storage.memory import MemoryBackend
from strongroom.vault import _opaque as opaque
from strongroom.vault.app import b64e

from .conftest import SMALL_BOUNDS, SMALL_KSF, DetRng

K = BackupKey.from_bytes(bytes(range(32)))


@pytest.fixture
def alice(live):  # type: ignore[no-untyped-def]
    server, auth = live
    token = auth.create_account("alice", DetRng(b"alice"))
    with VaultClient(server.url, "alice", token) as c:
        yield c


def _enable(client: VaultClient, pw: str = "right password") -> MemoryBackend:
    backend = MemoryBackend()
    flows.enable(backend, K, client, pw, ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
    return backend


def test_enable_and_recover(alice: VaultClient) -> None:
    backend = _enable(alice)
    loc = flows.read_locator(backend)
    assert loc is not None and loc.account == "alice" and loc.slot
    # The parameters are kept by the vault with the record, not in storage (spec §2.2).
    assert alice.for_slot(loc.slot).status()["ksf"] == SMALL_KSF
    assert b"memory_kib" not in backend.get(flows.LOCATOR)
    assert flows.recover(loc, alice, "right password", bounds=SMALL_BOUNDS) == K


def test_wrong_password_says_attempts_left_and_warns_before_last(alice: VaultClient) -> None:
    loc = flows.read_locator(_enable(alice))
    for left in range(9, 0, -1):
        with pytest.raises(InvalidLogin) as exc:
            flows.recover(loc, alice, "wrong", bounds=SMALL_BOUNDS)
        assert exc.value.attempts_left == left
        assert f"{left} attempt" in exc.value.message
    assert "WARNING" in (exc.value.hint or "")
    asked = []
    with pytest.raises(Exception) as stop:
        flows.recover(loc, alice, "wrong", confirm_last=lambda: asked.append(1) or False, bounds=SMALL_BOUNDS)
    assert asked == [1] and "nothing was spent" in str(stop.value)
    assert alice.for_slot(loc.slot).status()["attempts_left"] == 1
    # The last allowed wrong guess is AttemptsExhausted, with its typed field at 0.
    with pytest.raises(AttemptsExhausted) as last:
        flows.recover(loc, alice, "wrong", confirm_last=lambda: True, bounds=SMALL_BOUNDS)
    assert "destroyed" in last.value.message and last.value.attempts_left == 0
    with pytest.raises(AttemptsExhausted) as locked:
        flows.recover(loc, alice, "right password", bounds=SMALL_BOUNDS)
    assert "permanently" in locked.value.message and "64-digit key" in (locked.value.hint or "")
    raw = httpx.post(f"{alice.url}/v1/accounts/alice/slots/{loc.slot}/login/start",
                     headers={"authorization": alice._http.headers["authorization"]},
                     json={"ke1": "A" * 128})
    assert raw.status_code == 410 and raw.json()["error"] == "locked"
    assert "permanently" in raw.json()["message"]


def test_unknown_account_looks_like_wrong_password(live) -> None:  # type: ignore[no-untyped-def]
    server, auth = live
    tokens = {n: auth.create_account(n, DetRng(n.encode())) for n in ("real", "ghost")}
    with VaultClient(server.url, "real", tokens["real"]) as real:
        loc = flows.read_locator(_enable(real))
    answers = {}
    for name in ("real", "ghost"):
        with VaultClient(server.url, name, tokens[name]) as c:
            ke1, _ = opaque.LoginClient.start(b"guess", rng=DetRng(name.encode()))
            r = httpx.post(f"{server.url}/v1/accounts/{name}/slots/{loc.slot}/login/start",
                           headers={"authorization": f"Bearer {tokens[name]}"},
                           json={"ke1": b64e(ke1)})
            answers[name] = r
            if name == "real":
                with pytest.raises(InvalidLogin) as exc:
                    flows.recover(loc, c, "guess", bounds=SMALL_BOUNDS)
                assert exc.value.attempts_left == 8  # type: ignore[attr-defined]
            else:  # the client asks first and spends no guess on a slot without a record
                with pytest.raises(VaultError, match="holds no key"):
                    flows.recover(replace(loc, account=name), c, "guess", bounds=SMALL_BOUNDS)
    a, b = answers["real"], answers["ghost"]
    assert a.status_code == b.status_code == 200
    assert sorted(a.json()) == sorted(b.json())
    assert {k: len(v) if isinstance(v, str) else v for k, v in a.json().items()} == \
           {k: len(v) if isinstance(v, str) else v for k, v in b.json().items()}


def test_another_accounts_token_is_403(live) -> None:  # type: ignore[no-untyped-def]
    server, auth = live
    t_alice = auth.create_account("alice", DetRng(b"a"))
    auth.create_account("bob", DetRng(b"b"))
    with VaultClient(server.url, "bob", t_alice) as c, pytest.raises(VaultAuthError):
        c.status()
    for method, path in [("GET", "record"), ("DELETE", "record"), ("POST", "login/start"),
                         ("POST", "registration/start"), ("POST", "login/finish")]:
        r = httpx.request(method, f"{server.url}/v1/accounts/bob/{path}",
                          headers={"authorization": f"Bearer {t_alice}"}, json={})
        assert r.status_code == 403, (method, path, r.text)
    r = httpx.get(f"{server.url}/v1/accounts/bob/record")
    assert r.status_code == 401
    r = httpx.get(f"{server.url}/v1/accounts/bob/record", headers={"authorization": "Bearer srv1_x"})
    assert r.status_code == 401


BAD_BODIES = [
    ("login/start", b"{not json"),
    ("login/start", b"[]"),
    ("login/start", b'{"ke1": 5}'),
    ("login/start", b'{"ke1": "!!!"}'),
    ("login/start", b'{"ke1": "AAAA"}'),
    ("login/start", b'{"ke1": "AAAA", "extra": 1}'),
    ("login/start", b'{}'),
    ("login/start", b'{"ke1": "' + b"A" * 127 + b'"}'),
    ("login/finish", b'{"session_id": "x", "ke3": "AAAA"}'),
    ("login/finish", b'{"session_id": "", "ke3": "AAAA"}'),
    ("registration/start", b'{"request": "AAAA"}'),
    ("registration/finish", b'{"record": "AAAA", "wrapped_key": "AAAA"}'),
    ("registration/finish", b'{"record": "' + b"A" * 256 + b'", "wrapped_key": ""}'),
    ("login/start", b'{"ke1": "' + b"A" * 5000 + b'"}'),
    ("login/start", b"\xff\xfe\x00"),
]


@pytest.mark.parametrize("path,body", BAD_BODIES)
def test_malformed_requests_get_4xx_with_a_message(alice: VaultClient, path: str, body: bytes) -> None:
    r = httpx.post(f"{alice.url}/v1/accounts/alice/{path}", content=body,
                   headers={"authorization": alice._http.headers["authorization"],
                            "content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["message"]


def test_oversized_body_is_413(alice: VaultClient) -> None:
    r = httpx.post(f"{alice.url}/v1/accounts/alice/login/start", content=b"{" + b" " * 100_000 + b"}",
                   headers={"authorization": alice._http.headers["authorization"],
                            "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"

    def chunks():  # no content-length: the limit applies while streaming
        for _ in range(100):
            yield b" " * 1000
    r = httpx.post(f"{alice.url}/v1/accounts/alice/login/start", content=chunks(),
                   headers={"authorization": alice._http.headers["authorization"],
                            "content-type": "application/json"})
    assert r.status_code == 413


def test_bad_account_ids_are_4xx(alice: VaultClient) -> None:
    for acct in ["x" * 300, "%00"]:
        r = httpx.get(f"{alice.url}/v1/accounts/{acct}/record",
                      headers={"authorization": alice._http.headers["authorization"]})
        assert 400 <= r.status_code < 500


def test_openapi_is_published(alice: VaultClient) -> None:
    doc = httpx.get(f"{alice.url}/openapi.json").json()
    assert "/v1/accounts/{account}/login/start" in doc["paths"]


def test_vault_unreachable_is_clear() -> None:
    from .pg import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with VaultClient(url, "alice", "srv1_x", timeout=2) as c, pytest.raises(VaultUnreachable) as exc:
        c.status()
    assert "cannot be reached" in exc.value.message and "no attempt was used" in (exc.value.hint or "")


def test_pinning_refuses_another_vault_key(alice: VaultClient, live) -> None:  # type: ignore[no-untyped-def]
    backend = _enable(alice)
    loc = flows.read_locator(backend)
    impostor = replace(loc, server_public_key=bytes(32))
    with pytest.raises(VaultProtocolError) as exc:
        flows.recover(impostor, alice, "right password", bounds=SMALL_BOUNDS)
    assert "pinned" in exc.value.message
    with pytest.raises(VaultProtocolError):
        flows.enable(MemoryBackend(), K, alice, "pw", ksf=SMALL_KSF, pinned_key=bytes(32), bounds=SMALL_BOUNDS)


def test_change_password_and_disable(alice: VaultClient) -> None:
    backend = _enable(alice)
    flows.change_password(backend, K, alice, "new password", bounds=SMALL_BOUNDS)
    loc = flows.read_locator(backend)
    with pytest.raises(InvalidLogin):
        flows.recover(loc, alice, "right password", bounds=SMALL_BOUNDS)
    assert flows.recover(loc, alice, "new password", bounds=SMALL_BOUNDS) == K
    assert flows.disable(backend, alice, K) is True
    assert flows.read_locator(backend) is None
    assert alice.for_slot(loc.slot).status()["exists"] is False
    assert "only the 64-digit key" in flows.DISABLED_NOTE


def test_store_failure_is_503_without_ke2(vault) -> None:  # type: ignore[no-untyped-def]
    from strongroom.vault.app import create_app
    from strongroom.vault.auth import TokenAuth
    from strongroom.vault.core import Vault

    from .conftest import LiveVault
    from .test_core import _CommitFails

    auth = TokenAuth(vault.store)
    token = auth.create_account("alice", DetRng(b"a"))
    broken = Vault(_CommitFails(vault.store), vault._secrets, vault.config, vault.policy)
    with LiveVault(create_app(broken, auth)) as server:
        ke1, _ = opaque.LoginClient.start(b"pw", rng=DetRng(b"k"))
        r = httpx.post(f"{server.url}/v1/accounts/alice/login/start",
                       headers={"authorization": f"Bearer {token}"}, json={"ke1": b64e(ke1)})
        assert r.status_code == 503 and "ke2" not in r.json()
        with VaultClient(server.url, "alice", token) as c, pytest.raises(VaultUnreachable) as exc:
            c.login_start(ke1)
        assert "stays counted" in (exc.value.hint or "")


@pytest.mark.parametrize("ctype,status", [
    ("application/json", 409), ("application/json; charset=utf-8", 409),
    ("application/vnd.x+json", 409), (None, 400), ("text/plain", 400)])
def test_content_types_as_fastapi_reads_them(alice: VaultClient, ctype: str | None,
                                             status: int) -> None:
    # A JSON body under any JSON content type is read (here: an unknown session, 409);
    # no content type or another one is 400, whichever handler serves the request.
    headers = {"authorization": alice._http.headers["authorization"]}
    if ctype is not None:
        headers["content-type"] = ctype
    r = httpx.post(f"{alice.url}/v1/accounts/alice/login/finish", headers=headers,
                   content=b'{"session_id": "nosuchsession", "ke3": "AAAA"}')
    assert r.status_code == status, r.text
    assert r.json()["error"] == ("session_invalid" if status == 409 else "bad_request")


def test_unparsable_json_is_400_before_the_token_and_invalid_json_after(alice: VaultClient) -> None:
    url = f"{alice.url}/v1/accounts/alice/login/start"
    json_type = {"content-type": "application/json"}
    r = httpx.post(url, content=b"{not json", headers=json_type)
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    r = httpx.post(url, content=b'{"ke1": 5}', headers=json_type)
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"


def test_the_hot_endpoints_take_one_thread_call(vault) -> None:  # type: ignore[no-untyped-def]
    # Each of these runs the bearer check, the body and the core in one worker-thread
    # call (route.VaultRoute); an endpoint that lost that shape would quietly be slower.
    from strongroom.vault.app import create_app
    from strongroom.vault.auth import TokenAuth
    from strongroom.vault.route import VaultRoute

    app = create_app(vault, TokenAuth(vault.store), max_body=0)
    planned = {r.path for r in app.routes if isinstance(r, VaultRoute) and r._plan() is not None
               and r.direct is not None}
    for prefix in ("/v1/accounts/{account}", "/v1/accounts/{account}/slots/{slot}"):
        for tail in ("login/start", "login/finish", "registration/start", "record", "head"):
            assert f"{prefix}/{tail}" in planned
    for tail in ("evaluate", "unlock", "register"):
        assert f"/v1/accounts/{{account}}/slots/{{slot}}/realm/{tail}" in planned
    assert "/v1/whoami" not in planned  # takes the Request: FastAPI's own handler
