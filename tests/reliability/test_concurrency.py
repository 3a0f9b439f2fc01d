"""Concurrency campaign: two devices backing up at once; prune racing a backup.

Real ``strongroom`` processes on one local repository.  After every round:
``check`` is clean, no snapshot that existed (and was not forgotten) is lost,
and every snapshot made restores byte-identical.  The vault's concurrency
(50 concurrent wrong guesses, two vault processes sharing one store) is tested
in ``tests/vault/test_concurrency.py`` and ``tests/vault/test_two_vaults.py``.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .campaign import CLI, cli, cli_env, cli_json, record, sized, tree_digest, write_random_tree

ROUNDS = sized(6, 30)
SEED = 6003


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, "--json", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _setup(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    env = cli_env(tmp_path, str(tmp_path / "repo"), tmp_path / "repo.key")
    assert cli(["init", "--no-store"], env).returncode == 0
    # The second device: same repository and key, its own config directory.
    env2 = cli_env(tmp_path / "device2", str(tmp_path / "repo"), tmp_path / "repo.key")
    return env, env2


def _restores(env: dict[str, str], sid: str, src: Path, digest: dict, where: Path) -> None:
    cli_json(["restore", sid, "--target", str(where)], env)
    assert tree_digest(where / str(src).lstrip("/")) == digest
    shutil.rmtree(where)


@pytest.mark.slow
def test_two_devices_back_up_into_one_repository_at_once(tmp_path: Path) -> None:
    env, env2 = _setup(tmp_path)
    made: dict[str, tuple[Path, dict]] = {}
    for r in range(ROUNDS):
        srcs = []
        for d in (1, 2):
            src = tmp_path / f"dev{d}"
            shutil.rmtree(src, ignore_errors=True)
            write_random_tree(src, 6 * 1024 * 1024, 6, SEED + 10 * r + d)
            srcs.append(src)
        p1 = _start(["backup", "--host", "phone", str(srcs[0])], env)
        p2 = _start(["backup", "--host", "tablet", str(srcs[1])], env2)
        out1, err1 = p1.communicate(timeout=300)
        out2, err2 = p2.communicate(timeout=300)
        assert p1.returncode == 0, err1
        assert p2.returncode == 0, err2
        for out, src in ((out1, srcs[0]), (out2, srcs[1])):
            sid = json.loads(out)["snapshot_id"]
            made[sid] = (src, tree_digest(src))
            _restores(env, sid, src, made[sid][1], tmp_path / "restore")
    ids = {s["id"] for s in cli_json(["snapshots"], env)["snapshots"]}
    assert set(made) <= ids
    assert cli_json(["check", "--read-data"], env)["ok"]
    record("concurrency-two-devices", {"rounds": ROUNDS, "snapshots": len(made),
                                       "lost": len(set(made) - ids)})


@pytest.mark.slow
def test_prune_racing_a_backup_loses_nothing(tmp_path: Path) -> None:
    env, env2 = _setup(tmp_path)
    rnd = random.Random(SEED)
    src = tmp_path / "src"
    kept: dict[str, dict] = {}
    outcomes = {"prune_ran": 0, "prune_locked": 0, "backup_locked": 0, "backup_done": 0,
                "second_started_while_first_ran": 0}
    for r in range(ROUNDS):
        # Churn: a new folder replaces the old, so forget+prune has dead data to delete.
        shutil.rmtree(src, ignore_errors=True)
        write_random_tree(src, 8 * 1024 * 1024, 8, SEED + r)
        first = cli_json(["backup", str(src)], env)
        kept[first["snapshot_id"]] = tree_digest(src)
        write_random_tree(src / "more", 96 * 1024 * 1024, 8, SEED + 1000 + r)
        forget = cli_json(["forget", "--keep-last", "2"], env)
        for sid in forget["remove"]:
            kept.pop(sid, None)
        # Start order and gap are random: prune first (it then holds the exclusive lock
        # while the backup starts) or the backup first (prune meets its shared lock).
        gap = rnd.uniform(-0.6, 0.6)
        first_cmd, second_cmd = (["prune"], ["backup", str(src)]) if gap < 0 else (
            ["backup", str(src)], ["prune"])
        p_first = _start(first_cmd, env if gap >= 0 else env2)
        time.sleep(abs(gap))
        overlapped = p_first.poll() is None
        p_second = _start(second_cmd, env2 if gap >= 0 else env)
        backup, prune = (p_first, p_second) if gap >= 0 else (p_second, p_first)
        outcomes["second_started_while_first_ran"] += overlapped
        b_out, b_err = backup.communicate(timeout=300)
        _, p_err = prune.communicate(timeout=300)
        # Either may lose the lock race (exit 13, RepositoryLocked); nothing else is allowed.
        assert backup.returncode in (0, 13), b_err
        assert prune.returncode in (0, 13), p_err
        outcomes["prune_ran" if prune.returncode == 0 else "prune_locked"] += 1
        if backup.returncode == 0:
            outcomes["backup_done"] += 1
            kept[json.loads(b_out)["snapshot_id"]] = tree_digest(src)
        else:
            outcomes["backup_locked"] += 1
        ids = {s["id"] for s in cli_json(["snapshots"], env)["snapshots"]}
        assert set(kept) <= ids, "a snapshot was lost"
        assert cli_json(["check", "--read-data"], env)["ok"]
    for n, (sid, digest) in enumerate(kept.items()):
        # Only the newest trees are still on disk; compare each with its own digest.
        target = tmp_path / f"r{n}"
        cli_json(["restore", sid, "--target", str(target)], env)
        assert tree_digest(target / str(src).lstrip("/")) == digest
        shutil.rmtree(target)
    record("concurrency-prune", {"rounds": ROUNDS, "snapshots_kept": len(kept), **outcomes})
