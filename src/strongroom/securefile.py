"""Writing local secret files, and the private directories they live in.

Every secret Strongroom keeps on a local disk (the vault's sealed secrets
file, the device's key files, the device's backup head counters) goes
through :func:`write_secret_file`: the bytes are written to a fresh file with
a random name (64 bits) in the same directory, opened ``O_CREAT|O_EXCL|O_NOFOLLOW``
with mode 0600, synced, renamed over the final name, and the directory is
synced.  That guards against:

* a link planted at a predictable temporary name (``<name>.tmp``) by another
  local user, through which the old code wrote the secret wherever it pointed;
* the umask: the mode is set on the open descriptor, so ``umask 000`` still
  gives 0600;
* a crash in the middle: the final name holds the old file or the whole new
  one, never a torn one.

:func:`ensure_private_dir` creates the device's directories with mode 0700
whatever the umask is, and refuses (``LocalSecretsUnsafe``) a directory that
another local user could write to, that is a symbolic link, or that belongs to
someone else: there they could plant a key or reset a rollback counter.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from .errors import LocalSecretsUnsafe

FILE_MODE = 0o600
DIR_MODE = 0o700
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NAME_ATTEMPTS = 100  # 64-bit random names: more than one clash means the rng is broken
# link() is not offered by every file system (FAT on a USB stick, some FUSE mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def write_secret_file(path: str | os.PathLike[str], data: bytes, *, replace: bool = True,
                      rng: Callable[[int], bytes] = os.urandom) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600, never through a link.

    With ``replace=False`` an existing ``path`` (a file or a link) is never
    replaced: ``FileExistsError``.  Other ``OSError`` pass through, and no
    temporary file is left behind.  ``rng`` picks the temporary names.
    """
    final = Path(path)
    tmp = _write_temporary(final, data, rng)
    try:
        if replace:
            os.replace(tmp, final)  # rename replaces a link at `final`, never follows it
        else:
            _link_exclusive(tmp, final, data)
            _unlink_quietly(tmp)
    except BaseException:
        _unlink_quietly(tmp)  # only while the name is still ours (not after the rename)
        raise
    fsync_dir(final.parent)


def _write_temporary(final: Path, data: bytes, rng: Callable[[int], bytes]) -> Path:
    """A new 0600 file next to ``final`` holding ``data``, synced."""
    for attempt in range(_NAME_ATTEMPTS):
        tmp = final.with_name(f".{final.name}.{rng(8).hex()}.tmp")
        try:
            fd = os.open(tmp, _OPEN_FLAGS, FILE_MODE)
            break
        except FileExistsError:
            # Someone holds that name (planted, or a crash's leftover): pick another.
            if attempt == _NAME_ATTEMPTS - 1:
                raise
    try:
        os.fchmod(fd, FILE_MODE)  # the umask can only have removed bits; this is exact
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def _link_exclusive(tmp: Path, final: Path, data: bytes) -> None:
    """Give ``tmp`` the name ``final`` unless ``final`` exists (atomic where links exist)."""
    try:
        os.link(tmp, final, follow_symlinks=False)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    # No hard links here: create the final name itself exclusively (still never through
    # a link and never over an existing file, only not atomic against a crash).
    fd = os.open(final, _OPEN_FLAGS, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        _unlink_quietly(final)
        raise
    os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable (where the file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def ensure_private_dir(path: str | os.PathLike[str], *, top: str | os.PathLike[str] | None = None
                       ) -> Path:
    """Create ``path`` (mode 0700, whatever the umask) and check it is private.

    Every directory from ``top`` (default: ``path`` itself) down to ``path``
    is checked; ``LocalSecretsUnsafe`` if one is a symbolic link, not a
    directory, not owned by this user, or writable by group or others.
    Missing directories, ``top``'s parents included, are created 0700.
    ``OSError`` if one cannot be created.
    """
    target = Path(path)
    chain = _chain(target, top)  # ValueError before anything is created
    for directory in chain:  # nothing is created inside a directory that is not private
        if not os.path.lexists(directory):
            break
        check_private_dir(directory)
    _make_dirs(target)
    for directory in chain:  # again: one may have been swapped in the meantime
        check_private_dir(directory)
    return target


def check_private_dirs(path: str | os.PathLike[str], *, top: str | os.PathLike[str] | None = None
                       ) -> None:
    """:func:`check_private_dir` for every directory from ``top`` down to ``path``."""
    for directory in _chain(Path(path), top):
        check_private_dir(directory)


def _chain(target: Path, top: str | os.PathLike[str] | None) -> list[Path]:
    """``top``, the directories between, and ``target``, outermost first."""
    if top is None or Path(top) == target:
        return [target]
    stop = Path(top)
    if stop not in target.parents:
        raise ValueError("top must be path or one of its parents")
    between = [p for p in target.parents if stop in p.parents]
    return [stop, *reversed(between), target]


def _make_dirs(target: Path) -> None:
    missing: list[Path] = []
    for p in (target, *target.parents):
        if os.path.lexists(p):
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, DIR_MODE)
        except FileExistsError:
            continue  # made at the same moment by another process: checked below
        os.chmod(p, DIR_MODE, follow_symlinks=False)  # exact, even under umask 000


def check_private_dir(directory: str | os.PathLike[str]) -> None:
    """``LocalSecretsUnsafe`` unless ``directory`` is a real directory only this user can write."""
    d = Path(directory)
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        raise LocalSecretsUnsafe(f"{d} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise LocalSecretsUnsafe(f"{d} is a symbolic link; Strongroom keeps keys only in a real "
                                 "directory", hint=f"replace the link by a directory: {d}")
    if not stat.S_ISDIR(st.st_mode):
        raise LocalSecretsUnsafe(f"{d} is not a directory")
    if st.st_uid != os.geteuid():
        raise LocalSecretsUnsafe(f"{d} belongs to another user (uid {st.st_uid})",
                                 hint="use a directory of your own", reason="foreign-owner")
    if st.st_mode & 0o022:
        raise LocalSecretsUnsafe(
            f"{d} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            "they could plant a key or reset a rollback counter there",
            hint=f"check its contents, then: chmod 700 {d}")


__all__ = ["check_private_dir", "check_private_dirs", "ensure_private_dir", "fsync_dir", "write_secret_file"]
