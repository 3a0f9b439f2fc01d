"""Credentials that expire: a token provider in the client, a JWKS file of rotating keys in the vault."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.client.vault_client import VaultClient
from strongroom.errors import InvalidLogin, UsageError, VaultAuthError
from strongroom.vault.app import create_app
from strongroom.vault.auth import JwksFile, JwtAuth
from strongroom.vault.core import Vault
from strongroom.vault.server import VaultSettings, open_auth

from .conftest import Clock, LiveVault
from .helpers import ke1_for, register

ISS, AUD = "chat-auth", "strongroom-vault"
ED = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
ED2 = Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
EC = generate_private_key(SECP256R1())


def _jwk(sk: Any, kid: str) -> dict[str, Any]:
    alg = "EdDSA" if isinstance(sk, Ed25519PrivateKey) else "ES256"
    algo = jwt.get_algorithm_by_name(alg)
    return {**json.loads(algo.to_jwk(sk.public_key())), "kid": kid, "use": "sig"}


def _write_jwks(path: Path, *keys: dict[str, Any]) -> None:
    """Rotate as an auth service should: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": list(keys)}))
    os.replace(tmp, path)


def _token(sk: Any, kid: str | None, now: float, sub: str = "alice", life: int = 300) -> str:
    alg = "EdDSA" if isinstance(sk, Ed25519PrivateKey) else "ES256"
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode({"sub": sub, "iss": ISS, "aud": AUD, "exp": int(now) + life,
                       "iat": int(now)}, sk, algorithm=alg, headers=headers)


# -- the vault: several keys by kid, reloaded without a restart ------------------------------

def test_jwks_chooses_the_key_by_kid(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    _write_jwks(path, _jwk(ED, "ed-1"), _jwk(EC, "ec-1"))
    clock = Clock(1_800_000_000)
    auth = JwtAuth(JwksFile(path), issuer=ISS, audience=AUD, clock=clock)
    assert auth.account(_token(ED, "ed-1", clock.now)) == "alice"
    assert auth.account(_token(EC, "ec-1", clock.now, sub="bob")) == "bob"
    assert auth.account(_token(ED, None, clock.now)) is None          # no kid: which key?
    assert auth.account(_token(ED, "nope", clock.now)) is None        # unknown kid
    assert auth.account(_token(ED, "ec-1", clock.now)) is None        # another key's kid
    assert auth.account(_token(ED2, "ed-1", clock.now)) is None       # not the listed key
    assert auth.account(_token(ED, "ed-1", clock.now - 3600)) is None  # expired
    assert auth.account("garbage") is None


def test_rotation_takes_effect_without_a_restart(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "jwks.json"
    _write_jwks(path, _jwk(ED, "2026-01"))
    clock = Clock(1_800_000_000)
    keys = JwksFile(path)
    auth = JwtAuth(keys, issuer=ISS, audience=AUD, clock=clock)
    old, new = _token(ED, "2026-01", clock.now), _token(ED2, "2026-02", clock.now)
    assert (auth.account(old), auth.account(new)) == ("alice", None)
    # Overlap: the new key is published before tokens are signed with it.
    _write_jwks(path, _jwk(ED, "2026-01"), _jwk(ED2, "2026-02"))
    assert (auth.account(old), auth.account(new)) == ("alice", "alice")
    # The old key is withdrawn: its tokens stop working at once.
    _write_jwks(path, _jwk(ED2, "2026-02"))
    assert (auth.account(old), auth.account(new)) == (None, "alice")
    assert keys.kids() == ["2026-02"]
    # A broken rewrite keeps the keys in force (and says so), a removed file too.
    with caplog.at_level(logging.ERROR, logger="strongroom.vault.auth"):
        path.write_text('{"keys": [')
        assert auth.account(new) == "alice"
    assert "not usable" in caplog.text and "keeping the 1 keys" in caplog.text
    path.unlink()
    assert auth.account(new) == "alice"
    _write_jwks(path, _jwk(ED, "2026-03"))
    assert auth.account(_token(ED, "2026-03", clock.now)) == "alice"
    assert auth.account(new) is None


@pytest.mark.parametrize(("doc", "why"), [
    ("not json", "not JSON"),
    ({"keys": []}, "1 to 64"),
    ({"nokeys": 1}, "1 to 64"),
    ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}, "no kid"),
    ({"keys": ["dup", "dup"]}, "dup"),
    ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}, "private or symmetric"),
    ({"keys": ["private"]}, "private or symmetric"),
    ({"keys": ["enc"]}, "not a signing key"),
    ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "!!", "kid": "bad"}]}, "key 'bad'"),
])
def test_an_unusable_jwks_file_is_refused_at_start(tmp_path: Path, doc: Any, why: str) -> None:
    path = tmp_path / "jwks.json"
    if isinstance(doc, dict) and doc.get("keys") == ["dup", "dup"]:
        doc = {"keys": [_jwk(ED, "dup"), _jwk(ED2, "dup")]}
    elif isinstance(doc, dict) and doc.get("keys") == ["private"]:
        private = json.loads(jwt.get_algorithm_by_name("EdDSA").to_jwk(ED))
        doc = {"keys": [{**private, "kid": "leaked"}]}
    elif isinstance(doc, dict) and doc.get("keys") == ["enc"]:
        doc = {"keys": [{**_jwk(ED, "e"), "use": "enc"}]}
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(UsageError, match=why):
        JwksFile(path)
    with pytest.raises(UsageError):
        JwksFile(tmp_path / "missing.json")


