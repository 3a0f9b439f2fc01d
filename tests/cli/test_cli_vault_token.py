"""Where the CLI takes the vault token from (cli/vaulttoken.py); the live-vault runs are in
tests/vault/test_client_secrets.py."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from strongroom.cli.context import AppContext
from strongroom.cli.main import cli
from strongroom.cli.vaulttoken import vault_token
from strongroom.errors import UsageError

TOKEN = "srv1_" + "A" * 43


def _app(env: dict[str, str] | None = None, *, token_file: str | None = None,
         tty: bool = False) -> AppContext:
    app = AppContext(env=env or {}, stdin_is_tty=lambda: tty)
    if token_file is not None:
        app.extra["vault_token_file"] = token_file
    return app


def test_no_source_means_none() -> None:
    assert vault_token(_app()) is None
    assert vault_token(_app({"STRONGROOM_VAULT_TOKEN": ""})) is None


def test_environment_token_is_checked_too() -> None:
    assert vault_token(_app({"STRONGROOM_VAULT_TOKEN": f" {TOKEN}\n"})) == TOKEN
    with pytest.raises(UsageError, match="STRONGROOM_VAULT_TOKEN does not hold one token") as err:
        vault_token(_app({"STRONGROOM_VAULT_TOKEN": f"{TOKEN}\r\nX-Injected: 1"}))
    assert TOKEN not in err.value.message


def test_standard_input_is_read_once() -> None:
    app = _app(token_file="-")

    @click.command()
    def twice() -> None:
        click.echo(vault_token(app))
        click.echo(vault_token(app))  # the second call must not read (empty) stdin again

    result = CliRunner().invoke(twice, input=TOKEN + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [TOKEN, TOKEN]


def test_standard_input_on_a_terminal_is_a_hidden_prompt() -> None:
    app = _app(token_file="-", tty=True)

    @click.command()
    def ask() -> None:
        click.echo(f"got {vault_token(app) == TOKEN}")

    result = CliRunner().invoke(ask, input=TOKEN + "\n")
    assert result.exit_code == 0, result.output
    assert "Vault token:" in result.stderr and TOKEN not in result.stderr
    assert result.stdout.strip() == "got True"


def test_a_pipe_is_read_whatever_its_mode(tmp_path: Path) -> None:
    fifo = tmp_path / "token-pipe"
    os.mkfifo(fifo, 0o666)  # like <(pass show vault): not a regular file, mode does not apply

    def feed() -> None:
        with open(fifo, "w") as f:
            f.write(TOKEN + "\n")

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        assert vault_token(_app(token_file=str(fifo))) == TOKEN
    finally:
        writer.join(timeout=10)


def test_no_command_offers_the_token_as_an_argument() -> None:
    for name in ("enable", "disable", "change-password", "restore", "snapshots", "backup"):
        result = CliRunner().invoke(cli, [name, "--help"], obj=AppContext())
        assert result.exit_code == 0
        assert "--vault-token " not in result.stdout and "--vault-token\n" not in result.stdout
        if name != "backup":
            assert "--vault-token-file" in result.stdout, name
    result = CliRunner().invoke(cli, ["vault", "status", "--help"], obj=AppContext())
    assert "--vault-token-file" in result.stdout and "STRONGROOM_VAULT_TOKEN" in result.stdout
