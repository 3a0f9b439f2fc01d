"""Progress as a user sees it: percentage, time left, files and the current file on
a terminal; JSON status lines with ``--json`` into a pipe; and ``restore --strip``."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from cli_harness import Invoke
from tests.support.terminal import read_until_closed

MODULE = [sys.executable, "-m", "strongroom.cli.main"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(STRONGROOM_CONFIG_DIR=str(tmp_path / "cfg"), STRONGROOM_KEYRING="no",
               COLUMNS="200", **extra)
    return env


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "home" / "olduser" / "chats"
    (src / "Media").mkdir(parents=True)
    (src / "msgstore.db").write_bytes(os.urandom(3 << 20))
    for i in range(20):
        (src / "Media" / f"IMG-{i:03}.jpg").write_bytes(os.urandom(20_000))
    return src


def test_terminal_shows_percentage_time_left_files_and_current_file(tmp_path: Path) -> None:
    src = _source(tmp_path)
    env = _env(tmp_path, STRONGROOM_REPO=str(tmp_path / "repo"))
    init = subprocess.run([*MODULE, "init", "--key-file", str(tmp_path / "k.key")], env=env,
                          capture_output=True, timeout=120, check=False)
    assert init.returncode == 0, init.stderr
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*MODULE, "backup", str(src)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=slave, env=env,
                                start_new_session=True)
        os.close(slave)
        drawn = read_until_closed(master).decode(errors="replace")
        proc.communicate(timeout=120)
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert "scan" in drawn and "backup" in drawn
    assert "100%" in drawn  # the percentage (a scan gave the total)
    assert "21/21 files" in drawn  # files done of files total
    assert "0:00:00" in drawn  # elapsed and time-left columns


def test_terminal_bar_names_the_current_file_and_counts_files() -> None:
    import io
    import time

    from strongroom.cli.progress import TerminalProgress, make_progress

    class Screen(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Screen()
    progress = make_progress(stream=screen)
    assert isinstance(progress, TerminalProgress)
    progress.start("backup", None, "bytes")
    progress.totals(2, 1000)
    progress.item("/home/me/chats/msgstore.db")
    progress.advance(500)
    time.sleep(0.3)  # rich redraws ten times a second
    drawn = screen.getvalue()
    assert "msgstore.db" in drawn and "1/2 files" in drawn and "50%" in drawn
    progress.item("/home/me/chats/" + "x" * 80 + "/long-name.jpg")
    time.sleep(0.3)
    assert "…" in screen.getvalue() and "long-name.jpg" in screen.getvalue()
    progress.finish()


def test_json_progress_lines_on_stderr_and_one_document_on_stdout(tmp_path: Path,
                                                                  invoke: Invoke) -> None:
    src = _source(tmp_path)
    repo, key = tmp_path / "repo", tmp_path / "k.key"
    assert invoke("--repo", repo, "init", "--key-file", key).code == 0
    run = invoke("--repo", repo, "--key-file", key, "--json", "backup", src)
    assert run.code == 0, run.err
    assert run.json()["files"] == 21  # stdout is still exactly one document
    every = [json.loads(line) for line in run.err.splitlines()]
    # Status lines, and warning lines (the test's msgstore.db is not SQLite: not catalogued).
    assert every and all(d["message_type"] in ("status", "warning") for d in every)
    lines = [d for d in every if d["message_type"] == "status"]
    phases = [d["phase"] for d in lines]
    assert phases[0] == "scan" and "backup" in phases
    last = [d for d in lines if d["phase"] == "backup"][-1]
    assert last["finished"] and last["percent"] == 100.0 and last["eta_seconds"] == 0.0
    assert last["files_total"] == 21 and last["total"] == (3 << 20) + 20 * 20_000
    restore = invoke("--repo", repo, "--key-file", key, "--json", "restore", "latest",
                     "--target", tmp_path / "out")
    assert restore.code == 0
    statuses = [json.loads(line) for line in restore.err.splitlines()]
    assert statuses[-1]["phase"] == "restore" and statuses[-1]["percent"] == 100.0
    quiet = invoke("--repo", repo, "--key-file", key, "--json", "--no-progress", "check")
    assert quiet.code == 0 and quiet.err == ""


def test_restore_strip_on_a_new_device(tmp_path: Path, invoke: Invoke) -> None:
    src = _source(tmp_path)
    repo, key = tmp_path / "repo", tmp_path / "k.key"
    assert invoke("--repo", repo, "init", "--key-file", key).code == 0
    assert invoke("--repo", repo, "--key-file", key, "backup", src).code == 0
    new = tmp_path / "newphone"
    dry = invoke("--repo", repo, "--key-file", key, "restore", "latest", "--target", new,
                 "--strip", str(src), "--dry-run")
    assert dry.code == 0 and "write        msgstore.db" in dry.out and not new.exists()
    done = invoke("--repo", repo, "--key-file", key, "restore", "latest", "--target", new,
                  "--strip", str(src))
    assert done.code == 0, done.err
    assert (new / "msgstore.db").read_bytes() == (src / "msgstore.db").read_bytes()
    assert sorted(p.name for p in (new / "Media").iterdir()) == \
        sorted(p.name for p in (src / "Media").iterdir())
    assert not (new / "home").exists()
    # A prefix with nothing under it, and an unsafe one: usage errors, nothing written.
    elsewhere = tmp_path / "elsewhere"
    none = invoke("--repo", repo, "--key-file", key, "restore", "latest", "--target",
                  elsewhere, "--strip", "/var/nothing")
    assert none.code == 2 and "lies under /var/nothing" in none.err
    assert not any(elsewhere.rglob("*"))
    bad = invoke("--repo", repo, "--key-file", key, "restore", "latest", "--target",
                 elsewhere, "--strip", "/home/../etc")
    assert bad.code == 2 and "invalid strip prefix" in bad.err
