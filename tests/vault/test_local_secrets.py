"""The vault's secrets file and the device's head counters on disk: 0600, never through a link."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from strongroom.client.rollback import LocalHeads
from strongroom.errors import LocalSecretsUnsafe, UsageError
from strongroom.vault.keystore import create_secrets, load_secrets, software_keystore_for

from .conftest import DetRng


class Vault:
    url, account, slot = "http://127.0.0.1:1", "alice", "s1"


def _keystore(path: Path):  # type: ignore[no-untyped-def]
    return software_keystore_for(path, "passphrase", rng=DetRng(b"k"), memory_kib=256,
                                 iterations=1, lanes=1)


@pytest.mark.usefixtures("umask_000")
def test_first_start_writes_secrets_0600_under_umask_000_and_not_through_tmp_link(
        tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    victim = tmp_path / "elsewhere"
    victim.write_text("victim")
    # The old code wrote `<secrets>.tmp` and followed a link planted there.
    path.with_suffix(".tmp").symlink_to(victim)
    made = create_secrets(path, _keystore(path), rng=DetRng(b"s"))
    assert victim.read_text() == "victim"
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600 and not path.is_symlink()
    assert load_secrets(path, _keystore(path)).record_key == made.record_key
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "secrets.json", "secrets.tmp"]


def test_secrets_are_not_written_through_a_dangling_link(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.symlink_to(tmp_path / "where-the-attacker-reads")
    with pytest.raises(UsageError, match="refusing to overwrite"):
        create_secrets(path, _keystore(tmp_path / "other.json"))
    assert not (tmp_path / "where-the-attacker-reads").exists()


@pytest.mark.usefixtures("umask_000")
def test_head_counter_file_is_0600_in_0700_dirs_under_umask_000(tmp_path: Path) -> None:
    config = tmp_path / "config"
    local = LocalHeads(config / "heads")
    local.save("r1", Vault(), 4)
    assert stat.S_IMODE((config / "heads" / "r1.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((config / "heads").stat().st_mode) == 0o700
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    assert json.loads((config / "heads" / "r1.json").read_text())["counter"] == 4
    assert os.listdir(config / "heads") == ["r1.json"]
    assert local.load("r1", Vault()) == 4


def test_head_counter_link_is_replaced_not_followed(tmp_path: Path) -> None:
    heads = tmp_path / "config" / "heads"
    heads.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("victim")
    (heads / "r1.json").symlink_to(victim)
    LocalHeads(heads).save("r1", Vault(), 2)
    assert victim.read_text() == "victim" and not (heads / "r1.json").is_symlink()


@pytest.mark.parametrize("which", ["config", "heads"])
def test_head_counter_refused_in_a_world_writable_directory(tmp_path: Path, which: str) -> None:
    config = tmp_path / "config"
    (config / "heads").mkdir(parents=True)
    os.chmod(config if which == "config" else config / "heads", 0o777)
    # Another user could delete the file and so reset this device's rollback memory.
    with pytest.raises(LocalSecretsUnsafe, match="writable by other users"):
        LocalHeads(config / "heads").save("r1", Vault(), 3)
    assert os.listdir(config / "heads") == []


def test_head_memory_in_a_directory_others_can_write_is_refused_not_read(tmp_path: Path) -> None:
    """Another local user could lower the counter (or drop the file) to switch the alarm off."""
    heads = tmp_path / "heads"
    local = LocalHeads(heads)
    local.save("r1", Vault(), 5)
    assert local.load("r1", Vault()) == 5 and local.knows("r1")
    heads.chmod(0o777)
    with pytest.raises(LocalSecretsUnsafe):
        local.load("r1", Vault())
    with pytest.raises(LocalSecretsUnsafe):
        local.knows("r1")
