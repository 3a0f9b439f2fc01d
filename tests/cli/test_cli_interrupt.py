"""Ctrl-C in the CLI goes through the Cancel token (docs/spec/cli.md §5).

The first SIGINT during an operation sets ``AppContext.cancel`` and nothing
else: no ``KeyboardInterrupt`` lands at a random point of the engine (a
``finally`` half run, a worker pool being shut down); the operation stops at
its next check with ``Cancelled``, which the error boundary reports as exit
130.  A second SIGINT interrupts at once; outside an operation (a prompt)
Ctrl-C interrupts at once as before.  The real process is exercised in
``test_cli_subprocess.py``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from cli_harness import Invoke

from strongroom.cli.context import AppContext


def _ctrl_c() -> None:
    """SIGINT to the main thread itself: a signal sent to the process may be taken by
    any of its threads, and the handler would then run only some bytecodes later."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def test_the_first_ctrl_c_only_cancels_the_second_interrupts() -> None:
    app = AppContext()
    before = signal.getsignal(signal.SIGINT)
    with app.interruptible() as token:
        _ctrl_c()
        assert token.cancelled and token.reason == "interrupted (Ctrl-C)"
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()
            signal.sigtimedwait([], 0.0)  # a bytecode boundary for the handler to run at
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):  # outside an operation: at once, as before
        _ctrl_c()
        signal.sigtimedwait([], 0.0)


def test_an_ignored_sigint_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with AppContext().interruptible() as token:
            _ctrl_c()
            assert not token.cancelled
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_mid_backup_is_a_cancel(invoke: Invoke, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A real SIGINT while the backup reads a file: the backup goes on to its next
    # check and raises Cancelled (not KeyboardInterrupt); exit 130, one line.
    from strongroom.errors import Cancelled
    from strongroom.repo.engine import Engine

    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.txt").write_bytes(os.urandom(20_000))
    repo = tmp_path / "repo"
    assert invoke("--repo", repo, "--key-file", tmp_path / "k", "init").code == 0
    seen: list[BaseException] = []
    original_init = Engine.__init__

    def init(self: Engine, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]

        def before_read(path: Path) -> None:
            if path.name == "f2.txt":
                _ctrl_c()  # the user presses Ctrl-C
                # Go on once the handler has run (on the main thread): on a loaded
                # machine the rest of the backup could otherwise finish first.
                from strongroom import cancel

                assert cancel.current().wait(10)

        self._test_only_before_read = before_read

    import strongroom.cli.errors as cli_errors

    original_describe = cli_errors._describe

    def describe(exc: BaseException) -> tuple[str, str, str | None, int, bool]:
        seen.append(exc)
        return original_describe(exc)

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "__init__", init)
        patch.setattr(cli_errors, "_describe", describe)
        run = invoke("--repo", repo, "--key-file", tmp_path / "k", "backup", src)
    assert run.code == 130
    assert [type(e) for e in seen] == [Cancelled]
    assert run.err.strip() == "strongroom: interrupted; the last complete snapshot is intact"
    assert os.listdir(repo / "locks") == []
    listed = invoke("--repo", repo, "--key-file", tmp_path / "k", "--json", "snapshots")
    assert listed.json()["snapshots"] == []
