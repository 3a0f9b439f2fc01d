"""Threshold realms (issue 15, docs/spec/realms.md): recovery over 3 realms against a
single-vault login, in one run, and what one realm serves per CPU-second.

(a) Client time.  One single vault and three realms (``strongroom vault serve``
    processes on loopback, each its own SQLite database and secrets).  A
    single-vault login (``client.flows.recover``: status, info, KE1/KE2,
    KE3/release) and a realm recovery (``realms.client.recover``: three
    statuses, three evaluations with DLEQ checks, three unlocks, in parallel)
    run alternately, ``--runs`` times each, with the default Argon2id
    parameters (64 MiB, 3 passes), which dominate.  Reported per kind: the
    median wall time of the whole call and the median CPU time of this
    process (all its threads: what the device spends), and their ratios.
(b) Realm throughput.  One realm pinned to ``--server-cpu``; ``--clients``
    load processes on the other CPU(s) run complete 1-of-1 recoveries
    (evaluate, then unlock with the right tag: two requests, as a vault
    login's two), with a tiny KSF.  Reported: recoveries per realm-CPU-second
    (from /proc/PID/stat), and, in the same run with the same load, a single
    vault's complete logins per vault-CPU-second (``bench.vault_bench``'s).

    python3 -m bench.realm_bench --runs 9 --seconds 10 --clients 4
    python3 -m bench.vault_bench --realms ...   (the same)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .vault_bench import BENCH_KSF, _free_port, _wait, measure_window

PASSWORD = "bench password"


class _Vault:
    def __init__(self, tmp: Path, name: str, cpu: int | None = None) -> None:
        d = tmp / name
        d.mkdir()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = str(d / "vault.db")
        self.env = {**os.environ, "STRONGROOM_VAULT_PASSPHRASE": "bench"}
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        self.proc = subprocess.Popen(
            [*pin, sys.executable, "-m", "strongroom.cli.main", "vault", "serve", "--db",
             self.db, "--secrets", str(d / "s.json"), "--port", str(self.port),
             "--kdf-memory-kib", "1024", "--attempt-limit", "10"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self.port)
        self.token = subprocess.run(
            [sys.executable, "-m", "strongroom.cli.main", "vault", "account", "create", "bench",
             "--db", self.db], env=self.env, check=True, capture_output=True,
            text=True).stdout.strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _timed(fn: Any) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def client_time(tmp: Path, runs: int) -> dict[str, Any]:
    """(a): medians of single-vault logins and 3-realm recoveries, alternating."""
    from strongroom.client import flows
    from strongroom.client.vault_client import VaultClient
    from strongroom.crypto.keys import BackupKey
    from strongroom.realms import client as rc
    from strongroom.storage.memory import MemoryBackend
    from strongroom.vault.params import DEFAULT_KSF, KsfBounds

    single = _Vault(tmp, "single")
    realms = [_Vault(tmp, f"realm{i}") for i in (1, 2, 3)]
    try:
        key, bounds = BackupKey.generate(), KsfBounds()
        backend = MemoryBackend()
        vc = VaultClient(single.url, "bench", single.token)
        loc1 = flows.enable(backend, key, vc, PASSWORD, ksf=DEFAULT_KSF, bounds=bounds)
        clients = [VaultClient(r.url, "bench", r.token) for r in realms]
        loc3 = rc.register(clients, key, PASSWORD.encode(), account="bench",
                           slot=os.urandom(16).hex(), threshold=2, ksf=DEFAULT_KSF,
                           rng=os.urandom, created=int(time.time())).locator
        kinds: dict[str, list[tuple[float, float]]] = {"single": [], "realms": []}
        for i in range(runs + 1):
            a = _timed(lambda: flows.recover(loc1, vc, PASSWORD, bounds=bounds))
            b = _timed(lambda: rc.recover(loc3, clients, PASSWORD.encode(), bounds=bounds,
                                          rng=os.urandom))
            if i:  # the first pair warms caches and connections
                kinds["single"].append(a)
                kinds["realms"].append(b)
        vc.close()
        for c in clients:
            c.close()
    finally:
        for v in (single, *realms):
            v.stop()
    med = {k: (statistics.median(w for w, _c in v), statistics.median(c for _w, c in v))
           for k, v in kinds.items()}
    return {
        "runs": runs,
        "single_wall_ms": round(med["single"][0] * 1000, 1),
        "realms3_wall_ms": round(med["realms"][0] * 1000, 1),
        "wall_ratio": round(med["realms"][0] / med["single"][0], 2),
        "single_client_cpu_ms": round(med["single"][1] * 1000, 1),
        "realms3_client_cpu_ms": round(med["realms"][1] * 1000, 1),
        "client_cpu_ratio": round(med["realms"][1] / med["single"][1], 2),
        "ksf": "64 MiB, 3 passes, 1 lane (DEFAULT_KSF)",
    }


def recovery_step(url: str, token: str, locator: bytes) -> Any:
    """One complete recovery from the first realm of ``locator``: evaluate, verify
    the proof, finalize, unlock (a function to call again and again)."""
    from strongroom.client.vault_client import VaultClient
    from strongroom.opaque import _group, dleq
    from strongroom.realms import client as rc
    from strongroom.realms.locator import RealmLocator

    loc = RealmLocator.from_json(locator)
    entry = loc.realms[0]
    pw2 = rc.stretch(PASSWORD.encode(), loc.account, loc.slot, BENCH_KSF)
    h = rc.hash_to_group(pw2)
    base = _group.scalar_mult_base((1).to_bytes(32, "little"))
    client = VaultClient(url, loc.account, token, slot=loc.slot)

    def step() -> None:
        r = _group.random_scalar(os.urandom)
        m = _group.scalar_mult(r, h)
        ans = client.realm_evaluate(m)
        z = rc._b64d(ans["evaluation"], "evaluation")
        if not dleq.verify_proof(base, entry.public_share, [m], [z],
                                 rc._b64d(ans["proof"], "proof")):
            raise SystemExit("bad proof")
        y = rc.finalize(pw2, _group.scalar_mult(_group.scalar_invert(r), z))
        client.realm_unlock(rc.unlock_tag(y, entry.realm_id, loc.account, loc.slot, 1))

    return step


def _worker(url: str, token: str, locator: bytes, cpus: set[int], stop_at: float,
            out: mp.Queue) -> None:  # type: ignore[type-arg]
    os.sched_setaffinity(0, cpus)
    step = recovery_step(url, token, locator)
    done: list[tuple[float, float]] = []  # (when it completed, its latency)
    while time.time() < stop_at:
        t0 = time.perf_counter()
        step()
        done.append((time.time(), time.perf_counter() - t0))
    out.put(done)


def realm_throughput(tmp: Path, seconds: float, clients: int, server_cpu: int) -> dict[str, Any]:
    """(b): complete 1-of-1 recoveries per realm-CPU-second."""
    from strongroom.client.vault_client import VaultClient
    from strongroom.crypto.keys import BackupKey
    from strongroom.realms import client as rc

    all_cpus = os.sched_getaffinity(0)
    load_cpus = (all_cpus - {server_cpu}) or all_cpus
    realm = _Vault(tmp, "throughput", cpu=server_cpu)
    try:
        with VaultClient(realm.url, "bench", realm.token) as c:
            loc = rc.register([c], BackupKey.generate(), PASSWORD.encode(), account="bench",
                              slot=os.urandom(16).hex(), threshold=1, ksf=BENCH_KSF,
                              rng=os.urandom, created=int(time.time())).locator
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        stop_at = time.time() + 1.0 + seconds
        procs = [mp.Process(target=_worker, args=(realm.url, realm.token, loc.to_json(),
                                                  load_cpus, stop_at, q))
                 for _ in range(clients)]
        # taskset execs python in the same process, so the pid is the realm's.
        results, t0, t1, (cpu,) = measure_window(procs, q, [realm.proc.pid], stop_at, seconds)
    finally:
        realm.stop()
    lats = sorted(lat for done in results for when, lat in done if t0 <= when <= t1)
    n, wall = len(lats), max(t1 - t0, 1e-9)
    return {
        "recoveries": n,
        "seconds": round(wall, 2),
        "recoveries_per_s": round(n / wall, 1),
        "realm_cpu_s": round(cpu, 2),
        "recoveries_per_realm_cpu_s": round(n / cpu, 1),
        "median_ms": round(statistics.median(lats) * 1000, 2) if n else None,
        "server_cpu": server_cpu,
        "load_cpus": sorted(load_cpus),
        "clients": clients,
    }


def single_throughput(tmp: Path, seconds: float, clients: int, server_cpu: int
                      ) -> dict[str, Any]:
    """The same load against one single vault: ``bench.vault_bench``'s complete logins."""
    from strongroom.client import flows
    from strongroom.client.vault_client import VaultClient
    from strongroom.crypto.keys import BackupKey
    from strongroom.storage.memory import MemoryBackend
    from strongroom.vault.params import KsfBounds

    from .vault_bench import _run

    all_cpus = os.sched_getaffinity(0)
    load_cpus = (all_cpus - {server_cpu}) or all_cpus
    vault = _Vault(tmp, "single-throughput", cpu=server_cpu)
    try:
        with VaultClient(vault.url, "bench", vault.token) as c:
            loc = flows.enable(MemoryBackend(), BackupKey.generate(), c, "bench password",
                               ksf=BENCH_KSF, bounds=KsfBounds(minimum=BENCH_KSF))
        # Every option vault_bench._run may read, at its default.
        ns = argparse.Namespace(seconds=seconds, clients=clients, server_cpu=server_cpu, db=None,
                                threads=None)
        got = _run(ns, vault.url, vault.token, loc.to_json(), load_cpus, vault.proc.pid)
    finally:
        vault.stop()
    return {k: got[k] for k in ("logins", "logins_per_s", "vault_cpu_s",
                                "logins_per_vault_cpu_s", "median_ms")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realms", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=9, help="client-time pairs (a)")
    ap.add_argument("--seconds", type=float, default=10.0, help="throughput run (b)")
    ap.add_argument("--clients", type=int, default=4, help="load processes (b)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="strongroom-realm-bench-") as tmp:
        result: dict[str, Any] = {"client_time": client_time(Path(tmp), a.runs)}
        result["realm_throughput"] = realm_throughput(Path(tmp), a.seconds, a.clients,
                                                      a.server_cpu)
        result["single_vault_throughput"] = single_throughput(Path(tmp), a.seconds, a.clients,
                                                              a.server_cpu)
        result["throughput_ratio_realm_vs_single"] = round(
            result["realm_throughput"]["recoveries_per_realm_cpu_s"]
            / result["single_vault_throughput"]["logins_per_vault_cpu_s"], 2)
    result["loadavg_1m_start_end"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    result["command"] = " ".join(["python3 -m bench.realm_bench"] + sys.argv[1:])
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        for part, doc in result.items():
            if isinstance(doc, dict):
                print(part)
                for k, v in doc.items():
                    print(f"  {k:30} {v}")
            else:
                print(f"{part:32} {doc}")


if __name__ == "__main__":
    main()
