"""WhatsApp chat exports: the ``.txt`` log and the ``.zip`` "with media" (Android and iOS).

Rules (docs/spec/backup-format.md, "Chat catalogue"): a line that starts with a header
(see :mod:`._wa_header`) starts a message; any other line, or a header whose date or time
is not valid under the order inferred for the whole file, belongs to the previous
message's text.  ``Name: text`` gives the author; a header with no ``Name: `` is a system
message (author ``None``), and so is the end-to-end encryption notice and, on iOS, a
U+200E-marked line in the chat's own name.  An attachment marker line (``<attached:
NAME>``, ``NAME (file attached)`` and their translations) becomes an attachment and leaves
the text; ``<Media omitted>`` stays text (the export holds no file for it).
"""

from __future__ import annotations

import gc
import io
import posixpath
import re
import zipfile
from collections.abc import Collection
from typing import BinaryIO

from . import _wa_header as hdr
from .model import KIND_WHATSAPP_EXPORT, Chat, ChatParseWarning, Message, ParseResult

_NAME = re.compile(
    r"^(?:WhatsApp[ -]Chat(?: (?:with|mit|met|con|com|avec|z|с))?|Chat (?:de )?WhatsApp (?:con|com)"
    r"|Discussion WhatsApp avec|Conversa do WhatsApp com)(?: - | )(?P<name>.+?)(?: \(\d+\))?$",
    re.IGNORECASE)
_ATTACHED = re.compile(r"^[\u200e\u200f]*<(?P<word>[^<>:]{1,40}?) ?: (?P<file>[^<>]+)>$")
_FILE_ATTACHED = re.compile(
    r"^[\u200e\u200f]*(?P<file>[^\s()][^()]*?\.[A-Za-z0-9]{1,5}) \((?P<word>[^()]{1,40})\)$")
_ATTACH_WORDS = frozenset({
    "attached", "anhang", "adjunto", "pièce jointe", "anexo", "bijlage", "allegato",
    "file attached", "datei angehängt", "archivo adjunto", "fichier joint", "arquivo anexado",
    "bestand bijgevoegd", "file allegato",
})
_E2E = ("end-to-end", "ende-zu-ende", "extremo a extremo", "de bout en bout",
        "ponta a ponta", "crittografia end-to-end")
_USER_MARKER = re.compile(
    r"omitted|weggelassen|omitid|omis|omess|weggelaten|deleted|gelöscht|eliminad|supprimé|edited")
_MAX_TEXT = 1 << 30  # a "text" export above 1 GiB is not read whole into memory
_MARKS = "\u200e\u200f\ufeff"
_QUOTES = re.compile('["“”«»]')


def chat_name(path: str) -> str:
    """The chat's name from an export's file name (``WhatsApp Chat with NAME.txt`` ...)."""
    stem = posixpath.basename(path.replace("\\", "/"))
    stem = re.sub(r"\.(txt|zip)$", "", stem, flags=re.IGNORECASE)
    m = _NAME.match(stem)
    return m.group("name") if m else stem


def parse_text(path: str, data: bytes, *, files: Collection[str] = (), name: str | None = None,
               sources: tuple[str, ...] | None = None) -> ParseResult:
    """Parse one export log.  *files* are the names of the other files of the export (the
    zip's members, or the log's neighbours), so attachment markers link to them."""
    if len(data) > _MAX_TEXT:
        return ParseResult.warning(path, "WhatsApp export larger than 1 GiB: not catalogued")
    text = data.decode("utf-8-sig", errors="replace")
    name = name if name is not None else chat_name(path)
    paused = gc.isenabled()
    if paused:  # millions of small immutable objects: the cycle collector only costs time
        gc.disable()
    try:
        parsed = _parse_lines(text, name, set(files))
    finally:
        if paused:
            gc.enable()
    if parsed is None:
        return ParseResult.warning(path, "no WhatsApp message lines found")
    messages, preamble = parsed
    warnings: list[ChatParseWarning] = []
    if "\ufffd" in text:
        warnings.append(ChatParseWarning(path, "bytes that are not UTF-8 were replaced"))
    if preamble:
        warnings.append(ChatParseWarning(path, f"{preamble} line(s) before the first message"
                                               " kept as a system message"))
    linked = {a for m in messages for a in m.attachments if a in files}
    if sources is None:
        folder = posixpath.dirname(path)
        sources = (path, *(posixpath.join(folder, f) for f in linked))
    chat = Chat(name, KIND_WHATSAPP_EXPORT, tuple(sorted(set(sources))), tuple(messages))
    return ParseResult((chat,), tuple(warnings))


