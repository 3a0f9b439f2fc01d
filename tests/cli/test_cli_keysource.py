"""Where the CLI finds the key: key file, device store, env, prompt, in that order."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest
from click.testing import CliRunner

from strongroom.api import BackupKey
from strongroom.cli import keysource
from strongroom.cli.context import AppContext
from strongroom.cli.keysource import KeyRequest, register_key_source, resolve_key
from strongroom.cli.keystore import (
    KEYRING_SERVICE,
    DeviceKeyStore,
    read_key_file,
    write_key_file,
)
from strongroom.errors import InvalidKeyFormat, UsageError
from strongroom.storage.memory import MemoryBackend

REPO_ID = "00112233445566778899aabbccddeeff"
K1 = BackupKey.from_bytes(bytes(range(32)))
K2 = BackupKey.from_bytes(bytes(range(32, 64)))
K3 = BackupKey.from_bytes(bytes(range(64, 96)))


class DictKeyring(keyring.backend.KeyringBackend):
    """A working keyring kept in a dict (keyring ships none that runs headless)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.items[(service, username)]


def _request(env: dict[str, str], *, key_file: str | None = None,
             tty: bool = False) -> KeyRequest:
    app = AppContext(key_file=key_file, env=env, stdin_is_tty=lambda: tty)
    return KeyRequest(app=app, backend=MemoryBackend(), config={"id": REPO_ID})


@pytest.fixture
def env(isolated_env: Path) -> dict[str, str]:
    return {"STRONGROOM_CONFIG_DIR": str(isolated_env), "STRONGROOM_KEYRING": "no"}


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "k.key"
    write_key_file(path, K1, comment="test key")
    return str(path)


def test_key_file_wins_over_device_and_env(env: dict[str, str], key_file: str) -> None:
    DeviceKeyStore.from_environment(env).save(REPO_ID, K2)
    env["STRONGROOM_KEY"] = K3.digits()
    assert resolve_key(_request(env, key_file=key_file)) == K1


def test_device_key_wins_over_env(env: dict[str, str]) -> None:
    DeviceKeyStore.from_environment(env).save(REPO_ID, K2)
    env["STRONGROOM_KEY"] = K3.digits()
    assert resolve_key(_request(env)) == K2


def test_env_key_accepts_dashes_and_case(env: dict[str, str]) -> None:
    env["STRONGROOM_KEY"] = "-".join(K3.digits().upper().split())
    assert resolve_key(_request(env)) == K3


def test_invalid_env_key_is_exit_11_and_not_echoed(env: dict[str, str]) -> None:
    env["STRONGROOM_KEY"] = K3.digits()[:-1] + "g"
    with pytest.raises(InvalidKeyFormat) as info:
        resolve_key(_request(env))
    assert info.value.exit_code == 11
    assert K3.digits()[:20] not in str(info.value)


def test_prompt_on_a_terminal_accepts_any_spacing(env: dict[str, str]) -> None:
    typed = K2.digits().replace(" ", "").upper()
    typed = typed[:10] + "  " + typed[10:30] + "-" + typed[30:]
    with CliRunner().isolation(input=typed + "\n") as (out, err, _):
        assert resolve_key(_request(env, tty=True)) == K2
        shown = out.getvalue() + err.getvalue()
    assert "64-digit backup key" in shown.decode()
    assert typed.encode() not in out.getvalue() + err.getvalue()  # hidden input


def test_no_tty_and_no_source_is_a_usage_error_with_hint(env: dict[str, str]) -> None:
    with pytest.raises(UsageError) as info:
        resolve_key(_request(env, tty=False))
    assert info.value.exit_code == 2
    assert "--key-file" in (info.value.hint or "")


def test_missing_key_file_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="key file not found"):
        resolve_key(_request(env, key_file=str(tmp_path / "absent.key")))


@pytest.fixture
def restore_sources() -> Iterator[None]:
    saved = list(keysource.KEY_SOURCES)
    yield
    keysource.KEY_SOURCES[:] = saved


def test_extension_source_runs_where_registered(env: dict[str, str],
                                                restore_sources: None) -> None:
    seen: list[str] = []

    def vault(request: KeyRequest) -> BackupKey | None:
        seen.append(request.repo_id)
        return K3

    register_key_source("vault", vault, before="environment")
    assert [n for n, _ in keysource.KEY_SOURCES] == \
        ["key-file", "device", "vault", "environment", "prompt"]
    env["STRONGROOM_KEY"] = K1.digits()
    assert resolve_key(_request(env)) == K3
    assert seen == [REPO_ID]
    DeviceKeyStore.from_environment(env).save(REPO_ID, K2)
    assert resolve_key(_request(env)) == K2  # the device key still comes first


def test_key_file_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "new.key"
    write_key_file(path, K1, comment="line one\nline two")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("# line one\n# line two\n")
    assert read_key_file(path) == K1
    with pytest.raises(UsageError, match="already exists"):
        write_key_file(path, K2)
    assert read_key_file(path) == K1


def test_key_file_with_other_text_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("# comment\nnot a key at all\n")
    with pytest.raises(InvalidKeyFormat):
        read_key_file(path)


def test_device_file_store_modes(env: dict[str, str], isolated_env: Path) -> None:
    store = DeviceKeyStore.from_environment(env)
    where = store.save(REPO_ID, K1)
    path = isolated_env / "keys" / f"{REPO_ID}.key"
    assert where == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.load(REPO_ID) == K1
    assert store.save(REPO_ID, K1) == where  # idempotent
    assert store.forget(REPO_ID) is True
    assert store.load(REPO_ID) is None
    assert store.forget(REPO_ID) is False


def test_device_store_refuses_odd_repository_ids(env: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        DeviceKeyStore.from_environment(env).load("../../etc/passwd")


def test_usable_keyring_is_preferred(env: dict[str, str], isolated_env: Path) -> None:
    ring = DictKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(ring)
    try:
        env["STRONGROOM_KEYRING"] = "yes"
        store = DeviceKeyStore.from_environment(env)
        assert store.save(REPO_ID, K2).startswith("the system keyring")
        assert ring.items[(KEYRING_SERVICE, REPO_ID)] == K2.digits()
        assert not (isolated_env / "keys").exists()
        assert resolve_key(_request(env)) == K2
        assert store.forget(REPO_ID) and not ring.items
        # STRONGROOM_KEYRING=no turns it off even though it works.
        env["STRONGROOM_KEYRING"] = "no"
        where = DeviceKeyStore.from_environment(env).save(REPO_ID, K2)
        assert where == str(isolated_env / "keys" / f"{REPO_ID}.key")
        assert not ring.items
    finally:
        keyring.set_keyring(previous)


def test_fail_keyring_means_key_file(env: dict[str, str], isolated_env: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        env["STRONGROOM_KEYRING"] = "yes"
        where = DeviceKeyStore.from_environment(env).save(REPO_ID, K1)
        assert where.endswith(f"{REPO_ID}.key")
        assert os.path.exists(where)
    finally:
        keyring.set_keyring(previous)
