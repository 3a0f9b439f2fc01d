"""50 concurrent wrong-password logins against two vault processes sharing one database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from strongroom.client import flows
from strongroom.client.vault_client import VaultClient
from strongroom.crypto.keys import BackupKey
from strongroom.errors import AttemptsExhausted, InvalidLogin, VaultSessionInvalid
from strongroom.storage.memory import MemoryBackend
from strongroom.vault import _opaque as opaque

from .conftest import SMALL_BOUNDS, SMALL_KSF, DetRng, VaultProcess, fresh_pg_dsn


def _hammer(urls: list[str], token: str, loc: flows.VaultLocator) -> list[str]:
    ke1s = [opaque.LoginClient.start(b"wrong", rng=DetRng(i.to_bytes(2, "big"))) for i in range(50)]

    def guess(i: int) -> str:
        with VaultClient(urls[i % len(urls)], "alice", token, slot=loc.slot) as c:
            ke1, st = ke1s[i]
            try:
                ans = c.login_start(ke1)
            except AttemptsExhausted:
                return "locked"
            try:
                opaque.LoginClient.finish(st, ans.ke2, config=loc.config(SMALL_KSF))
                return "RELEASED"
            except InvalidLogin:
                pass
            try:
                c.login_finish(ans.session_id, b"\x00" * 64)
                return "RELEASED"
            except (InvalidLogin, AttemptsExhausted, VaultSessionInvalid):
                return "ke2"  # the last wrong KE3 is AttemptsExhausted

    with ThreadPoolExecutor(max_workers=25) as pool:
        return list(pool.map(guess, range(50)))


def _run(tmp_path: Path, database: str | None) -> None:
    first = VaultProcess(tmp_path, database=database).start()
    second = None
    try:
        token = first.create_account("alice")
        second = VaultProcess(tmp_path, database=database)
        second.start()  # same secrets file (made by the first), same database
        backend = MemoryBackend()
        with VaultClient(first.url, "alice", token) as c:
            loc = flows.enable(backend, BackupKey.generate(), c, "right", ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
        results = _hammer([first.url, second.url], token, loc)
        assert results.count("ke2") == 10, results
        assert results.count("locked") == 40
        assert "RELEASED" not in results
        with VaultClient(second.url, "alice", token) as c, pytest.raises(AttemptsExhausted):
            flows.recover(loc, c, "right", bounds=SMALL_BOUNDS)
    finally:
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.vault
def test_two_vault_processes_sqlite(tmp_path: Path) -> None:
    _run(tmp_path, None)


@pytest.mark.vault
@pytest.mark.postgres
def test_two_vault_processes_postgres(tmp_path: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    _run(tmp_path, fresh_pg_dsn(pg_server))
