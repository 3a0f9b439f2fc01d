"""The CLI over a 2-of-3 realm set (issue 15): ``--vault`` three times with
``--threshold 2``, one token file per realm, ``vault status`` per realm."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .realm_helpers import realm_set


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
