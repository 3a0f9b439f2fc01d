"""The device's directories and key files: 0700/0600 whatever the umask, refused when not private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cli_harness import Invoke


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.usefixtures("umask_000")
def test_init_under_umask_000_makes_private_dirs_and_files(invoke: Invoke, isolated_env: Path,
                                                           tmp_path: Path) -> None:
    config = isolated_env / "nested"  # two levels are missing: both are created 0700
    env = {"STRONGROOM_CONFIG_DIR": str(config)}
    run = invoke("--repo", tmp_path / "repo", "--key-file", tmp_path / "k.key", "init", env=env)
    assert run.code == 0, run.err
    (key,) = (config / "keys").iterdir()
    assert _mode(isolated_env) == _mode(config) == _mode(config / "keys") == 0o700
    assert _mode(key) == 0o600 and _mode(tmp_path / "k.key") == 0o600
    assert sorted(os.listdir(config / "keys")) == [key.name]  # no temporary file left


def _init(invoke: Invoke, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    assert invoke("--repo", repo, "init").code == 0
    return repo


@pytest.mark.parametrize("which", ["config", "keys"])
@pytest.mark.parametrize("mode", [0o777, 0o775])
def test_stored_key_in_a_directory_others_can_write_is_refused(
        invoke: Invoke, isolated_env: Path, tmp_path: Path, which: str, mode: int) -> None:
    repo = _init(invoke, tmp_path)
    unsafe = isolated_env if which == "config" else isolated_env / "keys"
    os.chmod(unsafe, mode)
    # Another local user could have planted this key: it is not used silently.
    run = invoke("--repo", repo, "snapshots")
    assert run.code == 2
    assert f"strongroom: error: {unsafe} is writable by other users" in run.err
    assert f"strongroom: hint: check its contents, then: chmod 700 {unsafe}" in run.err
    assert "Traceback" not in run.err
    os.chmod(unsafe, 0o700)
    assert invoke("--repo", repo, "snapshots").code == 0


def test_config_dir_that_is_a_link_is_refused(invoke: Invoke, isolated_env: Path,
                                              tmp_path: Path) -> None:
    repo = _init(invoke, tmp_path)
    moved = tmp_path / "real-config"
    isolated_env.rename(moved)
    isolated_env.symlink_to(moved)
    run = invoke("--repo", repo, "key", "remember", "--key-file", next((moved / "keys").iterdir()))
    assert run.code == 2 and "is a symbolic link" in run.err, run.err
    run = invoke("--repo", repo, "snapshots")
    assert run.code == 2 and f"{isolated_env} is a symbolic link" in run.err


def test_init_in_an_unsafe_config_dir_warns_and_stores_nothing(invoke: Invoke, isolated_env: Path,
                                                                tmp_path: Path) -> None:
    isolated_env.mkdir()
    os.chmod(isolated_env, 0o777)
    run = invoke("--repo", tmp_path / "repo", "init")
    assert run.code == 0
    assert "could not keep the key on this device" in run.err
    assert "writable by other users" in run.err
    assert os.listdir(isolated_env) == []


def test_trusted_vaults_list_is_private_and_refused_when_others_can_write(tmp_path: Path) -> None:
    """A vault URL planted by another local user would receive the account's token."""
    from strongroom.cli.context import AppContext
    from strongroom.cli.vault_support import _remember_vault, _trusted_vaults
    from strongroom.errors import LocalSecretsUnsafe

    app = AppContext(env={"STRONGROOM_CONFIG_DIR": str(tmp_path / "cfg")})
    _remember_vault(app, "http://127.0.0.1:8443")
    _remember_vault(app, "http://127.0.0.1:8443/")  # the same URL once
    listed = tmp_path / "cfg" / "trusted-vaults"
    assert listed.read_text() == "http://127.0.0.1:8443\n"
    assert stat.S_IMODE(listed.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cfg").stat().st_mode) == 0o700
    os.chmod(tmp_path / "cfg", 0o777)
    with pytest.raises(LocalSecretsUnsafe):
        _trusted_vaults(app)
