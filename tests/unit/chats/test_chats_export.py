"""Exports (json, txt, html) and search; the HTML page against hostile chat content."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from chats_samples import JPEG, PNG

from strongroom.chats import Chat, Message, export, search, to_html, to_json, to_txt

CHAT = Chat("Family", "whatsapp-export", ("_chat.txt",), (
    Message("2024-03-03T10:00:00", None, "Messages are end-to-end encrypted."),
    Message("2024-03-03T10:00:05", "Mum", "Welcome!\nDinner at 7"),
    Message("2024-03-03T10:01:10", "Dad", "", ("IMG-1.jpg", "notes.pdf")),
    Message("2024-03-03T10:02:00", "me", "ok DINNER"),
))
HOSTILE = Chat('x"><script>alert(1)</script>', "whatsapp-export", ("c.txt",), (
    Message("2024-01-01T00:00:00", '"><img src=x onerror=alert(1)>',
            "</style><script>alert(2)</script><a href=javascript:alert(3)>x</a>"),
    Message("2024-01-01T00:00:01", "B", "<!-- -->]]>", ('"><svg onload=alert(4)>.jpg',
                                                        "javascript:alert(5).png")),
    Message('2024"><script>', None, "</div></main><iframe src=//evil>"),
))


def test_json_is_the_documented_array() -> None:
    got = json.loads(to_json(CHAT.messages))
    assert got[1] == {"time": "2024-03-03T10:00:05", "author": "Mum",
                      "text": "Welcome!\nDinner at 7", "attachments": []}
    assert got[0]["author"] is None and got[2]["attachments"] == ["IMG-1.jpg", "notes.pdf"]
    assert json.loads(to_json([])) == []
    assert export(CHAT, "json") == to_json(CHAT.messages)


def test_txt_keeps_line_breaks_indented() -> None:
    assert to_txt(CHAT.messages) == (
        "[2024-03-03 10:00:00] Messages are end-to-end encrypted.\n"
        "[2024-03-03 10:00:05] Mum: Welcome!\n"
        "  Dinner at 7\n"
        "[2024-03-03 10:01:10] Dad: <attached: IMG-1.jpg>\n"
        "  <attached: notes.pdf>\n"
        "[2024-03-03 10:02:00] me: ok DINNER\n")
    assert export(CHAT, "txt") == to_txt(CHAT.messages)
    with pytest.raises(ValueError, match="unknown export format"):
        export(CHAT, "pdf")


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def tags_of(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser


def test_html_inlines_images_and_reads_like_a_chat() -> None:
    files = {"IMG-1.jpg": JPEG}
    page = to_html(CHAT, files.get, me="me")
    parsed = tags_of(page)
    imgs = [a for t, a in parsed.tags if t == "img"]
    assert len(imgs) == 1 and str(imgs[0]["src"]).startswith("data:image/jpeg;base64,")
    classes = [a.get("class") for t, a in parsed.tags if t == "div"]
    assert classes == ["m sys", "m", "m", "m me"]
    assert "Welcome!\nDinner at 7" in page and "notes.pdf" in page
    assert "4 messages, 2024-03-03 10:00:00 to 2024-03-03 10:02:00" in page


def test_html_png_by_content_not_by_name_and_no_svg() -> None:
    chat = Chat("c", "k", ("c",), (Message("2024-01-01T00:00:00", "A", "", ("a.jpg", "b.svg")),))
    files = {"a.jpg": PNG, "b.svg": b"<svg onload=alert(1)></svg>"}
    imgs = [a["src"] for t, a in tags_of(to_html(chat, files.get)).tags if t == "img"]
    assert imgs == [f"data:image/png;base64,{__import__('base64').b64encode(PNG).decode()}"]


ALLOWED = {"html", "head", "meta", "title", "style", "body", "header", "small", "main", "div",
           "span", "img"}


def test_html_escapes_hostile_content() -> None:
    files = {'"><svg onload=alert(4)>.jpg': JPEG}
    page = to_html(HOSTILE, files.get, me='"><img src=x onerror=alert(1)>')
    parsed = tags_of(page)
    assert {t for t, _ in parsed.tags} <= ALLOWED
    for tag, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert str(attrs["src"]).startswith("data:image/jpeg;base64,")
    assert "<script" not in page.lower() and "<iframe" not in page.lower()
    assert len(parsed.styles) == 1 and "alert" not in parsed.styles[0]
    csp = [a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in str(csp[0]) and "script" not in str(csp[0])
    # the hostile text is shown, as text
    assert "&lt;/style&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_search_is_case_insensitive_across_chats() -> None:
    other = Chat("Work", "telegram-export", ("r.json",),
                 (Message("2024-01-01T00:00:00", "Boss", "Dinner is on us"),))
    hits = list(search([CHAT, other], "dinner"))
    assert [(h.chat.name, h.index) for h in hits] == [("Family", 1), ("Family", 3), ("Work", 0)]
    assert [h.index for h in search([CHAT], "notes.PDF")] == [2]
    assert list(search([CHAT], "mum")) == []
    assert [h.index for h in search([CHAT], "mum", authors=True)] == [1]
    assert [h.index for h in search([CHAT], "STRASSE")] == []
    sharp = Chat("s", "k", ("s",), (Message("2024-01-01T00:00:00", "A", "Straße"),))
    assert len(list(search([sharp], "STRASSE"))) == 1
    with pytest.raises(ValueError):
        list(search([CHAT], ""))
