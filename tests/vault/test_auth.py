"""Account authentication: standalone tokens and the chat app's JWTs."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.errors import UsageError
from strongroom.vault.app import create_app
from strongroom.vault.auth import DEFAULT_JWT_MAX_LIFETIME, JwtAuth, TokenAuth, hash_token
from strongroom.vault.core import Vault

from .conftest import Clock, DetRng, LiveVault

NOW = 1_800_000_000


def _keys() -> tuple[Ed25519PrivateKey, bytes]:
    sk = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    pem = sk.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    return sk, pem


def _token(sk: Ed25519PrivateKey, **claims: object) -> str:
    base = {"sub": "alice", "iss": "chat-auth", "aud": "strongroom-vault", "exp": NOW + 300}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, sk, algorithm="EdDSA")


def test_jwt_checks_signature_issuer_audience_expiry() -> None:
    sk, pem = _keys()
    auth = JwtAuth(pem, issuer="chat-auth", audience="strongroom-vault", clock=Clock(NOW))
    assert auth.account(_token(sk)) == "alice"
    assert auth.account(_token(sk, iss="evil")) is None
    assert auth.account(_token(sk, aud="other")) is None
    assert auth.account(_token(sk, exp=NOW - 60)) is None
    assert auth.account(_token(sk, exp=None)) is None
    assert auth.account(_token(Ed25519PrivateKey.from_private_bytes(b"\x08" * 32))) is None
    assert auth.account(_token(sk)[:-3] + "AAA") is None
    assert auth.account("not a jwt") is None
    unsigned = jwt.encode({"sub": "alice", "iss": "chat-auth", "aud": "strongroom-vault",
                           "exp": NOW + 300}, None, algorithm="none")
    assert auth.account(unsigned) is None


def test_jwt_over_http_other_account_is_403(vault: Vault) -> None:
    sk, pem = _keys()
    auth = JwtAuth(pem, issuer="chat-auth", audience="strongroom-vault", clock=Clock(NOW))
    with LiveVault(create_app(vault, auth)) as server:
        ok = httpx.get(f"{server.url}/v1/accounts/alice/record",
                       headers={"authorization": f"Bearer {_token(sk)}"})
        assert ok.status_code == 200 and ok.json()["exists"] is False
        other = httpx.get(f"{server.url}/v1/accounts/bob/record",
                          headers={"authorization": f"Bearer {_token(sk)}"})
        assert other.status_code == 403 and other.json()["error"] == "forbidden"
        expired = httpx.get(f"{server.url}/v1/accounts/alice/record",
                            headers={"authorization": f"Bearer {_token(sk, exp=NOW - 100)}"})
        assert expired.status_code == 401


def test_tokens_are_stored_hashed(vault: Vault) -> None:
    auth = TokenAuth(vault.store)
    token = auth.create_account("alice", DetRng(b"t"))
    assert auth.account(token) == "alice"
    assert vault.store.account_for_token(hash_token(token)) == "alice"
    assert auth.account(token + "x") is None
    new = auth.create_account("alice", DetRng(b"u"))  # re-keying revokes the old token
    assert auth.account(token) is None and auth.account(new) == "alice"


def test_labels_are_distinct() -> None:
    from strongroom.crypto import labels as engine
    from strongroom.vault import labels

    all_labels = list(labels.ALL_LABELS) + list(engine.ALL_LABELS)
    assert len(set(all_labels)) == len(all_labels)
    assert all(x.startswith((b"strongroom/v1/vault/", b"strongroom/v2/vault/",
                                     b"strongroom/v3/vault/")) for x in labels.ALL_LABELS)


@pytest.mark.parametrize("acct", ["", "x" * 129, "a\nb"])
def test_bad_account_ids_refused(vault: Vault, acct: str) -> None:
    from strongroom.errors import UsageError

    with pytest.raises(UsageError):
        vault.status(acct)


def test_reprs_show_no_secrets(secrets, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from strongroom.client.vault_client import VaultClient
    from strongroom.vault.counter import State
    from strongroom.vault.keystore import SoftwareKeystore
    from strongroom.vault.server import VaultSettings
    from strongroom.vault.store import RecordRow, SessionRow

    texts = [
        repr(VaultSettings(database="x", secrets="y", passphrase="PASS-PHRASE", pin="PIN-9876")),
        repr(secrets),
        repr(SoftwareKeystore("PASS-PHRASE", salt=b"\0" * 16, memory_kib=256, iterations=1)),
        repr(RecordRow("a", State.ACTIVE, 0, 10, 1, b"SEALED-BYTES")),
        repr(SessionRow("s", "a", 0.0, 1, b"SEALED-STATE", b"SEALED-BYTES")),
        repr(VaultClient("http://127.0.0.1:1", "a", "srv1_TOKEN-SECRET")),
    ]
    for t in texts:
        for secret in ("PASS-PHRASE", "PIN-9876", "SEALED", "TOKEN-SECRET",
                       secrets.record_key.hex()[:16]):
            assert secret not in t, t


@pytest.mark.vault
def test_vault_serve_in_jwt_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time as _time

    from .conftest import VaultProcess

    sk, pem = _keys()
    (tmp_path / "auth.pem").write_bytes(pem)
    extra = ("--auth", "jwt", "--jwt-public-key", str(tmp_path / "auth.pem"),
             "--jwt-issuer", "chat-auth", "--jwt-audience", "strongroom-vault")
    now = int(_time.time())
    with VaultProcess(tmp_path, extra=extra) as vp:
        good = _token(sk, exp=now + 300)
        r = httpx.get(f"{vp.url}/v1/whoami", headers={"authorization": f"Bearer {good}"})
        assert r.status_code == 200 and r.json() == {"account": "alice"}
        r = httpx.get(f"{vp.url}/v1/accounts/bob/record", headers={"authorization": f"Bearer {good}"})
        assert r.status_code == 403
        stale = _token(sk, exp=now - 3600)
        r = httpx.get(f"{vp.url}/v1/accounts/alice/record", headers={"authorization": f"Bearer {stale}"})
        assert r.status_code == 401


def _raw_token(sk: Ed25519PrivateKey, claims_json: str) -> str:
    """A correctly signed JWT whose claims are exactly ``claims_json`` (NaN and all)."""
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"EdDSA","typ":"JWT"}') + "." + b64(claims_json.encode())
    return signing_input + "." + b64(sk.sign(signing_input.encode()))


def _auth(pem: bytes, **kw: Any) -> JwtAuth:
    return JwtAuth(pem, issuer="chat-auth", audience="strongroom-vault", clock=Clock(NOW), **kw)


BASE = '"sub":"alice","iss":"chat-auth","aud":"strongroom-vault"'


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", f"{NOW + 60}.0",
                                   f"{NOW + 60}.5", f'"{NOW + 60}"', "true", "false", "null",
                                   "[1]", "{}", str(2**63), str(-(2**63)), "1" + "0" * 400])
def test_jwt_times_must_be_finite_integers(claim: str, value: str) -> None:
    sk, pem = _keys()
    times = {"exp": str(NOW + 300), "iat": str(NOW - 10), "nbf": str(NOW - 10)}
    good = _raw_token(sk, "{" + BASE + "".join(f',"{k}":{v}' for k, v in times.items()) + "}")
    assert _auth(pem).account(good) == "alice"  # the same token with integers is accepted
    times[claim] = value
    bad = _raw_token(sk, "{" + BASE + "".join(f',"{k}":{v}' for k, v in times.items()) + "}")
    assert _auth(pem).account(bad) is None


def test_jwt_exp_infinity_never_outlives_the_clock() -> None:
    sk, pem = _keys()
    token = _raw_token(sk, "{" + BASE + ',"exp":Infinity}')
    assert _auth(pem).account(token) is None
    assert JwtAuth(pem, issuer="chat-auth", audience="strongroom-vault",
                   clock=Clock(NOW + 10**9)).account(token) is None


def test_jwt_maximum_lifetime() -> None:
    sk, pem = _keys()
    day = 24 * 3600
    assert _auth(pem).max_lifetime == day == DEFAULT_JWT_MAX_LIFETIME
    # With iat: exp - iat counts, even for a token issued long ago.
    assert _auth(pem).account(_token(sk, iat=NOW - 10, exp=NOW - 10 + day)) == "alice"
    assert _auth(pem).account(_token(sk, iat=NOW - 10, exp=NOW - 10 + day + 1)) is None
    assert _auth(pem).account(_token(sk, iat=NOW - 400 * day, exp=NOW + 60)) is None
    # Without iat: the time left counts.
    assert _auth(pem).account(_token(sk, exp=NOW + day)) == "alice"
    assert _auth(pem).account(_token(sk, exp=NOW + day + 1)) is None
    assert _auth(pem).account(_token(sk, exp=NOW + 10 * 365 * day)) is None
    # Configured.
    short = _auth(pem, max_lifetime=600)
    assert short.account(_token(sk, exp=NOW + 600)) == "alice"
    assert short.account(_token(sk, exp=NOW + 601)) is None
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(UsageError):
            _auth(pem, max_lifetime=bad)


def test_jwt_not_yet_valid_by_the_injected_clock() -> None:
    sk, pem = _keys()
    auth = _auth(pem)  # leeway 30 s
    assert auth.account(_token(sk, nbf=NOW + 30)) == "alice"
    assert auth.account(_token(sk, nbf=NOW + 31)) is None
    assert auth.account(_token(sk, iat=NOW + 30)) == "alice"
    assert auth.account(_token(sk, iat=NOW + 31)) is None
    assert auth.account(_token(sk, exp=NOW - 30)) == "alice"
    assert auth.account(_token(sk, exp=NOW - 31)) is None


def test_jwt_max_lifetime_reaches_the_vault_from_its_settings(tmp_path: Path) -> None:
    from strongroom.cli.cmd_vault import serve
    from strongroom.vault.server import VaultSettings, open_auth

    _sk, pem = _keys()
    key = tmp_path / "issuer.pem"
    key.write_bytes(pem)
    settings = VaultSettings(database=str(tmp_path / "db"), secrets=str(tmp_path / "s"), auth="jwt",
                             jwt_public_key=str(key), jwt_issuer="i", jwt_audience="a",
                             jwt_max_lifetime=900)
    auth = open_auth(settings, None)  # type: ignore[arg-type]  # JWT mode reads no store
    assert isinstance(auth, JwtAuth) and auth.max_lifetime == 900
    assert VaultSettings(database="", secrets="").jwt_max_lifetime == DEFAULT_JWT_MAX_LIFETIME
    (option,) = [p for p in serve.params if p.name == "jwt_max_lifetime"]
    assert option.default == DEFAULT_JWT_MAX_LIFETIME


def test_only_a_check_that_may_wait_leaves_the_event_loop(store: Any) -> None:
    """A local token table and a JWT signature are checked on the event loop; a token
    table on a database server is read from a worker thread (it may wait on the server)."""
    from strongroom.vault.store_sqlite import SqliteStore

    assert TokenAuth(store).may_wait is (not isinstance(store, SqliteStore))
    assert JwtAuth(_keys()[1], issuer="i", audience="a").may_wait is False
