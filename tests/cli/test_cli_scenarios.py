"""End-to-end CLI scenarios on a real local-folder repository (in-process, CliRunner)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import Invoke, Run

KEY_BLOCK = re.compile(r"^    ([0-9a-f]{4} ){3}[0-9a-f]{4}$", re.MULTILINE)


def digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def restored(target: Path, source: Path) -> Path:
    """Where ``source`` lands under a restore ``target`` (absolute path, no leading /)."""
    return target / source.resolve().relative_to("/")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A small chat-like tree: a text file, a binary 'photo', a nested folder."""
    root = tmp_path / "chats"
    (root / "Media").mkdir(parents=True)
    (root / "notes.txt").write_text("hello\n" * 500)
    (root / "Media" / "IMG-0001.jpg").write_bytes(os.urandom(70_000))
    (root / "Media" / "PTT-0002.opus").write_bytes(os.urandom(9_000))
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


def init_with_key(invoke: Invoke, repo: Path) -> tuple[Run, str]:
    """``init`` showing the key; returns the run and the 64 digits."""
    run = invoke("--repo", repo, "init")
    assert run.code == 0, run.err
    lines = [m.group(0).strip() for m in KEY_BLOCK.finditer(run.out)]
    assert len(lines) == 4  # 16 groups of 4, four per line
    return run, " ".join(lines)


def test_init_shows_key_once_with_warning_and_keeps_it_on_device(
        invoke: Invoke, repo: Path, isolated_env: Path) -> None:
    run, digits = init_with_key(invoke, repo)
    assert len(digits.replace(" ", "")) == 64
    assert "only way to open this backup without a password" in run.out
    assert "except on this device" in run.out
    stored = list((isolated_env / "keys").glob("*.key"))
    assert len(stored) == 1
    assert stat.S_IMODE(stored[0].stat().st_mode) == 0o600
    assert digits in stored[0].read_text()
    # A second init on the same location: exit 10, and nothing replaced.
    again = invoke("--repo", repo, "init")
    assert again.code == 10
    assert "already exists" in again.err
    assert len(list((isolated_env / "keys").glob("*.key"))) == 1


def test_daily_journey(invoke: Invoke, repo: Path, source: Path, tmp_path: Path) -> None:
    _, digits = init_with_key(invoke, repo)
    first = invoke("--repo", repo, "backup", source)  # no key typed: the device has it
    assert first.code == 0, first.err
    assert re.search(r"snapshot [0-9a-f]{8} saved", first.out)
    for field in ("files:", "bytes read:", "bytes added:", "duration:"):
        assert field in first.out
    (source / "notes.txt").write_text("changed\n" * 500)
    second = invoke("--repo", repo, "--json", "backup", source)
    assert second.code == 0
    summary = second.json()
    assert summary["files"] == 3 and summary["files_unchanged"] == 2
    assert summary["complete"] is True and summary["warnings"] == []
    assert 0 < summary["bytes_added"] < 70_000  # the photo was not stored again
    listed = invoke("--repo", repo, "snapshots", "--json").json()["snapshots"]
    assert [s["id"] for s in listed][-1] == summary["snapshot_id"]
    assert len(listed) == 2
    table = invoke("--repo", repo, "snapshots")
    assert table.code == 0 and listed[0]["id"][:8] in table.out and "2 snapshot(s)" in table.out
    target = tmp_path / "out"
    run = invoke("--repo", repo, "restore", "latest", "--target", target)
    assert run.code == 0, run.err
    assert digest(restored(target, source)) == digest(source)
    old = tmp_path / "old"
    run = invoke("--repo", repo, "restore", listed[0]["id"][:8], "--target", old,
                 "--include", str(source.resolve() / "notes.txt"))
    assert run.code == 0, run.err
    assert (restored(old, source) / "notes.txt").read_text() == "hello\n" * 500
    assert not (restored(old, source) / "Media").exists()
    check = invoke("--repo", repo, "check", "--read-data", "--json")
    assert check.code == 0 and check.json()["ok"] is True
    human = invoke("--repo", repo, "check")
    assert human.code == 0 and "no problems found" in human.out
    shown = invoke("--repo", repo, "key", "show", "--yes")
    assert shown.code == 0 and " ".join(shown.out.split()) == digits
    assert "anyone who sees this key" in shown.err


