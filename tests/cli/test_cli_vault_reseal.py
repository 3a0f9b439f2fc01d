"""``strongroom vault reseal``: rotate the vault's root without changing its secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import Invoke

from strongroom.errors import UsageError
from strongroom.vault.keystore import create_secrets, load_secrets, software_keystore_for

OLD, NEW = "old root passphrase", "new root passphrase"
KDF = {"memory_kib": 256, "iterations": 1, "lanes": 1}


@pytest.fixture
def current(tmp_path: Path) -> Path:
    path = tmp_path / "vault-secrets.json"
    create_secrets(path, software_keystore_for(path, OLD, **KDF))
    return path


def test_reseal_moves_the_same_secrets_under_a_new_passphrase(invoke: Invoke, current: Path,
                                                              tmp_path: Path) -> None:
    before = current.read_bytes()
    dest = tmp_path / "vault-secrets.new.json"
    run = invoke("vault", "reseal", "--secrets", current, "--to", dest, "--kdf-memory-kib", "256",
                 env={"STRONGROOM_VAULT_PASSPHRASE": OLD, "STRONGROOM_VAULT_NEW_PASSPHRASE": NEW})
    assert run.code == 0, run.err
    assert "untouched" in run.err and OLD not in run.err + run.out and NEW not in run.err + run.out
    assert current.read_bytes() == before
    old = load_secrets(current, software_keystore_for(current, OLD))
    new = load_secrets(dest, software_keystore_for(dest, NEW))
    assert new.setup.to_bytes() == old.setup.to_bytes() and new.record_key == old.record_key
    with pytest.raises(UsageError):
        load_secrets(dest, software_keystore_for(dest, OLD))  # the old root does not open it


def test_reseal_refuses_an_existing_target_and_a_wrong_current_root(invoke: Invoke, current: Path,
                                                                    tmp_path: Path) -> None:
    dest = tmp_path / "taken.json"
    dest.write_text("keep me")
    env = {"STRONGROOM_VAULT_PASSPHRASE": OLD, "STRONGROOM_VAULT_NEW_PASSPHRASE": NEW}
    run = invoke("vault", "reseal", "--secrets", current, "--to", dest, env=env)
    assert run.code == 2 and "refusing to overwrite" in run.err
    assert dest.read_text() == "keep me"
    run = invoke("vault", "reseal", "--secrets", current, "--to", tmp_path / "n.json",
                 env={**env, "STRONGROOM_VAULT_PASSPHRASE": "not the passphrase"})
    assert run.code != 0 and "Traceback" not in run.err and not (tmp_path / "n.json").exists()


def test_reseal_dry_run_and_missing_new_passphrase_write_nothing(invoke: Invoke, current: Path,
                                                                tmp_path: Path) -> None:
    dest = tmp_path / "new.json"
    run = invoke("vault", "reseal", "--secrets", current, "--to", dest, "--dry-run",
                 env={"STRONGROOM_VAULT_PASSPHRASE": OLD, "STRONGROOM_VAULT_NEW_PASSPHRASE": NEW})
    assert run.code == 0 and "would write" in run.err and not dest.exists()
    run = invoke("vault", "reseal", "--secrets", current, "--to", dest,
                 env={"STRONGROOM_VAULT_PASSPHRASE": OLD, "STRONGROOM_VAULT_NEW_PASSPHRASE": ""})
    assert run.code == 2 and "STRONGROOM_VAULT_NEW_PASSPHRASE" in run.err and not dest.exists()
