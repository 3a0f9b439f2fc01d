"""Nothing secret rests in plaintext: database dumps, the secrets file, the PKCS#11 root."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from strongroom.errors import UsageError
from strongroom.vault.core import Vault, VaultPolicy
from strongroom.vault.keystore import (
    Pkcs11Keystore,
    SoftwareKeystore,
    create_secrets,
    load_secrets,
    software_keystore_for,
)

from .conftest import DetRng, small_config
from .helpers import register

WRAPPED = b"WRAPPED-K:" + bytes(range(40, 90))


def _dump(vault: Vault, request: pytest.FixtureRequest) -> bytes:
    kind = vault.store.kind  # type: ignore[attr-defined]
    if kind == "sqlite":
        path = Path(vault.store.path)  # type: ignore[attr-defined]
        vault.store.close()
        data = path.read_bytes()
        for extra in ("-wal", "-shm"):
            p = Path(str(path) + extra)
            data += p.read_bytes() if p.exists() else b""
        return data
    server = request.getfixturevalue("pg_server")
    dsn = vault.store.dsn  # type: ignore[attr-defined]
    dbname = dsn.split("dbname=")[1].split()[0]
    out = subprocess.run(
        [str(Path(os.environ.get("STRONGROOM_PG_BIN", "/usr/lib/postgresql/15/bin")) / "pg_dump"),
         "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", dbname],
        check=True, capture_output=True, timeout=120)
    return out.stdout


def _forms(raw: bytes) -> list[bytes]:
    """The bytes and the encodings a dump could show them in."""
    return [raw, raw.hex().encode(), base64.b64encode(raw), raw[:24], raw.hex()[:40].encode()]


def test_dump_holds_neither_wrapped_key_nor_record(vault: Vault,
                                                   request: pytest.FixtureRequest) -> None:
    from strongroom.vault import _opaque as opaque

    rng = DetRng(b"dump")
    req, st = opaque.RegistrationClient.start(b"pw", config=small_config(), rng=rng)
    started = vault.registration_start("alice", req)
    record, _ = opaque.RegistrationClient.finish(st, started.response, config=small_config(),
                                                 rng=rng)
    vault.registration_finish("alice", record, WRAPPED, registration_id=started.registration_id,
                              proof_verifier=bytes(32))
    vault.login_start("alice", opaque.LoginClient.start(b"x", rng=rng)[0])  # a session row too
    dump = _dump(vault, request)
    assert b"alice" in dump  # the dump is real and readable
    for form in _forms(WRAPPED) + _forms(record):
        assert form not in dump


def test_secrets_file_software_keystore(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    ks = software_keystore_for(path, "passphrase", rng=DetRng(b"k"), memory_kib=256, iterations=1,
                               lanes=1)
    made = create_secrets(path, ks, rng=DetRng(b"s"))
    text = path.read_bytes()
    for form in _forms(made.setup.to_bytes()[1:]) + _forms(made.record_key):
        assert form not in text
    again = load_secrets(path, software_keystore_for(path, "passphrase"))
    assert again.setup.to_bytes() == made.setup.to_bytes() and again.record_key == made.record_key
    with pytest.raises(UsageError, match="passphrase"):
        load_secrets(path, software_keystore_for(path, "wrong"))
    with pytest.raises(UsageError, match="refusing to overwrite"):
        create_secrets(path, ks)
    doc = json.loads(text)
    doc["sealed"] = doc["sealed"][:-4] + "AAAA"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError):
        load_secrets(path, software_keystore_for(path, "passphrase"))


SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A SoftHSM2 token of our own; SOFTHSM2_CONF is set before the library loads."""
    if not (Path(SOFTHSM).exists() and shutil.which("softhsm2-util")):
        pytest.skip("SoftHSM2 not installed (apt-get install softhsm2)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "strongroom-test",
                    "--pin", "1234", "--so-pin", "5678"], check=True, capture_output=True,
                   env={**os.environ}, timeout=60)
    return {"module": SOFTHSM, "token": "strongroom-test", "pin": "1234", "conf": str(conf)}


