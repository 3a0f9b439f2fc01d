"""A password change that no subset of accepting realms can strand (docs/spec/realms.md
§4.3, §7), with real vault processes.

Each realm runs as ``strongroom vault serve`` behind a small proxy that can refuse
(503) the stage (``…/realm/register``) or the commit (``…/realm/commit``), so a
change reaches exactly the realms a test chooses.  3-of-4 is the smallest set
where a change can reach between ``n − k + 1`` and ``k − 1`` realms (here 2): with
a change in place that stranded the backup (neither password reached ``k``
matching realms); now the old password still opens it and the new one does not.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from strongroom.client.vault_client import VaultClient
from strongroom.crypto.keys import BackupKey
from strongroom.errors import InvalidLogin, RealmsUnavailable
from strongroom.realms import client as rc
from strongroom.realms import flows
from strongroom.realms.locator import RealmLocator, read_realm_locator
from strongroom.storage.memory import MemoryBackend
from strongroom.vault.params import KsfBounds

from . import pg
from .conftest import SMALL_KSF, VaultProcess
from .realm_helpers import ForwardingHandler

ACCOUNT = "alice"
OLD, NEW = b"old password", b"new password"
BOUNDS = KsfBounds(minimum={"memory_kib": 8, "iterations": 1, "parallelism": 1})
LIMIT = 10


class _Gate(ForwardingHandler):
    """Forwards to one realm; answers 503 to the request kinds in ``refuse``."""

    refuse: ClassVar[set[str]] = set()

    def answer(self, method: str) -> tuple[int, bytes]:
        if self.path.rsplit("/", 1)[-1] in self.refuse:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            return 503, json.dumps({"error": "unavailable", "message": "gated"}).encode()
        return super().answer(method)


class GatedRealms:
    """``n`` realm processes, each behind its own gate; clients go through the gates."""

    def __init__(self, tmp: Path, n: int) -> None:
        self.procs: list[VaultProcess] = []
        self.tokens: list[str] = []
        self.gates: list[type[_Gate]] = []
        self._servers: list[ThreadingHTTPServer] = []
        self.urls: list[str] = []
        self._clients: list[VaultClient] = []
        for i in range(1, n + 1):
            d = tmp / f"realm{i}"
            d.mkdir()
            p = VaultProcess(d)
            self.tokens.append(p.create_account(ACCOUNT))
            self.procs.append(p.start())
            gate = type(f"Gate{i}", (_Gate,), {"backend": p.url, "refuse": set()})
            port = pg.free_port()
            server = ThreadingHTTPServer(("127.0.0.1", port), gate)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.gates.append(gate)
            self._servers.append(server)
            self.urls.append(f"http://127.0.0.1:{port}")

    def clients(self) -> list[VaultClient]:
        out = [VaultClient(u, ACCOUNT, t, timeout=10) for u, t in zip(self.urls, self.tokens,
                                                                       strict=True)]
        self._clients += out
        return out

    def refuse(self, positions: list[int], *kinds: str) -> None:
        """The realms at these 1-based positions refuse ``kinds``; the others nothing."""
        for i, g in enumerate(self.gates, start=1):
            g.refuse = set(kinds) if i in positions else set()

    def registrations(self, loc: RealmLocator) -> list[int]:
        """How many registrations each realm holds for the slot."""
        return [len(s.get("registrations") or ()) for s in rc.status(loc, self.clients())]

    def close(self) -> None:
        for c in self._clients:
            c.close()
        for s in self._servers:
            s.shutdown()
            s.server_close()
        for p in self.procs:
            p.stop()


def _gated(tmp: Path, n: int) -> Iterator[GatedRealms]:
    r = GatedRealms(tmp, n)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def four(tmp_path: Path) -> Iterator[GatedRealms]:
    yield from _gated(tmp_path, 4)


@pytest.fixture
def three(tmp_path: Path) -> Iterator[GatedRealms]:
    yield from _gated(tmp_path, 3)


def _enabled(realms: GatedRealms, k: int) -> tuple[MemoryBackend, BackupKey]:
    backend, key = MemoryBackend(), BackupKey.generate()
    flows.enable(backend, key, realms.clients(), OLD, account=ACCOUNT, threshold=k,
                 ksf=SMALL_KSF, bounds=BOUNDS)
    return backend, key


def _opens(backend: MemoryBackend, realms: GatedRealms, pw: bytes) -> rc.RecoveryResult:
    return flows.recover(backend, realms.clients(), pw, bounds=BOUNDS)


def _change(backend: MemoryBackend, key: BackupKey, realms: GatedRealms, *,
            register_threshold: int | None = None, warn: list[str] | None = None) -> RealmLocator:
    return flows.change_password(backend, key, realms.clients(), NEW, ksf=SMALL_KSF,
                                 bounds=BOUNDS, register_threshold=register_threshold,
                                 warn=warn.append if warn is not None else None)


def test_3_of_4_a_change_reaching_exactly_two_realms_keeps_the_old_password(
        four: GatedRealms) -> None:
    backend, key = _enabled(four, 3)
    before = backend.get("ext/vault.json")
    four.refuse([3, 4], "register")  # the stage reaches realms 1 and 2 only
    with pytest.raises(RealmsUnavailable, match="the password was not changed") as err:
        _change(backend, key, four, register_threshold=3)
    assert "the old password still opens this backup" in err.value.message
    four.refuse([])
    assert backend.get("ext/vault.json") == before  # the locator was not written
    loc = read_realm_locator(backend)
    assert loc is not None
    assert four.registrations(loc) == [1, 1, 1, 1]  # realms 1 and 2 were un-staged
    got = _opens(backend, four, OLD)
    assert got.key.secret_bytes() == key.secret_bytes() and got.excluded == {}
    with pytest.raises(InvalidLogin):
        _opens(backend, four, NEW)


def test_3_of_4_two_staged_and_the_undo_lost_still_keeps_the_old_password(
        four: GatedRealms) -> None:
    """The worst case: realms 1 and 2 staged, then the client lost them before it could
    un-stage: they hold both registrations under one counter."""
    backend, key = _enabled(four, 3)
    four.refuse([3, 4], "register")
    for g in four.gates[:2]:
        g.refuse = {"commit"}
    with pytest.raises(RealmsUnavailable, match="the password was not changed"):
        _change(backend, key, four, register_threshold=3)
    four.refuse([])
    loc = read_realm_locator(backend)
    assert loc is not None
    assert four.registrations(loc) == [2, 2, 1, 1]
    with pytest.raises(InvalidLogin) as wrong:
        _opens(backend, four, NEW)
    assert wrong.value.attempts_left == LIMIT - 1  # one counter per realm, whichever
    # registration is evaluated (tests/vault/test_realm_core.py counts both)
    got = _opens(backend, four, OLD)
    assert got.key.secret_bytes() == key.secret_bytes() and got.excluded == {}
    assert sorted(got.unfinished) == sorted(four.urls[:2])  # to be dropped after recovery
    assert rc.commit(loc, four.clients(), key, got.unfinished) == dict.fromkeys(
        four.urls[:2], True)
    assert four.registrations(loc) == [1, 1, 1, 1]


def test_3_of_4_a_change_reaching_three_realms_sets_the_new_password(four: GatedRealms) -> None:
    backend, key = _enabled(four, 3)
    four.refuse([4], "register")
    told: list[str] = []
    new = _change(backend, key, four, register_threshold=3, warn=told)
    assert len(told) == 1 and "missed the change" in told[0] and four.urls[3] in told[0]
    four.refuse([])
    assert read_realm_locator(backend) == new
    assert four.registrations(new) == [1, 1, 1, 1]  # the three that staged committed
    got = _opens(backend, four, NEW)
    assert got.key.secret_bytes() == key.secret_bytes()
    assert "stale record" in got.excluded[four.urls[3]]  # named before any guess there
    with pytest.raises(InvalidLogin):
        _opens(backend, four, OLD)  # one old registration left (realm 4): useless


def test_3_of_4_a_commit_lost_after_the_locator_write_keeps_the_new_password(
        four: GatedRealms) -> None:
    backend, key = _enabled(four, 3)
    four.refuse([1, 2, 3, 4], "commit")
    told: list[str] = []
    new = _change(backend, key, four, warn=told)
    assert len(told) == 1 and "still hold the old registration" in told[0]
    four.refuse([])
    assert four.registrations(new) == [2, 2, 2, 2]
    with pytest.raises(InvalidLogin):
        _opens(backend, four, OLD)  # the locator names the new registration only
    got = _opens(backend, four, NEW)
    assert got.key.secret_bytes() == key.secret_bytes() and got.excluded == {}
    assert sorted(got.unfinished) == sorted(four.urls)


def test_2_of_3_a_change_reaching_one_realm_keeps_the_old_password(three: GatedRealms) -> None:
    backend, key = _enabled(three, 2)
    three.refuse([2, 3], "register")
    with pytest.raises(RealmsUnavailable, match="the password was not changed"):
        _change(backend, key, three, register_threshold=2)
    three.refuse([])
    loc = read_realm_locator(backend)
    assert loc is not None and three.registrations(loc) == [1, 1, 1]
    assert _opens(backend, three, OLD).key.secret_bytes() == key.secret_bytes()
    with pytest.raises(InvalidLogin):
        _opens(backend, three, NEW)


def test_2_of_3_a_change_reaching_two_realms_sets_the_new_password(three: GatedRealms) -> None:
    backend, key = _enabled(three, 2)
    three.refuse([3], "register")
    _change(backend, key, three, register_threshold=2, warn=[])
    three.refuse([])
    got = _opens(backend, three, NEW)
    assert got.key.secret_bytes() == key.secret_bytes()
    assert list(got.excluded) == [three.urls[2]]
    with pytest.raises(InvalidLogin):
        _opens(backend, three, OLD)


def test_every_subset_of_a_3_of_4_change_leaves_one_password_working(four: GatedRealms) -> None:
    """Whatever subset accepts the stage, afterwards exactly one of the two passwords
    opens the backup (realms.md §4.3's argument, checked for |accepted| = 0..4)."""
    backend, key = _enabled(four, 3)
    current = OLD
    for refused in ([1, 2, 3, 4], [2, 3, 4], [1, 3], [4], []):
        four.refuse(refused, "register")
        try:
            flows.change_password(backend, key, four.clients(),
                                  NEW if current == OLD else OLD, ksf=SMALL_KSF, bounds=BOUNDS,
                                  register_threshold=3, warn=lambda _w: None)
            current = NEW if current == OLD else OLD
        except RealmsUnavailable:
            assert 4 - len(refused) < 3
        four.refuse([])
        other = OLD if current == NEW else NEW
        assert _opens(backend, four, current).key.secret_bytes() == key.secret_bytes()
        with pytest.raises((InvalidLogin, RealmsUnavailable)):
            _opens(backend, four, other)
        # Bring every realm back to the current registration before the next round.
        flows.change_password(backend, key, four.clients(), current, ksf=SMALL_KSF,
                              bounds=BOUNDS)
