"""A vault process killed (SIGKILL) while wrong-password logins are in flight.

The rule (docs/spec/vault-protocol.md §4): a guess is committed before its KE2
is sent.  So after any crash, the counter the restarted vault reports must
have counted at least every guess whose KE2 a client received; guesses whose
answer was lost may be counted too ("count the guess"), never fewer.

Each round: three client threads send wrong-password KE1s to a real
``strongroom vault serve`` process (SQLite store, software keystore) until it
is SIGKILLed after a seeded random delay; the vault is restarted on the same
database and secrets; its status is compared with what the clients received.
The right password still opens the record afterwards.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from tests.vault.conftest import SMALL_BOUNDS, SMALL_KSF, VaultProcess
from tests.vault.pg import wait_port

from strongroom.client import flows
from strongroom.client.vault_client import VaultClient
from strongroom.crypto.keys import BackupKey
from strongroom.errors import StrongroomError
from strongroom.storage.memory import MemoryBackend
from strongroom.vault import _opaque as opaque

from .campaign import record, sized

ROUNDS = sized(4, 30)
LIMIT = 100_000  # high, so rounds never exhaust it; the invariant is on counts
SEED = 6004


class _Vault:
    """``strongroom vault serve`` (args from the vault tests' VaultProcess), log to a file."""

    def __init__(self, tmp: Path, n: int) -> None:
        self.spec = VaultProcess(tmp, extra=("--attempt-limit", str(LIMIT)))
        self.url, self.log = self.spec.url, tmp / f"vault-{n}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.spec.args, env=self.spec.env,
                                         stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_port(self.spec.port, timeout=60)
        except TimeoutError:
            self.kill()
            raise AssertionError(self.log.read_text()[-3000:]) from None

    def create_account(self, name: str) -> str:
        return self.spec.create_account(name)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def _counted(url: str, token: str, slot: str) -> int:
    with VaultClient(url, "alice", token, slot=slot) as c:
        st = c.status()
    return int(st["attempt_limit"]) - int(st["attempts_left"])


@pytest.mark.slow
@pytest.mark.vault
def test_killed_vault_never_loses_a_counted_guess(tmp_path: Path) -> None:
    rnd = random.Random(SEED)
    vault = _Vault(tmp_path, 0)
    token = vault.create_account("alice")
    backend = MemoryBackend()
    key = BackupKey.generate()
    with VaultClient(vault.url, "alice", token) as c:
        loc = flows.enable(backend, key, c, "right password", ksf=SMALL_KSF, bounds=SMALL_BOUNDS)
    figures = {"rounds": 0, "ke2_received": 0, "counted": 0, "lost_answers": 0}
    try:
        for r in range(ROUNDS):
            before = _counted(vault.url, token, loc.slot)
            received = [0]
            stop = threading.Event()
            lock = threading.Lock()

            def guesser(seed: int, url: str = vault.url, stop: threading.Event = stop,
                        lock: threading.Lock = lock, received: list[int] = received) -> None:
                rng = random.Random(seed)
                with VaultClient(url, "alice", token, timeout=5, slot=loc.slot) as c:
                    while not stop.is_set():
                        ke1, _ = opaque.LoginClient.start(b"wrong", config=loc.config(SMALL_KSF),
                                                          rng=rng.randbytes)
                        try:
                            c.login_start(ke1)
                        except StrongroomError:
                            return  # the vault is gone (or refused): stop guessing
                        with lock:
                            received[0] += 1

            threads = [threading.Thread(target=guesser, args=(SEED * 100 + r * 10 + i,))
                       for i in range(3)]
            for t in threads:
                t.start()
            time.sleep(rnd.uniform(0.05, 1.0))
            vault.kill()
            stop.set()
            for t in threads:
                t.join(timeout=30)
            vault = _Vault(tmp_path, r + 1)
            counted = _counted(vault.url, token, loc.slot) - before
            assert counted >= received[0], (r, counted, received[0])
            figures["rounds"] += 1
            figures["ke2_received"] += received[0]
            figures["counted"] += counted
            figures["lost_answers"] += counted - received[0]
        with VaultClient(vault.url, "alice", token) as c:
            assert flows.recover(loc, c, "right password", bounds=SMALL_BOUNDS) == key
    finally:
        vault.kill()
    record("vault-kill", figures)
