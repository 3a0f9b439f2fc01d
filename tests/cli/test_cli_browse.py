"""The browsing commands end to end: ls, find, diff, dump, stats, filters, tags, forget reasons."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_harness import Invoke, Run


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "chats"
    (root / "Media").mkdir(parents=True)
    (root / "notes.txt").write_text("hello\n" * 50)
    (root / "Media" / "IMG-0001.jpg").write_bytes(os.urandom(30_000))
    (root / "Media" / "PTT-0002.opus").write_bytes(b"voice")
    (root / "msgstore.db").write_bytes(b"db" * 500)
    (root / "cache.tmp").write_text("scratch")
    return root


Sr = Callable[..., Run]


@pytest.fixture
def sr(invoke: Invoke, tmp_path: Path) -> Sr:
    """``strongroom`` on a fresh repository with a key file."""
    repo, key = tmp_path / "repo", tmp_path / "k.key"
    assert invoke("--repo", repo, "--key-file", key, "init", "--no-store").code == 0

    def run(*args: object, **kw: object) -> Run:
        return invoke("--repo", repo, "--key-file", key, *args, **kw)

    return run


def ids(sr: Sr) -> list[str]:
    return [s["id"] for s in sr("--json", "snapshots").json()["snapshots"]]


def test_ls_long_and_json(sr: Sr, source: Path) -> None:
    assert sr("backup", source).code == 0
    run = sr("ls", "-l", f"latest:{source}")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].startswith("snapshot ")
    assert any(line.endswith(f"{source}/notes.txt") and line.startswith("-rw") and "300 B" in line
               for line in lines)
    assert not any("IMG-0001" in line for line in lines)  # not recursive: only the folder's own
    rec = sr("--json", "ls", "--recursive", f"latest:{source}/Media").json()
    assert [e["path"] for e in rec["entries"]] == [f"{source}/Media", f"{source}/Media/IMG-0001.jpg",
                                                   f"{source}/Media/PTT-0002.opus"]
    assert rec["entries"][1]["type"] == "file" and rec["entries"][1]["size"] == 30_000
    assert rec["snapshot"]["id"] == ids(sr)[0]


def test_bad_input_exit_codes(sr: Sr, source: Path) -> None:
    assert sr("backup", source).code == 0
    unknown = sr("ls", "ffffffff")
    assert unknown.code == 10 and "no snapshot matches 'ffffffff'" in unknown.err
    missing = sr("ls", f"latest:{source}/nope")
    assert missing.code == 10 and "is not in snapshot" in missing.err
    assert str(source) in missing.err and missing.out == ""  # the hint names the paths
    assert "Traceback" not in missing.err
    bad_pattern = sr("find", "a**b")
    assert bad_pattern.code == 2 and "'**' must be a whole component" in bad_pattern.err
    assert sr("--json", "find", "../x").json()["error"]["exit_code"] == 2
    assert sr("dump", "latest", f"{source}/nope").code == 10
    assert sr("diff", "latest", "0000").code == 10
    assert sr("stats", "nope").code == 10
    assert sr("ls", "latest:/a/../b").code == 2
    assert sr("backup", "--tag", "bad\ttag", source).code == 2
    assert sr("forget", "--keep-within", "3 weeks").code == 2


def test_ambiguous_prefix_is_refused_with_the_candidates(sr: Sr, source: Path) -> None:
    made = []
    while True:
        assert sr("-q", "backup", source).code == 0
        made = ids(sr)
        firsts = [i[0] for i in made]
        shared = [c for c in firsts if firsts.count(c) > 1]
        if shared:
            break
    run = sr("ls", shared[0])
    assert run.code == 10 and "more than one snapshot matches" in run.err
    assert "give more digits of the id" in run.err


def test_find_across_snapshots_with_host_and_tag(sr: Sr, source: Path) -> None:
    assert sr("backup", "--host", "phone", "--tag", "daily", source).code == 0
    (source / "Media" / "IMG-0003.jpg").write_bytes(b"new")
    assert sr("backup", "--host", "laptop", source).code == 0
    first, second = ids(sr)
    doc = sr("--json", "find", "*.jpg").json()
    assert [(m["snapshot"], m["path"].rsplit("/", 1)[1]) for m in doc["matches"]] == [
        (first, "IMG-0001.jpg"), (second, "IMG-0001.jpg"), (second, "IMG-0003.jpg")]
    assert {m["snapshot"] for m in sr("--json", "find", "--host", "phone", "*.jpg").json()[
        "matches"]} == {first}
    assert {m["snapshot"] for m in sr("--json", "find", "--tag", "daily", "*.db").json()[
        "matches"]} == {first}
    human = sr("find", "Media/IMG-0003*")
    assert human.code == 0 and f"snapshot {second[:8]}" in human.out
    assert "IMG-0003.jpg" in human.out and "IMG-0001" not in human.out
    nothing = sr("find", "*.png")
    assert nothing.code == 0 and "no matches" in nothing.out
    assert sr("--json", "snapshots", "--tag", "daily").json()["snapshots"][0]["tags"] == ["daily"]
    assert sr("--json", "ls", "--host", "phone", "latest").json()["snapshot"]["id"] == first
    assert sr("ls", "--host", "tablet", "latest").code == 10


def test_diff_human_and_json(sr: Sr, source: Path) -> None:
    assert sr("backup", source).code == 0
    (source / "notes.txt").write_text("changed\n")
    (source / "msgstore.db").unlink()
    (source / "new.txt").write_text("n")
    assert sr("backup", source).code == 0
    a, b = ids(sr)
    run = sr("diff", a[:8], b[:8])
    assert run.code == 0, run.err
    assert f"-  {source}/msgstore.db" in run.out
    assert f"+  {source}/new.txt" in run.out
    assert f"M  {source}/notes.txt" in run.out
    assert "1 added" in run.out and "1 removed" in run.out and "1 modified" in run.out
    assert f"U  {source}\n" not in run.out and f"U  {source}" in sr("diff", "--metadata", a, b).out
    doc = sr("--json", "diff", a, b).json()
    assert doc["from"] == a and doc["to"] == b and doc["chats"] == []  # no chat data backed up
    assert doc["stats"]["added"] == 1 and doc["stats"]["bytes_removed"] == 1000
    changed = {c["path"]: c for c in doc["changes"]}
    assert changed[f"{source}/notes.txt"]["what"][:2] == ["size", "content"]


def test_dump_file_tar_and_output_file(sr: Sr, source: Path, tmp_path: Path) -> None:
    assert sr("backup", source).code == 0
    run = sr("dump", "latest", f"{source}/notes.txt")
    assert run.code == 0 and run.out == (source / "notes.txt").read_text()
    tar_run = sr("dump", "latest", str(source))
    assert tar_run.code == 0
    with tarfile.open(fileobj=io.BytesIO(tar_run.result.stdout_bytes)) as tar:
        names = tar.getnames()
    assert "chats/Media/IMG-0001.jpg" in names and all(
        not n.startswith("/") and ".." not in n.split("/") for n in names)
    out = tmp_path / "chats.tar"
    doc = sr("--json", "dump", "latest", str(source), "-o", out).json()
    assert doc["kind"] == "tar" and doc["files"] == 5 and out.stat().st_size > 30_000
    again = sr("dump", "latest", str(source), "-o", out)
    assert again.code == 2 and "never replaces" in again.err
    assert sr("--json", "dump", "latest", str(source)).code == 2  # --json needs --output
    assert sr("dump", "latest", f"{source}/nope", "-o", tmp_path / "x").code == 10
    assert not (tmp_path / "x").exists()  # no partial file left behind


def test_stats(sr: Sr, source: Path) -> None:
    assert sr("backup", source).code == 0
    assert sr("backup", source).code == 0
    doc = sr("--json", "stats").json()
    assert doc["snapshots"] == 2 and doc["dedup_ratio"] == 2.0
    assert doc["restore_size"] == 2 * doc["unique_size"] and doc["stored_size"] > 0
    human = sr("stats", "latest")
    assert human.code == 0 and "dedup ratio:   1.00x" in human.out


def test_backup_exclude_and_exclude_file(sr: Sr, source: Path, tmp_path: Path) -> None:
    patterns = tmp_path / "exclude.txt"
    patterns.write_text("# scratch files\n*.tmp\n\nMedia/*.opus\n")
    assert sr("backup", "--exclude", "msgstore.db", "--exclude-file", patterns, source).code == 0
    names = {e["path"].rsplit("/", 1)[1] for e in sr("--json", "ls", "latest").json()["entries"]}
    assert names == {"chats", "Media", "IMG-0001.jpg", "notes.txt"}
    assert sr("backup", "--exclude", "/", source).code == 2


def test_restore_subpath_include_exclude(sr: Sr, source: Path, tmp_path: Path) -> None:
    assert sr("backup", source).code == 0
    t1 = tmp_path / "t1"
    assert sr("restore", f"latest:{source}/Media", "--target", t1).code == 0
    assert sorted(p.name for p in t1.iterdir()) == ["IMG-0001.jpg", "PTT-0002.opus"]
    t2 = tmp_path / "t2"
    assert sr("restore", "latest", "--target", t2, "--include", "Media",
              "--exclude", "*.opus").code == 0
    got = {str(p.relative_to(t2)) for p in t2.rglob("*") if p.is_file()}
    assert got == {f"{str(source).lstrip('/')}/Media/IMG-0001.jpg"}
    none = sr("restore", "latest", "--target", tmp_path / "t3", "--include", "Photos")
    assert none.code == 10 and "matches nothing" in none.err and str(source) in none.err
    assert sr("restore", f"latest:{source}/Nope", "--target", tmp_path / "t4").code == 10
    assert sr("restore", "latest", "--target", tmp_path / "t5", "--include", "a//b").code == 2


def test_forget_dry_run_says_which_rule_keeps_what(sr: Sr, source: Path) -> None:
    for host in ("a", "b", "a"):
        assert sr("-q", "backup", "--host", host, source).code == 0
    run = sr("forget", "--keep-last", "1", "--dry-run")
    assert run.code == 0, run.err
    assert run.out.count("snapshots of host") == 2 and "last snapshot" in run.out
    assert "in all: keep 2 snapshot(s), would remove 1 snapshot(s), in 2 group(s)" in run.out
    doc = sr("--json", "forget", "--keep-last", "1", "--group-by", "", "-n").json()
    assert len(doc["keep"]) == 1 and len(doc["remove"]) == 2 and doc["dry_run"]
    assert doc["groups"][0]["keep"][0]["reasons"] == ["last snapshot"]
    assert doc["groups"][0]["host"] is None
    assert len(ids(sr)) == 3  # dry runs removed nothing
    assert sr("forget", "--keep-last", "1", "--group-by", "colour").code == 2
    assert sr("forget", "--keep-last", "1", "--host", "b").code == 0
    assert len(ids(sr)) == 3  # only host b was considered, and its one snapshot stays
    assert sr("forget", "--keep-last", "1").code == 0
    assert len(ids(sr)) == 2