@pytest.mark.softhsm
def test_softhsm_keystore_round_trip(tmp_path: Path, softhsm_token: dict[str, str]) -> None:
    ks = Pkcs11Keystore(softhsm_token["module"], softhsm_token["token"], softhsm_token["pin"],
                        "root-a", create=True)
    assert ks.extractable is False
    path = tmp_path / "secrets.json"
    made = create_secrets(path, ks)
    assert json.loads(path.read_text())["keystore"]["kind"] == "pkcs11"
    for form in _forms(made.setup.to_bytes()[1:]) + _forms(made.record_key):
        assert form not in path.read_bytes()
    reopened = Pkcs11Keystore(softhsm_token["module"], softhsm_token["token"],
                              softhsm_token["pin"], "root-a")
    again = load_secrets(path, reopened)
    reopened.close()
    assert again.setup.to_bytes() == made.setup.to_bytes() and again.record_key == made.record_key
    # Another root key in the same token cannot open it.
    other = Pkcs11Keystore(softhsm_token["module"], softhsm_token["token"], softhsm_token["pin"],
                           "root-b", create=True)
    with pytest.raises(UsageError):
        load_secrets(path, other)
    with pytest.raises(UsageError, match="no key"):
        Pkcs11Keystore(softhsm_token["module"], softhsm_token["token"], softhsm_token["pin"],
                       "absent")
    for k in (ks, other):
        k.close()


@pytest.mark.softhsm
def test_softhsm_wrong_pin(softhsm_token: dict[str, str]) -> None:
    with pytest.raises(UsageError, match="cannot open"):
        Pkcs11Keystore(softhsm_token["module"], softhsm_token["token"], "0000", "root-a")


@pytest.mark.softhsm
def test_vault_on_softhsm_secrets_serves_logins(tmp_path: Path, softhsm_token: dict[str, str],
                                                 store) -> None:  # type: ignore[no-untyped-def]
    ks = Pkcs11Keystore(softhsm_token["module"], softhsm_token["token"], softhsm_token["pin"],
                        "root-v", create=True)
    create_secrets(tmp_path / "s.json", ks)
    secrets = load_secrets(tmp_path / "s.json", ks)
    vault = Vault(store, secrets, small_config(), VaultPolicy(attempt_limit=3))
    register(vault, "alice", b"pw", WRAPPED)
    assert vault.status("alice").exists
    ks.close()


def test_software_keystore_rejects_empty_passphrase() -> None:
    with pytest.raises(UsageError):
        SoftwareKeystore("", salt=b"\0" * 16, memory_kib=256, iterations=1)


@pytest.mark.softhsm
@pytest.mark.vault
def test_vault_serve_with_pkcs11_keystore(tmp_path: Path, softhsm_token: dict[str, str]) -> None:
    from strongroom.client import flows
    from strongroom.client.vault_client import VaultClient
    from strongroom.crypto.keys import BackupKey
    from strongroom.storage.memory import MemoryBackend

    from .conftest import SMALL_BOUNDS, SMALL_KSF, VaultProcess

    env = {"SOFTHSM2_CONF": softhsm_token["conf"], "STRONGROOM_VAULT_PIN": softhsm_token["pin"]}
    extra = ("--keystore", "pkcs11", "--token-label", softhsm_token["token"])
    key = BackupKey.generate()
    with VaultProcess(tmp_path, extra=extra, env=env) as vp:
        token = vp.create_account("alice")
        backend = MemoryBackend()
        with VaultClient(vp.url, "alice", token) as c:
            loc = flows.enable(backend, key, c, "pw", ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
    doc = json.loads(Path(vp.secrets).read_text())
    assert doc["keystore"]["kind"] == "pkcs11"
    # A restarted vault unwraps its secrets through the token and still opens the record.
    with VaultProcess(tmp_path, extra=extra, env=env) as vp2, \
            VaultClient(vp2.url, "alice", token) as c:
        assert flows.recover(loc, c, "pw", bounds=SMALL_BOUNDS) == key
