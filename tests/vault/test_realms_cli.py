"""The CLI over a 2-of-3 realm set (issue 15): ``--vault`` three times with
``--threshold 2``, one token file per realm, ``vault status`` per realm."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from strongroom.vault.realm import realm_key

from .realm_helpers import ACCOUNT, realm_set


def _run(*args: str, env: dict[str, str]) -> Any:
    from click.testing import CliRunner

    from strongroom.cli.context import AppContext
    from strongroom.cli.main import cli

    app = AppContext(stdin_is_tty=lambda: False, env=env)
    return CliRunner().invoke(cli, list(args), obj=app, env=env, catch_exceptions=False)


def test_cli_two_of_three(tmp_path: Path) -> None:
    src = tmp_path / "chats"
    src.mkdir()
    (src / "a.txt").write_text("hello")
    with realm_set(tmp_path, 3, seed=b"cli") as realms:
        opts: list[str] = []
        for i, r in enumerate(realms):
            f = tmp_path / f"token{i}"
            fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, r.token.encode())
            os.close(fd)
            opts += ["--vault", r.url, "--vault-token-file", str(f)]
        base = {"STRONGROOM_REPO": str(tmp_path / "repo"), "STRONGROOM_KEYRING": "no",
                "STRONGROOM_PASSWORD": "correct horse"}
        dev1 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev1")}
        r = _run("init", "--password", *opts, "--threshold", "2", env=dev1)
        assert r.exit_code == 0, r.output
        assert "any 2 of which recover it" in r.stdout
        assert _run("backup", str(src), *opts, env=dev1).exit_code == 0

        dev2 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev2")}
        wrong = _run("snapshots", *opts, env={**dev2, "STRONGROOM_PASSWORD": "wrong"})
        assert wrong.exit_code == 21, wrong.output
        st = _run("vault", "status", *opts, env=dev2)
        assert st.exit_code == 0, st.output
        assert "realm set (2 of 3)" in st.stdout and "9 of 10 attempts left" in st.stdout
        for r in realms:
            assert f"{r.url}: 9 attempts left" in st.stdout
        realms[2].stop()  # one realm down: recovery still works, with a warning
        ok = _run("restore", "latest", "--target", str(tmp_path / "out"), *opts, env=dev2)
        assert ok.exit_code == 0, ok.output
        assert (tmp_path / "out").exists()
        st = _run("vault", "status", *opts, env=dev2)
        assert st.exit_code == 0 and "unavailable" in st.stdout and "10 attempts left" in st.stdout
        bad = _run("vault", "status", *opts, "--threshold", "3", env=dev2)
        assert bad.exit_code == 2 and "threshold 2, not 3" in bad.stderr
        down = _run("change-password", *opts, env={**dev2, "STRONGROOM_NEW_PASSWORD": "new"})
        assert down.exit_code == 23 and "nothing was sent" in down.stderr  # every realm needed
        realms[2].start()
        changed = _run("change-password", *opts, env={**dev2, "STRONGROOM_NEW_PASSWORD": "new"})
        assert changed.exit_code == 0, changed.output
        assert _run("snapshots", *opts, env=dev2).exit_code == 21  # the old password
        new = {**dev2, "STRONGROOM_PASSWORD": "new"}
        assert _run("snapshots", *opts, env=new).exit_code == 0
        off = _run("disable", "--password", "--yes", *opts, env=new)
        assert off.exit_code == 0, off.output
        gone = _run("snapshots", *opts, env=new)
        assert gone.exit_code == 2 and "no password set up" in gone.stderr


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _realm_opts(tmp_path: Path, realms: Any) -> list[str]:
    opts: list[str] = []
    for i, r in enumerate(realms):
        f = tmp_path / f"token{i}"
        if not f.exists():
            fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, r.token.encode())
            os.close(fd)
        opts += ["--vault", r.url, "--vault-token-file", str(f)]
    return opts


def test_cli_pins_each_realms_key(tmp_path: Path) -> None:
    """docs/spec/cli.md §2: ``--vault-key`` once per ``--vault``; a realm presenting
    another key stops enable before anything is sent (exit 24), and a locator naming
    another key for a pinned realm stops recovery before any guess (exit 24)."""
    with realm_set(tmp_path, 3, seed=b"cli-pins") as realms:
        opts = _realm_opts(tmp_path, realms)
        keys = [_b64(r.vault.server_public_key) for r in realms]
        pinned = [x for k in keys for x in ("--vault-key", k)]
        wrong = [*pinned[:-1], _b64(realms[0].vault.server_public_key)]  # realm 3: realm 1's
        base = {"STRONGROOM_REPO": str(tmp_path / "repo"), "STRONGROOM_KEYRING": "no",
                "STRONGROOM_PASSWORD": "correct horse",
                "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev1")}
        assert _run("init", *opts, env=base).exit_code == 0
        impostor = _run("enable", "--password", *opts, *wrong, env=base)
        assert impostor.exit_code == 24, impostor.output
        assert f"the realm at {realms[2].url} presents another public key" in impostor.stderr
        assert "may be an impostor" in impostor.stderr
        assert not (tmp_path / "repo" / "ext" / "vault.json").exists()  # nothing enabled
        for r in realms:  # nothing registered anywhere
            assert all("\x1e" not in name for name, _s, _u in r.vault.store.list_accounts())
        count = _run("enable", "--password", *opts, *pinned[:2], env=base)
        assert count.exit_code == 2 and "1 --vault-key for 3 realms" in count.stderr
        bad = _run("enable", "--password", *opts, *pinned[:-1], "not-a-key", env=base)
        assert bad.exit_code == 2 and "realm 3's 32-byte public key" in bad.stderr
        ok = _run("enable", "--password", *opts, *pinned, env=base)
        assert ok.exit_code == 0, ok.output
        dev2 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev2")}
        assert _run("snapshots", *opts, *pinned, env=dev2).exit_code == 0
        swapped = _run("snapshots", *opts, *wrong, env=dev2)
        assert swapped.exit_code == 24, swapped.output
        assert "another public key than the one configured; nothing was sent" in swapped.stderr
        st = _run("vault", "status", *opts, env=dev2)
        for r in realms:  # no guess was spent
            assert f"{r.url}: 10 attempts left" in st.stdout


def test_cli_one_vault_key_still_pins_one_vault(tmp_path: Path) -> None:
    """``--vault-key`` (and ``STRONGROOM_VAULT_KEY``) once, with one ``--vault``: as before."""
    with realm_set(tmp_path, 2, seed=b"cli-one") as (vault, other):
        opts = _realm_opts(tmp_path, [vault])
        base = {"STRONGROOM_REPO": str(tmp_path / "repo"), "STRONGROOM_KEYRING": "no",
                "STRONGROOM_PASSWORD": "correct horse",
                "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev1")}
        assert _run("init", *opts, env=base).exit_code == 0
        wrong = _run("enable", "--password", *opts, "--vault-key",
                     _b64(other.vault.server_public_key), env=base)
        assert wrong.exit_code == 24, wrong.output
        two = _run("enable", "--password", *opts, "--vault-key", "a", "--vault-key", "b",
                   env=base)
        assert two.exit_code == 2 and "several --vault-key for one vault" in two.stderr
        ok = _run("enable", "--password", *opts,
                  env={**base, "STRONGROOM_VAULT_KEY": _b64(vault.vault.server_public_key)})
        assert ok.exit_code == 0, ok.output


def test_cli_vault_move_from_one_vault_to_a_realm_set_and_between_sets(tmp_path: Path) -> None:
    """docs/spec/cli.md: ``vault move`` (dry run, progress, errors), over vaults served on
    loopback as in the test above: one vault → 2-of-3 set → another 2-of-3 set."""
    from strongroom.client import flows
    from strongroom.realms.locator import read_realm_locator
    from strongroom.storage.local import LocalBackend

    src = tmp_path / "chats"
    src.mkdir()
    (src / "a.txt").write_text("hello")
    with realm_set(tmp_path, 4, seed=b"cli-move") as (single, *realms):
        (tmp_path / "v").mkdir()
        one = _realm_opts(tmp_path / "v", [single])
        tset = _realm_opts(tmp_path, realms)
        base = {"STRONGROOM_REPO": str(tmp_path / "repo"), "STRONGROOM_KEYRING": "no",
                "STRONGROOM_PASSWORD": "correct horse",
                "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev1")}
        nopw = _run("init", env={**base, "STRONGROOM_REPO": str(tmp_path / "plain")})
        assert nopw.exit_code == 0
        none = _run("vault", "move", *tset, env={**base, "STRONGROOM_REPO": str(tmp_path / "plain")})
        assert none.exit_code == 2 and "no password set up" in none.stderr
        assert _run("init", "--password", *one, env=base).exit_code == 0
        assert _run("backup", str(src), *one, env=base).exit_code == 0
        backend = LocalBackend(str(tmp_path / "repo"))
        old = flows.read_locator(backend)
        assert old is not None
        from_old = ["--from-token-file", str(tmp_path / "v" / "token0")]
        lone = _run("vault", "move", *tset[:4], env=base)
        assert lone.exit_code == 2 and "at least twice" in lone.stderr
        which = _run("vault", "move", *tset, env=base)
        assert which.exit_code == 2 and "--from-token-file" in which.stderr
        dry = _run("vault", "move", *tset, "--threshold", "2", *from_old, "--dry-run", env=base)
        assert dry.exit_code == 0, dry.output
        assert "would move the password protection from vault " + single.url in dry.stdout
        assert "nothing was written" in dry.stdout
        assert flows.read_locator(backend) == old  # a dry run writes nothing
        realms[1].stop()
        down = _run("vault", "move", *tset, *from_old, env=base)
        assert down.exit_code == 23, down.output
        assert realms[1].url in down.stderr
        assert flows.read_locator(backend) == old
        realms[1].start()
        moved = _run("vault", "move", *tset, "--threshold", "2", *from_old, env=base)
        assert moved.exit_code == 0, moved.output
        assert "moved the password protection from vault " + single.url in moved.stdout
        for step in ("registered the key in a new slot on 3 realms", "wrote the new locator",
                     "deleted the old slot"):
            assert step in moved.stderr
        assert single.vault.status(ACCOUNT, slot=old.slot).exists is False
        loc = read_realm_locator(backend)
        assert loc is not None and [r.url for r in loc.realms] == [r.url for r in realms]
        dev2 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev2")}
        ok = _run("restore", "latest", "--target", str(tmp_path / "out"), *tset, env=dev2)
        assert ok.exit_code == 0, ok.output
        assert [f.read_text() for f in (tmp_path / "out").rglob("a.txt")] == ["hello"]
        same = _run("vault", "move", *tset, env=base)
        assert same.exit_code == 2 and "already protected by exactly this realm set" in same.stderr
        # Between realm sets: to the single vault and the first two realms, with the
        # current set's token files given per realm.
        nset = _realm_opts(tmp_path / "v", [single]) + tset[:8]
        from_set = [x for i in range(3) for x in ("--from-token-file",
                                                   str(tmp_path / f"token{i}"))]
        again = _run("vault", "move", *nset, *from_set, "--json", env=base)
        assert again.exit_code == 0, again.output
        assert '"moved": true' in again.stdout
        loc2 = read_realm_locator(backend)
        assert loc2 is not None and loc2.slot != loc.slot
        assert [r.url for r in loc2.realms] == [single.url, realms[0].url, realms[1].url]
        assert realms[2].vault.store.get(realm_key(ACCOUNT, loc.slot)) is None  # old set gone
        dev3 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev3")}
        assert _run("snapshots", *nset, env=dev3).exit_code == 0


def test_cli_a_deleted_realm_locator_is_a_rollback_on_a_device_that_saw_password_mode(
        tmp_path: Path) -> None:
    """The realm-set twin of test_rollback's deleted-locator test: a provider that hides the
    newest snapshot and deletes ``ext/vault.json`` does not turn the head guard off on a
    device that saw the repository in password mode (exit 17, nothing restored)."""
    import json

    src = tmp_path / "chats"
    src.mkdir()
    with realm_set(tmp_path, 3, seed=b"cli-gone") as realms:
        opts = _realm_opts(tmp_path, realms)
        repo = tmp_path / "repo"
        dev1 = {"STRONGROOM_REPO": str(repo), "STRONGROOM_KEYRING": "no",
                "STRONGROOM_PASSWORD": "correct horse",
                "STRONGROOM_CONFIG_DIR": str(tmp_path / "dev1")}
        assert _run("init", "--password", *opts, "--threshold", "2", env=dev1).exit_code == 0
        for i in range(2):
            (src / "msgstore.db").write_bytes(b"chat %d\n" % i * 300)
            r = _run("--json", "backup", str(src), *opts, env=dev1)
            assert r.exit_code == 0, r.output
        newest = json.loads(r.stdout)["snapshot_id"]
        (repo / "snapshots" / newest).rename(tmp_path / "hidden")
        (repo / "ext" / "vault.json").unlink()
        for args in (("restore", "latest", "--target", str(tmp_path / "out")), ("snapshots",)):
            r = _run(*args, *opts, env=dev1)
            assert r.exit_code == 17, (args, r.output)
            assert "vault locator (ext/vault.json) is gone" in r.stderr
        assert not (tmp_path / "out").exists()