def _parse_lines(text: str, name: str, files: set[str]) -> tuple[list[Message], int] | None:
    text = text.replace("\r\n", "\n")
    heads = list(hdr.HEADER_AT_LINE.finditer(text))
    if not heads:
        return None
    order = _order(heads)
    dates: dict[tuple[str, str, str], str | None] = {}
    clocks: dict[tuple[str, str, str | None, str | None], str | None] = {}
    messages: list[Message] = []
    preamble = text[:heads[0].start()].removesuffix("\n")
    name_key = name.casefold()
    ends = [m.start() for m in heads[1:]] + [len(text)]
    for m, end in zip(heads, ends, strict=True):
        tail = text[m.end():end]  # "\n" and the continuation lines, if any
        more = tail[1:].removesuffix("\n") if len(tail) > 1 else None
        g = m.groups()
        date = dates.get((g[1], g[3], g[4]), "")
        if date == "":
            date = dates[(g[1], g[3], g[4])] = hdr.iso_date(g[1], g[3], g[4], order)
        key = (g[6], g[7], g[8], g[9] or g[5])
        clock = clocks.get(key, "")
        if clock == "":
            clock = clocks[key] = hdr.iso_time(*key)
        if date is None or clock is None:  # not a valid header in this file: the line is text
            line = m.group(0) if more is None else f"{m.group(0)}\n{more}"
            if messages:
                last = messages[-1]
                messages[-1] = Message(last.time, last.author, f"{last.text}\n{line}",
                                       last.attachments)
            else:
                preamble = f"{preamble}\n{line}" if preamble else line
            continue
        messages.append(_message(f"{date}T{clock}", g[10], more, name_key, files))
    if not messages:
        return None
    if preamble:
        messages.insert(0, Message(messages[0].time, None, preamble))
    return messages, preamble.count("\n") + 1 if preamble else 0


def _order(heads: list[re.Match[str]]) -> str:
    triples = {m.group("a", "b", "c") for m in heads}  # few distinct dates, many messages
    firsts = [int(a) for a, _, _ in triples]
    seconds = [int(b) for _, b, _ in triples]
    if not (any(a > 12 for a in firsts) or any(b > 12 for b in seconds)):
        # Ambiguous: the forward-running test needs the dates in file order.
        firsts = [int(m.group("a")) for m in heads]
        seconds = [int(m.group("b")) for m in heads]
    years = [0] * len(firsts) if len(firsts) != len(heads) else [
        int(m.group("c")) % 100 for m in heads]
    year_first = len(heads[0].group("a")) == 4
    twelve = any(m.group("ap") or m.group("ap0") for m in heads[:1000])
    return hdr.infer_order(firsts, seconds, years, year_first, heads[0].group("sep"), twelve)


def _message(time: str, rest: str, more: str | None, name_key: str,
             files: set[str]) -> Message:
    cut = rest.find(": ")
    author: str | None = rest[:cut].strip(_MARKS) if cut > 0 else None
    body = rest[cut + 2:] if cut > 0 else rest.lstrip(_MARKS)
    if author is not None and _QUOTES.search(author):
        author, body = None, rest.lstrip(_MARKS)  # `X changed the subject to "a: b"`
    if body.endswith((">", ")")):
        attachment = _attachment(body, files)
        if attachment is not None:
            return Message(time, author, more or "", (attachment,))
    text = body if more is None else f"{body}\n{more}"
    if author is not None and body.startswith("\u200e") and _is_system(author, body, name_key):
        author, text = None, text.lstrip(_MARKS)
    return Message(time, author, text)


def _is_system(author: str, body: str, name_key: str) -> bool:
    # iOS writes notices as the chat's own "author" with a U+200E mark; the same mark also
    # prefixes a person's "image omitted" or "This message was deleted", which stay theirs.
    if not body.startswith("\u200e"):
        return False
    low = body.lower()
    if any(w in low for w in _E2E):
        return True
    return author.casefold() == name_key and _USER_MARKER.search(low) is None


def _attachment(body: str, files: set[str]) -> str | None:
    m = _ATTACHED.match(body) or _FILE_ATTACHED.match(body)
    if m is None:
        return None
    file, word = m.group("file").strip(), m.group("word").strip().lower()
    return file if file in files or word in _ATTACH_WORDS else None


def parse_zip(path: str, data: bytes | BinaryIO, *, max_member: int = _MAX_TEXT) -> ParseResult:
    """Parse an export ``.zip``: its log (``_chat.txt`` or ``WhatsApp Chat ....txt``) and media.
    *data* is the zip's bytes or a seekable file (then only the directory and the log are
    read, not the media)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            members = {posixpath.basename(i.filename): i for i in infos}
            log = _log_member(list(members))
            if log is None:
                return ParseResult.warning(path, "zip has no WhatsApp chat log")
            info = members[log]
            if info.file_size > max_member:
                return ParseResult.warning(path, "chat log in zip larger than 1 GiB: not catalogued")
            text = archive.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError,
            ValueError, RuntimeError) as exc:
        return ParseResult.warning(path, f"unreadable zip ({type(exc).__name__})")
    others = [n for n in members if n != log]
    return parse_text(f"{path}/{log}", text, files=others, name=chat_name(path), sources=(path,))


def _log_member(names: list[str]) -> str | None:
    if "_chat.txt" in names:
        return "_chat.txt"
    texts = sorted(n for n in names if n.lower().endswith(".txt"))
    named = [n for n in texts if _NAME.match(n[:-4])]
    if named:
        return named[0]
    return texts[0] if texts else None
