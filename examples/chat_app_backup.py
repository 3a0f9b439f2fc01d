"""A chat app's backup, end to end, with the Strongroom library (docs/sdk.md).

What a messaging app does, in the order it does it:

1. create a repository with a fresh 64-digit key (the user writes it down);
2. back up the app's data folder from its asyncio event loop, showing
   progress (percentage, time left, current file) and letting the user stop;
3. on a "new device" (another folder, the key typed in again), restore the
   latest snapshot into the app's new data folder without the old device's
   absolute path (``strip``).

Run it as ``python examples/chat_app_backup.py`` (a temporary folder and a
local repository), or give ``--repo`` any location the CLI accepts, e.g.
``--repo s3:https://s3.example.org/bucket/chats`` (credentials from the
environment; an app would build ``strongroom.storage_s3(...)`` with its own).
``--quick`` uses less data (what the test suite runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import strongroom
from strongroom import aio

MiB = 1024 * 1024


def make_chat_data(root: Path, media_files: int, db_size: int) -> Path:
    """A stand-in for the app's data folder: a message database and media."""
    data = root / "data" / "com.example.chat"
    (data / "Media" / "Images").mkdir(parents=True)
    (data / "msgstore.db").write_bytes(os.urandom(db_size))
    for i in range(media_files):
        (data / "Media" / "Images" / f"IMG-2026{i:04}.jpg").write_bytes(os.urandom(40_000))
    return data


def show(status: strongroom.Status) -> None:
    """The app's progress line (here on stderr; a real app updates its UI)."""
    pct = "   ?" if status.percent is None else f"{status.percent:5.1f}%"
    eta = "" if status.eta is None else f" eta {status.eta:4.1f}s"
    files = f" {status.files_done}/{status.files_total} files" \
        if status.files_total is not None else ""
    name = f" {Path(status.current).name}" if status.current else ""
    print(f"  [{status.phase}] {pct}{eta}{files}{name}", file=sys.stderr)


async def backup_with_a_stop_button(repo: aio.AsyncRepository, data: Path) -> None:
    """Start a backup, press "stop" while it reads, then back up for real."""
    reading = asyncio.Event()

    def watch(status: strongroom.Status) -> None:
        if status.phase == "backup" and status.done > 0:
            reading.set()

    task = asyncio.create_task(repo.backup([data], on_status=watch))
    await reading.wait()
    task.cancel()  # the user pressed "stop"
    try:
        done = await task
    except asyncio.CancelledError:
        print("backup stopped by the user; nothing half-written is visible")
        assert await repo.snapshots() == [], "a stopped backup never leaves a snapshot"
    else:  # the stop came while the snapshot was being committed: it is complete
        print(f"backup finished before the stop took effect: snapshot {done.snapshot_id[:8]}")

    summary = await repo.backup([data], on_status=show)
    print(f"snapshot {summary.snapshot_id[:8]}: {summary.files} files, "
          f"{summary.bytes_added} bytes stored")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", help="repository location (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="less data (for tests)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="chat-app-") as tmp:
        root = Path(tmp)
        media, db = (20, 24 * MiB) if args.quick else (400, 128 * MiB)
        data = make_chat_data(root / "old-phone", media, db)
        location = args.repo or str(root / "backup-repo")

        # 1. A new repository and its key: the app shows the 64 digits once.
        key = strongroom.BackupKey.generate()
        repo = await aio.create(location, key)
        print(f"repository {repo.id[:8]} created; write down the key:\n  {key.digits()}")

        # 2. Backup with progress and a stop button.
        await backup_with_a_stop_button(repo, data)
        report = await repo.check(read_data=True)
        print(f"check: {'ok' if report.ok else report.problems}")
        await repo.close()

        # 3. The new device: the user types the key; the old path is stripped.
        typed = strongroom.BackupKey.parse(key.digits().upper().replace(" ", "-"))
        try:
            new_repo = await aio.open(location, typed)
        except strongroom.WrongKey as exc:  # what the app shows for a mistyped key
            print(f"{exc.message}: {exc.hint}", file=sys.stderr)
            return 1
        latest = await new_repo.find_snapshot("latest")
        new_data = root / "new-phone" / "files"
        restored = await new_repo.restore("latest", new_data, strip=latest.paths[0],
                                          on_status=show)
        await new_repo.close()
        same = all((new_data / p.relative_to(data)).read_bytes() == p.read_bytes()
                   for p in data.rglob("*") if p.is_file())
        print(f"restored {restored.files} files into {new_data.name}/ "
              f"({'byte-identical' if same else 'DIFFERENT'})")
        return 0 if same and report.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
