"""A vault process killed (SIGKILL) while clients advance the backup head.

The rule (docs/spec/vault-protocol.md §10.2): an advance is checked and
written in one transaction, committed durably, before the 2xx is sent.  So
after any crash the restarted vault's head must be at least every counter a
client got a 2xx for (an acknowledged advance lost would look like a vault
rollback to the device), at most the highest counter any client sent
(nothing invented), and its tag must be the one sent with that counter (a
torn write would pair a counter with another counter's tag).

Each round: one or two client threads advance the head of one account as fast
as they can, the way ``HeadGuard.advance`` does (head record written into a
real local-folder repository first, then ``VaultClient.advance_head`` with a
tag made by ``HeadState.tag`` under K_head), against a real
``strongroom vault serve`` process (SQLite store, software keystore) that is
SIGKILLed after a seeded random delay and restarted on the same database,
secrets and port.  After each restart: the invariants above, stale advances
get 409, and a real backup advances the head through ``HeadGuard``.  At the
end the CLI journey (backup, snapshots, restore) runs without a false
``RollbackDetected``, and hiding the newest snapshot still raises it.
"""

from __future__ import annotations

import hmac
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.vault.conftest import VaultProcess

from strongroom import password
from strongroom.api import BackupKey, Repository
from strongroom.client.rollback import (
    HeadGuard,
    HeadState,
    LocalHeads,
    head_key,
    listing,
    record_name,
)
from strongroom.client.vault_client import VaultClient, b64e
from strongroom.errors import BackupHeadConflict, StrongroomError, VaultUnreachable
from strongroom.password import VaultAccess
from strongroom.storage.registry import open_backend

from .campaign import record, sized

ROUNDS = sized(4, 30)
SEED = 6010
PASSWORD = "head crash pw"


#: The slot the test's repository was enabled in (set once the vault has it).
_SLOT: list[str] = [""]


def _vc(url: str, token: str, **kw: Any) -> VaultClient:
    """A client of the test repository's slot at ``url``."""
    return VaultClient(url, "alice", token, slot=_SLOT[0], **kw)


