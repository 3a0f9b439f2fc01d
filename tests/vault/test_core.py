"""The vault core over each record store: counter, sessions, release of the wrapped K."""

from __future__ import annotations

import pytest

from strongroom.errors import (
    AttemptsExhausted,
    InvalidLogin,
    VaultProtocolError,
    VaultSessionInvalid,
)
from strongroom.vault import _opaque as opaque
from strongroom.vault import labels
from strongroom.vault.core import Vault
from strongroom.vault.sealing import derive, frame, open_sealed

from .conftest import DetRng, small_config
from .helpers import PROOF, client_finish, ke1_for, register

PW = b"correct horse"
WRAPPED = b"wrapped-K-" + bytes(range(50))


def _login(vault: Vault, account: str, pw: bytes, seed: bytes = b"s") -> bytes:
    ke1, st = ke1_for(pw, seed)
    started = vault.login_start(account, ke1)
    ke3, session_key, _ = client_finish(st, started.ke2)
    released = vault.login_finish(account, started.session_id, ke3)
    ad = frame(account.encode(), started.session_id.encode())
    return open_sealed(derive(session_key, labels.RELEASE), released, ad)


def test_right_password_releases_the_wrapped_key(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    assert _login(vault, "alice", PW) == WRAPPED
    assert vault.status("alice").attempts_left == 10


def test_wrong_password_counts_and_client_cannot_finish(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    for i in range(3):
        ke1, st = ke1_for(b"wrong", bytes([i]))
        started = vault.login_start("alice", ke1)
        assert started.attempts_left == 9 - i
        with pytest.raises(InvalidLogin):
            client_finish(st, started.ke2)
    assert vault.status("alice").attempts_left == 7
    assert _login(vault, "alice", PW) == WRAPPED  # success resets the counter
    assert vault.status("alice").attempts_left == 10


def test_limit_erases_record_for_good(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    for i in range(10):
        ke1, _ = ke1_for(b"wrong", bytes([i]))
        assert vault.login_start("alice", ke1).attempts_left == 9 - i
    row = vault.store.get("alice")
    assert row is not None and row.sealed is None and row.state.value == "locked"
    ke1, _ = ke1_for(PW, b"late")
    with pytest.raises(AttemptsExhausted):
        vault.login_start("alice", ke1)
    st = vault.status("alice")
    assert (st.exists, st.locked, st.attempts_left) == (False, True, 0)


def test_right_password_on_last_attempt_restores(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    for i in range(9):
        vault.login_start("alice", ke1_for(b"wrong", bytes([i]))[0])
    assert vault.status("alice").attempts_left == 1
    assert _login(vault, "alice", PW) == WRAPPED
    st = vault.status("alice")
    assert (st.exists, st.locked, st.attempts_left) == (True, False, 10)


def test_last_attempt_session_expiring_leaves_nothing(vault: Vault, clock) -> None:  # type: ignore[no-untyped-def]
    register(vault, "alice", PW, WRAPPED)
    for i in range(9):
        vault.login_start("alice", ke1_for(b"wrong", bytes([i]))[0])
    ke1, st = ke1_for(PW, b"last")
    started = vault.login_start("alice", ke1)
    ke3, _, _ = client_finish(st, started.ke2)
    clock.now += 61
    assert vault.store.purge_sessions(clock.now) >= 1
    with pytest.raises(VaultSessionInvalid):
        vault.login_finish("alice", started.session_id, ke3)
    assert vault.status("alice").locked


def test_replayed_ke3_is_rejected(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    ke1, st = ke1_for(PW)
    started = vault.login_start("alice", ke1)
    ke3, _, _ = client_finish(st, started.ke2)
    vault.login_finish("alice", started.session_id, ke3)
    with pytest.raises(VaultSessionInvalid):
        vault.login_finish("alice", started.session_id, ke3)


def test_stale_session_is_rejected(vault: Vault, clock) -> None:  # type: ignore[no-untyped-def]
    register(vault, "alice", PW, WRAPPED)
    ke1, st = ke1_for(PW)
    started = vault.login_start("alice", ke1)
    ke3, _, _ = client_finish(st, started.ke2)
    clock.now += 61
    with pytest.raises(VaultSessionInvalid):
        vault.login_finish("alice", started.session_id, ke3)
    assert vault.status("alice").attempts_left == 9  # the guess stays counted


def test_session_of_another_account_is_rejected(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    register(vault, "bob", PW, WRAPPED)
    ke1, st = ke1_for(PW)
    started = vault.login_start("alice", ke1)
    ke3, _, _ = client_finish(st, started.ke2)
    with pytest.raises(VaultSessionInvalid):
        vault.login_finish("bob", started.session_id, ke3)


def test_reregistration_ends_open_sessions(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    ke1, st = ke1_for(PW)
    started = vault.login_start("alice", ke1)
    ke3, _, _ = client_finish(st, started.ke2)
    register(vault, "alice", b"new password", b"new-wrapped")
    with pytest.raises(VaultSessionInvalid):
        vault.login_finish("alice", started.session_id, ke3)
    assert _login(vault, "alice", b"new password") == b"new-wrapped"


def test_bad_ke3_spends_the_session(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    ke1, st = ke1_for(PW)
    started = vault.login_start("alice", ke1)
    good_ke3, _, _ = client_finish(st, started.ke2)
    with pytest.raises(InvalidLogin) as exc:
        vault.login_finish("alice", started.session_id, b"\x00" * 64)
    assert exc.value.attempts_left == 9  # type: ignore[attr-defined]
    # One KE3 per session: even the right KE3 is now refused.
    with pytest.raises(VaultSessionInvalid):
        vault.login_finish("alice", started.session_id, good_ke3)


@pytest.mark.parametrize("ke3", [b"", b"\x00" * 63, b"\x00" * 65])
def test_truncated_ke3_is_a_failed_login(vault: Vault, ke3: bytes) -> None:
    register(vault, "alice", PW, WRAPPED)
    started = vault.login_start("alice", ke1_for(PW)[0])
    with pytest.raises(InvalidLogin):
        vault.login_finish("alice", started.session_id, ke3)


def test_unknown_account_gets_fake_ke2_and_same_failure(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    for i in range(3):
        real = vault.login_start("alice", ke1_for(b"wrong", bytes([i]))[0])
        fake = vault.login_start("nobody", ke1_for(b"wrong", bytes([i]))[0])
        assert len(real.ke2) == len(fake.ke2)
        assert len(real.session_id) == len(fake.session_id)
        assert real.attempts_left == fake.attempts_left == 9 - i
    ke1, st = ke1_for(PW, b"x")
    fake = vault.login_start("nobody", ke1)
    with pytest.raises(InvalidLogin):
        client_finish(st, fake.ke2)
    # Even a KE3 for the fake session fails exactly like a wrong KE3.
    with pytest.raises(InvalidLogin) as exc:
        vault.login_finish("nobody", fake.session_id, b"\x01" * 64)
    assert exc.value.attempts_left == 6  # type: ignore[attr-defined]
    assert not vault.status("nobody").exists


def test_unknown_account_locks_like_a_real_one(vault: Vault) -> None:
    for i in range(10):
        vault.login_start("nobody", ke1_for(b"x", bytes([i]))[0])
    with pytest.raises(AttemptsExhausted):
        vault.login_start("nobody", ke1_for(b"x", b"y")[0])


def test_delete_erases(vault: Vault) -> None:
    register(vault, "alice", PW, WRAPPED)
    assert vault.delete("alice", PROOF) is True
    assert vault.store.get("alice") is None
    assert vault.delete("alice") is False
    assert not vault.status("alice").exists


@pytest.mark.parametrize("ke1", [b"", b"\x00" * 95, b"\x00" * 96, b"\xff" * 96, b"\x00" * 200])
def test_malformed_ke1_is_a_protocol_error_and_not_counted(vault: Vault, ke1: bytes) -> None:
    register(vault, "alice", PW, WRAPPED)
    with pytest.raises(VaultProtocolError):
        vault.login_start("alice", ke1)
    assert vault.status("alice").attempts_left == 10


@pytest.mark.parametrize("record", [b"", b"\x00" * 191, b"\x00" * 192, b"\x00" * 193])
def test_malformed_record_is_refused(vault: Vault, record: bytes) -> None:
    request = opaque.RegistrationClient.start(PW, config=small_config(), rng=DetRng(b"r"))[0]
    reg_id = vault.registration_start("alice", request).registration_id
    with pytest.raises(VaultProtocolError):
        vault.registration_finish("alice", record, WRAPPED, registration_id=reg_id,
                                  proof_verifier=bytes(32))
    assert vault.store.get("alice") is None


class _CommitFails:
    """A store whose commit fails after ``fn`` ran (outcome unknown)."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def transact(self, account_id, fn, **kw):  # type: ignore[no-untyped-def]
        from strongroom.errors import VaultStoreError

        self.calls += 1
        self.inner.transact(account_id, fn, **kw)  # the guess may well be on disk...
        raise VaultStoreError()  # ...but the vault was told the commit failed


def test_commit_failure_sends_no_ke2_and_keeps_the_guess(vault: Vault) -> None:
    from strongroom.errors import VaultStoreError

    register(vault, "alice", PW, WRAPPED)
    failing = Vault(_CommitFails(vault.store), vault._secrets, vault.config, vault.policy)  # type: ignore[arg-type]
    with pytest.raises(VaultStoreError):
        failing.login_start("alice", ke1_for(PW)[0])
    assert vault.status("alice").attempts_left == 9  # counted, never rolled back


@pytest.mark.postgres
def test_postgres_connection_lost_before_commit_sends_no_ke2(pg_server, secrets, clock) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    from strongroom.errors import VaultStoreError
    from strongroom.vault.core import VaultPolicy
    from strongroom.vault.store_postgres import PostgresStore

    from .conftest import DetRng, fresh_pg_dsn, small_config

    dsn = fresh_pg_dsn(pg_server)
    store = PostgresStore(dsn)
    vault = Vault(store, secrets, small_config(), VaultPolicy(), clock=clock, rng=DetRng(b"pg"))
    register(vault, "alice", PW, WRAPPED)
    real = store.transact

    def transact_then_lose_connection(account_id, fn, **kw):  # type: ignore[no-untyped-def]
        def killing_fn(cur, sess):  # type: ignore[no-untyped-def]
            # Every other session of this database: the pooled one in this transaction too.
            with psycopg.connect(dsn, autocommit=True) as admin:
                n = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
                assert n is not None and n[0] >= 1
            return fn(cur, sess)
        return real(account_id, killing_fn, **kw)

    store.transact = transact_then_lose_connection  # type: ignore[method-assign]
    with pytest.raises(VaultStoreError):
        vault.login_start("alice", ke1_for(PW)[0])
    store.transact = real  # type: ignore[method-assign]
    # The store reconnects; the record is intact and the vault works on.
    assert vault.status("alice").exists
    assert _login(vault, "alice", PW) == WRAPPED
    store.close()
