"""The local-folder backend: one file per object under a root folder.

Atomicity comes from the file system, not from locks: every write goes to a
temporary file in the object's own directory, which is fsynced and then
renamed (``put``) or hard-linked (``put_if_absent``) into place.  Both are
single atomic directory operations on POSIX file systems, so a reader opens
either the old whole file or the new whole file, never a partial one.
"""

from __future__ import annotations

import builtins
import errno
import os
import stat as stat_mode
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import ObjectNotFound, PermanentStorageError, RepositoryNotFound, StorageError
from .base import Backend, ObjectInfo, check_name, is_valid_name

# '#' is not allowed in object names, so a temporary file can never be mistaken
# for (or collide with) an object, and ``list`` skips it by construction.
_TEMP_MARK = ".tmp#"

_WHY = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a path component is a file, not a folder",
    errno.EISDIR: "a folder is in the way",
}


class LocalBackend(Backend):
    """Objects as files under ``root``; ``create=True`` makes a missing root.

    ``fsync=False`` skips the fsync calls (tests and benchmarks on throwaway
    data only: a crash may then lose or truncate recent objects).
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False, fsync: bool = True):
        self.root = Path(root).expanduser().absolute()
        self.location = f"local:{self.root}"
        self._fsync = fsync
        if create:
            self._make_root()
        if not self.root.is_dir():
            if self.root.exists():
                raise RepositoryNotFound(f"{self.root} is not a folder")
            raise RepositoryNotFound(f"no repository at {self.root}: the folder does not exist")

    # -- reading -------------------------------------------------------------

    def get(self, name: str) -> bytes:
        path = self._path(name)
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise self._error(exc, "read", name) from exc

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        path = self._path(name)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read(length)
        except OSError as exc:
            raise self._error(exc, "read", name) from exc

    def stat(self, name: str) -> ObjectInfo:
        path = self._path(name)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise self._error(exc, "stat", name) from exc
        if not stat_mode.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"object not found: {name}", object=name)
        return ObjectInfo(name, st.st_size)

    def list(self, prefix: str = "") -> Iterator[str]:
        # Start the walk at the deepest folder the prefix fully names, so that
        # listing "data/3f" does not read the whole repository.
        head = prefix.rpartition("/")[0]
        start = self.root / head if head else self.root
        names: builtins.list[str] = []
        try:
            self._walk(start, head, prefix, names)
        except OSError as exc:
            raise self._error(exc, "list", prefix or "/") from exc
        return iter(names)

    # -- writing -------------------------------------------------------------

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        tmp = self._write_temp(path, name, data)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise self._error(exc, "write", name) from exc
        self._sync_dir(path.parent, name)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        path = self._path(name)
        tmp = self._write_temp(path, name, data)
        try:
            # link() fails with EEXIST instead of replacing: the atomic create.
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise self._error(exc, "create", name) from exc
        finally:
            _unlink_quietly(tmp)
        self._sync_dir(path.parent, name)
        return True

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return  # a folder is never an object, so the object is absent
        except OSError as exc:
            raise self._error(exc, "delete", name) from exc
        self._sync_dir(path.parent, name)

    def remove_stale_temp_files(self, max_age: float = 24 * 3600.0,
                                now: Callable[[], float] = time.time) -> int:
        """Delete temporary files older than ``max_age`` seconds left by a crash; return the count."""
        removed = 0
        cutoff = now() - max_age
        for dirpath, _dirs, files in os.walk(self.root):
            for fname in files:
                full = os.path.join(dirpath, fname)
                try:
                    if fname.startswith(_TEMP_MARK) and os.stat(full).st_mtime < cutoff:
                        os.unlink(full)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    # -- helpers -------------------------------------------------------------

    def _path(self, name: str) -> Path:
        check_name(name)
        return self.root.joinpath(*name.split("/"))

    def _make_root(self) -> None:
        try:
            self._make_dirs(self.root)
        except OSError as exc:
            raise self._error(exc, "create the folder", str(self.root)) from exc

    def _make_dirs(self, folder: Path) -> None:
        """Create ``folder`` and missing parents, fsyncing each new entry's parent."""
        if folder.is_dir():
            return
        self._make_dirs(folder.parent)
        try:
            os.mkdir(folder)
        except FileExistsError:
            return  # a concurrent writer created it
        if self._fsync:
            _fsync_dir(folder.parent)

    def _write_temp(self, path: Path, name: str, data: bytes) -> str:
        tmp = str(path.parent / f"{_TEMP_MARK}{os.urandom(8).hex()}#{path.name}")
        try:
            self._make_dirs(path.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._error(exc, "write", name) from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if self._fsync:
                    os.fsync(f.fileno())
        except OSError as exc:
            _unlink_quietly(tmp)
            raise self._error(exc, "write", name) from exc
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return tmp

    def _sync_dir(self, folder: Path, name: str) -> None:
        if not self._fsync:
            return
        try:
            _fsync_dir(folder)
        except OSError as exc:
            raise self._error(exc, "sync", name) from exc

    def _walk(self, folder: Path, rel: str, prefix: str, out: builtins.list[str]) -> None:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if name.startswith(prefix) or prefix.startswith(name + "/"):
                    self._walk(Path(entry.path), name, prefix, out)
            elif name.startswith(prefix) and is_valid_name(name):
                out.append(name)

    def _error(self, exc: OSError, action: str, name: str) -> StorageError:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR) and action in ("read", "stat"):
            return ObjectNotFound(f"object not found: {name}", object=name)
        if exc.errno == errno.EISDIR and action in ("read", "stat"):
            return ObjectNotFound(f"object not found: {name}", object=name)
        why = _WHY.get(exc.errno or 0) or exc.strerror or type(exc).__name__
        return PermanentStorageError(f"{self.location}: cannot {action} {name}: {why}",
                                     object=name, location=self.location)




def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
