"""The one error boundary: messages, hints, exit codes, tracebacks only for bugs."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from strongroom import errors
from strongroom.cli.errors import INTERRUPTED_MESSAGE, report, tidy
from strongroom.cli.main import StrongroomGroup

USER_ERRORS = [
    (errors.UsageError, 2),
    (errors.RepositoryNotFound, 10),
    (errors.RepositoryExists, 10),
    (errors.SnapshotNotFound, 10),
    (errors.WrongKey, 11),
    (errors.InvalidKeyFormat, 11),
    (errors.DataDamaged, 12),
    (errors.FormatError, 12),
    (errors.RepositoryLocked, 13),
    (errors.UnsupportedVersion, 14),
    (errors.StorageError, 15),
    (errors.TransientStorageError, 15),
    (errors.LocalWriteError, 16),
    (errors.VaultError, 20),
    (errors.InvalidLogin, 21),
    (errors.AttemptsExhausted, 22),
    (errors.VaultUnreachable, 23),
    (errors.VaultProtocolError, 24),
    (errors.VaultAuthError, 25),
    (errors.ProtocolError, 24),
]


def _group_raising(exc: BaseException) -> click.Group:
    @click.group("strongroom", cls=StrongroomGroup)
    def group() -> None:
        """Test group."""

    @group.command("boom")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def boom(ctx: click.Context, as_json: bool) -> None:
        ctx.obj.json = as_json
        raise exc

    return group


@pytest.mark.parametrize(("cls", "code"), USER_ERRORS, ids=lambda v: getattr(v, "__name__", v))
def test_user_error_is_one_line_with_its_exit_code(cls: type[errors.StrongroomError],
                                                   code: int) -> None:
    result = CliRunner().invoke(_group_raising(cls()), ["boom"])
    assert result.exit_code == code
    lines = result.stderr.splitlines()
    assert lines[0].startswith("strongroom: error: ")
    assert "Traceback" not in result.stderr
    assert all(line.startswith("strongroom: ") for line in lines)
    assert len(lines) == (2 if cls.hint else 1)
    message = lines[0].removeprefix("strongroom: error: ")
    assert message[0].islower() and not message.endswith(".")
    assert result.stdout == ""


def test_wrong_key_message_is_the_documented_one() -> None:
    result = CliRunner().invoke(_group_raising(errors.WrongKey()), ["boom"])
    assert result.stderr.splitlines()[0] == \
        "strongroom: error: this key does not open this backup"
    assert result.stderr.splitlines()[1].startswith("strongroom: hint: check that you typed")


def test_internal_error_shows_traceback_and_exits_70() -> None:
    result = CliRunner().invoke(_group_raising(errors.InternalError("index out of step")),
                                ["boom"])
    assert result.exit_code == 70
    assert "Traceback (most recent call last)" in result.stderr
    assert "strongroom: error: index out of step" in result.stderr


def test_unexpected_exception_is_a_bug_exit_70() -> None:
    result = CliRunner().invoke(_group_raising(ZeroDivisionError("x")), ["boom"])
    assert result.exit_code == 70
    assert "Traceback (most recent call last)" in result.stderr
    assert "strongroom: error: internal error (ZeroDivisionError)" in result.stderr
    assert "strongroom: hint: this is a bug" in result.stderr


def test_ctrl_c_exits_130_with_one_line() -> None:
    result = CliRunner().invoke(_group_raising(KeyboardInterrupt()), ["boom"])
    assert result.exit_code == 130
    assert result.stderr.strip() == f"strongroom: {INTERRUPTED_MESSAGE}"


def test_json_mode_also_reports_error_on_stdout() -> None:
    result = CliRunner().invoke(_group_raising(errors.WrongKey()), ["boom", "--json"])
    assert result.exit_code == 11
    doc = json.loads(result.stdout)
    assert doc["error"]["type"] == "WrongKey"
    assert doc["error"]["exit_code"] == 11
    assert doc["error"]["message"] == "this key does not open this backup"


def test_click_usage_error_maps_to_exit_2() -> None:
    result = CliRunner().invoke(_group_raising(errors.WrongKey()), ["boom", "--nope"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "strongroom: error: no such option '--nope'",
        "strongroom: hint: run 'strongroom boom --help' for its options",
    ]


def test_report_returns_code_without_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(errors.RepositoryLocked()) == 13
    assert "strongroom: error: the repository is locked" in capsys.readouterr().err


@pytest.mark.parametrize(("raw", "tidied"), [
    ("This key does not open this backup.", "this key does not open this backup"),
    ("S3 bucket missing.", "S3 bucket missing"),
    ("two\nlines  here", "two lines here"),
    ("A", "a"),
    ("Vanished: a/B.db.", "vanished: a/B.db"),
    ("", ""),
])
def test_tidy(raw: str, tidied: str) -> None:
    assert tidy(raw) == tidied
