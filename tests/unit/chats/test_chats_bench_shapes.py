"""The benchmark's generated exports parse completely (so its figure times a real parse)."""

from __future__ import annotations

from bench.chats_bench import android_export, ios_export

from strongroom.chats.whatsapp import parse_text


def test_generated_exports_parse_to_every_message() -> None:
    for make, break_ in ((android_export, b"\n"), (ios_export, b"\r\n")):
        data = make(2_000, 9)
        assert data.count(break_) == 2_000
        (chat,) = parse_text("x.txt", data).chats
        starts = sum(1 for line in data.decode().split(break_.decode())
                     if line.lstrip("\u200e")[:1] in "[0123456789" and line)
        assert chat.message_count == starts
        assert chat.attachment_count > 0
        assert sum(m.author is None for m in chat.messages) == data.decode().count(" added ")
