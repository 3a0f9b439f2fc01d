"""The error tree as an app meets it: everything importable from ``strongroom``,
messages and hints fit for any UI (the CLI adds flags), typed fields."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import strongroom
from strongroom import errors
from strongroom.cli.errors import CLI_HINTS, cli_hint

CLASSES = [c for c in vars(errors).values()
           if inspect.isclass(c) and issubclass(c, errors.StrongroomError)
           and not c.__name__.startswith("_")]
#: What only a command line knows: flags, commands, its environment variables.
CLI_WORDS = re.compile(r"(^|\s)--[a-z]|'strongroom |STRONGROOM_|AWS_[A-Z_]+|pip install")
SRC = Path(strongroom.__file__).parent


def test_every_error_class_is_exported_from_strongroom() -> None:
    for cls in CLASSES:
        assert getattr(strongroom, cls.__name__) is cls
        assert cls.__name__ in strongroom.__all__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_class_messages_and_hints_name_no_cli_flag(cls: type[errors.StrongroomError]) -> None:
    exc = cls()
    assert not CLI_WORDS.search(exc.message), exc.message
    assert not CLI_WORDS.search(exc.hint or ""), exc.hint


def test_no_library_raise_site_outside_the_cli_and_vault_server_names_a_cli_flag() -> None:
    # The repository engine, storage, SDK and password-journey (client/) modules: an
    # app shows these messages.  (vault/ is the vault server, whose operator uses its
    # CLI; cli/ is the CLI itself.)
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("cli/", "vault/")):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if ("hint=" in line or "Error(" in line) and CLI_WORDS.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


def test_the_cli_keeps_its_flag_hints() -> None:
    assert "--repo" in (cli_hint(errors.RepositoryNotFound()) or "")
    assert "--read-data" in (cli_hint(errors.DataDamaged()) or "")
    assert "--target" in (cli_hint(errors.LocalWriteError()) or "")
    denied = errors.PermanentStorageError("denied", hint="check the keys", reason="access-denied")
    assert "AWS_ACCESS_KEY_ID" in (cli_hint(denied) or "")
    # A raise site's own hint wins over the CLI's class hint.
    assert cli_hint(errors.RepositoryNotFound("x", hint="own")) == "own"
    assert all(isinstance(k, type) or (isinstance(k, tuple) and len(k) == 2) for k in CLI_HINTS)


def test_typed_fields_and_to_dict() -> None:
    exc = errors.ObjectNotFound("gone", object="data/ab/cd", location="s3:https://h/b")
    assert (exc.object, exc.location, exc.reason) == ("data/ab/cd", "s3:https://h/b", None)
    doc = exc.to_dict()
    assert doc["type"] == "ObjectNotFound" and doc["object"] == "data/ab/cd"
    assert doc["exit_code"] == 15
    assert errors.InvalidLogin(attempts_left=3).to_dict()["attempts_left"] == 3
    assert errors.AttemptsExhausted().attempts_left == 0
    assert errors.SnapshotNotFound(ref="abc").ref == "abc"
    assert errors.Cancelled(reason="user").to_dict()["reason"] == "user"
    assert errors.Cancelled().exit_code == 130


def test_a_missing_object_names_itself(tmp_path: Path) -> None:
    backend = strongroom.storage_local(tmp_path, create=True)
    with pytest.raises(errors.ObjectNotFound) as info:
        backend.get("data/00/0000")
    assert info.value.object == "data/00/0000"


def test_a_restore_write_error_names_the_path(tmp_path: Path) -> None:
    from strongroom.repo.target import write_error

    err = write_error("write", "/x/y", OSError(28, "No space left on device"))
    assert err.path == "/x/y" and "--" not in (err.hint or "")
