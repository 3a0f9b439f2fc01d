"""The bearer token's lookup, deferred into the request's first store round trip.

On PostgreSQL the token's account is read in the first round trip of the
request's first store operation (``RecordStore.defer_token_lookup``), and
checked before that operation returns anything or keeps any change; a request
with no store operation settles it before its answer.  Both stores, and over
HTTP: a wrong or foreign token counts no guess, spends no session, and gets
401/403 even where the endpoint would have refused the request for another
reason.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from strongroom.vault.auth import TokenAuth, hash_token
from strongroom.vault.core import Vault
from strongroom.vault.store import Mutation, RecordStore

from .helpers import client_finish, ke1_for, register


class Refused(Exception):
    pass


def _then(seen: list[str | None], account: str):  # type: ignore[no-untyped-def]
    def then(who: str | None) -> None:
        seen.append(who)
        if who != account:
            raise Refused(who)
    return then


def test_a_refused_token_rolls_the_transaction_back(store: RecordStore) -> None:
    store.put_account("alice", hash_token("srv1_alice"))
    seen: list[str | None] = []
    calls = []

    def fn(_row, _s):  # type: ignore[no-untyped-def]
        calls.append(1)
        return Mutation(result="written")

    with pytest.raises(Refused):  # SQLite: at once; PostgreSQL: in the first round trip
        store.defer_token_lookup(hash_token("srv1_other"), _then(seen, "alice"))
        store.transact("alice", fn)
    assert seen == [None] and calls == []  # checked before fn ran
    store.defer_token_lookup(hash_token("srv1_alice"), _then(seen, "alice"))
    assert store.transact("alice", fn) == "written"
    assert seen == [None, "alice"]
    # A read checks it too, and one that fails returns nothing.
    with pytest.raises(Refused):
        store.defer_token_lookup(hash_token("srv1_alice"), _then(seen, "bob"))
        store.get("alice")
    # Settled by any other operation, or on its own; dropped unchecked only when told.
    store.defer_token_lookup(hash_token("srv1_alice"), _then(seen, "alice"))
    store.list_accounts()
    with pytest.raises(Refused):  # SQLite: at once; PostgreSQL: when settled
        store.defer_token_lookup(hash_token("srv1_nobody"), _then(seen, "alice"))
        store.settle_token_lookup()
    store.settle_token_lookup()  # nothing pending any more
    assert seen == [None, "alice", "alice", "alice", None]
    if store.kind == "postgres":  # type: ignore[attr-defined]
        store.defer_token_lookup(hash_token("srv1_nobody"), _then(seen, "alice"))
        store.settle_token_lookup(run=False)
        store.settle_token_lookup()
        store.get("alice")
        assert len(seen) == 5  # dropped unchecked, as told


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_wrong_token_counts_no_guess_and_spends_no_session(live, vault: Vault) -> None:  # type: ignore[no-untyped-def]
    server, auth = live
    assert isinstance(auth, TokenAuth)
    alice = auth.create_account("alice")
    bob = auth.create_account("bob")
    register(vault, "alice", b"pw")
    url = f"{server.url}/v1/accounts/alice"
    ke1, state = ke1_for(b"pw")
    start = httpx.post(f"{url}/login/start", json={"ke1": _b64(ke1)},
                       headers={"authorization": f"Bearer {alice}"})
    assert start.status_code == 200, start.text
    left = start.json()["attempts_left"]
    ke3, _sk, _ek = client_finish(state, base64.urlsafe_b64decode(start.json()["ke2"] + "=="))
    finish = {"session_id": start.json()["session_id"], "ke3": _b64(ke3)}
    for token, status in ((bob, 403), ("srv1_" + "x" * 43, 401), ("nonsense", 401)):
        h = {"authorization": f"Bearer {token}"}
        r = httpx.post(f"{url}/login/start", json={"ke1": _b64(ke1)}, headers=h)
        assert r.status_code == status, r.text
        r = httpx.post(f"{url}/login/start", json={"ke1": _b64(b"not a KE1")}, headers=h)
        assert r.status_code == status, r.text  # 401/403 before the endpoint's 400
        r = httpx.post(f"{url}/login/finish", json=finish, headers=h)
        assert r.status_code == status, r.text
        r = httpx.post(f"{url}/registration/start", json={"request": _b64(b"x" * 32)}, headers=h)
        assert r.status_code == status, r.text  # no store operation: settled before the answer
    assert vault.status("alice").attempts_left == left  # no guess counted
    r = httpx.post(f"{url}/login/finish", json=finish, headers={"authorization": f"Bearer {alice}"})
    assert r.status_code == 200, r.text  # the session was not spent by the refused KE3s
