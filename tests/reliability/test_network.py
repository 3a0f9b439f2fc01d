"""Network attacker: the vault's bearer token must not cross a network in clear text.

Regression tests of DEFECT-6 (`docs/dev/defects.md`): the client refuses plain
``http://`` to any host that is not loopback, before a single byte is sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from strongroom.client.vault_client import VaultClient
from strongroom.errors import UsageError, VaultProtocolError, VaultUnreachable

TOKEN = "srv1_secret-token-must-not-leak"

REMOTE_PLAIN = [
    "http://vault.example.org:8443",
    "http://10.0.0.5:8443",
    "http://192.168.1.2",
    "http://[fe80::1]:8443",
    "http://[::ffff:10.0.0.1]:8443",  # IPv4-mapped, but not loopback
    "http://127.0.0.1.nip.io:8443",  # a name that merely starts like loopback
    "http://localhost.example.org",
    "http://127.1:8443",  # shorthand: not parsed as an address, so refused as a name
    "http://127.0.0.1@vault.example.org:8443",  # user info: the host is vault.example.org
    "HTTP://vault.example.org",
]

LOOPBACK_PLAIN = [
    "http://127.0.0.1:8443",
    "http://127.8.9.10:8443",
    "http://localhost:8443",
    "http://LOCALHOST:8443",
    "http://[::1]:8443",
    "http://[::ffff:127.0.0.1]:8443",
]


class Recorder:
    """An httpx transport that records every request instead of sending it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(200, json={"server_public_key": "", "context": "",
                                             "attempt_limit": 10, "session_ttl": 120})
        return httpx.MockTransport(handle)


@pytest.mark.parametrize("url", REMOTE_PLAIN)
def test_plain_http_to_a_remote_vault_is_refused(url: str) -> None:
    rec = Recorder()
    with pytest.raises(UsageError) as exc:
        VaultClient(url, "alice", TOKEN, transport=rec.transport()).close()
    assert exc.value.exit_code == 2
    assert "https://" in (exc.value.hint or "")
    assert "refusing plain http://" in exc.value.message
    assert TOKEN not in exc.value.message and TOKEN not in (exc.value.hint or "")
    assert rec.requests == []  # refused before anything was sent


@pytest.mark.parametrize("url", LOOPBACK_PLAIN)
def test_plain_http_to_loopback_stays_allowed(url: str) -> None:
    """Tests and a vault on the same machine use http://127.0.0.1 (no network crossed)."""
    rec = Recorder()
    with VaultClient(url, "alice", TOKEN, transport=rec.transport()) as c:
        c.info()
    assert [r.headers["authorization"] for r in rec.requests] == [f"Bearer {TOKEN}"]


def test_https_to_a_remote_vault_carries_the_token() -> None:
    rec = Recorder()
    with VaultClient("https://vault.example.org:8443/", "alice", TOKEN,
                     transport=rec.transport()) as c:
        c.info()
    (req,) = rec.requests
    assert str(req.url) == "https://vault.example.org:8443/v1/info"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"


def test_redirect_to_plain_http_is_not_followed() -> None:
    """An https vault answering with a redirect to http:// cannot pull the token along."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"location": "http://vault.example.org/v1/info"},
                              json={"error": "moved", "message": "moved"})

    with VaultClient("https://vault.example.org", "alice", TOKEN,
                     transport=httpx.MockTransport(handle)) as c, pytest.raises(VaultProtocolError):
        c.info()
    assert seen == ["https://vault.example.org/v1/info"]


@pytest.mark.parametrize("url", ["vault.example.org:8443", "ftp://vault.example.org", "http://",
                                 "https:///v1", "", TOKEN])
def test_not_a_vault_url(url: str) -> None:
    with pytest.raises(VaultUnreachable) as exc:
        VaultClient(url, "alice", TOKEN).close()
    assert "not a vault URL" in exc.value.message and TOKEN not in exc.value.message


# -- the CLI ---------------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from strongroom.cli.context import AppContext
    from strongroom.cli.main import cli

    app = AppContext(stdin_is_tty=lambda: False, env=env)
    return CliRunner().invoke(cli, args, obj=app, env=env, catch_exceptions=False)


@pytest.fixture
def repo_env(tmp_path: Path) -> dict[str, str]:
    """A fresh repository (64-digit mode) and a device that holds its key."""
    env = {"STRONGROOM_REPO": str(tmp_path / "repo"), "STRONGROOM_KEYRING": "no",
           "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev1")}
    r = _run(["init"], env)
    assert r.exit_code == 0, r.output
    return env


def test_cli_enable_refuses_plain_http_to_a_remote_vault(repo_env: dict[str, str]) -> None:
    env = {**repo_env, "STRONGROOM_PASSWORD": "pw", "STRONGROOM_VAULT_TOKEN": TOKEN}
    r = _run(["enable", "--password", "--vault", "http://vault.example.org:8443"], env)
    assert r.exit_code == 2, r.output
    assert "refusing plain http://" in r.stderr and "use https://" in r.stderr
    assert TOKEN not in r.output
    assert not (Path(repo_env["STRONGROOM_REPO"]) / "ext" / "vault.json").exists()


def test_cli_refuses_a_locator_naming_a_plain_http_remote_vault(repo_env: dict[str, str],
                                                                tmp_path: Path) -> None:
    """The provider rewrites ext/vault.json to a plain-http host it watches: a new
    device (no key on it) refuses to send the token there."""
    ext = Path(repo_env["STRONGROOM_REPO"]) / "ext"
    ext.mkdir(exist_ok=True)
    (ext / "vault.json").write_text(json.dumps({
        "format": "strongroom-vault-locator/1", "url": "http://vault.example.org:8443",
        "account": "alice", "server_public_key": "A" * 43,
        "opaque": {"ksf": {"name": "argon2id", "memory_kib": 256, "iterations": 1,
                           "parallelism": 1}, "context": "c3Ryb25ncm9vbQ"}}))
    env = {**repo_env, "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev2"),
           "STRONGROOM_PASSWORD": "pw", "STRONGROOM_VAULT_TOKEN": TOKEN}
    # Without --vault the device does not trust a URL only storage names.
    r = _run(["snapshots"], env)
    assert r.exit_code == 2, r.output
    assert "has not been told to trust" in r.stderr
    assert TOKEN not in r.output
    # Even when the user confirms that URL, plain http to a remote host is refused.
    r = _run(["snapshots"], {**env, "STRONGROOM_VAULT": "http://vault.example.org:8443"})
    assert r.exit_code == 2, r.output
    assert "refusing plain http:// to the vault at vault.example.org" in r.stderr
    assert TOKEN not in r.output
