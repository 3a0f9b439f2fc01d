"""The account token on the client side: never an argument, never handed to a proxy.

A real vault (uvicorn on loopback, SQLite store) and a real proxy listener on
loopback that records what reaches it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from strongroom.cli.context import AppContext
from strongroom.cli.main import cli
from strongroom.client.vault_client import VaultClient
from strongroom.errors import VaultUnreachable
from strongroom.vault import _opaque as opaque
from strongroom.vault.app import create_app
from strongroom.vault.auth import TokenAuth
from strongroom.vault.core import Vault, VaultPolicy, VaultSecrets
from strongroom.vault.store_sqlite import SqliteStore

from .conftest import DetRng, LiveVault, small_config
from .helpers import RecordingProxy

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A live vault with account alice; yields (url, alice's token)."""
    rng = DetRng(b"client-secrets")
    secrets = VaultSecrets(opaque.ServerSetup.generate(rng), rng(32))
    vault = Vault(SqliteStore(tmp_path / "vault.db"), secrets, small_config(),
                  VaultPolicy(attempt_limit=10))
    auth = TokenAuth(vault.store)
    token = auth.create_account("alice", rng)
    with LiveVault(create_app(vault, auth)) as server:
        yield server.url, token
    vault.store.close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    """A proxy named by every proxy variable (httpx reads them from os.environ)."""
    with RecordingProxy() as p:
        for name in PROXY_VARS:
            monkeypatch.setenv(name, p.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield p


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_vault_ignores_proxy_variables(served: tuple[str, str], proxy: RecordingProxy,
                                                host: str) -> None:
    url, token = served
    url = url.replace("127.0.0.1", host)
    # The variables are live: a client that trusts them goes to the proxy ...
    assert httpx.get(f"{url}/v1/info").status_code == 502
    assert len(proxy.received) == 1 and proxy.received[0].startswith(b"GET http://")
    # ... the vault client does not, and the token reaches only the vault.
    with VaultClient(url, "alice", token) as client:
        assert client.info()["attempt_limit"] == 10
        assert client.status()["exists"] is False
    assert len(proxy.received) == 1


def test_remote_https_vault_may_use_a_proxy_but_only_by_connect(proxy: RecordingProxy) -> None:
    token = "srv1_" + "t" * 43
    with VaultClient("https://vault.example.invalid", "alice", token) as client, \
            pytest.raises(VaultUnreachable):
        client.info()
    (sent,) = proxy.received
    assert sent.startswith(b"CONNECT vault.example.invalid:443 ")  # the host name, nothing else
    assert token.encode() not in sent and b"authorization" not in sent.lower()


def _run(*args: Any, env: dict[str, str], input: str | None = None) -> Any:
    app = AppContext(stdin_is_tty=lambda: False, env=env)
    return CliRunner().invoke(cli, [str(a) for a in args], obj=app, env=env, input=input,
                              catch_exceptions=False)


@pytest.fixture
def repo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("STRONGROOM_"):
            monkeypatch.delenv(name)
    env = {"STRONGROOM_REPO": str(tmp_path / "repo"), "STRONGROOM_KEYRING": "no",
           "STRONGROOM_CONFIG_DIR": str(tmp_path / "device")}
    assert _run("init", env=env).exit_code == 0
    return env


def _status(env: dict[str, str], *args: Any, input: str | None = None) -> Any:
    return _run("vault", "status", "--json", *args, env=env, input=input)


def _token_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "vault-token"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_token_from_a_file_standard_input_or_the_environment(
        served: tuple[str, str], repo_env: dict[str, str], tmp_path: Path) -> None:
    url, token = served
    env = {**repo_env, "STRONGROOM_VAULT": url}
    path = _token_file(tmp_path, token + "\n")
    for r in (_status(env, "--vault-token-file", path),
              _status({**env, "STRONGROOM_VAULT_TOKEN_FILE": str(path)}),
              _status(env, "--vault-token-file", "-", input=token + "\n"),
              _status({**env, "STRONGROOM_VAULT_TOKEN": token}),
              # The file wins over the environment.
              _status({**env, "STRONGROOM_VAULT_TOKEN": "srv1_wrong"}, "--vault-token-file", path)):
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["account"] == "alice"
        assert token not in r.output


def test_token_as_an_argument_is_refused_without_echoing_it(
        served: tuple[str, str], repo_env: dict[str, str]) -> None:
    url, token = served
    r = _status({**repo_env, "STRONGROOM_VAULT": url}, "--vault-token", token)
    assert r.exit_code == 2
    assert "--vault-token is not accepted" in r.stderr and "(ps)" in r.stderr
    assert "STRONGROOM_VAULT_TOKEN" in r.stderr and "--vault-token-file" in r.stderr
    assert token not in r.output and "Traceback" not in r.output


@pytest.mark.parametrize(("text", "mode", "message"), [
    ("TOKEN\n", 0o644, "is open to other users (mode 0644)"),
    ("TOKEN\n", 0o640, "is open to other users (mode 0640)"),
    ("TOKEN\n", 0o604, "is open to other users (mode 0604)"),
    ("\n \n", 0o600, "is empty"),
    ("TOKEN\nTOKEN\n", 0o600, "does not hold one token"),
    ("TOK EN", 0o600, "does not hold one token"),
    ("TOKEN\u00e9", 0o600, "does not hold one token"),
    ("x" * (16 * 1024 + 1), 0o600, "holds more than 16384 bytes"),
])
def test_bad_token_files_are_refused_before_anything_is_sent(
        served: tuple[str, str], repo_env: dict[str, str], tmp_path: Path, text: str, mode: int,
        message: str) -> None:
    url, token = served
    path = _token_file(tmp_path, text.replace("TOKEN", token), mode)
    r = _status({**repo_env, "STRONGROOM_VAULT": url}, "--vault-token-file", path)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and str(path) in r.stderr
    assert token not in r.output and "Traceback" not in r.output
    if mode & 0o077:
        assert f"strongroom: hint: chmod 600 {path}" in r.stderr


def test_missing_token_file_and_missing_token(served: tuple[str, str], repo_env: dict[str, str],
                                              tmp_path: Path) -> None:
    url, _token = served
    env = {**repo_env, "STRONGROOM_VAULT": url}
    r = _status(env, "--vault-token-file", tmp_path / "absent")
    assert r.exit_code == 2 and "cannot read the vault token file" in r.stderr
    r = _status(env)
    assert r.exit_code == 2 and "no vault token given" in r.stderr
    assert "--vault-token-file" in r.stderr and "STRONGROOM_VAULT_TOKEN" in r.stderr
    r = _status(env, "--vault-token-file", "-", input="")
    assert r.exit_code == 2 and "standard input is empty" in r.stderr