def test_forget_and_prune(invoke: Invoke, repo: Path, source: Path) -> None:
    init_with_key(invoke, repo)
    for i in range(3):
        (source / "notes.txt").write_text(f"version {i}\n" * 300)
        assert invoke("--repo", repo, "backup", source).code == 0
    ids = [s["id"] for s in invoke("--repo", repo, "--json", "snapshots").json()["snapshots"]]
    dry = invoke("--repo", repo, "--json", "forget", "--keep-last", "1", "--dry-run")
    assert dry.code == 0
    assert dry.json()["remove"] == ids[:2] and dry.json()["dry_run"] is True
    assert len(invoke("--repo", repo, "--json", "snapshots").json()["snapshots"]) == 3
    run = invoke("--repo", repo, "forget", "--keep-last", "1", "--prune")
    assert run.code == 0, run.err
    assert "removed 2 snapshot(s)" in run.out and "pruned:" in run.out
    left = invoke("--repo", repo, "--json", "snapshots").json()["snapshots"]
    assert [s["id"] for s in left] == ids[2:]
    prune = invoke("--repo", repo, "--json", "prune")
    assert prune.code == 0 and set(prune.json()) >= {"packs_deleted", "bytes_freed"}
    assert invoke("--repo", repo, "check", "--read-data").code == 0


def test_key_file_automation_and_new_device(invoke: Invoke, repo: Path, source: Path,
                                            tmp_path: Path) -> None:
    key_file = tmp_path / "auto.key"
    run = invoke("--repo", repo, "--key-file", key_file, "init", "--no-store")
    assert run.code == 0, run.err
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not KEY_BLOCK.search(run.out)  # written to the file, not shown
    # --no-store: this device keeps nothing, so without the key file there is no key.
    assert invoke("--repo", repo, "snapshots").code == 2
    env = {"STRONGROOM_REPO": str(repo), "STRONGROOM_KEY_FILE": str(key_file)}
    assert invoke("backup", source, env=env).code == 0
    # A new device: the 64 digits typed from paper, any case and dashes.
    digits = key_file.read_text().splitlines()[-1]
    typed = digits.upper().replace(" ", "-")
    new_device = {"STRONGROOM_REPO": str(repo), "STRONGROOM_KEY": typed,
                  "STRONGROOM_CONFIG_DIR": str(tmp_path / "new-device")}
    target = tmp_path / "restored"
    assert invoke("restore", "latest", "--target", target, env=new_device).code == 0
    assert digest(restored(target, source)) == digest(source)
    remember = invoke("key", "remember", env=new_device)
    assert remember.code == 0, remember.err
    del new_device["STRONGROOM_KEY"]
    assert invoke("snapshots", env=new_device).code == 0  # no typing any more
    assert invoke("key", "forget", env=new_device).code == 0
    assert invoke("snapshots", env=new_device).code == 2


def _wrong_key_variants(digits: str) -> dict[str, str]:
    flat = digits.replace(" ", "")
    flipped = ("0" if flat[17] != "0" else "1")
    return {
        "another key": "ab" * 32,
        "one mistyped digit": flat[:17] + flipped + flat[18:],
        "one digit missing": flat[:-1],
        "not hex": flat[:-1] + "g",
    }


@pytest.mark.parametrize("variant", ["another key", "one mistyped digit", "one digit missing",
                                     "not hex"])
