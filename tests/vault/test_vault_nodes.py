"""A client given several vault nodes: the next node only when nothing reached the first.

Real sockets on loopback: a closed port (connection refused), a node that answers
503, a node that takes the request and closes without answering, and a live vault.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strongroom.client import flows
from strongroom.client.vault_client import VaultClient
from strongroom.crypto.keys import BackupKey
from strongroom.errors import InvalidLogin, UsageError, VaultUnreachable
from strongroom.storage.memory import MemoryBackend

from . import pg
from .conftest import SMALL_BOUNDS, SMALL_KSF, DetRng
from .helpers import RecordingProxy

_503 = b'{"error": "unavailable", "message": "the record store failed"}'
ANSWER_503 = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
              b"connection: close\r\ncontent-length: " + str(len(_503)).encode() + b"\r\n\r\n" + _503)


@pytest.fixture
def node503() -> Iterator[RecordingProxy]:
    """A "vault node" that answers every request 503."""
    with RecordingProxy(ANSWER_503) as n:
        yield n


@pytest.fixture
def silent() -> Iterator[RecordingProxy]:
    """A "vault node" that reads each request and closes without answering."""
    with RecordingProxy(None) as n:
        yield n


@pytest.fixture
def account(live):  # type: ignore[no-untyped-def]
    """(live vault URL, token, locator) of an account with a password."""
    server, auth = live
    token = auth.create_account("alice", DetRng(b"alice"))
    with VaultClient(server.url, "alice", token) as c:
        loc = flows.enable(MemoryBackend(), BackupKey.from_bytes(bytes(32)), c, "pw",
                           ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
    return server.url, token, loc


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{pg.free_port()}"


def test_refused_connection_moves_to_the_next_node(account) -> None:  # type: ignore[no-untyped-def]
    url, token, loc = account
    dead = _closed_port_url()
    with VaultClient(f"{dead},{url}", "alice", token, slot=loc.slot) as c:
        assert c.url == dead and c.urls == (dead, url)
        with pytest.raises(InvalidLogin) as exc:
            flows.recover(loc, c, "wrong", bounds=SMALL_BOUNDS)
        assert exc.value.attempts_left == 9  # one guess, counted once
        assert flows.recover(loc, c, "pw", bounds=SMALL_BOUNDS) is not None
        assert c.status()["attempts_left"] == 10


def test_no_node_reachable_names_each(account) -> None:  # type: ignore[no-untyped-def]
    _url, token, _loc = account
    a, b = _closed_port_url(), _closed_port_url()
    with VaultClient(f"{a},{b}", "alice", token) as c, pytest.raises(VaultUnreachable) as exc:
        c.status()
    assert a in exc.value.message and b in exc.value.message


def test_an_answer_is_not_retried_elsewhere_503_included(account, node503) -> None:  # type: ignore[no-untyped-def]
    url, token, loc = account
    with (VaultClient(f"{node503.url},{url}", "alice", token) as c,
          pytest.raises(VaultUnreachable, match="unavailable")):
        flows.recover(loc, c, "wrong", bounds=SMALL_BOUNDS)  # its first request (status) got the 503
    assert len(node503.received) == 1
    with VaultClient(url, "alice", token, slot=loc.slot) as c:
        assert c.status()["attempts_left"] == 10  # the live node saw no guess


def test_a_sent_login_without_answer_is_not_sent_again(account, silent) -> None:  # type: ignore[no-untyped-def]
    url, token, loc = account
    from strongroom.vault import _opaque as opaque

    with VaultClient(f"{silent.url},{url}", "alice", token, slot=loc.slot) as c:
        ke1, _st = opaque.LoginClient.start(b"wrong", config=loc.config(SMALL_KSF))
        with pytest.raises(VaultUnreachable, match="did not answer") as exc:
            c.login_start(ke1)
        assert "may have been counted" in (exc.value.hint or "")
        assert len(silent.received) == 1
        # A read changes nothing: it goes on to the next node.
        assert c.status()["attempts_left"] == 10
        assert len(silent.received) == 2


def test_every_url_is_checked() -> None:
    with pytest.raises(UsageError, match="refusing plain http"):
        VaultClient("http://127.0.0.1:1,http://vault.example:80", "alice", "t")


def test_each_node_of_a_vault_list_is_remembered_as_trusted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A locator names the first node only; every node given with --vault is trusted."""
    from strongroom.cli.context import AppContext
    from strongroom.cli.vault_support import _check_trusted_vault, _remember_vault

    app = AppContext(env={"STRONGROOM_CONFIG_DIR": str(tmp_path / "cfg")})
    _remember_vault(app, "http://127.0.0.1:8443, http://127.0.0.1:8444/")
    assert (tmp_path / "cfg" / "trusted-vaults").read_text() == (
        "http://127.0.0.1:8443\nhttp://127.0.0.1:8444\n")
    _check_trusted_vault(app, "http://127.0.0.1:8444")  # no prompt, no error
    with pytest.raises(UsageError, match="has not been told to trust"):
        _check_trusted_vault(app, "http://127.0.0.1:8445")
