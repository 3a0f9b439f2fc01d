"""The operator's ``vault account list`` and ``vault account delete``, on both stores."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from strongroom.cli.main import cli
from strongroom.vault.auth import TokenAuth
from strongroom.vault.core import Vault
from strongroom.vault.store import RecordStore

from .helpers import ke1_for, register


def test_list_and_delete_accounts(vault: Vault, store: RecordStore) -> None:
    auth = TokenAuth(store)
    token = auth.create_account("alice")
    auth.create_account("carol")
    register(vault, "alice", b"pw")
    vault.login_start("alice", ke1_for(b"wrong")[0])
    vault.advance_head("alice", 1, b"t" * 32)
    register(vault, "bob", b"pw")  # a record without a standalone token (JWT mode)
    assert store.list_accounts() == [("alice", "active", 1), ("bob", "active", 0),
                                     ("carol", None, 0)]
    assert store.delete_account("alice") is True
    assert store.get("alice") is None and store.get_head("alice") is None
    assert auth.account(token) is None
    assert store.delete_account("alice") is False
    assert [n for n, _s, _u in store.list_accounts()] == ["bob", "carol"]


def test_cli_account_list_and_delete(tmp_path: Path) -> None:
    db = str(tmp_path / "vault.db")
    run = CliRunner().invoke
    assert run(cli, ["vault", "account", "create", "alice", "--db", db]).exit_code == 0
    listed = run(cli, ["vault", "account", "list", "--db", db, "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == [{"account": "alice", "slot": None, "record": None,
                                           "used": 0}]
    refused = run(cli, ["vault", "account", "delete", "alice", "--db", db])
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert run(cli, ["vault", "account", "delete", "alice", "--db", db, "--yes"]).exit_code == 0
    again = run(cli, ["vault", "account", "delete", "alice", "--db", db, "--yes"])
    assert again.exit_code == 2 and "no account alice" in again.stderr
    assert json.loads(run(cli, ["vault", "account", "list", "--db", db, "--json"]).stdout) == []
