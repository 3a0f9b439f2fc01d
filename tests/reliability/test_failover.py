"""Issue 16: the vault survives the loss of a node (Patroni + etcd + vault nodes, real processes).

One rehearsal cluster (tests/support/vault_cluster.py: 3 etcd, 3 Patroni/PostgreSQL 15
in strict synchronous mode, 3 vault nodes) serves every case.  A case is one fault
injected during a storm of 50 concurrent wrong guesses against one record (limit 10):

* ``pg-leader``  ``kill -9`` of the leader's postmaster (Patroni fails over);
* ``etcd``       ``kill -9`` of the etcd Raft leader;
* ``vault``      ``kill -9`` of the vault node the clients list first;
* ``replica``    the synchronous standby is cut off (SIGSTOP of its Patroni and PostgreSQL).

Each guesser retries its one guess (through a client given all three vault URLs) until
it is answered, refused as locked, or 60 s pass.  Checked in every run: at most 10
guesses answered; the counter the current leader holds covers every answered guess;
no 5xx but 503 answered to any guesser or probe; the right password works afterwards on
a second record whose attempts remain; and the time from the fault to the first
complete login with the right password (goal < 15 s) is reported.

CI scale runs each case once; ``STRONGROOM_CAMPAIGN_SCALE=full`` runs each 20 times::

    CI=true STRONGROOM_CAMPAIGN_SCALE=full STRONGROOM_CAMPAIGN_OUT=/tmp/failover.jsonl \\
        .venv/bin/python -m pytest -n 1 tests/reliability/test_failover.py
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.support import vault_cluster

from strongroom.errors import AttemptsExhausted, InvalidLogin, VaultProtocolError, VaultUnreachable

from .campaign import record, sized

pytestmark = pytest.mark.xdist_group("vault-cluster")

LIMIT, GUESSERS = 10, 50
SMALL_KSF = {"memory_kib": 8, "iterations": 1, "parallelism": 1}
RECOVERY_GOAL = 15.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[vault_cluster.VaultCluster]:
    missing = vault_cluster.available()
    if missing:
        pytest.skip(f"not installed: {missing} (scripts/setup-system.sh installs them)")
    with vault_cluster.running_cluster() as c:
        yield c


class Account:
    """One registered account on the cluster and the client-side facts to log in."""

    def __init__(self, cluster: vault_cluster.VaultCluster, name: str, password: str) -> None:
        from strongroom.client import flows
        from strongroom.crypto.keys import BackupKey
        from strongroom.storage.memory import MemoryBackend

        self.cluster, self.name, self.password = cluster, name, password
        self.token = cluster.create_account(name)
        self.urls = ",".join(cluster.vault_urls)
        from strongroom.vault.params import KsfBounds

        self.bounds = KsfBounds(minimum=SMALL_KSF)
        self.slot = ""
        with self.client() as c:
            self.locator = flows.enable(MemoryBackend(), BackupKey.generate(), c, password,
                                        ksf=SMALL_KSF, bounds=self.bounds)
        self.slot = self.locator.slot

    def client(self) -> Any:
        from strongroom.client.vault_client import VaultClient

        return VaultClient(self.urls, self.name, self.token, timeout=20.0, slot=self.slot)

    def guess(self, password: str) -> str:
        """One login attempt: ``ok``, ``answered`` (wrong, KE2 given), ``locked``,
        ``unreachable`` (no connection, or 503), ``server_error`` (any other 5xx)."""
        from strongroom.client import flows

        with self.client() as c:
            try:
                flows.recover(self.locator, c, password, bounds=self.bounds)
            except InvalidLogin:
                return "answered"
            except AttemptsExhausted:
                return "locked"
            except VaultUnreachable:
                return "unreachable"  # no connection, or 503
            except VaultProtocolError:
                return "server_error"  # any other 5xx (or a malformed answer)
        return "ok"

    def stored(self) -> tuple[str, int] | None:
        """``(state, used)`` of the record on the current leader (superuser, read directly)."""
        import psycopg

        from strongroom.vault.store import record_key

        dsn = self.cluster.superuser_dsn().replace("dbname=postgres",
                                                   f"dbname={vault_cluster.VAULT_DB}")
        with psycopg.connect(dsn) as conn:
            r = conn.execute("SELECT state, used FROM vault_records WHERE account_id = %s",
                             (record_key(self.name, self.slot),)).fetchone()
        return None if r is None else (str(r[0]), int(r[1]))


def _etcd_leader(cluster: vault_cluster.VaultCluster) -> str:
    import httpx

    for e in cluster.state["etcd"]:
        try:
            r = httpx.get(f"http://127.0.0.1:{e['client_port']}/v2/stats/self", timeout=1.0)
            if r.json().get("state") == "StateLeader":
                return str(e["name"])
        except (httpx.HTTPError, ValueError):
            continue
    raise AssertionError("no etcd leader")


def inject(cluster: vault_cluster.VaultCluster, case: str) -> Callable[[], None]:
    """Inject the fault of ``case`` now; return what undoes it (restart, thaw)."""
    if case == "pg-leader":
        leader = cluster.leader()
        assert leader, "no PostgreSQL leader before the fault"
        cluster.kill_postgres(leader)
        return lambda: None  # its Patroni restarts it as a replica of the new leader
    if case == "etcd":
        name = _etcd_leader(cluster)
        cluster.kill(name)
        return lambda: cluster.start_etcd(name)
    if case == "vault":
        name = cluster.state["vault"][0]["name"]
        cluster.kill(name)
        return lambda: cluster.start_vault(name)
    if case == "replica":
        standby = cluster.sync_standby()
        assert standby, "no synchronous standby before the fault"
        cluster.freeze(standby)
        return lambda: cluster.thaw(standby)
    raise ValueError(case)


def healthy(cluster: vault_cluster.VaultCluster, timeout: float = 120.0) -> None:
    """Wait for 3 etcd members, a leader, a sync standby, 3 running members, every vault up."""
    def ok() -> bool:
        members = cluster.members()
        return (cluster.etcd_healthy() == 3 and cluster.leader() is not None
                and cluster.sync_standby() is not None and len(members) == 3
                and all(m.get("state") in ("running", "streaming") for m in members)
                and all(cluster._listening(v["port"]) for v in cluster.state["vault"]))

    cluster._wait(ok, "a healthy cluster", timeout)


def _recover(probe: Account, t_fault: float, seen: list[str]) -> float | None:
    """Seconds from the fault to the first complete login with the right password (status
    first: no guess is spent while the vault cannot answer); None after 120 s.  ``seen``
    gets each outcome of the probe's (what a failed run reports)."""
    while time.monotonic() - t_fault < 120:
        try:
            with probe.client() as c:
                c.status()
        except VaultUnreachable as exc:
            seen.append(f"status: {exc}")
            time.sleep(0.2)
            continue
        out = probe.guess(probe.password)
        seen.append(out)
        assert out != "server_error", "a 5xx other than 503 during recovery"
        if out == "ok":
            return time.monotonic() - t_fault
        time.sleep(0.2)
    return None


