"""End to end: back up a folder with a WhatsApp zip export, a Telegram export and a
msgstore.db; list the chats, export each format, search, diff, and restore one chat."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
from pathlib import Path
from types import ModuleType

import pytest
from cli_harness import Invoke


def _samples() -> ModuleType:
    # The parser tests' real-shaped samples, shared rather than copied.
    path = Path(__file__).parents[1] / "unit" / "chats" / "chats_samples.py"
    spec = importlib.util.spec_from_file_location("chats_samples_for_cli", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


S = _samples()


@pytest.fixture
def phone(tmp_path: Path) -> Path:
    root = tmp_path / "phone"
    (root / "exports").mkdir(parents=True)
    (root / "exports" / "WhatsApp Chat with Alice.zip").write_bytes(
        S.whatsapp_zip("_chat.txt", S.EN_US, {"IMG-20231225-WA0001.jpg": S.JPEG}))
    (root / "telegram").mkdir()
    (root / "telegram" / "result.json").write_bytes(S.telegram_account())
    (root / "WhatsApp" / "Databases").mkdir(parents=True)
    S.whatsapp_msgstore(root / "WhatsApp" / "Databases" / "msgstore.db")
    media = root / "WhatsApp" / "Media" / "WhatsApp Images"
    media.mkdir(parents=True)
    (media / "IMG-20240101-WA0000.jpg").write_bytes(S.JPEG)
    (root / "WhatsApp" / "Media" / "other.jpg").write_bytes(S.JPEG)
    return root


@pytest.fixture
def repo(tmp_path: Path, invoke: Invoke, phone: Path) -> list[str]:
    base = ["--repo", str(tmp_path / "repo"), "--key-file", str(tmp_path / "k")]
    assert invoke(*base, "init").code == 0
    run = invoke(*base, "backup", phone)
    assert run.code == 0, run.err
    return base


def test_chats_lists_every_chat(invoke: Invoke, repo: list[str]) -> None:
    run = invoke(*repo, "chats", "--json")
    assert run.code == 0, run.err
    chats = run.json()
    assert isinstance(chats, list)
    by = {(c["kind"], c["name"]): c for c in chats}
    assert set(by) == {("whatsapp-export", "Alice"), ("telegram-export", "Alice"),
                       ("telegram-export", "Work"), ("telegram-export", "Old group"),
                       ("whatsapp-msgstore", "491701234567"),
                       ("whatsapp-msgstore", "Climbing club")}
    for c in chats:
        assert {"name", "kind", "messages", "first", "last", "attachments"} <= set(c)
    assert by[("whatsapp-export", "Alice")]["messages"] == 6
    assert by[("whatsapp-msgstore", "Climbing club")]["first"] == "2024-01-01T10:00:01Z"
    human = invoke(*repo, "chats", "latest")
    assert human.code == 0 and "Climbing club" in human.out and "6 chat(s)" in human.out
    snap = invoke(*repo, "snapshots", "--json").json()["snapshots"][0]["id"][:8]
    assert invoke(*repo, "chats", snap, "--json").json() == chats
    assert invoke("chats", *repo, "--json", snap).json() == chats  # options first


def test_export_each_format(invoke: Invoke, repo: list[str], tmp_path: Path) -> None:
    run = invoke(*repo, "chats", "export", "latest", "climbing", "--format", "json")
    assert run.code == 0, run.err
    messages = run.json()
    assert messages[0] == {"time": "2024-01-01T10:00:01Z", "author": None, "text": "",
                           "attachments": []}
    assert messages[1]["text"] == "Saturday 9:00?"
    run = invoke(*repo, "chats", "export", "latest", "Work", "--format", "txt")
    assert run.code == 0 and "plain\n" in run.out and "second line" in run.out
    out = tmp_path / "alice.html"
    run = invoke(*repo, "chats", "export", "latest", "alice", "--format", "html",
                 "--output", out)
    assert run.code == 2  # two chats called Alice
    assert "whatsapp-export" in run.err and "telegram-export" in run.err
    run = invoke(*repo, "chats", "export", "latest", "491701234567", "--format", "html",
                 "--output", out)
    assert run.code == 0, run.err
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/jpeg;base64," in page
    again = invoke(*repo, "chats", "export", "latest", "491701234567", "--format", "html",
                   "--output", out)
    assert again.code == 2 and "exists" in again.err  # never silently replaced
    assert invoke(*repo, "chats", "export", "latest", "nobody", "--format", "json").code == 10


def test_a_chat_by_number_and_the_html_of_a_zip_export(invoke: Invoke, repo: list[str]) -> None:
    chats = invoke(*repo, "chats", "--json").json()
    n = 1 + next(i for i, c in enumerate(chats) if c["kind"] == "whatsapp-export")
    listing = invoke(*repo, "chats").out
    assert f"#{n}" in listing
    run = invoke(*repo, "chats", "export", "latest", f"#{n}", "--format", "html")
    assert run.code == 0, run.err
    assert "data:image/jpeg;base64," in run.out and "Alice" in run.out
    amb = invoke(*repo, "chats", "export", "latest", "Alice", "--format", "json")
    assert amb.code == 2 and f"#{n} Alice (whatsapp-export" in amb.err
    assert invoke(*repo, "chats", "export", "latest", "#99", "--format", "json").code == 10


def test_search(invoke: Invoke, repo: list[str]) -> None:
    run = invoke(*repo, "chats", "search", "SATURDAY", "--json")
    assert run.code == 0, run.err
    hits = run.json()
    assert [(h["chat"], h["text"]) for h in hits] == [("Climbing club", "Saturday 9:00?")]
    human = invoke(*repo, "chats", "search", "second line")
    assert human.code == 0 and "1 message(s)" not in human.out  # three Telegram chats hold it
    assert "3 message(s) in 3 chat(s)" in human.out
    assert invoke(*repo, "chats", "search", "zzz-nothing").out.startswith("no message")
    assert invoke(*repo, "chats", "search", " ").code == 2


def test_restore_one_chat_only(invoke: Invoke, repo: list[str], phone: Path,
                               tmp_path: Path) -> None:
    target = tmp_path / "restored"
    run = invoke(*repo, "restore", "latest", "--chat", "491701234567", "--target", target)
    assert run.code == 0, run.err
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    base = str(phone).lstrip("/")
    assert files == [f"{base}/WhatsApp/Databases/msgstore.db",
                     f"{base}/WhatsApp/Media/WhatsApp Images/IMG-20240101-WA0000.jpg"]
    amb = invoke(*repo, "restore", "latest", "--chat", "ALICE", "--target", tmp_path / "x")
    assert amb.code == 2 and not (tmp_path / "x").exists()
    none = invoke(*repo, "restore", "latest", "--chat", "nobody", "--target", tmp_path / "y")
    assert none.code == 10
    both = invoke(*repo, "restore", "latest", "--chat", "club", "--include", "/x",
                  "--target", tmp_path / "z")
    assert both.code == 2 and "cannot be combined" in both.err


def test_diff_counts_new_messages_per_chat(invoke: Invoke, repo: list[str],
                                           phone: Path) -> None:
    db = phone / "WhatsApp" / "Databases" / "msgstore.db"
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT INTO message (_id, chat_row_id, from_me, key_id, timestamp,"
                    " message_type, text_data) VALUES (9, 2, 1, 'k9', 1704200000000, 0, 'ok')")
        con.execute("UPDATE message SET text_data = 'Saturday 10:00?' WHERE _id = 5")
    con.close()
    assert invoke(*repo, "backup", phone).code == 0
    ids = [s["id"] for s in invoke(*repo, "snapshots", "--json").json()["snapshots"]]
    run = invoke(*repo, "chats", "diff", ids[0][:8], ids[1][:8], "--json")
    assert run.code == 0, run.err
    by = {(c["kind"], c["name"]): c for c in run.json()}
    club = by[("whatsapp-msgstore", "Climbing club")]
    assert (club["status"], club["added"], club["changed"]) == ("changed", 1, 1)
    assert by[("whatsapp-export", "Alice")]["status"] == "unchanged"
    human = invoke(*repo, "chats", "diff", ids[0][:8], "latest")
    assert human.code == 0 and "Climbing club" in human.out
    # The files diff says the same per chat (issue 13: "diff also says, for each chat").
    files = invoke(*repo, "diff", ids[0][:8], ids[1][:8], "--json")
    assert files.code == 0, files.err
    chats = {(c["kind"], c["name"]): c for c in files.json()["chats"]}
    assert (chats[("whatsapp-msgstore", "Climbing club")]["added"],
            chats[("whatsapp-msgstore", "Climbing club")]["changed"]) == (1, 1)
    text = invoke(*repo, "diff", ids[0][:8], ids[1][:8])
    assert "chat 'Climbing club' (whatsapp-msgstore): changed, 1 message(s) added" in text.out
    assert invoke(*repo, "diff", ids[0][:8], ids[1][:8], "--no-chats", "--json").json()[
        "chats"] is None


def test_a_snapshot_without_chats_says_so(invoke: Invoke, tmp_path: Path) -> None:
    base = ["--repo", str(tmp_path / "r2"), "--key-file", str(tmp_path / "k2")]
    assert invoke(*base, "init").code == 0
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.txt").write_text("hello\n")
    assert invoke(*base, "backup", tmp_path / "plain").code == 0
    run = invoke(*base, "chats")
    assert run.code == 0 and "no chats" in run.out
    assert json.loads(invoke(*base, "chats", "--json").out) == []
    assert invoke(*base, "chats", "deadbeef").code == 10  # no such snapshot


def test_backup_no_chats_makes_a_snapshot_without_catalogue(invoke: Invoke, repo: list[str],
                                                            phone: Path) -> None:
    run = invoke(*repo, "--json", "backup", "--no-chats", phone)
    assert run.code == 0, run.err
    summary = run.json()
    assert (summary["chats"], summary["chat_files_parsed"]) == (0, [])
    listed = invoke(*repo, "chats", "--json")
    assert listed.code == 0 and listed.json() == []
    assert "has no chat catalogue" in listed.err and "--no-chats" in listed.err
    # The snapshot before it still has its catalogue; its files are all there.
    first = invoke(*repo, "--json", "snapshots").json()["snapshots"][0]["id"]
    assert invoke(*repo, "chats", first, "--json").json()


@pytest.mark.parametrize("strip", [False, True])
def test_restore_one_chat_never_follows_a_link_in_the_target(invoke: Invoke, repo: list[str],
                                                             phone: Path, tmp_path: Path,
                                                             strip: bool) -> None:
    # A link planted where --chat (with or without --strip) would create a directory
    # points outside the target: the restore refuses (exit 16) and writes nothing there.
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_bytes(b"private")
    target = tmp_path / "restored"
    base = target if strip else target / str(phone).lstrip("/")
    base.mkdir(parents=True)
    (base / "WhatsApp").symlink_to(victim)
    args = ["--strip", str(phone)] if strip else []
    run = invoke(*repo, "restore", "latest", "--chat", "491701234567", "--target", target,
                 *args)
    assert run.code == 16, run.err
    assert "not a directory" in run.err and "Traceback" not in run.err
    assert sorted(os.listdir(victim)) == ["keep.txt"]
    assert (victim / "keep.txt").read_bytes() == b"private"
    # The same restore into a clean target works, and puts the chat's files in place.
    clean = tmp_path / "clean"
    assert invoke(*repo, "restore", "latest", "--chat", "491701234567", "--target", clean,
                  *args).code == 0
    root = clean if strip else clean / str(phone).lstrip("/")
    assert (root / "WhatsApp" / "Databases" / "msgstore.db").is_file()