def test_settings_take_one_key_source(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    _write_jwks(path, _jwk(ED, "k"))
    base = {"database": str(tmp_path / "db"), "secrets": str(tmp_path / "s"), "auth": "jwt",
            "jwt_issuer": ISS, "jwt_audience": AUD}
    auth = open_auth(VaultSettings(**base, jwt_jwks=str(path)), None)  # type: ignore[arg-type]
    assert isinstance(auth, JwtAuth) and isinstance(auth.public_key, JwksFile)
    pem = tmp_path / "k.pem"
    pem.write_bytes(b"x")
    for extra in ({}, {"jwt_jwks": str(path), "jwt_public_key": str(pem)}):
        with pytest.raises(UsageError, match="either --jwt-public-key or --jwt-jwks"):
            open_auth(VaultSettings(**base, **extra), None)  # type: ignore[arg-type]


@pytest.mark.vault
def test_vault_serve_reloads_its_jwks_file(tmp_path: Path) -> None:
    from .conftest import VaultProcess

    path = tmp_path / "jwks.json"
    _write_jwks(path, _jwk(ED, "one"))
    extra = ("--auth", "jwt", "--jwt-jwks", str(path), "--jwt-issuer", ISS, "--jwt-audience", AUD)
    with VaultProcess(tmp_path, extra=extra) as vp:
        def who(token: str) -> int:
            return httpx.get(f"{vp.url}/v1/whoami",
                             headers={"authorization": f"Bearer {token}"}).status_code

        now = time.time()
        assert who(_token(ED, "one", now)) == 200
        assert who(_token(EC, "two", now)) == 401
        _write_jwks(path, _jwk(EC, "two"))
        assert who(_token(EC, "two", now)) == 200
        assert who(_token(ED, "one", now)) == 401
        assert vp.proc.poll() is None  # type: ignore[attr-defined]  # same process throughout


# -- the client: a token provider, refreshed once on 401 -------------------------------------

class Provider:
    """Hands out tokens from a list (the last one again when the list runs out)."""

    def __init__(self, *tokens: str) -> None:
        self.tokens, self.calls = list(tokens), 0

    def __call__(self) -> str:
        self.calls += 1
        return self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]


@pytest.fixture
def jwt_vault(vault: Vault, clock: Clock) -> Iterator[str]:
    """A real HTTP vault (uvicorn) verifying EdDSA JWTs against the test's clock."""
    pem = ED.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    with LiveVault(create_app(vault, JwtAuth(pem, issuer=ISS, audience=AUD, clock=clock))) as s:
        yield s.url


def test_an_expired_token_is_refreshed_once(jwt_vault: str, clock: Clock) -> None:
    provider = Provider(_token(ED, None, clock.now - 3600), _token(ED, None, clock.now))
    with VaultClient(jwt_vault, "alice", provider) as client:
        assert client.status()["exists"] is False
        assert provider.calls == 2
        assert client.status()["exists"] is False  # the fresh token is kept
        assert provider.calls == 2


def test_a_token_that_expires_between_calls_is_replaced(jwt_vault: str, clock: Clock) -> None:
    provider = Provider(_token(ED, None, clock.now, life=60), _token(ED, None, clock.now + 600))
    with VaultClient(jwt_vault, "alice", provider) as client:
        assert client.head() == (0, None) and provider.calls == 1
        clock.now += 600  # the first token is now long expired
        assert client.head() == (0, None) and provider.calls == 2


def test_a_second_401_is_an_auth_error(jwt_vault: str, clock: Clock) -> None:
    provider = Provider(_token(ED, None, clock.now - 3600), _token(ED, None, clock.now - 1800))
    with VaultClient(jwt_vault, "alice", provider) as client, pytest.raises(VaultAuthError):
        client.status()
    assert provider.calls == 2


def test_the_same_refused_token_again_is_not_retried(jwt_vault: str, clock: Clock) -> None:
    provider = Provider(_token(ED, None, clock.now - 3600))
    with (VaultClient(jwt_vault, "alice", provider) as client,
          pytest.raises(VaultAuthError, match="same one again")):
        client.status()
    assert provider.calls == 2


def test_a_static_token_is_never_refreshed(jwt_vault: str, clock: Clock) -> None:
    with (VaultClient(jwt_vault, "alice", _token(ED, None, clock.now - 3600)) as client,
          pytest.raises(VaultAuthError)):
        client.status()


def test_a_failing_provider_is_an_auth_error_without_its_message(jwt_vault: str) -> None:
    def provider() -> str:
        raise RuntimeError("token-secret-123")

    with (VaultClient(jwt_vault, "alice", provider) as client,
          pytest.raises(VaultAuthError) as info):
        client.status()
    assert "RuntimeError" in info.value.message and "token-secret-123" not in info.value.message
    with (VaultClient(jwt_vault, "alice", lambda: "") as client,
          pytest.raises(VaultAuthError, match="no token")):
        client.status()
    with (VaultClient(jwt_vault, "alice", lambda: "abc\r\nX-Injected: 1") as client,
          pytest.raises(VaultAuthError, match="not a token")):
        client.status()


def test_a_wrong_password_never_calls_the_provider_again(jwt_vault: str, vault: Vault,
                                                         clock: Clock) -> None:
    register(vault, "alice", b"right password")
    provider = Provider(_token(ED, None, clock.now))
    with VaultClient(jwt_vault, "alice", provider) as client:
        ke1, _state = ke1_for(b"wrong password")
        answer = client.login_start(ke1)
        with pytest.raises(InvalidLogin):
            client.login_finish(answer.session_id, bytes(64))
    assert provider.calls == 1
