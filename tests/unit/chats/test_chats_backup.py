"""The catalogue as backup writes it: recognised chats, reuse of unchanged files, warnings,
what the provider sees, prune and check keeping it, and per-chat changes between snapshots."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from chats_samples import EN_US, JPEG, telegram_account, whatsapp_msgstore, whatsapp_zip

from strongroom import BackupKey, Repository
from strongroom.chats import catalogue
from strongroom.errors import AmbiguousChat, ChatNotFound
from strongroom.progress import RecordingProgress
from strongroom.repo import chatcat
from strongroom.storage.memory import MemoryBackend


def _repo() -> Repository:
    return Repository.create(MemoryBackend(), BackupKey.from_bytes(bytes(range(32))))


def _phone(root: Path) -> Path:
    (root / "exports").mkdir(parents=True)
    (root / "exports" / "WhatsApp Chat with Alice.zip").write_bytes(
        whatsapp_zip("_chat.txt", EN_US, {"IMG-20231225-WA0001.jpg": JPEG}))
    (root / "telegram").mkdir()
    (root / "telegram" / "result.json").write_bytes(telegram_account())
    (root / "telegram" / "photos").mkdir()
    (root / "telegram" / "photos" / "photo_1@01-01-2024_10-02-00.jpg").write_bytes(JPEG)
    (root / "WhatsApp" / "Databases").mkdir(parents=True)
    whatsapp_msgstore(root / "WhatsApp" / "Databases" / "msgstore.db")
    img = root / "WhatsApp" / "Media" / "WhatsApp Images"
    img.mkdir(parents=True)
    (img / "IMG-20240101-WA0000.jpg").write_bytes(JPEG)
    (root / "notes.txt").write_text("shopping: milk\n")
    return root


def _backed_up(tmp_path: Path) -> tuple[Repository, Any, Any]:
    """A repository with one backup of the phone folder, its engine and that snapshot."""
    repo = _repo()
    repo.backup([_phone(tmp_path / "phone")])
    return repo, repo._engine, repo._engine.find_doc("latest")


def _catalogue(repo: Repository, ref: str = "latest") -> catalogue.Catalogue:
    engine = repo._engine
    cat = chatcat.load_catalogue(engine, engine.find_doc(ref))
    assert cat is not None
    return cat


def test_backup_catalogues_each_kind_and_the_files_of_each_chat(tmp_path: Path) -> None:
    root = _phone(tmp_path / "phone")
    repo = _repo()
    summary = repo.backup([root])
    arch = str(root).lstrip("/")
    cat = _catalogue(repo)
    got = {(e.kind, e.name): e for e in cat.entries}
    assert set(got) == {("whatsapp-export", "Alice"), ("telegram-export", "Alice"),
                        ("telegram-export", "Work"), ("telegram-export", "Old group"),
                        ("whatsapp-msgstore", "491701234567"),
                        ("whatsapp-msgstore", "Climbing club")}
    assert summary.chats == 6 and summary.chat_warnings == []
    wa = got[("whatsapp-export", "Alice")]
    assert (wa.messages, wa.attachments, wa.first) == (6, 1, "2023-12-24T21:05:00")
    assert wa.files == (f"{arch}/exports/WhatsApp Chat with Alice.zip",)
    store = got[("whatsapp-msgstore", "491701234567")]
    assert store.files == (f"{arch}/WhatsApp/Databases/msgstore.db",
                           f"{arch}/WhatsApp/Media/WhatsApp Images/IMG-20240101-WA0000.jpg")
    assert (store.messages, store.attachments) == (3, 1)
    work = got[("telegram-export", "Work")]
    assert work.files == (f"{arch}/telegram/photos/photo_1@01-01-2024_10-02-00.jpg",
                          f"{arch}/telegram/result.json")
    assert set(cat.parsed) == {f"{arch}/exports/WhatsApp Chat with Alice.zip",
                               f"{arch}/telegram/result.json",
                               f"{arch}/WhatsApp/Databases/msgstore.db"}


def test_files_a_chat_names_but_the_snapshot_lacks_are_left_out(tmp_path: Path) -> None:
    root = _phone(tmp_path / "phone")
    (root / "telegram" / "photos" / "photo_1@01-01-2024_10-02-00.jpg").unlink()
    repo = _repo()
    repo.backup([root / "WhatsApp" / "Databases", root / "telegram"])  # no Media folder
    arch = str(root).lstrip("/")
    cat = _catalogue(repo)
    for e in cat.entries:
        assert e.files == (e.source,), e
    store = next(e for e in cat.entries if e.name == "491701234567")
    assert store.attachments == 1  # the message still has its attachment
    assert store.source == f"{arch}/WhatsApp/Databases/msgstore.db"


def test_the_opened_chat_is_the_catalogued_one(tmp_path: Path) -> None:
    repo, engine, doc = _backed_up(tmp_path)
    cat = _catalogue(repo)
    for opened in chatcat.open_chats(engine, doc, cat.entries):
        assert catalogue.CatalogueEntry.of(opened.chat, opened.entry.source) == opened.entry
    with pytest.raises(AmbiguousChat) as exc:
        chatcat.find_chats(cat.entries, "alice")
    assert len(exc.value.candidates) == 2
    with pytest.raises(ChatNotFound):
        chatcat.find_chats(cat.entries, "nobody")
    wa = chatcat.find_chats(cat.entries, "climb")
    opened = chatcat.open_chat(engine, doc, wa)
    assert [m.text for m in opened.chat.messages][-1] == "Saturday 9:00?"
    zip_entry = next(e for e in cat.entries if e.kind == "whatsapp-export")
    zipped = chatcat.open_chat(engine, doc, zip_entry)
    assert zipped.read_attachment("IMG-20231225-WA0001.jpg") == JPEG
    store = next(e for e in cat.entries if e.name == "491701234567")
    assert chatcat.open_chat(engine, doc, store).read_attachment(
        "Media/WhatsApp Images/IMG-20240101-WA0000.jpg") == JPEG


def test_a_backup_without_chats_has_no_catalogue_and_the_next_one_parses_all(
        tmp_path: Path) -> None:
    """``backup(chats=False)`` (``--no-chats``: the benchmark's baseline) opens no chat
    file for cataloguing and stores no catalogue; a later backup catalogues everything."""
    root = _phone(tmp_path / "phone")
    repo = _repo()
    off = repo.backup([root], chats=False)
    assert (off.chats, off.chat_files_parsed, off.chat_warnings) == (0, [], [])
    listing = repo.chats("latest")
    assert not listing.catalogued and listing.entries == []
    on = repo.backup([root])
    assert len(on.chat_files_parsed) == 3 and on.chats == len(repo.chats("latest").entries) > 0


@pytest.mark.parametrize("text", ["a", "saturday", "IMG", "hallo", "no such words"])
def test_searching_messages_finds_what_searching_whole_chats_does(tmp_path: Path,
                                                                  text: str) -> None:
    """``search_messages`` (a store searched in SQL) gives the hits of ``search_chats``
    (every chat parsed), in the same order, with the chats' catalogue entries."""
    root = _phone(tmp_path / "phone")
    repo = _repo()
    repo.backup([root])
    entries = {(e.name, e.kind): e for e in repo.chats("latest").entries}
    whole = [(entries[(h.chat.name, h.chat.kind)], h.index, h.message)
             for h in repo.search_chats(text)]
    assert [(h.chat, h.index, h.message) for h in repo.search_messages(text)] == whole
    assert whole or text == "no such words"


def test_an_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    root = _phone(tmp_path / "phone")
    repo = _repo()
    assert len(repo.backup([root]).chat_files_parsed) == 3
    first = _catalogue(repo)
    db = root / "WhatsApp" / "Databases" / "msgstore.db"
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO message (_id, chat_row_id, from_me, key_id, timestamp,"
                    " message_type, text_data) VALUES (6, 2, 1, 'k6', 1704200000000, 0, 'yes')")
    con.close()
    # The zip and the Telegram export are carried over from the first snapshot unparsed.
    assert repo.backup([root]).chat_files_parsed == [str(db)]
    second = _catalogue(repo)
    assert {e for e in second.entries if e.kind != "whatsapp-msgstore"} == \
        {e for e in first.entries if e.kind != "whatsapp-msgstore"}
    club = next(e for e in second.entries if e.name == "Climbing club")
    assert club.messages == 3
    engine = repo._engine
    docs = engine.snapshot_docs()
    changes = {(c.kind, c.name): c for c in chatcat.chat_changes(engine, docs[0], docs[1])}
    assert changes[("whatsapp-msgstore", "Climbing club")].added == 1
    assert changes[("whatsapp-msgstore", "Climbing club")].status == "changed"
    assert changes[("whatsapp-export", "Alice")].status == "unchanged"
    assert changes[("whatsapp-msgstore", "491701234567")].added == 0


def test_a_broken_export_is_a_warning_and_still_backed_up(tmp_path: Path) -> None:
    root = tmp_path / "phone"
    root.mkdir()
    (root / "WhatsApp Chat with Bob.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "msgstore.db.crypt14").write_bytes(os.urandom(4096))
    (root / "msgstore.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    repo = _repo()
    progress = RecordingProgress()
    summary = repo.backup([root], progress=progress)
    assert summary.warnings == []  # not a failed backup
    assert len(summary.chat_warnings) == 3
    assert all(w.startswith(f"{root}/") for w in summary.chat_warnings)
    assert any("unreadable zip" in w for w in summary.chat_warnings)
    assert any("chats:" in w for w in progress.warnings)
    out = tmp_path / "out"
    repo.restore("latest", out)
    assert (out / str(root).lstrip("/") / "WhatsApp Chat with Bob.zip").read_bytes() == \
        b"PK\x03\x04 not really a zip"
    # The next backup repeats the warnings without parsing (the files did not change).
    again = repo.backup([root])
    assert sorted(again.chat_warnings) == sorted(summary.chat_warnings)
    assert again.chat_files_parsed == []


def test_the_provider_sees_no_chat_names_and_prune_and_check_keep_the_catalogue(
        tmp_path: Path) -> None:
    root = _phone(tmp_path / "phone")
    backend = MemoryBackend()
    repo = Repository.create(backend, BackupKey.from_bytes(bytes(range(32))))
    repo.backup([root])
    names = sorted(backend.list(""))
    assert not any(n.startswith(("chats", "catalog")) for n in names)
    for name in names:
        data = backend.get_range(name, 0, 1 << 30)
        for secret in (b"Climbing club", b"Alice", b"msgstore"):
            assert secret not in data, name
    repo.backup([root])
    repo.forget(keep_last=1)
    repo.prune()
    repo.prune()
    assert repo.check(read_data=True).ok
    assert len(_catalogue(repo).entries) == 6


def test_a_snapshot_without_a_catalogue_reads_as_none(tmp_path: Path) -> None:
    from strongroom.repo.manifest import open_snapshot, seal_snapshot

    _, engine, doc = _backed_up(tmp_path)
    old = type(doc)(doc.id, doc.time, doc.hostname, doc.paths, doc.files, doc.dirs, doc.size,
                    doc.parent, doc.segments)
    assert "chats" not in json.loads(old.encode())
    sealed = seal_snapshot(engine.key, old, os.urandom)
    reread = open_snapshot(engine.key, doc.id, sealed)
    assert reread.chats is None and chatcat.load_catalogue(engine, reread) is None
    assert open_snapshot(engine.key, doc.id, seal_snapshot(engine.key, doc, os.urandom)).chats \
        == doc.chats


def test_an_unreadable_parent_catalogue_costs_a_parse_and_check_reports_it(
        tmp_path: Path) -> None:
    import dataclasses

    from strongroom.repo.manifest import seal_snapshot, snapshot_name

    root = _phone(tmp_path / "phone")
    backend = MemoryBackend()
    repo = Repository.create(backend, BackupKey.from_bytes(bytes(range(32))))
    repo.backup([root])
    engine = repo._engine
    doc = engine.find_doc("latest")
    broken = dataclasses.replace(doc, chats=[bytes(32)])  # a blob no pack holds
    backend.delete(snapshot_name(doc.id))
    backend.put(snapshot_name(doc.id), seal_snapshot(engine.key, broken, os.urandom))
    report = repo.check()
    assert not report.ok
    assert any("chat catalogue" in p.what for p in report.problems)
    progress = RecordingProgress()
    summary = repo.backup([root], progress=progress)
    assert summary.warnings == [] and len(summary.chat_files_parsed) == 3
    assert any("catalogue unreadable" in w for w in progress.warnings)
    assert len(_catalogue(repo).entries) == 6


def test_a_chat_the_catalogue_cannot_hold_is_skipped_not_the_catalogue(tmp_path: Path) -> None:
    from chats_samples import telegram_chat

    root = tmp_path / "tg"
    root.mkdir()
    doc = {"about": "x", "chats": {"list": [telegram_chat("Fine", 2),
                                            telegram_chat("N" * 5000, 1)]}}
    (root / "result.json").write_text(json.dumps(doc))
    repo = _repo()
    summary = repo.backup([root])
    assert [e.name for e in _catalogue(repo).entries] == ["Fine"]
    assert len(summary.chat_warnings) == 1 and "not catalogued" in summary.chat_warnings[0]


def test_a_text_export_links_the_media_beside_it(tmp_path: Path) -> None:
    root = tmp_path / "export"
    root.mkdir()
    (root / "WhatsApp Chat with Alice.txt").write_text(EN_US)
    (root / "IMG-20231225-WA0001.jpg").write_bytes(JPEG)
    (root / "unrelated.jpg").write_bytes(JPEG)
    repo = _repo()
    repo.backup([root])
    (entry,) = _catalogue(repo).entries
    arch = str(root).lstrip("/")
    assert entry.name == "Alice" and entry.source == f"{arch}/WhatsApp Chat with Alice.txt"
    assert entry.files == (f"{arch}/IMG-20231225-WA0001.jpg", entry.source)
    opened = chatcat.open_chat(repo._engine, repo._engine.find_doc("latest"), entry)
    assert opened.read_attachment("IMG-20231225-WA0001.jpg") == JPEG
    assert catalogue.CatalogueEntry.of(opened.chat, entry.source) == entry
