"""StatusReporter: percentage, ETA, files and current file from the engine's calls."""

from __future__ import annotations

from pathlib import Path

import strongroom
from strongroom.progress import Status, StatusReporter


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_percentage_eta_files_and_current_file() -> None:
    clock, seen = Clock(), []
    rep = StatusReporter(seen.append, interval=1.0, clock=clock)
    rep.start("backup", 1000, "bytes")
    rep.totals(4, 1000)
    clock.t += 2.0
    rep.item("/home/me/a.db")
    rep.advance(250)
    s = rep.status()
    assert (s.percent, s.files_done, s.files_total, s.current) == (25.0, 1, 4, "/home/me/a.db")
    assert s.eta == 6.0  # 2 s for a quarter: 6 s for the rest
    rep.finish()
    assert seen[-1].finished and seen[-1].percent == 100.0 and seen[-1].eta == 0.0
    assert seen[-1].current is None


def test_unknown_total_and_rate_limit() -> None:
    clock, seen = Clock(), []
    rep = StatusReporter(seen.append, interval=0.5, clock=clock)
    rep.start("check", None, "packs")
    for _ in range(100):
        rep.advance(1)  # the clock does not move: no status beyond the start
    assert len(seen) == 1 and seen[0].percent is None and seen[0].eta is None
    clock.t += 0.6
    rep.advance(1)
    assert len(seen) == 2 and seen[1].done == 101
    assert Status("x", "bytes", 0, 0, 0, None, None, 0.0).percent == 100.0
    assert set(seen[1].to_json()) >= {"phase", "percent", "eta_seconds", "files_done", "current"}


def test_a_backup_reports_scan_totals_before_reading(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}").write_bytes(bytes([i]) * (1000 * (i + 1)))
    (src / "link").symlink_to("f0")
    seen: list[Status] = []
    repo = strongroom.Repository.create(strongroom.storage_memory(),
                                        strongroom.BackupKey.generate())
    repo.backup([src], progress=StatusReporter(seen.append, interval=0.0))
    scan = [s for s in seen if s.phase == "scan"]
    backup = [s for s in seen if s.phase == "backup"]
    assert scan[-1].finished and scan[-1].done == 5  # symlinks are not files
    assert backup[0].total == 15000 and backup[0].files_total == 5
    assert backup[-1].files_done == 5 and backup[-1].percent == 100.0
    # The second backup reads nothing, and still reaches 100 % by the same totals.
    seen.clear()
    repo.backup([src], progress=StatusReporter(seen.append, interval=0.0))
    done = [s for s in seen if s.phase == "backup"]
    assert done[-2].done == 15000 and done[-1].finished


def test_a_backup_with_excludes_scans_what_it_reads(tmp_path: Path) -> None:
    # The scan leaves out what --exclude leaves out, so the totals are those of the
    # files read and the last status says 100 %.
    src = tmp_path / "src"
    (src / "cache" / "deep").mkdir(parents=True)
    (src / "Media").mkdir()
    (src / "msgstore.db").write_bytes(b"m" * 4000)
    (src / "notes.tmp").write_bytes(b"t" * 3000)
    (src / "cache" / "a").write_bytes(b"c" * 5000)
    (src / "cache" / "deep" / "b").write_bytes(b"d" * 6000)
    (src / "Media" / "p.jpg").write_bytes(b"j" * 2000)
    seen: list[Status] = []
    repo = strongroom.Repository.create(strongroom.storage_memory(),
                                        strongroom.BackupKey.generate())
    summary = repo.backup([src], exclude=["cache", "*.tmp", f"{src}/Media/p.jpg"],
                          progress=StatusReporter(seen.append, interval=0.0))
    assert summary.files == 1
    scan = [s for s in seen if s.phase == "scan"]
    backup = [s for s in seen if s.phase == "backup"]
    assert scan[-1].done == 1
    assert backup[0].total == 4000 and backup[0].files_total == 1
    assert backup[-1].finished and backup[-1].done == 4000 and backup[-1].percent == 100.0