def test_wrong_or_invalid_key_is_exit_11(invoke: Invoke, repo: Path, source: Path,
                                         tmp_path: Path, variant: str) -> None:
    key_file = tmp_path / "k.key"
    assert invoke("--repo", repo, "--key-file", key_file, "init", "--no-store").code == 0
    digits = key_file.read_text().splitlines()[-1]
    bad = _wrong_key_variants(digits)[variant]
    run = invoke("--repo", repo, "restore", "latest", "--target", tmp_path / "t",
                 env={"STRONGROOM_KEY": bad})
    assert run.code == 11
    assert "Traceback" not in run.err
    first = run.err.splitlines()[0]
    if variant in ("another key", "one mistyped digit"):
        assert first == "strongroom: error: this key does not open this backup"
    else:
        assert first.startswith("strongroom: error: that key ")
    for secret in (bad, digits, digits.replace(" ", "")):
        assert secret not in run.err + run.out
    assert not (tmp_path / "t").exists()


def _flip_one_byte_in_a_pack(repo: Path) -> Path:
    packs = sorted(p for p in repo.rglob("*") if p.is_file() and "data" in p.parts)
    assert packs, "no pack files found under data/"
    victim = max(packs, key=lambda p: p.stat().st_size)
    raw = bytearray(victim.read_bytes())
    # The big photo is a frame of its own at the start of the biggest pack.
    raw[len(raw) // 10] ^= 0x01
    victim.write_bytes(bytes(raw))
    return victim


def test_damaged_data_is_exit_12_with_objects_and_files(invoke: Invoke, repo: Path,
                                                        source: Path, tmp_path: Path) -> None:
    init_with_key(invoke, repo)
    (source / "Media" / "IMG-0001.jpg").write_bytes(os.urandom(1_000_000))
    assert invoke("--repo", repo, "backup", source).code == 0
    # A second snapshot whose file list sits in a new pack, so it can still name
    # the files the damaged first pack affects.
    (source / "notes.txt").write_text("a new day\n" * 400)
    assert invoke("--repo", repo, "backup", source).code == 0
    victim = _flip_one_byte_in_a_pack(repo)
    run = invoke("--repo", repo, "check", "--read-data")
    assert run.code == 12
    assert "Traceback" not in run.err
    assert victim.name in run.out
    assert re.search(r"affects .*IMG-0001\.jpg", run.out)
    assert "strongroom: error: check found" in run.err
    report = invoke("--repo", repo, "--json", "check", "--read-data")
    assert report.code == 12
    doc = report.json()  # exactly one JSON document: the report, no error object added
    assert doc["ok"] is False
    assert any(victim.name in p["object"] and p["files"] for p in doc["problems"])
    target = tmp_path / "t"
    plain = invoke("--repo", repo, "restore", "latest", "--target", target)
    assert plain.code == 12 and "strongroom: error: " in plain.err
    allowed = invoke("--repo", repo, "--json", "restore", "latest", "--target",
                     tmp_path / "t2", "--allow-damaged")
    assert allowed.code == 12
    summary = allowed.json()
    assert summary["complete"] is False
    assert [Path(p).name for p in summary["damaged"]] == ["IMG-0001.jpg"]
    intact = restored(tmp_path / "t2", source)
    assert (intact / "notes.txt").read_text() == (source / "notes.txt").read_text()
    assert "restore incomplete" in allowed.err


def test_partial_backup_is_exit_3_with_list(invoke: Invoke, repo: Path, source: Path) -> None:
    init_with_key(invoke, repo)
    os.mkfifo(source / "pipe")  # not a file that can be backed up
    missing = source.parent / "vanished-before-reading"
    run = invoke("--repo", repo, "backup", source, missing)
    assert run.code == 3, run.err
    assert re.search(r"snapshot [0-9a-f]{8} saved", run.out)
    assert "strongroom: warning: 2 source file(s) could not be backed up" in run.err
    assert "pipe" in run.err and "vanished-before-reading" in run.err
    as_json = invoke("--repo", repo, "--json", "backup", source)
    assert as_json.code == 3
    assert as_json.json()["complete"] is False and len(as_json.json()["warnings"]) == 1
    # The readable files are in the snapshot all the same.
    assert len(invoke("--repo", repo, "--json", "snapshots").json()["snapshots"]) == 2


def test_newer_format_version_is_exit_14(invoke: Invoke, repo: Path) -> None:
    init_with_key(invoke, repo)
    config = repo / "config"
    doc = json.loads(config.read_text())
    doc["version"] += 1
    config.write_text(json.dumps(doc))
    run = invoke("--repo", repo, "snapshots")
    assert run.code == 14
    assert "newer" in run.err or "version" in run.err
    assert "strongroom: hint: upgrade strongroom" in run.err.lower()
    assert "Traceback" not in run.err


def test_unknown_snapshot_is_exit_10(invoke: Invoke, repo: Path, tmp_path: Path) -> None:
    init_with_key(invoke, repo)
    run = invoke("--repo", repo, "restore", "deadbeef", "--target", tmp_path / "t")
    assert run.code == 10
    assert "strongroom: hint: list snapshots" in run.err


def test_quiet_prints_nothing_on_success(invoke: Invoke, repo: Path, source: Path) -> None:
    init_with_key(invoke, repo)
    run = invoke("--repo", repo, "-q", "backup", source)
    assert run.code == 0 and run.out == "" and run.err == ""


def test_json_documents_of_init_and_key_show(invoke: Invoke, repo: Path,
                                             tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    run = invoke("--repo", repo, "--json", "--key-file", key_file, "init")
    assert run.code == 0, run.err
    doc = run.json()
    assert set(doc) == {"repository_id", "location", "key_file", "stored_on_device"}
    digits = key_file.read_text().splitlines()[-1]
    assert digits not in run.out  # the key itself never goes into init's JSON
    shown = invoke("--repo", repo, "key", "show", "--json", "--yes")
    assert shown.code == 0
    assert shown.json() == {"repository_id": doc["repository_id"], "key": digits}


def test_quiet_still_shows_a_new_key(invoke: Invoke, repo: Path) -> None:
    run = invoke("--repo", repo, "--quiet", "--no-progress", "init")
    assert run.code == 0
    assert len(KEY_BLOCK.findall(run.out)) == 4
    assert "created repository" not in run.out


def test_wrong_key_hint_names_where_the_key_came_from(invoke: Invoke, repo: Path,
                                                      tmp_path: Path,
                                                      isolated_env: Path) -> None:
    init_with_key(invoke, repo)
    other = tmp_path / "other.key"
    other.write_text("ab" * 32 + "\n")
    from_file = invoke("--repo", repo, "--key-file", other, "snapshots")
    assert from_file.code == 11
    assert "strongroom: hint: the key file" in from_file.err
    (stored,) = (isolated_env / "keys").glob("*.key")
    stored.write_text("cd" * 32 + "\n")  # the device's copy went bad
    from_device = invoke("--repo", repo, "snapshots")
    assert from_device.code == 11
    assert "strongroom key forget" in from_device.err
    assert invoke("--repo", repo, "key", "forget").code == 0
    assert not stored.exists()
    stored.write_text("not a key\n")
    garbled = invoke("--repo", repo, "snapshots")
    assert garbled.code == 11
    assert f"the key file {stored} does not hold a valid key" in garbled.err


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 300 KiB tmpfs (the tests run as root on the CI machine kind)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_full_disk_during_restore_is_exit_16(invoke: Invoke, repo: Path, source: Path,
                                             small_disk: Path) -> None:
    init_with_key(invoke, repo)
    (source / "Media" / "VID-0003.mp4").write_bytes(os.urandom(600_000))
    assert invoke("--repo", repo, "backup", source).code == 0
    run = invoke("--repo", repo, "restore", "latest", "--target", small_disk / "out")
    assert run.code == 16
    assert "Traceback" not in run.err
    assert run.err.startswith("strongroom: error: ")
    assert "strongroom: hint: free some space or choose another --target" in run.err


def test_init_still_shows_the_key_when_the_device_store_fails(
        invoke: Invoke, repo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the config dir should be\n")
    run = invoke("--repo", repo, "init", env={"STRONGROOM_CONFIG_DIR": str(blocker)})
    assert run.code == 0, run.err
    assert len(KEY_BLOCK.findall(run.out)) == 4
    assert "strongroom: warning: could not keep the key on this device" in run.err
    assert "except on this device" not in run.out


def test_failed_init_leaves_no_key_file(invoke: Invoke, repo: Path, tmp_path: Path) -> None:
    init_with_key(invoke, repo)
    key_file = tmp_path / "second.key"
    run = invoke("--repo", repo, "--key-file", key_file, "init")
    assert run.code == 10
    assert not key_file.exists()  # no key file for a repository that was never made


def test_ctrl_c_during_backup_keeps_the_last_snapshot(invoke: Invoke, repo: Path, source: Path,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.repo.engine import Engine

    init_with_key(invoke, repo)
    assert invoke("--repo", repo, "backup", source).code == 0
    before = digest(source)
    (source / "Media" / "IMG-0009.jpg").write_bytes(os.urandom(50_000))
    original_init = Engine.__init__

    def interrupting_init(self: Engine, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]

        def before_read(path: Path) -> None:
            if path.name == "IMG-0009.jpg":
                raise KeyboardInterrupt  # the user presses Ctrl-C mid-backup

        self._test_only_before_read = before_read

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "__init__", interrupting_init)
        run = invoke("--repo", repo, "backup", source)
    assert run.code == 130
    assert run.err.strip().endswith(
        "strongroom: interrupted; the last complete snapshot is intact")
    assert "Traceback" not in run.err
    assert len(invoke("--repo", repo, "--json", "snapshots").json()["snapshots"]) == 1
    target = tmp_path / "t"
    assert invoke("--repo", repo, "restore", "latest", "--target", target).code == 0
    assert digest(restored(target, source)) == before
    assert invoke("--repo", repo, "backup", source).code == 0  # and the next backup works
    assert invoke("--repo", repo, "check", "--read-data").code == 0


def test_restore_over_existing_files(invoke: Invoke, repo: Path, source: Path,
                                     tmp_path: Path) -> None:
    init_with_key(invoke, repo)
    assert invoke("--repo", repo, "backup", source).code == 0
    target = tmp_path / "out"
    assert invoke("--repo", repo, "restore", "latest", "--target", target).code == 0
    notes = restored(target, source) / "notes.txt"
    notes.write_text("newer local text\n")  # the live copy is newer than the snapshot's
    kept = invoke("--repo", repo, "restore", "latest", "--target", target)
    assert kept.code == 0, kept.err
    assert notes.read_text() == "newer local text\n"
    assert f"strongroom: warning: keep {source.resolve() / 'notes.txt'}: newer" in kept.err
    assert "0 replaced, 3 kept" in kept.out
    dry = invoke("--repo", repo, "restore", "latest", "--target", target, "--dry-run",
                 "--overwrite", "always")
    assert dry.code == 0 and notes.read_text() == "newer local text\n"
    assert f"replace      {source.resolve() / 'notes.txt'}" in dry.out
    assert "would restore" in dry.out
    doc = invoke("--repo", repo, "--json", "restore", "latest", "--target", target,
                 "--dry-run").json()
    assert doc["dry_run"] is True and doc["skipped"] == 3
    assert {i["action"] for i in doc["items"]} == {"skip"}
    bad = invoke("--repo", repo, "restore", "latest", "--target", target, "--overwrite", "yes")
    assert bad.code == 2
    done = invoke("--repo", repo, "restore", "latest", "--target", target,
                  "--overwrite", "always")
    assert done.code == 0 and digest(restored(target, source)) == digest(source)
    assert "note: replace" in done.err
