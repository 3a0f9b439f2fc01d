"""Helpers shared by the engine tests: deterministic rng/clock, trees, a spying backend."""

from __future__ import annotations

import os
import random
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from strongroom.storage.base import Backend, ObjectInfo
from strongroom.storage.memory import MemoryBackend

BASE_TIME = 1_780_000_000.0


class Rng:
    """A seeded byte source standing in for os.urandom, so tests are exact."""

    def __init__(self, seed: int = 1) -> None:
        self._r = random.Random(seed)

    def __call__(self, n: int) -> bytes:
        return self._r.randbytes(n)


class Clock:
    """A clock that advances ``step`` seconds on every reading."""

    def __init__(self, start: float = BASE_TIME, step: float = 1.0) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Killed(Exception):
    """Raised by SpyBackend to simulate a backup killed after N puts."""


class SpyBackend(Backend):
    """Wraps a backend; counts calls per name prefix and can fail after N puts."""

    def __init__(self, inner: Backend | None = None, fail_after_puts: int | None = None) -> None:
        self.inner = inner or MemoryBackend()
        self.location = self.inner.location
        self.gets: list[str] = []
        self.puts: list[tuple[str, int]] = []
        self.fail_after_puts = fail_after_puts

    def get(self, name: str) -> bytes:
        self.gets.append(name)
        return self.inner.get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self.gets.append(name)
        return self.inner.get_range(name, offset, length)

    def _count_put(self, name: str, data: bytes) -> None:
        if self.fail_after_puts is not None and len(self.puts) >= self.fail_after_puts:
            raise Killed(f"killed before writing {name}")
        self.puts.append((name, len(data)))

    def put(self, name: str, data: bytes) -> None:
        self._count_put(name, data)
        self.inner.put(name, data)

    def put_if_absent(self, name: str, data: bytes) -> bool:
        self._count_put(name, data)
        return self.inner.put_if_absent(name, data)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list(prefix)

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    def stat(self, name: str) -> ObjectInfo:
        return self.inner.stat(name)

    def put_bytes(self, prefix: str) -> int:
        """Bytes written to objects whose name starts with ``prefix``."""
        return sum(n for name, n in self.puts if name.startswith(prefix))


def make_db(path: Path, rows: int = 3000, seed: int = 1) -> None:
    """A SQLite message store with an index (4 KiB pages)."""
    rnd = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("create table m(id integer primary key, chat int, status int, body text)")
    db.execute("create index m_chat on m(chat, id)")
    db.executemany("insert into m(chat, status, body) values (?, 1, ?)",
                   [(rnd.randrange(50), f"message {i} " * rnd.randrange(1, 12))
                    for i in range(rows)])
    db.commit()
    db.close()


def make_tree(root: Path, seed: int = 1) -> Path:
    """A small chat-like tree: nested dirs, empty file, symlinks, modes, a db, media."""
    rnd = random.Random(seed)
    (root / "chats" / "media" / "voice").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "chats" / "empty.txt").write_bytes(b"")
    (root / "chats" / "notes.txt").write_text("hello\n" * 5000)
    (root / "chats" / "media" / "p1.jpg").write_bytes(rnd.randbytes(300_000))
    (root / "chats" / "media" / "voice" / "v1.opus").write_bytes(rnd.randbytes(40_000))
    (root / "chats" / "blob.bin").write_bytes(rnd.randbytes(700_000))
    make_db(root / "chats" / "msgstore.db", seed=seed)
    os.symlink("notes.txt", root / "chats" / "link-to-notes")
    os.symlink("/nonexistent/target", root / "chats" / "dangling")
    os.chmod(root / "chats" / "notes.txt", 0o600)
    os.chmod(root / "chats" / "blob.bin", 0o751)
    for i, p in enumerate(sorted(root.rglob("*"))):
        os.utime(p, ns=(1_700_000_000_000_000_000 + i * 1_000_000_123,) * 2,
                 follow_symlinks=False)
    return root


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a restore must reproduce: kind, mode, mtime, content or link target."""
    out: dict[str, tuple[object, ...]] = {}
    for p in sorted(root.rglob("*")):
        st = os.lstat(p)
        rel = str(p.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(p), st.st_mtime_ns)
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns, p.read_bytes())
    return out


def restored_root(target: Path, source: Path) -> Path:
    """Where a source directory lands under a restore target."""
    return target / os.path.abspath(source).lstrip("/")
