"""Restore a snapshot into a directory.

Each file is written under a temporary name in its final directory and renamed
only when complete, with mode and mtime set, so a partial file never carries
its real name.  Frames are downloaded and decrypted a few ahead by a small
thread pool while the caller's thread writes.  Damage raises ``DataDamaged``
naming the object and the file; with ``allow_damaged`` the damaged files are
skipped, listed in the summary, and everything else is restored.
"""

from __future__ import annotations

import errno
import itertools
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import DataDamaged, LocalWriteError
from ..progress import Progress
from .locks import Lock
from .manifest import KIND_DIR, KIND_FILE, KIND_SYMLINK, Entry
from .pack import BlobLocation

if TYPE_CHECKING:
    from ..api import RestoreSummary
    from .engine import Engine

PREFETCH = 6
_FrameKey = tuple[bytes, int]


def _wanted(path: str, include: list[str]) -> bool:
    return not include or any(path == p or path.startswith(p + "/") or p.startswith(path + "/")
                              for p in include)


class RestoreRun:
    """State of one restore (use once)."""

    def __init__(self, engine: Engine, progress: Progress, allow_damaged: bool) -> None:
        self.engine, self.progress, self.allow_damaged = engine, progress, allow_damaged
        self.files = self.bytes = 0
        self.damaged: list[str] = []
        self._dirs: list[tuple[Path, Entry]] = []
        self._tmp_counter = itertools.count()
        self._cur_key: _FrameKey | None = None
        self._cur_frame: bytes | DataDamaged = b""

    def run(self, ref: str, target: Path, include: Sequence[str]) -> RestoreSummary:
        """Restore snapshot ``ref`` (or the paths under ``include``) into ``target``."""
        from ..api import RestoreSummary

        lock = Lock(self.engine.backend, self.engine.key, False, self.engine.clock,
                    self.engine.rng).acquire()
        try:
            doc = self.engine.find_doc(ref)
            inc = [p.strip("/") for p in include if p.strip("/")]
            self._mkdir(target)
            self.progress.start("restore", doc.bytes, "bytes")
            with ThreadPoolExecutor(3, thread_name_prefix="strongroom-restore") as pool:
                self._restore_all(doc, target, inc, pool)
            # Directory times last: writing files into a directory changes its mtime.
            for path, entry in reversed(self._dirs):
                self._set_meta(path, entry)
            self.progress.finish()
        finally:
            lock.release()
        return RestoreSummary(doc.id, self.files, self.bytes, list(self.damaged))

    def _selected(self, doc: object, inc: list[str]) -> Iterator[Entry]:
        # Include prefixes select a path itself, what is under it, and its parent dirs.
        for e in self.engine.entries(doc):  # type: ignore[arg-type]
            if _wanted(e.path, inc):
                yield e

    def _restore_all(self, doc: object, target: Path, inc: list[str],
                     pool: ThreadPoolExecutor) -> None:
        entries_a, entries_b = itertools.tee(self._selected(doc, inc))
        frames = self._prefetch(self._frame_keys(entries_a), pool)
        for entry in entries_b:
            dest = target / entry.path
            if entry.kind == KIND_DIR:
                self._mkdir(dest)
                self._dirs.append((dest, entry))
            elif entry.kind == KIND_SYMLINK:
                self._symlink(dest, entry)
            elif entry.kind == KIND_FILE:
                self._file(dest, entry, frames)

    def _locate(self, blob_id: bytes) -> tuple[bytes, BlobLocation] | None:
        return self.engine.index().blobs.get(blob_id)

    def _frame_keys(self, entries: Iterator[Entry]) -> Iterator[tuple[_FrameKey, BlobLocation]]:
        last: _FrameKey | None = None
        for e in entries:
            for cid in e.chunks if e.kind == KIND_FILE else ():
                where = self._locate(cid)
                if where is None:
                    continue
                key = (where[0], where[1].frame_offset)
                if key != last:
                    last = key
                    yield key, where[1]

    def _prefetch(self, keys: Iterator[tuple[_FrameKey, BlobLocation]], pool: ThreadPoolExecutor
                  ) -> Iterator[tuple[_FrameKey, Future[bytes]]]:
        queue: deque[tuple[_FrameKey, Future[bytes]]] = deque()
        for key, loc in keys:
            queue.append((key, pool.submit(self.engine.fetch_frame, key[0], loc)))
            if len(queue) > PREFETCH:
                yield queue.popleft()
        while queue:
            yield queue.popleft()

    def _file(self, dest: Path, entry: Entry,
              frames: Iterator[tuple[_FrameKey, Future[bytes]]]) -> None:
        tmp = dest.with_name(f".{dest.name}.strongroom-{os.getpid()}-{next(self._tmp_counter)}")
        problem: DataDamaged | None = None
        self._mkdir(dest.parent)
        try:
            with self._open(tmp) as out:
                for cid in entry.chunks:
                    where = self._locate(cid)
                    if where is None:
                        reason = self.engine.index().missing_reason()
                        problem = problem or DataDamaged(
                            f"blob {cid.hex()[:16]} {reason} (affects {entry.path})")
                        continue
                    key, loc = (where[0], where[1].frame_offset), where[1]
                    if key != self._cur_key:
                        self._cur_key, fut = next(frames)
                        self._cur_frame = self._frame_result(fut)
                    if isinstance(self._cur_frame, DataDamaged):
                        problem = problem or DataDamaged(
                            f"{self._cur_frame.message} (affects {entry.path})")
                        continue
                    if problem is None:
                        out.write(self._cur_frame[loc.inner : loc.inner + loc.length])
        except OSError as exc:
            _remove(tmp)
            raise LocalWriteError(f"cannot write {dest}: {exc.strerror or exc}") from exc
        if problem is not None:
            _remove(tmp)
            if not self.allow_damaged:
                raise problem
            self.damaged.append(entry.path)
            self.progress.warn(f"{entry.path}: not restored, {problem.message}")
            return
        self._set_meta(tmp, entry)
        os.replace(tmp, dest)
        self.files += 1
        self.bytes += entry.size
        self.progress.advance(entry.size)

    @staticmethod
    def _frame_result(fut: Future[bytes]) -> bytes | DataDamaged:
        try:
            return fut.result()
        except DataDamaged as exc:
            return exc

    def _open(self, path: Path) -> BinaryIO:
        hook = self.engine._test_only_open_for_write
        if hook is not None:
            return hook(path)
        return open(path, "wb")

    def _symlink(self, dest: Path, entry: Entry) -> None:
        self._mkdir(dest.parent)
        tmp = dest.with_name(f".{dest.name}.strongroom-{os.getpid()}-{next(self._tmp_counter)}")
        try:
            os.symlink(entry.link, tmp)
            os.utime(tmp, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
            os.replace(tmp, dest)
        except OSError as exc:
            _remove(tmp)
            raise LocalWriteError(f"cannot create {dest}: {exc.strerror or exc}") from exc

    @staticmethod
    def _mkdir(path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LocalWriteError(f"cannot create {path}: {exc.strerror or exc}") from exc

    @staticmethod
    def _set_meta(path: Path, entry: Entry) -> None:
        try:
            os.chmod(path, entry.mode & 0o7777)
            os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))
        except OSError as exc:
            if exc.errno not in (errno.EPERM,):
                raise LocalWriteError(f"cannot set times of {path}: {exc.strerror}") from exc


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
