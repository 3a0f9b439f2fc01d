"""Smoke tests of the benchmark dataset generator and harness (tiny sizes, seconds)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench import dataset, measure, report, run
from strongroom.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]
SIZE_MB = 5
PAGE = 4096


def _digest_tree(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                                                int(path.stat().st_mtime))
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds") / "a"
    dataset.generate(root, SIZE_MB, seed=7)
    return root


def test_same_seed_gives_identical_bytes_and_mtimes(base: Path, tmp_path: Path) -> None:
    dataset.generate(tmp_path / "b", SIZE_MB, seed=7)
    assert _digest_tree(tmp_path / "b") == _digest_tree(base)


def test_other_seed_gives_other_data(base: Path, tmp_path: Path) -> None:
    dataset.generate(tmp_path / "c", SIZE_MB, seed=8)
    assert (tmp_path / "c" / dataset.DB_PATH).read_bytes() != (base / dataset.DB_PATH).read_bytes()


def test_size_and_proportions_follow_size_mb(base: Path) -> None:
    total = measure.tree_bytes(base)
    db = (base / dataset.DB_PATH).stat().st_size
    assert 0.8 * SIZE_MB * 1e6 <= total <= 1.3 * SIZE_MB * 1e6
    assert 0.05 <= db / total <= 0.2
    kinds = {p.suffix for p in (base / "Media").rglob("*") if p.is_file()}
    assert kinds == {".jpg", ".mp4", ".opus", ".pdf"}


def test_media_have_type_headers_and_photos_do_not_compress(base: Path) -> None:
    import zlib

    photo = next((base / "Media/Images").iterdir()).read_bytes()
    assert photo[:4] == b"\xff\xd8\xff\xe0" and photo.endswith(b"\xff\xd9")
    assert len(zlib.compress(photo[:200_000])) > 0.99 * min(len(photo), 200_000)
    assert next((base / "Media/Video").iterdir()).read_bytes()[4:8] == b"ftyp"
    assert next((base / "Media/Voice Notes").iterdir()).read_bytes()[:4] == b"OggS"
    pdf = next((base / "Media/Documents").iterdir()).read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.endswith(b"%%EOF\n")
    # "partly compressible": the text streams shrink, the image streams do not.
    assert 0.2 < len(zlib.compress(pdf)) / len(pdf) < 0.9


def test_store_opens_with_messages_chats_and_indexes(base: Path) -> None:
    db = sqlite3.connect(base / dataset.DB_PATH)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        n_msgs, n_chats = db.execute("SELECT count(*), count(DISTINCT chat_id) FROM messages").fetchone()
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        with_media = db.execute("SELECT count(*) FROM messages WHERE media_id IS NOT NULL").fetchone()[0]
        media_rows = db.execute("SELECT count(*) FROM media").fetchone()[0]
        plan = db.execute("EXPLAIN QUERY PLAN SELECT * FROM messages WHERE chat_id = 3 ORDER BY timestamp").fetchall()
    finally:
        db.close()
    assert n_msgs == SIZE_MB * dataset.MESSAGES_PER_MB
    assert n_chats == 5
    assert {"messages_chat_ts", "messages_ts", "messages_unread"} <= indexes
    assert with_media == media_rows == sum(1 for p in (base / "Media").rglob("*") if p.is_file())
    assert "messages_chat_ts" in str(plan)


def test_grow_adds_one_percent_and_changes_few_pages(base: Path, tmp_path: Path) -> None:
    root = tmp_path / "g"
    shutil.copytree(base, root)
    before_db = (root / dataset.DB_PATH).read_bytes()
    before_files = set(_digest_tree(root))
    old_photo = next((root / "Media/Images").iterdir())
    old_stat = old_photo.stat()
    summary = dataset.grow(root)
    # Unchanged media keep ctime and inode: backup tools must see them as unchanged.
    assert (old_photo.stat().st_ctime_ns, old_photo.stat().st_ino) == (old_stat.st_ctime_ns, old_stat.st_ino)
    after_db = (root / dataset.DB_PATH).read_bytes()
    changed = sum(before_db[i:i + PAGE] != after_db[i:i + PAGE] for i in range(0, len(before_db), PAGE))
    assert summary.day == 1
    assert summary.new_messages == round(SIZE_MB * dataset.MESSAGES_PER_MB * dataset.DAILY_GROWTH)
    assert summary.read_updates > 0
    # Only part of the database changes, and old pages keep their offsets.
    assert 0 < changed < 0.5 * len(before_db) // PAGE
    assert len(after_db) >= len(before_db)
    new_files = set(_digest_tree(root)) - before_files
    assert len(new_files) == summary.media_files
    assert summary.media_bytes < 0.05 * SIZE_MB * 1e6
    assert (root / dataset.DB_PATH).stat().st_mtime == dataset.END_MS // 1000 + 86_400


def test_grow_is_deterministic(base: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(base, a)
    shutil.copytree(base, b)
    for root in (a, b):
        dataset.grow(root)
        dataset.grow(root)
    assert _digest_tree(a) == _digest_tree(b)
    db = sqlite3.connect(a / dataset.DB_PATH)
    try:
        assert db.execute("SELECT value FROM props WHERE key = 'day'").fetchone() == ("2",)
    finally:
        db.close()


def test_bad_input_gives_clear_errors(base: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="already holds a dataset"):
        dataset.generate(base, SIZE_MB)
    with pytest.raises(UsageError, match="holds no dataset"):
        dataset.grow(tmp_path / "empty")
    with pytest.raises(UsageError, match="at least 1"):
        dataset.generate(tmp_path / "z", 0.5)
    proc = subprocess.run([sys.executable, "-m", "bench.dataset", str(tmp_path / "empty"), "--grow"],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == UsageError.exit_code
    assert proc.stderr.startswith("bench.dataset: error: ") and "Traceback" not in proc.stderr


def test_measure_reports_child_peak_rss_and_failure() -> None:
    big = measure.run([sys.executable, "-c", "b = bytearray(200_000_000); b[::4096] = b'x' * len(b[::4096])"])
    small = measure.run([sys.executable, "-c", "pass"])
    assert big.peak_rss > 200_000_000 > small.peak_rss
    with pytest.raises(measure.ToolFailed, match="exited 3"):
        measure.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    with pytest.raises(measure.ToolFailed, match="exited -9"):
        measure.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


def test_measure_peak_rss_is_not_the_harness_peak() -> None:
    # wait4 in this process would report at least this process's own 300 MB peak
    # for any child (Linux carries the high-water mark across fork and exec).
    held = bytearray(300_000_000)
    held[::4096] = b"x" * len(held[::4096])
    tiny = measure.run(["/bin/true"])
    assert 0 < tiny.peak_rss < 20_000_000
    del held


def test_report_ratios_and_table() -> None:
    med = report.medians({"strongroom": {"full_s": [1, 3, 2]}, "restic": {"full_s": [4, 4, 5]}})
    rat = report.ratios(med)
    assert report.minimums({"restic": {"full_s": [4, 3, 5]}}) == {"restic": {"full_s": 3}}
    assert rat == {"strongroom/restic": {"full_s": 0.5}}
    text = report.table(med, rat, 3)
    assert "0.50x" in text and "full backup" in text


@pytest.mark.bench
@pytest.mark.parametrize("tools", ["strongroom", "restic", "borg"])
def test_harness_runs_a_tiny_benchmark(tools: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    code = run.main(["--size-mb", "2", "--reps", "1", "--tools", tools,
                     "--workdir", str(tmp_path / "work"), "--out", str(out)])
    doc = json.loads(out.read_text())
    assert code == 0
    assert doc["restore_verified"] == {tools: True}
    med = doc["median"][tools]
    media = doc["dataset"]["bytes"] - doc["dataset"]["db_bytes"]
    assert media < med["full_bytes"] < 1.2 * doc["dataset"]["bytes"]  # media do not compress
    assert 0 < med["incr_bytes"] < med["full_bytes"] / 2
    assert med["peak_rss"] > 1e6 and med["check_s"] > 0
    assert not os.path.exists(tmp_path / "work" / "repos")


def test_harness_rejects_unknown_tool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--tools", "tar", "--workdir", str(tmp_path)]) == UsageError.exit_code
    assert "unknown tool(s): tar" in capsys.readouterr().err


def test_profile_covers_backup_restore_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench import profile

    assert profile.main(["--size-mb", "2", "--top", "3", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for label in ("full backup", "incremental", "restore", "check --read-data"):
        assert f"== {label}: " in out
    assert all((tmp_path / f"{n}.prof").stat().st_size > 0 for n in ("full", "incremental", "restore", "check"))


@pytest.mark.bench
def test_scale_benchmark_runs_every_case_at_a_tiny_size(tmp_path: Path) -> None:
    from bench import scale

    out = tmp_path / "scale.json"
    code = scale.main(["--db-mb", "2", "--files", "40", "--days-mb", "3", "--days", "2", "--reps", "1",
                       "--tools", "strongroom,restic", "--workdir", str(tmp_path / "w"), "--out", str(out)])
    doc = json.loads(out.read_text())
    assert code == 0
    assert doc["restore_verified"] == {
        "msgstore": {"strongroom": True, "restic": True}, "small": {"strongroom": True, "restic": True},
        "days": {"strongroom": True, "restic": True, "strongroom-fresh": True, "restic-fresh": True}}
    rows = {(r["case"], r["measure"]): r for r in doc["rows"]}
    assert rows[("msgstore", "restore_s")]["ratio"] > 0
    assert 0 < rows[("msgstore", "incr_rss")]["median"]["strongroom"] < 400e6
    assert rows[("days", "check_s")]["vs_fresh"] > 0 and len(doc["raw"]["days"]["strongroom"]["daily_s"]) == 3
    assert not (tmp_path / "w").exists()


@pytest.mark.bench
def test_scale_keeps_restored_trees_of_many_files_until_the_end_of_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Deleting a tree of many files just before the next restore made that restore
    # pay for the deletion (ext4 without a journal passes over recently freed
    # inodes on every create): the trees are set aside and deleted at the end.
    from bench import scale

    monkeypatch.setattr(scale, "KEEP_RESTORED_FILES", 10)
    work = tmp_path / "w"
    seen: list[list[str]] = []
    cleanup = scale.Scale.cleanup

    def recording(self: scale.Scale) -> None:
        restored = work / "small" / "restored"
        seen.append(sorted(p.name for p in restored.iterdir()) if restored.is_dir() else [])
        cleanup(self)

    monkeypatch.setattr(scale.Scale, "cleanup", recording)
    assert scale.main(["--cases", "small", "--files", "40", "--reps", "2", "--tools", "strongroom",
                       "--keep", "--workdir", str(work), "--out", str(tmp_path / "s.json")]) == 0
    assert seen == [["strongroom-0", "strongroom-1"]]
    assert not (work / "small" / "restored").exists() and (work / "small" / "repos").is_dir()


def test_scale_rejects_bad_arguments(tmp_path: Path) -> None:
    from bench import scale

    assert scale.main(["--cases", "nope", "--workdir", str(tmp_path)]) == UsageError.exit_code
    assert scale.main(["--reps", "0", "--workdir", str(tmp_path)]) == UsageError.exit_code


def test_check_pairs_refuses_a_directory_without_kept_repositories(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench import check_pairs

    (tmp_path / "repos" / "strongroom").mkdir(parents=True)
    code = check_pairs.main([str(tmp_path), "--trees", str(REPO_ROOT / "src"), "--reps", "1"])
    assert code == UsageError.exit_code
    assert "missing: strongroom-fresh" in capsys.readouterr().err


@pytest.mark.bench
def test_check_pairs_checks_kept_repositories_with_each_tree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench import check_pairs, scale

    work = tmp_path / "w"
    assert scale.main(["--cases", "days", "--days-mb", "3", "--days", "2", "--reps", "1",
                       "--tools", "strongroom", "--keep", "--workdir", str(work),
                       "--out", str(tmp_path / "s.json")]) == 0
    capsys.readouterr()
    out = tmp_path / "pairs.json"
    src = str(REPO_ROOT / "src")
    assert check_pairs.main([str(work / "days"), "--trees", src, "--reps", "2",
                             "--out", str(out)]) == 0
    raw = json.loads(out.read_text())["raw_wall_cpu"][src]
    assert {r: len(v) for r, v in raw.items()} == {"strongroom": 2, "strongroom-fresh": 2}
    assert all(wall > 0 and cpu > 0 for v in raw.values() for wall, cpu in v)
    assert "x" in capsys.readouterr().out