def run_case(cluster: vault_cluster.VaultCluster, case: str, n: int, rng: random.Random) -> dict[str, Any]:
    """One run: storm + fault + checks; returns the run's figures."""
    healthy(cluster)
    target = Account(cluster, f"storm-{case}-{n}", "the right password")
    probe = Account(cluster, f"probe-{case}-{n}", "probe password")
    fault_after = rng.randrange(0, LIMIT - 1)  # answered guesses before the fault
    outcomes: list[str] = []
    lock = threading.Lock()
    reached = threading.Event()
    go = threading.Barrier(GUESSERS + 1)

    def guesser(i: int) -> None:
        go.wait()
        deadline = time.monotonic() + 60.0
        while True:
            out = target.guess(f"wrong guess {i}")
            if out != "unreachable" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        with lock:
            outcomes.append(out)
            if outcomes.count("answered") > fault_after:
                reached.set()

    threads = [threading.Thread(target=guesser, args=(i,), daemon=True) for i in range(GUESSERS)]
    for t in threads:
        t.start()
    go.wait()
    reached.wait(timeout=60)
    t_fault = time.monotonic()
    undo = inject(cluster, case)
    seen: list[str] = []
    members: list[dict[str, Any]] = []
    diagnosis: dict[str, Any] = {}
    try:
        recovery = _recover(probe, t_fault, seen)
        if recovery is None:  # the cluster as it stood when the probe gave up
            diagnosis = cluster.diagnose()
            members = diagnosis["members"]
    finally:
        for t in threads:
            t.join(timeout=90)
        undo()
    healthy(cluster)
    answered = outcomes.count("answered")
    stored = target.stored()
    used = stored[1] if stored else 0
    # Attempts remain on the probe (it was reset by the success): the right password works.
    after = probe.guess(probe.password)
    errors = [o for o in outcomes + [after] if o == "server_error"]
    figures = {"case": case, "run": n, "answered": answered, "stored_used": used,
               "stored_state": stored[0] if stored else None,
               "unreachable": outcomes.count("unreachable"), "locked": outcomes.count("locked"),
               "recovery_s": None if recovery is None else round(recovery, 2),
               "fault_after_answers": fault_after, "server_5xx_not_503": len(errors),
               "leader_after": cluster.leader(), "loadavg_1m": round(os.getloadavg()[0], 2)}
    if recovery is None:
        figures["probe_outcomes"] = sorted(set(seen))
        figures["members_when_given_up"] = members
        figures["diagnosis"] = diagnosis
        record("failover-run-failed", figures)  # pytest shortens the message below
    assert len(outcomes) == GUESSERS, figures
    assert answered <= LIMIT, figures
    assert used >= answered, figures  # every answered guess is on the new leader
    assert not errors, figures
    assert recovery is not None, figures
    assert after == "ok", figures
    return figures


