"""Progress bars: drawn on a terminal, silent elsewhere, never on stdout."""

from __future__ import annotations

import io

from strongroom.cli.progress import TerminalProgress, make_progress
from strongroom.progress import NullProgress, Progress


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_not_a_terminal_is_silent() -> None:
    assert isinstance(make_progress(stream=io.StringIO()), NullProgress)


def test_disabled_is_silent_even_on_a_terminal() -> None:
    assert isinstance(make_progress(enabled=False, stream=FakeTerminal()), NullProgress)


def test_terminal_draws_phases_and_warnings() -> None:
    screen = FakeTerminal()
    progress = make_progress(stream=screen)
    assert isinstance(progress, TerminalProgress)
    assert isinstance(progress, Progress)
    progress.start("backup", 1000, "bytes")
    progress.advance(400)
    progress.warn("Vanished: chats/old.db.")
    progress.advance(600)
    progress.finish()
    progress.start("index", None, "files")
    progress.advance(3)
    progress.finish()
    progress.finish()  # a second finish is harmless (the error path calls it)
    drawn = screen.getvalue()
    assert "backup" in drawn and "index" in drawn
    assert "strongroom: warning: vanished: chats/old.db" in drawn


def test_cli_commands_give_the_engine_a_silent_sink_when_piped() -> None:
    from strongroom.cli.context import AppContext

    # CliRunner and CI capture stderr: no terminal, so no bars in logs; with --json,
    # JSON status lines (on stderr: stdout keeps its one document).
    from strongroom.cli.progress import JsonLinesProgress

    assert isinstance(AppContext().progress(), NullProgress)
    assert isinstance(AppContext(json=True).progress(), JsonLinesProgress)
    assert isinstance(AppContext(json=True, quiet=True).progress(), NullProgress)
    assert isinstance(AppContext(json=True, no_progress=True).progress(), NullProgress)
