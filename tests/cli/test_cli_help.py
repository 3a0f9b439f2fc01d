"""Every command explains itself, with examples, and the version is printed."""

from __future__ import annotations

import click
import pytest
from cli_harness import Invoke

from strongroom import __version__
from strongroom.cli.main import cli

COMMANDS = [["init"], ["backup"], ["snapshots"], ["restore"], ["ls"], ["find"], ["diff"],
            ["dump"], ["stats"], ["check"], ["forget"], ["prune"], ["key"], ["key", "show"],
            ["key", "remember"], ["key", "forget"], ["chats"], ["chats", "export"],
            ["chats", "search"], ["chats", "diff"]]


def test_every_command_is_covered() -> None:
    registered = set(cli.commands)
    assert {c[0] for c in COMMANDS} <= registered
    assert {"init", "backup", "snapshots", "restore", "ls", "find", "diff", "dump", "stats",
            "check", "forget", "prune", "key"} <= registered


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_help_of_every_command(invoke: Invoke, words: list[str]) -> None:
    run = invoke(*words, "--help")
    assert run.code == 0
    assert f"Usage: strongroom {' '.join(words)}" in run.out
    assert "--repo" in run.out  # global options are accepted after the command too
    assert "Examples:" in run.out


def test_top_level_help_lists_commands_and_exit_codes(invoke: Invoke) -> None:
    run = invoke("--help")
    assert run.code == 0
    for name in ("init", "backup", "snapshots", "restore", "check", "forget", "prune", "key"):
        assert f"  {name} " in run.out
    assert "STRONGROOM_REPO" in run.out and "STRONGROOM_KEY_FILE" in run.out
    assert "Exit codes" in run.out


def test_version(invoke: Invoke) -> None:
    run = invoke("--version")
    assert run.code == 0
    assert run.out.strip() == f"strongroom {__version__}"


def test_no_arguments_shows_help_and_exits_2(invoke: Invoke) -> None:
    run = invoke()
    assert run.code == 2
    assert "Usage: strongroom" in run.err


def _all_command_paths(group: click.Group, prefix: list[str]) -> list[list[str]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append([*prefix, name])
        if isinstance(command, click.Group):
            paths.extend(_all_command_paths(command, [*prefix, name]))
    return paths


def test_help_of_every_registered_command_including_extensions(invoke: Invoke) -> None:
    paths = _all_command_paths(cli, [])
    assert len(paths) >= len(COMMANDS)
    for words in paths:
        run = invoke(*words, "--help")
        assert run.code == 0, (words, run.err)
        assert f"Usage: strongroom {' '.join(words)}" in run.out
