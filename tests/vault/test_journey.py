"""The whole journey: enable with a password, back up, lose the device, restore with the password."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest

from strongroom.api import BackupKey, Repository
from strongroom.client import flows
from strongroom.client.vault_client import VaultClient
from strongroom.storage.registry import open_backend

from .conftest import SMALL_BOUNDS, SMALL_KSF, VaultProcess


def _sample(root: Path) -> Path:
    src = root / "chats"
    (src / "media").mkdir(parents=True)
    (src / "msgstore.db").write_bytes(os.urandom(64 * 1024))
    (src / "media" / "photo.jpg").write_bytes(os.urandom(200 * 1024))
    (src / "notes.txt").write_text("hello\n" * 100)
    return src


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


def _restored(target: Path, src: Path) -> Path:
    """Where a restore put ``src`` (the engine keeps absolute paths under the target)."""
    direct = target / src.name
    return direct if direct.exists() else target / str(src).lstrip("/")


@pytest.mark.vault
def test_library_journey(tmp_path: Path) -> None:
    src = _sample(tmp_path)
    with VaultProcess(tmp_path) as vault:
        token = vault.create_account("alice")
        # Device 1: create, enable with a password, back up.
        key = BackupKey.generate()
        with open_backend(str(tmp_path / "repo"), create=True) as backend:
            Repository.create(backend, key).close()
            with VaultClient(vault.url, "alice", token) as client:
                flows.enable(backend, key, client, "s3cret pw", ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
            with Repository.open(backend, key) as repo:
                repo.backup([src])
        del key  # the device is lost
        # Device 2: only the repository location, the account token and the password.
        with open_backend(str(tmp_path / "repo")) as backend:
            loc = flows.read_locator(backend)
            assert loc is not None
            with VaultClient(loc.url, loc.account, token) as client:
                key2 = flows.recover(loc, client, "s3cret pw", bounds=SMALL_BOUNDS)
            with Repository.open(backend, key2) as repo:
                repo.restore("latest", tmp_path / "restored")
    assert _same_tree(src, _restored(tmp_path / "restored", src))


@pytest.mark.vault
def test_cli_journey(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from strongroom.cli.context import AppContext
    from strongroom.cli.main import cli

    def run(*args: str, env: dict[str, str]) -> object:
        app = AppContext(stdin_is_tty=lambda: False, env=env)
        return CliRunner().invoke(cli, list(args), obj=app, env=env, catch_exceptions=False)

    src = _sample(tmp_path)
    repo = str(tmp_path / "repo")
    with VaultProcess(tmp_path) as vault:
        token = vault.create_account("alice")
        base = {"STRONGROOM_REPO": repo, "STRONGROOM_VAULT_TOKEN": token, "STRONGROOM_KEYRING": "no"}
        dev1 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev1"), "STRONGROOM_VAULT": vault.url,
                "STRONGROOM_PASSWORD": "correct horse"}
        r = run("init", "--password", env=dev1)
        assert r.exit_code == 0, r.output
        assert "password protection on" in r.stdout
        assert run("backup", str(src), env=dev1).exit_code == 0

        # A new device does not take the vault URL from storage on trust
        # (a provider could rewrite ext/vault.json to collect the token).
        fresh = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev2")}
        untrusted = run("restore", "latest", "--target", str(tmp_path / "nope"),
                        env={**fresh, "STRONGROOM_PASSWORD": "correct horse"})
        assert untrusted.exit_code == 2
        assert "not been told to trust" in untrusted.stderr
        assert not (tmp_path / "nope").exists()

        dev2 = {**fresh, "STRONGROOM_VAULT": vault.url}
        wrong = run("restore", "latest", "--target", str(tmp_path / "nope"),
                    env={**dev2, "STRONGROOM_PASSWORD": "wrong"})
        assert wrong.exit_code == 21
        assert "9 attempts left" in wrong.stderr
        st = run("vault", "status", env=dev2)
        assert st.exit_code == 0 and "9 of 10 attempts left" in st.stdout

        ok = run("restore", "latest", "--target", str(tmp_path / "out"),
                 env={**dev2, "STRONGROOM_PASSWORD": "correct horse"})
        assert ok.exit_code == 0, ok.output
        assert _same_tree(src, _restored(tmp_path / "out", src))

        changed = run("change-password", env={**dev2, "STRONGROOM_PASSWORD": "correct horse",
                                              "STRONGROOM_NEW_PASSWORD": "battery staple"})
        assert changed.exit_code == 0, changed.output
        again = run("snapshots", env={**dev2, "STRONGROOM_PASSWORD": "battery staple"})
        assert again.exit_code == 0, again.output

        off = run("disable", "--password", "--yes",
                  env={**dev2, "STRONGROOM_PASSWORD": "battery staple"})
        assert off.exit_code == 0 and "only the 64-digit key" in off.stderr
        gone = run("snapshots", env={**dev2, "STRONGROOM_PASSWORD": "battery staple"})
        assert gone.exit_code == 2 and "no password set up" in gone.stderr


@pytest.mark.vault
def test_cli_counts_down_warns_and_locks(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from strongroom.cli.context import AppContext
    from strongroom.cli.main import cli

    def run(*args: str, env: dict[str, str]) -> object:
        app = AppContext(stdin_is_tty=lambda: False, env=env)
        return CliRunner().invoke(cli, list(args), obj=app, env=env, catch_exceptions=False)

    with VaultProcess(tmp_path, extra=("--attempt-limit", "3")) as vault:
        token = vault.create_account("bob")
        base = {"STRONGROOM_REPO": str(tmp_path / "repo"), "STRONGROOM_VAULT_TOKEN": token,
                "STRONGROOM_KEYRING": "no", "STRONGROOM_VAULT": vault.url}
        dev1 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "d1"), "STRONGROOM_PASSWORD": "pw"}
        assert run("init", "--password", env=dev1).exit_code == 0
        dev2 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "d2"), "STRONGROOM_PASSWORD": "no"}
        for left in (2, 1):
            r = run("snapshots", env=dev2)
            assert r.exit_code == 21 and f"{left} attempt" in r.stderr
        assert "WARNING: one attempt left" in r.stderr
        # Automation never spends the last attempt unless told to.
        r = run("snapshots", env=dev2)
        assert r.exit_code == 2 and "nothing was spent" in r.stderr
        assert "only ONE password attempt is left" in r.stderr
        r = run("snapshots", env={**dev2, "STRONGROOM_LAST_ATTEMPT": "yes"})
        assert r.exit_code == 22 and "destroyed" in r.stderr
        r = run("snapshots", env={**dev2, "STRONGROOM_PASSWORD": "pw"})
        assert r.exit_code == 22
        assert "permanently" in r.stderr and "64-digit key" in r.stderr
        st = run("vault", "status", env=dev2)
        assert "PERMANENTLY LOCKED" in st.stdout


@pytest.mark.vault
def test_cli_prompts_for_the_password_on_a_terminal(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from strongroom.cli.context import AppContext
    from strongroom.cli.main import cli

    def run(*args: str, env: dict[str, str], tty: bool = False, input: str | None = None) -> object:
        app = AppContext(stdin_is_tty=lambda: tty, env=env)
        return CliRunner().invoke(cli, list(args), obj=app, env=env, input=input,
                                  catch_exceptions=False)

    with VaultProcess(tmp_path) as vault:
        token = vault.create_account("carol")
        base = {"STRONGROOM_REPO": str(tmp_path / "repo"), "STRONGROOM_VAULT_TOKEN": token,
                "STRONGROOM_KEYRING": "no", "STRONGROOM_VAULT": vault.url}
        dev1 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "d1")}
        r = run("init", "--password", env=dev1, tty=True, input="hunter2 pw\nhunter2 pw\n")
        assert r.exit_code == 0, r.output
        dev2 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "d2")}
        r = run("snapshots", env=dev2, tty=True, input="hunter2 pw\n")
        assert r.exit_code == 0, r.output
        assert "Backup password" in r.output and "hunter2" not in r.output
