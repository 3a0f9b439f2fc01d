"""One account-id rule (vault-protocol §7.1), the same in the client and the vault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.client.vault_client import VaultClient, _error
from strongroom.errors import InvalidAccountId, UsageError
from strongroom.vault.account_id import check_account_id, is_valid_account_id
from strongroom.vault.auth import JwtAuth, TokenAuth

from .conftest import Clock, LiveVault

GOOD = ["alice", "a", "Bob_2", "alice@example.org", "auth0|5f1c2a", "google-oauth2|1234",
        "0c6f6b5e-3a4f-4c55-9a1e-8f2d2d1d7e10", "user:42", "x.y+tag=1~z", "A" * 128]
BAD = {
    "": "cannot be empty",
    "a/b": "contains '/'",
    "/alice": "contains '/'",
    "A" * 129: "129 characters",
    "élodie": "non-ASCII",
    "alice\u200b": "non-ASCII",
    "alice bob": "not allowed",
    "alice\n": "not allowed",
    "a%2Fb": "not allowed",
    "a?b": "not allowed",
    "a#b": "not allowed",
    ".hidden": "start with a letter or a digit",
    "-x": "start with a letter or a digit",
}


@pytest.mark.parametrize("account", GOOD)
def test_valid_ids(account: str) -> None:
    assert check_account_id(account) == account.encode("ascii")
    assert is_valid_account_id(account)


@pytest.mark.parametrize(("account", "why"), list(BAD.items()))
def test_invalid_ids_say_what_is_wrong_without_echoing_the_id(account: str, why: str) -> None:
    with pytest.raises(InvalidAccountId) as info:
        check_account_id(account)
    assert why in info.value.message and "1 to 128 ASCII letters" in info.value.message
    if len(account) > 3:
        assert account not in info.value.message
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    assert not is_valid_account_id(account)


@pytest.mark.parametrize("value", [None, 7, b"alice", ["alice"]])
def test_non_strings_are_invalid(value: object) -> None:
    with pytest.raises(InvalidAccountId):
        check_account_id(value)


@pytest.mark.parametrize("account", ["a/b", "", "é", "A" * 129])
def test_the_client_refuses_before_sending_anything(account: str) -> None:
    # Port 1 on loopback: any request would fail with VaultUnreachable, not this.
    with pytest.raises(InvalidAccountId):
        VaultClient("http://127.0.0.1:1", account, "srv1_token")


def test_the_vaults_answer_maps_to_the_same_error() -> None:
    err = _error(400, {"error": "invalid_account", "message": "that account id contains '/'"})
    assert isinstance(err, InvalidAccountId) and "'/'" in err.message


def test_standalone_accounts_follow_the_rule(tmp_path: Path) -> None:
    from strongroom.vault.store_sqlite import SqliteStore

    auth = TokenAuth(SqliteStore(tmp_path / "v.db"))
    for bad in BAD:
        with pytest.raises(InvalidAccountId):
            auth.create_account(bad)
    assert auth.account(auth.create_account("auth0|5f1c2a")) == "auth0|5f1c2a"


def test_a_jwt_whose_subject_is_no_account_id_proves_nothing() -> None:
    sk = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    pem = sk.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    auth = JwtAuth(pem, issuer="i", audience="a", clock=Clock(1_800_000_000))

    def token(sub: str) -> str:
        return jwt.encode({"sub": sub, "iss": "i", "aud": "a", "exp": 1_800_000_300}, sk,
                          algorithm="EdDSA")

    assert auth.account(token("alice@example.org")) == "alice@example.org"
    for bad in ("a/b", "élodie", "A" * 129, " alice"):
        assert auth.account(token(bad)) is None


def test_the_vault_answers_400_invalid_account_not_404(live: tuple[LiveVault, TokenAuth]
                                                       ) -> None:
    server, auth = live
    token = auth.create_account("alice")
    headers = {"authorization": f"Bearer {token}"}
    for path in ("a%2Fb/record", "a/b/record", "a/b/login/start", "%C3%A9lodie/record",
                 "A" * 129 + "/record", "%20alice/head"):
        method = "POST" if path.endswith("start") else "GET"
        r = httpx.request(method, f"{server.url}/v1/accounts/{path}", headers=headers,
                          json={} if method == "POST" else None)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.json()["error"] == "invalid_account", path
    # Valid ids keep their old answers; an unknown endpoint is still 404.
    assert httpx.get(f"{server.url}/v1/accounts/alice/record", headers=headers).status_code == 200
    assert httpx.get(f"{server.url}/v1/accounts/alice/nothing", headers=headers
                     ).status_code == 404
    assert httpx.get(f"{server.url}/v1/accounts/bob/record", headers=headers).status_code == 403


def test_cli_account_create_refuses_with_exit_2(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "strongroom.cli.main", "vault", "account",
                          "create", "a/b", "--db", str(tmp_path / "v.db")],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "strongroom: error:" in out.stderr and "contains '/'" in out.stderr
    assert "Traceback" not in out.stderr


def test_whoami_needs_no_account_and_checks_the_answer(live: tuple[LiveVault, TokenAuth]) -> None:
    server, auth = live
    token = auth.create_account("carol@example.org")
    with VaultClient(server.url, None, token) as probe:
        assert probe.whoami() == "carol@example.org"
        with pytest.raises(UsageError, match="no account"):
            probe.status()
    # An account stored before the rule (straight into the store) is named, then refused.
    from strongroom.vault.auth import hash_token

    auth.store.put_account("old name", hash_token("srv1_" + "x" * 43))
    with VaultClient(server.url, None, "srv1_" + "x" * 43) as probe, \
            pytest.raises(InvalidAccountId, match="not allowed"):
        probe.whoami()
