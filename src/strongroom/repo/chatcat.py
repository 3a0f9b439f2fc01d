"""The chat catalogue of a snapshot: written by backup, read by ``chats`` (spec §17).

Backup hands every regular file to a :class:`Cataloguer`.  A file the parent snapshot's
catalogue already describes and that did not change (same record: size, mtime, inode,
ctime) keeps its entries and warnings without being opened; a changed or new file whose
name (and first 4 KiB) looks like chat data is parsed from the same open file that is
being stored -- a text or JSON export is read into memory once and chunked from there,
so the catalogue describes exactly the stored bytes; a zip is chunked from the file and
then only its directory and log are read back through the same descriptor; an SQLite
store is counted in SQL through a duplicate of that descriptor, in a worker thread while
the walk goes on (SQLite runs without the GIL; the pages are in the page cache).  Parsing never fails a
backup: whatever goes wrong is a warning naming the path.

The catalogue (:mod:`strongroom.chats.catalogue`) is stored as meta blobs in packs, cut
at 1 MiB like file-list segments, so it is compressed, encrypted and padded like every
other blob, an unchanged catalogue deduplicates, and the provider sees no new object.
The snapshot lists those blob ids in its ``chats`` field; a snapshot without the field
was written before catalogues and has none.

The read side: :func:`load_catalogue`, :func:`open_chat` (the messages, parsed again from
the snapshot's copy of the source file), :func:`find_chats` and :func:`chat_changes`.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import posixpath
import stat
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..chats import catalogue as cat
from ..chats.catalogue import Catalogue, CatalogueEntry
from ..chats.detect import Format, detect, parse
from ..errors import AmbiguousChat, ChatNotFound, DataDamaged
from .manifest import KIND_FILE, SEGMENT_MAX, Entry, SnapshotDoc

if TYPE_CHECKING:
    from ..chats.model import Chat, Message
    from ..chats.msgstore import Summary
    from ..chats.search import MessageHit
    from .engine import Engine

#: A text or JSON export is read whole to be parsed; larger ones are stored, not catalogued.
MAX_TEXT = 1 << 30
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_IN_MEMORY = (Format.WHATSAPP_TXT, Format.TELEGRAM_JSON)


class Cataloguer:
    """Collects the catalogue of one backup run (use once)."""

    def __init__(self, previous: Catalogue | None, warn: Callable[[str], None], *,
                 enabled: bool = True, roots: Sequence[str] = ("",)) -> None:
        self.enabled = enabled
        self.roots = list(roots)
        self.previous = previous
        self._warn = warn
        self.entries: list[CatalogueEntry] = []
        self.parsed: dict[str, tuple[str, ...]] = {}
        self.warnings: list[str] = []
        #: Files whose catalogue part was parsed in this run / carried over unparsed.
        self.parsed_now: list[str] = []
        self.reused = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[str, Future[Summary]]] = []

    # -- backup side -----------------------------------------------------------------
    def unchanged(self, arch: str, path: str | Path, neighbours: Sequence[str]) -> None:
        """*arch* is stored from the parent's chunks: carry its entries over.  Only when
        the parent has no catalogue at all is the file looked at (once, after upgrading)."""
        if not self.enabled:
            return
        if self.previous is not None:
            found = self.previous.of_file(arch)
            if found is not None:
                self.reused += 1
                self._add(arch, found[0], found[1])
            return
        fmt = detect(arch, lambda n: _read_head(path, n))
        if fmt is None:
            return
        try:
            fd = os.open(path, _OPEN)
        except OSError as exc:
            self._add(arch, [], (f"not catalogued: unreadable ({exc.strerror})",))
            return
        with open(fd, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            src = self.source(fmt, f, size)
            if src is not None:
                self.parse(arch, fmt, src, neighbours)

    def detect(self, arch: str, f: BinaryIO) -> Format | None:
        """The chat format of the file being stored (reads at most its head, then rewinds)."""
        if not self.enabled:
            return None
        fmt = detect(arch, f)
        f.seek(0)
        return fmt

    def source(self, fmt: Format | None, f: BinaryIO, size: int) -> BinaryIO | None:
        """What to chunk and then parse: for a text export, its bytes read once into memory;
        otherwise *f* itself.  None (after a warning) for a text export too large to parse."""
        if fmt not in _IN_MEMORY:
            return f
        if size > MAX_TEXT:
            return None
        return io.BytesIO(f.read())

    def too_large(self, arch: str) -> None:
        """Record that *arch* is a chat export too large to be catalogued."""
        self._add(arch, [], ("chat export larger than 1 GiB: stored, not catalogued",))

    def parse(self, arch: str, fmt: Format, src: BinaryIO,
              neighbours: Sequence[str]) -> None:
        """Parse the file just stored from *src* (as :meth:`source` gave it)."""
        self.parsed_now.append(arch)
        if isinstance(src, io.BytesIO):
            result = parse(arch, fmt, src.getvalue(), neighbours=neighbours)
            entries = [CatalogueEntry.of(c, arch) for c in result.chats]
            warnings = tuple(w.message for w in result.warnings)
        elif fmt is Format.SQLITE_STORE:
            fd_path = f"/proc/self/fd/{src.fileno()}"
            if os.path.exists(fd_path):
                # Counted in SQL on a second descriptor of the file just stored (not by its
                # name, which may point elsewhere by now), in a thread: SQLite runs without
                # the GIL, so this overlaps the rest of the walk (spec §17).
                dup = os.dup(src.fileno())
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="chats")
                self._pending.append((arch, self._pool.submit(_summarize_fd, arch, dup)))
                return
            from ..chats.msgstore import summarize_bytes

            src.seek(0)
            entries_t, warns = summarize_bytes(arch, src.read())
            entries, warnings = list(entries_t), tuple(w.message for w in warns)
        else:
            src.seek(0)
            from ..chats.whatsapp import parse_zip

            result = parse_zip(arch, src)
            entries = [CatalogueEntry.of(c, arch) for c in result.chats]
            warnings = tuple(w.message for w in result.warnings)
        self._add(arch, entries, warnings)

    def wait(self) -> None:
        """Collect the message stores still being counted (called by :meth:`store`; call it
        also when a backup is abandoned, so no thread outlives it)."""
        pending, self._pending = self._pending, []
        for arch, future in pending:
            entries, warns = future.result()
            self._add(arch, list(entries), tuple(w.message for w in warns))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _add(self, arch: str, entries: list[CatalogueEntry], warnings: tuple[str, ...]) -> None:
        if len(arch) > cat.MAX_STRING or cat.bad_path(arch):
            message = f"/{arch[:200]}...: path too long for the chat catalogue"
            self.warnings.append(message)
            self._warn(f"chats: {message}")
            return
        notes = [w for w in warnings if w]
        for e in entries:
            e = _present(e, self.roots)
            try:
                cat.check_entry(e)
            except DataDamaged as exc:  # e.g. a 5,000-character chat name: skip that chat
                notes.append(f"a chat not catalogued ({exc.message})")
                continue
            self.entries.append(e)
        warnings = tuple(w[: cat.MAX_STRING] for w in notes)[: cat.MAX_WARNINGS]
        self.parsed[arch] = warnings
        for w in warnings:
            message = f"/{arch}: {w}"
            self.warnings.append(message)
            self._warn(f"chats: {message}")

    def store(self, put: Callable[[bytes], bytes]) -> list[bytes] | None:
        """Encode the catalogue and store it as meta blobs; their ids, in order (None when
        disabled: a version-1 repository's snapshots carry no catalogue, spec §17)."""
        if not self.enabled:
            return None
        self.wait()
        try:
            data = cat.encode(self.entries, self.parsed)
        except DataDamaged as exc:  # a value no parser should produce: keep the backup
            self._warn(f"chats: catalogue not saved ({exc.message})")
            data = cat.encode([], {})
        return [put(data[i : i + SEGMENT_MAX]) for i in range(0, len(data), SEGMENT_MAX)]


def _present(e: CatalogueEntry, roots: Sequence[str]) -> CatalogueEntry:
    """*e* with only the attachment files under *roots* (the snapshot's source paths) that
    are regular files: a store or a Telegram export names files the snapshot may lack."""
    def kept(f: str) -> bool:
        if f == e.source:
            return True
        if cat.bad_path(f) or not any(not r or f.startswith(r + "/") for r in roots):
            return False
        try:
            return stat.S_ISREG(os.lstat("/" + f).st_mode)
        except (OSError, ValueError):
            return False

    files = tuple(f for f in e.files if kept(f))
    return e if files == e.files else dataclasses.replace(e, files=files)


def _read_head(path: str | Path, n: int) -> bytes:
    try:
        fd = os.open(path, _OPEN)
    except OSError:
        return b""
    with open(fd, "rb", buffering=0) as f:
        return f.read(n) or b""


def _summarize_fd(arch: str, fd: int) -> Summary:
    from ..chats.msgstore import summarize_path

    try:
        return summarize_path(arch, disk=f"/proc/self/fd/{fd}")
    except Exception as exc:  # noqa: BLE001 - a parser bug must not fail the backup
        return _failed(arch, f"not catalogued ({type(exc).__name__})")
    finally:
        os.close(fd)


def _failed(arch: str, message: str) -> Summary:
    from ..chats.model import ChatParseWarning

    return (), (ChatParseWarning(arch, message),)


# -- read side ----------------------------------------------------------------------------
def load_catalogue(engine: Engine, doc: SnapshotDoc) -> Catalogue | None:
    """The snapshot's catalogue; None for a snapshot written before catalogues.
    ``DataDamaged``/``FormatError`` if it is there but unreadable."""
    if doc.chats is None:
        return None
    what = f"snapshots/{doc.id} (chat catalogue)"
    data = b"".join(engine.read_blobs(doc.chats, what))
    return cat.decode_catalogue(data)


def find_chats(entries: Sequence[CatalogueEntry], name: str) -> CatalogueEntry:
    """The one chat *name* names: ``#N`` is the N-th chat as ``chats`` lists them (from 1);
    otherwise a case-insensitive substring of its name, a whole-name match winning over
    substring ones.  ``ChatNotFound``; ``AmbiguousChat`` listing the candidates."""
    if name.startswith("#") and name[1:].isdigit():
        n = int(name[1:])
        if not 1 <= n <= len(entries):
            raise ChatNotFound(f"no chat {name}: the snapshot has {len(entries)} chat(s)")
        return entries[n - 1]
    needle = name.casefold()
    hits = [(i, e) for i, e in enumerate(entries, 1) if needle in e.name.casefold()]
    exact = [h for h in hits if h[1].name.casefold() == needle]
    if len(exact) == 1:
        return exact[0][1]
    if len(hits) == 1:
        return hits[0][1]
    if not hits:
        raise ChatNotFound(f"no chat matches {name!r}",
                           hint="list the snapshot's chats to see their names")
    shown = [f"#{i} {e.name} ({e.kind}, /{e.source})" for i, e in hits]
    raise AmbiguousChat(f"{name!r} matches {len(hits)} chats: " + "; ".join(shown),
                        candidates=shown, hint="give more of the name, or #N for the N-th")


def file_entries(engine: Engine, doc: SnapshotDoc, paths: set[str]) -> dict[str, Entry]:
    """The file records of *paths* in the snapshot (one pass over its file list)."""
    found: dict[str, Entry] = {}
    for e in engine.entries(doc):
        if e.kind == KIND_FILE and e.path in paths:
            found[e.path] = e
            if len(found) == len(paths):
                break
    return found


def read_file(engine: Engine, entry: Entry) -> bytes:
    """A stored file's bytes."""
    return b"".join(engine.read_blobs(entry.chunks, f"/{entry.path}"))


@dataclass(frozen=True)
class OpenedChat:
    """A chat's messages as parsed from the snapshot, and its attachments' reader."""

    entry: CatalogueEntry
    chat: Chat
    read_attachment: Callable[[str], bytes | None]


def open_chat(engine: Engine, doc: SnapshotDoc, entry: CatalogueEntry) -> OpenedChat:
    """Parse *entry*'s source file again from the snapshot and pick its chat."""
    return next(open_chats(engine, doc, [entry]))


def open_chats(engine: Engine, doc: SnapshotDoc,
               entries: Sequence[CatalogueEntry]) -> Iterator[OpenedChat]:
    """The chats of *entries*, each source file read and parsed once, in source order."""
    by_source: dict[str, list[CatalogueEntry]] = {}
    for e in entries:
        by_source.setdefault(e.source, []).append(e)
    records = file_entries(engine, doc, {f for e in entries for f in e.files})
    for source in sorted(by_source):
        group = by_source[source]
        record = records.get(source)
        if record is None:
            raise DataDamaged(f"/{source}: the catalogue names it, the snapshot lacks it")
        data = read_file(engine, record)
        fmt = detect(source, io.BytesIO(data[:4096]))
        if fmt is None:
            raise DataDamaged(f"/{source}: no longer recognised as chat data")
        folder = posixpath.dirname(source)
        neighbours = sorted({posixpath.basename(f) for e in group for f in e.files
                             if posixpath.dirname(f) == folder and f != source})
        result = parse(source, fmt, data, neighbours=neighbours,
                       chats={e.name for e in group})
        exact = {CatalogueEntry.of(c, source): c for c in reversed(result.chats)}
        named = {(c.name, c.kind): c for c in reversed(result.chats)}
        mine = {p: r for p, r in records.items() if any(p in e.files for e in group)}
        reader = _attachment_reader(engine, fmt, source, data, mine)
        for entry in group:
            chat = exact.get(entry) or named.get((entry.name, entry.kind))
            if chat is None:
                raise DataDamaged(f"/{source}: the chat {entry.name!r} is not in it")
            yield OpenedChat(entry, chat, reader)


def _attachment_reader(engine: Engine, fmt: Format, source: str, data: bytes,
                       records: dict[str, Entry]) -> Callable[[str], bytes | None]:
    if fmt is Format.WHATSAPP_ZIP:
        import zipfile

        def from_zip(name: str) -> bytes | None:
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    member = next((i for i in z.infolist()
                                   if posixpath.basename(i.filename) == name), None)
                    return z.read(member) if member is not None else None
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
                return None
        return from_zip
    by_base = {posixpath.basename(p): r for p, r in records.items() if p != source}
    by_tail = {p: r for p, r in records.items() if p != source}

    def from_snapshot(name: str) -> bytes | None:
        rec = by_base.get(posixpath.basename(name))
        rec = next((r for p, r in by_tail.items() if p.endswith("/" + name)), rec)
        if rec is None:
            return None
        try:
            return read_file(engine, rec)
        except DataDamaged:
            return None
    return from_snapshot


def search_messages(engine: Engine, doc: SnapshotDoc, entries: Sequence[CatalogueEntry],
                    text: str) -> list[MessageHit]:
    """The messages of *entries* containing *text*, as :func:`strongroom.chats.search.search`
    of :func:`open_chats` finds them and in that order (source by source, chat by chat).
    A message store is searched in SQL (:func:`strongroom.chats.msgstore.search_bytes`):
    only matching messages are built; other sources are parsed as for an export."""
    from ..chats.model import KIND_BENCH_MSGSTORE, KIND_WHATSAPP_MSGSTORE
    from ..chats.msgstore import search_bytes
    from ..chats.search import MessageHit, search

    if not text:
        raise ValueError("search text is empty")
    by_source: dict[str, list[CatalogueEntry]] = {}
    for e in entries:
        by_source.setdefault(e.source, []).append(e)
    stores = {s for s, group in by_source.items()
              if all(e.kind in (KIND_BENCH_MSGSTORE, KIND_WHATSAPP_MSGSTORE) for e in group)
              and len({e.name for e in group}) == len(group)}
    records = file_entries(engine, doc, stores)
    hits: dict[str, list[MessageHit]] = {}
    for source in sorted(stores):
        record = records.get(source)
        if record is None:
            raise DataDamaged(f"/{source}: the catalogue names it, the snapshot lacks it")
        found = search_bytes(source, functools.partial(read_file, engine, record), text)
        if found is None:
            continue  # searched below, parsed whole
        hits[source] = [MessageHit(e, i, m) for e in by_source[source]
                        for i, m in found.get(e.name, [])]
    rest = [e for s, group in by_source.items() if s not in hits for e in group]
    for opened in open_chats(engine, doc, rest):
        hits.setdefault(opened.entry.source, []).extend(
            MessageHit(opened.entry, h.index, h.message) for h in search([opened.chat], text))
    return [h for source in sorted(hits) for h in hits[source]]


# -- changes between two snapshots ----------------------------------------------------------
@dataclass(frozen=True)
class ChatChange:
    """How one chat differs between two snapshots.  ``status`` is ``added`` (only in the
    second), ``removed`` (only in the first), ``changed`` or ``unchanged``; ``added`` and
    ``changed`` count messages new in the second snapshot, and messages present in both
    at the same place whose author, text or attachments differ."""

    name: str
    kind: str
    status: str
    messages_before: int
    messages_after: int
    added: int
    changed: int

    def to_json(self) -> dict[str, object]:
        """JSON-safe form."""
        return {"name": self.name, "kind": self.kind, "status": self.status,
                "messages_before": self.messages_before, "messages_after": self.messages_after,
                "added": self.added, "changed": self.changed}


def chat_changes(engine: Engine, a: SnapshotDoc, b: SnapshotDoc) -> list[ChatChange]:
    """Per chat, how many messages were added or changed from snapshot *a* to *b*.

    Chats are matched by (kind, name, source file).  A chat whose catalogue entry is the
    same in both and whose source file has the same chunks is unchanged without being
    read; any other chat present in both is compared by message: a message of *b* not in
    *a* is added; with the same time and author but other text or attachments, changed.
    For a message store only the messages whose rows differ between its two copies are
    built (found in SQL, :func:`_store_changes`); other chats are parsed from both.  ``DataDamaged`` if a catalogue is unreadable;
    a snapshot without one counts as having no chats."""
    ca, cb = load_catalogue(engine, a), load_catalogue(engine, b)
    ea = {_key(e): e for e in (ca.entries if ca else ())}
    eb = {_key(e): e for e in (cb.entries if cb else ())}
    sources = {e.source for e in ea.values() if _key(e) in eb}
    chunks_a = _chunks(engine, a, sources)
    chunks_b = _chunks(engine, b, sources)
    out: dict[tuple[str, str, str], ChatChange] = {}
    pending: list[tuple[CatalogueEntry, CatalogueEntry]] = []
    for key in sorted(set(ea) | set(eb)):
        x, y = ea.get(key), eb.get(key)
        if x is None and y is not None:
            out[key] = ChatChange(y.name, y.kind, "added", 0, y.messages, y.messages, 0)
        elif y is None and x is not None:
            out[key] = ChatChange(x.name, x.kind, "removed", x.messages, 0, 0, 0)
        elif x is not None and y is not None:
            if x == y and chunks_a.get(x.source) == chunks_b.get(y.source):
                out[key] = ChatChange(x.name, x.kind, "unchanged", x.messages, y.messages, 0, 0)
            else:
                pending.append((x, y))
    pairs = list(pending)
    counts = _store_changes(engine, a, b, pending)
    pending = [(x, y) for x, y in pending if _key(x) not in counts]
    if pending:  # each source file of each snapshot is read and parsed once
        before = {_key(o.entry): o.chat for o in open_chats(engine, a, [x for x, _ in pending])}
        after = {_key(o.entry): o.chat for o in open_chats(engine, b, [y for _, y in pending])}
        for x, y in pending:
            counts[_key(x)] = _compare(before[_key(x)].messages, after[_key(y)].messages)
    for x, y in pairs:
        added, changed = counts[_key(x)]
        status = "changed" if added or changed or x.messages != y.messages else "unchanged"
        out[_key(x)] = ChatChange(x.name, x.kind, status, x.messages, y.messages, added, changed)
    return [out[k] for k in sorted(out)]


def _key(e: CatalogueEntry) -> tuple[str, str, str]:
    return (e.kind, e.name, e.source)


def _chunks(engine: Engine, doc: SnapshotDoc, paths: set[str]) -> dict[str, bytes]:
    return {p: r.chunks.raw for p, r in file_entries(engine, doc, paths).items()} if paths else {}


def _store_changes(engine: Engine, a: SnapshotDoc, b: SnapshotDoc,
                   pending: list[tuple[CatalogueEntry, CatalogueEntry]]
                   ) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(added, changed) of the pending chats of message stores, from the rows that differ
    between the two copies of each store (:func:`strongroom.chats.msgstore.changed_messages`,
    in SQL) instead of every message of both; a store where that cannot be told is left
    out (its chats are then compared whole)."""
    from ..chats.model import KIND_BENCH_MSGSTORE, KIND_WHATSAPP_MSGSTORE
    from ..chats.msgstore import changed_messages

    stores: dict[str, list[CatalogueEntry]] = {}
    for x, _ in pending:
        if x.kind in (KIND_BENCH_MSGSTORE, KIND_WHATSAPP_MSGSTORE):
            stores.setdefault(x.source, []).append(x)
    if not stores:
        return {}
    rec_a, rec_b = file_entries(engine, a, set(stores)), file_entries(engine, b, set(stores))
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    for source, chats in sorted(stores.items()):
        if source not in rec_a or source not in rec_b:
            continue
        found = changed_messages(source, functools.partial(read_file, engine, rec_a[source]),
                                 functools.partial(read_file, engine, rec_b[source]))
        if found is None:
            continue
        for x in chats:
            before, after = found.get(x.name, ([], []))
            out[_key(x)] = _compare(before, after)
    return out


def _compare(before: Sequence[Message], after: Sequence[Message]) -> tuple[int, int]:
    old: dict[tuple[str, str | None], list[tuple[str, tuple[str, ...]]]] = {}
    for m in before:
        old.setdefault((m.time, m.author), []).append((m.text, m.attachments))
    added = changed = 0
    for m in after:
        same = old.get((m.time, m.author))
        if not same:
            added += 1
            continue
        body = (m.text, m.attachments)
        if body in same:
            same.remove(body)
        else:
            same.pop(0)
            changed += 1
    return added, changed
