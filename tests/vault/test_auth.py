"""Account authentication: standalone tokens and the chat app's JWTs."""

from __future__ import annotations

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.vault.app import create_app
from strongroom.vault.auth import JwtAuth, TokenAuth, hash_token
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
    assert all(x.startswith(b"strongroom/v1/vault/") for x in labels.ALL_LABELS)


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
