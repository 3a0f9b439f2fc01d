"""The installed command as a real process: console script, a real terminal, Ctrl-C, the demo."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from tests.support.terminal import read_until_closed

ROOT = Path(__file__).resolve().parents[2]
MODULE = [sys.executable, "-m", "strongroom.cli.main"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(STRONGROOM_CONFIG_DIR=str(tmp_path / "cfg"), STRONGROOM_KEYRING="no", **extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)


def test_console_script_is_installed_and_runs(tmp_path: Path) -> None:
    script = Path(sysconfig.get_path("scripts")) / "strongroom"
    assert script.exists(), "pip install -e . should have installed the console script"
    done = _run([str(script), "--version"], _env(tmp_path))
    assert done.returncode == 0 and done.stdout.startswith("strongroom ")


def test_real_process_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    repo, key_file, src = tmp_path / "repo", tmp_path / "k.key", tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a" * 1000)
    env = _env(tmp_path, STRONGROOM_REPO=str(repo))
    assert _run([*MODULE, "init", "--key-file", str(key_file)], env).returncode == 0
    done = _run([*MODULE, "backup", str(src)], env)
    assert done.returncode == 0, done.stderr
    wrong = _run([*MODULE, "snapshots"],
                 {**_env(tmp_path / "other"), "STRONGROOM_REPO": str(repo),
                  "STRONGROOM_KEY": "0" * 64})
    assert wrong.returncode == 11
    assert wrong.stderr.startswith("strongroom: error: this key does not open this backup")
    assert "Traceback" not in wrong.stderr
    usage = _run([*MODULE, "restore"], env)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


class Terminal:
    """``strongroom`` with its stdin on a pseudo-terminal, in a session of its own."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        # A new session has no controlling terminal, so getpass reads this pty
        # and never the developer's own /dev/tty.
        self.proc = subprocess.Popen(args, stdin=slave, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, start_new_session=True)
        os.close(slave)
        self.err_seen = b""

    def wait_for_prompt(self, timeout: float = 60.0) -> None:
        """Read stderr until the key prompt appears (click writes it there)."""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + timeout
        while b"backup key" not in self.err_seen:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            chunk = os.read(fd, 1024) if ready else b""
            if not chunk:
                self.kill()
                raise AssertionError(f"no prompt; stderr so far {self.err_seen!r}")
            self.err_seen += chunk

    def finish(self) -> tuple[int, str, str]:
        """Wait for the end; exit code, stdout, all of stderr."""
        try:
            out, err = self.proc.communicate(timeout=60)
        finally:
            self.kill()
        return self.proc.returncode, out.decode(), (self.err_seen + err).decode()

    def kill(self) -> None:
        """Make sure the process and the pty are gone (idempotent)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


@pytest.fixture
def repo_with_key(tmp_path: Path) -> tuple[Path, str]:
    repo, key_file = tmp_path / "repo", tmp_path / "k.key"
    done = _run([*MODULE, "--repo", str(repo), "init", "--key-file", str(key_file),
                 "--no-store"], _env(tmp_path))
    assert done.returncode == 0, done.stderr
    return repo, key_file.read_text().splitlines()[-1]


def test_prompt_on_a_terminal_reads_the_hidden_key(tmp_path: Path,
                                                   repo_with_key: tuple[Path, str]) -> None:
    repo, digits = repo_with_key
    term = Terminal([*MODULE, "--repo", str(repo), "--json", "snapshots"], _env(tmp_path))
    term.wait_for_prompt()
    typed = digits.upper().replace(" ", "-")
    os.write(term.master, typed.encode() + b"\n")
    code, out, err = term.finish()
    assert code == 0, err
    assert '"snapshots": []' in out
    assert typed not in out + err and digits not in out + err


def test_ctrl_c_at_the_prompt_exits_130(tmp_path: Path, repo_with_key: tuple[Path, str]) -> None:
    repo, _ = repo_with_key
    term = Terminal([*MODULE, "--repo", str(repo), "snapshots"], _env(tmp_path))
    term.wait_for_prompt()
    term.proc.send_signal(signal.SIGINT)
    code, _out, err = term.finish()
    assert code == 130
    assert "strongroom: interrupted; the last complete snapshot is intact" in err
    assert "Traceback" not in err


def _interrupt_when(args: list[str], env: dict[str, str], phase: str
                    ) -> tuple[int, str, str, float]:
    """Run ``args`` (with ``--json``); press Ctrl-C when a status of ``phase`` appears.

    (exit code, stdout, stderr, seconds from SIGINT to exit)."""
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    assert proc.stderr is not None
    seen = b""
    try:
        while f'"phase": "{phase}"'.encode() not in seen:
            line = proc.stderr.readline()
            assert line, f"ended before phase {phase}: {seen[-2000:]!r}"
            seen += line
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out.decode(), (seen + err).decode(), took


def test_ctrl_c_cancels_a_backup_and_a_restore_cleanly(tmp_path: Path) -> None:
    # A real SIGINT to the real process, mid-operation: it goes through the Cancel
    # token (docs/spec/cli.md §5): exit 130, one line, no traceback, the lock released,
    # no snapshot from the interrupted backup, no temporary file left by the restore.
    src = tmp_path / "src"
    src.mkdir()
    (src / "msgstore.db").write_bytes(os.urandom(1 << 20))
    env = _env(tmp_path, STRONGROOM_REPO=str(tmp_path / "repo"),
               STRONGROOM_KEY_FILE=str(tmp_path / "k.key"))
    assert _run([*MODULE, "init"], env).returncode == 0
    assert _run([*MODULE, "backup", str(src)], env).returncode == 0
    (src / "video.mp4").write_bytes(os.urandom(384 << 20))  # seconds of work to interrupt
    code, out, err, took = _interrupt_when([*MODULE, "--json", "backup", str(src)], env,
                                           "backup")
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.rstrip().endswith("strongroom: interrupted; the last complete snapshot is intact")
    error = json.loads(out)["error"]
    assert (error["type"], error["exit_code"]) == ("Interrupted", 130)
    statuses = [d for d in (json.loads(line) for line in err.splitlines() if line.startswith("{"))
                if d.get("message_type") == "status"]  # warnings too are JSON lines
    assert statuses and not any(d["phase"] == "backup" and d["finished"] for d in statuses)
    assert took < 30  # it stopped, not finished (a fraction of a second when quiet)
    assert os.listdir(tmp_path / "repo" / "locks") == []
    listed = _run([*MODULE, "--json", "snapshots"], env)
    assert listed.returncode == 0 and listed.stdout.count('"id"') == 1
    assert _run([*MODULE, "check", "--read-data"], env).returncode == 0
    assert _run([*MODULE, "backup", str(src)], env).returncode == 0  # the next one works

    target = tmp_path / "out"
    code, _out, err, took = _interrupt_when(
        [*MODULE, "--json", "restore", "latest", "--target", str(target)], env, "restore")
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and took < 30
    assert os.listdir(tmp_path / "repo" / "locks") == []
    left = [p for p in target.rglob("*") if p.is_file()]
    assert all(not p.name.startswith(".strongroom") for p in left), left  # no temp files
    for p in left:  # what was renamed into place is complete
        assert p.stat().st_size == (src / p.name).stat().st_size


def test_progress_bars_only_when_stderr_is_a_terminal(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "photo.jpg").write_bytes(os.urandom(300_000))
    env = _env(tmp_path, STRONGROOM_REPO=str(tmp_path / "repo"))
    assert _run([*MODULE, "init", "--key-file", str(tmp_path / "k.key")], env).returncode == 0
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*MODULE, "backup", str(src)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=slave, env=env,
                                start_new_session=True)
        os.close(slave)
        drawn = read_until_closed(master)
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert b"backup" in drawn and b"\x1b[" in drawn  # a rich bar on the terminal
    assert b"\x1b[" not in out and b"saved" in out  # stdout stays plain
    piped = _run([*MODULE, "backup", str(src)], env)
    assert piped.returncode == 0 and piped.stderr == ""  # no bars into a pipe or log


def test_demo_quick_runs_every_step(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--quick"],
                          capture_output=True, text=True, env=_env(tmp_path), timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every check held" in done.stdout
    assert "byte-identical" in done.stdout
    assert "(exit code 11)" in done.stdout


def test_demo_quick_over_a_two_of_three_realm_set(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--quick",
                           "--realms", "3"], capture_output=True, text=True, env=_env(tmp_path),
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every check held" in done.stdout
    assert "realm set (2 of 3)" in done.stdout and "realm 3 http://127.0.0.1:" in done.stdout