class _Vault:
    """One vault database and secrets, served by successive processes on one port.

    The pattern of ``test_vault_crash._Vault`` (args from the vault tests'
    ``VaultProcess``, a log file per process), but the port stays the same
    across restarts: the repository's locator and the device's head memory
    (``LocalHeads``) name the vault by URL, as they would in real use.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.n, self.port_changes = tmp, 0, 0
        self.spec = VaultProcess(tmp)
        self.url = self.spec.url
        self.proc: subprocess.Popen[bytes] | None = None
        self.key: str | None = None  # the vault's public key, seen at the first start

    def start(self) -> None:
        for _ in range(3):
            if self._start_once():
                return
            # While the vault was down another process took its port (other tests
            # pick free ports too): the same database and secrets on a new port.
            self.spec, self.port_changes = VaultProcess(self.tmp), self.port_changes + 1
            self.url = self.spec.url
        raise AssertionError(f"no free port for the vault; see {self.tmp}/vault-*.log")

    def _start_once(self) -> bool:
        self.n += 1
        log_path = self.tmp / f"vault-{self.n}.log"
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(self.spec.args, env=self.spec.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while not (_listening(self.spec.port) and self._answers()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                text = log_path.read_text(errors="replace")
                if "address already in use" in text.lower():
                    return False
                raise AssertionError(text[-3000:])
            time.sleep(0.05)
        return True

    def _answers(self) -> bool:
        """Our vault (not whatever else holds the port) answers ``GET /v1/info``."""
        try:
            r = httpx.get(f"{self.url}/v1/info", timeout=10)
        except httpx.TransportError:
            return False
        if r.status_code != 200 or self.proc is None or self.proc.poll() is not None:
            return False
        key = str(r.json().get("server_public_key"))
        self.key = self.key or key
        return key == self.key  # the same secrets: the same vault key

    def create_account(self, name: str) -> str:
        return self.spec.create_account(name)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class _Hammer:
    """What the advancing clients of one round saw (updated under ``lock``)."""

    def __init__(self, base: int) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.max_acked = base  # the highest counter a client got a 2xx for
        self.max_sent = base  # the highest counter a client sent
        self.acked = self.sent = self.conflicts = 0
        self.errors: list[str] = []  # anything but 2xx, 409 or a dropped connection


def _advancer(h: _Hammer, url: str, token: str, repo_dir: Path, k_head: bytes, repo_id: str,
              newest: str, ids: tuple[str, ...], start: int) -> None:
    """Advance the head by one, again and again, as ``HeadGuard.advance`` does each step."""
    try:
        _advance_until_stopped(h, url, token, repo_dir, k_head, repo_id, newest, ids, start)
    except Exception as exc:  # noqa: BLE001  # a dead thread must fail the test, not hide
        h.errors.append(f"client thread died: {exc!r}")


def _advance_until_stopped(h: _Hammer, url: str, token: str, repo_dir: Path, k_head: bytes,
                           repo_id: str, newest: str, ids: tuple[str, ...], start: int) -> None:
    nxt = start
    with open_backend(str(repo_dir)) as backend, _vc(url, token, timeout=5) as c:
        while not h.stop.is_set():
            state = HeadState(nxt, newest, ids)
            tag = state.tag(k_head, repo_id)
            # The record goes first, as in the client: a head at the vault always has its record.
            backend.put(record_name(nxt, tag), state.to_json(repo_id))
            with h.lock:
                h.max_sent, h.sent = max(h.max_sent, nxt), h.sent + 1
            try:
                c.advance_head(nxt, tag)
            except BackupHeadConflict as exc:
                with h.lock:
                    h.conflicts += 1
                if not isinstance(exc.current, int):
                    h.errors.append(f"409 without a counter: {exc.message}")
                    return
                nxt = exc.current + 1  # the other client won: build on its head
                continue
            except VaultUnreachable as exc:
                if not isinstance(exc.__cause__, httpx.TransportError):  # a 503, not the kill
                    h.errors.append(f"{type(exc).__name__}: {exc.message}")
                return  # the vault is gone
            except StrongroomError as exc:  # a 5xx or a malformed answer
                h.errors.append(f"{type(exc).__name__}: {exc.message}")
                return
            with h.lock:
                h.max_acked, h.acked = max(h.max_acked, nxt), h.acked + 1
            nxt += 1


def _stale_probes(url: str, token: str, stored: int, tag: bytes) -> int:
    """Advances to a counter other than stored + 1 get 409 (never a 5xx); returns how many."""
    hdr = {"authorization": f"Bearer {token}"}
    n = 0
    for counter in sorted({max(1, stored - 1), stored, stored + 2}):
        r = httpx.post(f"{url}/v1/accounts/alice/slots/{_SLOT[0]}/head", headers=hdr,
                       json={"counter": counter, "tag": b64e(tag)}, timeout=30)
        assert r.status_code == 409, (counter, stored, r.status_code, r.text)
        assert r.json()["error"] == "head_conflict" and r.json()["counter"] == stored, r.text
        n += 1
    with _vc(url, token) as c:
        with pytest.raises(BackupHeadConflict) as exc:
            c.advance_head(stored, tag)  # a replay of the stored head
        assert exc.value.current == stored
        assert c.head() == (stored, tag)  # the refused advances changed nothing
    return n + 1


def _write_chats(src: Path, n: int) -> None:
    src.mkdir(exist_ok=True)
    (src / "msgstore.db").write_bytes(f"chat {n}\n".encode() * 300)


@pytest.mark.slow
@pytest.mark.vault
def test_killed_vault_never_loses_an_acknowledged_head(tmp_path: Path) -> None:
    rnd = random.Random(SEED)
    key = BackupKey.from_bytes(random.Random(SEED).randbytes(32))
    k_head = head_key(key)
    repo_dir, src = tmp_path / "repo", tmp_path / "chats"
    vault = _Vault(tmp_path)
    vault.start()
    figures: dict[str, Any] = {"rounds": 0, "kills": 0, "client_threads": 0, "attempted": 0,
                               "acknowledged": 0, "conflicts_409": 0, "stale_409": 0,
                               "in_flight_at_kill": 0, "applied_unacknowledged": 0, "max_lost": 0,
                               "real_advances": 0, "port_changes": 0}
    try:
        token = vault.create_account("alice")
        with open_backend(str(repo_dir), create=True) as backend:
            # The default parameters: the CLI journey at the end logs in with the password,
            # and a real device refuses anything weaker than DEFAULT_KSF.
            access = VaultAccess(vault.url, token)
            with Repository.create(backend, key) as created:
                _SLOT[0] = password.enable(created, access, PASSWORD).slot
            access.close()
            with _vc(vault.url, token) as c:
                assert c.head()[0] == 1
        backend = open_backend(str(repo_dir))
        repo = Repository.open(backend, key)
        local = LocalHeads(tmp_path / "device" / "heads")  # this device's head memory
        try:
            for r in range(ROUNDS):
                with _vc(vault.url, token) as c:
                    base = c.head()[0]
                newest, ids = listing(repo)
                h = _Hammer(base)
                threads = [threading.Thread(target=_advancer, args=(
                    h, vault.url, token, repo_dir, k_head, repo.id, newest, ids, base + 1))
                    for _ in range(rnd.choice((1, 2)))]
                for t in threads:
                    t.start()
                time.sleep(rnd.uniform(0.05, 1.0))
                vault.kill()
                h.stop.set()
                for t in threads:
                    t.join(timeout=60)
                assert not any(t.is_alive() for t in threads)
                vault.start()

                assert h.errors == [], (r, h.errors)
                with _vc(vault.url, token) as c:
                    stored, tag = c.head()
                    assert stored >= h.max_acked, (r, "acknowledged advance lost", stored, h.max_acked)
                    assert stored <= h.max_sent, (r, "head beyond anything sent", stored, h.max_sent)
                    assert tag is not None
                    expected = HeadState(stored, newest, ids).tag(k_head, repo.id)
                    assert hmac.compare_digest(tag, expected), (r, "stored tag is not counter's", stored)
                    # The client's own verify agrees (record read and authenticated under K).
                    guard = HeadGuard(repo, backend, key, c, local)
                    assert guard.verify() == stored
                    figures["stale_409"] += _stale_probes(vault.url, token, stored, tag)
                    # A real backup after the restart advances the head by exactly one.
                    _write_chats(src, r)
                    repo.backup([src])
                    assert guard.advance() == stored + 1
                    assert c.head()[0] == stored + 1
                    figures["real_advances"] += 1

                figures["rounds"] += 1
                figures["kills"] += 1
                figures["client_threads"] += len(threads)
                figures["attempted"] += h.sent
                figures["acknowledged"] += h.acked
                figures["conflicts_409"] += h.conflicts
                # Requests sent whose answer never came: the kill hit them mid-advance.
                figures["in_flight_at_kill"] += h.sent - h.acked - h.conflicts
                figures["applied_unacknowledged"] += stored - h.max_acked
                figures["max_lost"] = max(figures["max_lost"], h.max_acked - stored)
        finally:
            repo.close()
            backend.close()
        _cli_journey(tmp_path, repo_dir, src, vault.url, token)
    finally:
        vault.kill()
    figures["port_changes"] = vault.port_changes
    assert figures["acknowledged"] > 0  # the clients did advance between the kills
    record("head-crash", figures)


def _cli_journey(tmp_path: Path, repo_dir: Path, src: Path, url: str, token: str) -> None:
    """The password-mode CLI against the restarted vault: no false alarm, a real one caught."""
    import json

    from click.testing import CliRunner

    from strongroom.cli.context import AppContext
    from strongroom.cli.main import cli

    def run(*args: str, env: dict[str, str]) -> Any:
        app = AppContext(stdin_is_tty=lambda: False, env=env)
        return CliRunner().invoke(cli, list(args), obj=app, env=env, catch_exceptions=False)

    base = {"STRONGROOM_REPO": str(repo_dir), "STRONGROOM_KEYRING": "no", "STRONGROOM_VAULT": url,
            "STRONGROOM_VAULT_TOKEN": token, "STRONGROOM_PASSWORD": PASSWORD}
    dev1 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "cli1")}
    with _vc(url, token) as c:
        before = c.head()[0]
    _write_chats(src, 10_000)
    r = run("--json", "backup", str(src), env=dev1)
    assert r.exit_code == 0, r.output
    newest = json.loads(r.stdout)["snapshot_id"]
    with _vc(url, token) as c:
        assert c.head()[0] == before + 1  # the backup advanced the head
    r = run("snapshots", env=dev1)
    assert r.exit_code == 0, (r.exit_code, r.output)
    r = run("restore", "latest", "--target", str(tmp_path / "out"), env=dev1)
    assert r.exit_code == 0, (r.exit_code, r.output)
    restored = list((tmp_path / "out").rglob("msgstore.db"))
    assert len(restored) == 1 and restored[0].read_bytes() == (src / "msgstore.db").read_bytes()

    (repo_dir / "snapshots" / newest).unlink()  # the provider hides the newest snapshot
    dev2 = {**base, "STRONGROOM_CONFIG_DIR": str(tmp_path / "cli2")}  # a new device too
    for env in (dev1, dev2):
        for args in (("snapshots",), ("restore", "latest", "--target", str(tmp_path / "out2"))):
            r = run(*args, env=env)
            assert r.exit_code == 17, (args, r.exit_code, r.output)
            assert f"hiding the newest snapshot {newest[:8]}" in r.stderr
    assert not (tmp_path / "out2").exists()  # nothing restored from the rolled-back listing
