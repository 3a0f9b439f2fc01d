"""Concurrent wrong guesses never get past the limit (threads over each store)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from strongroom.errors import AttemptsExhausted, InvalidLogin, VaultSessionInvalid
from strongroom.vault.core import Vault

from .helpers import client_finish, ke1_for, register


def test_50_concurrent_wrong_logins_limit_10(vault: Vault) -> None:
    register(vault, "alice", b"right", b"W" * 60)
    ke1s = [ke1_for(b"wrong", i.to_bytes(2, "big")) for i in range(50)]

    def guess(i: int) -> str:
        ke1, st = ke1s[i]
        try:
            started = vault.login_start("alice", ke1)
        except AttemptsExhausted:
            return "locked"
        try:
            client_finish(st, started.ke2)
        except InvalidLogin:
            pass
        else:
            return "RELEASED"
        try:
            vault.login_finish("alice", started.session_id, b"\x00" * 64)
        except (InvalidLogin, VaultSessionInvalid):
            return "ke2"  # sessions older than the last one die with the lock
        return "RELEASED"

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(guess, range(50)))
    assert results.count("ke2") == 10
    assert results.count("locked") == 40
    assert "RELEASED" not in results
    row = vault.store.get("alice")
    assert row is not None and row.sealed is None


def test_a_mutation_that_raises_writes_nothing_and_frees_the_account(store) -> None:  # type: ignore[no-untyped-def]
    from strongroom.vault.store import Mutation

    class Refused(Exception):
        pass

    def refuse(_cur, _sess):  # type: ignore[no-untyped-def]
        raise Refused()

    with pytest.raises(Refused):
        store.transact("alice", refuse)
    # Another thread (another connection) gets the account's lock at once, and
    # this thread's next transaction starts clean.
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(store.transact, "alice",
                           lambda _c, _s: Mutation(result="free")).result(timeout=10) == "free"
    assert store.transact("alice", lambda cur, _s: Mutation(result=cur)) is None