#: Runs of every case instead of the scale's (hunting a rare failure); 0: the scale's.
FAILOVER_RUNS = int(os.environ.get("STRONGROOM_FAILOVER_RUNS", "0"))


# 20 runs of up to a minute or two each at full scale
@pytest.mark.timeout(sized(600, 3600) * max(1, -(-FAILOVER_RUNS // 20)))
@pytest.mark.parametrize("case", ["pg-leader", "etcd", "vault", "replica"])
def test_failover_campaign(cluster: vault_cluster.VaultCluster, case: str) -> None:
    rng = random.Random(f"failover-{case}")
    runs = []
    for n in range(FAILOVER_RUNS or sized(1, 20)):
        runs.append(run_case(cluster, case, n, rng))
        record("failover-run", runs[-1])  # each run as it ends: a long campaign keeps its figures
    times = [r["recovery_s"] for r in runs]
    record(f"failover-{case}", {
        "runs": len(runs), "recovery_s_median": statistics.median(times),
        "recovery_s_max": max(times), "answered_max": max(r["answered"] for r in runs),
        "runs_over_goal": sum(t > RECOVERY_GOAL for t in times), "per_run": runs})


def test_committed_guess_survives_loss_of_its_node(cluster: vault_cluster.VaultCluster) -> None:
    """Answer a guess, kill -9 the PostgreSQL that committed it, promote a replica: it is there."""
    healthy(cluster)
    acct = Account(cluster, "survivor", "the right password")
    assert acct.guess("a wrong password") == "answered"
    old = cluster.leader()
    assert old is not None
    cluster.kill_postgres(old)
    cluster._wait(lambda: cluster.leader() not in (None, old), "a new leader", 60)
    with acct.client() as c:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = c.status()
                break
            except VaultUnreachable:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    assert status["attempts_left"] == LIMIT - 1
    assert acct.stored() == ("active", 1)
    record("failover-committed-guess", {"old_leader": old, "new_leader": cluster.leader(),
                                        "attempts_left": status["attempts_left"]})
