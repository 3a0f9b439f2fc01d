"""Complete OPAQUE logins per second over HTTP against one vault core.

The vault (``strongroom vault serve``: uvicorn, 1 worker, SQLite record store
with the counter synced, software keystore) runs pinned to one CPU; the load
comes from other processes pinned to the other CPU(s).  A *complete* login is
two HTTP requests: KE1 → KE2 (the guess is counted and committed first) and
KE3 → the sealed wrapped key (the counter reset is committed).

Reported: logins/s achieved, the vault's CPU seconds per login (from
/proc/PID/stat) and so logins per vault-CPU-second (what one dedicated core
sustains when the load generator is not the limit), median and p99 latency.

Only operations that complete inside the CPU sampling window count (workers
report when each one completed).  Before 2026-12-03 the logins of the 1 s
warm-up were counted without its CPU, which inflated the per-CPU figure by up
to the warm-up's share (about 5-10 % at ``--seconds 8``).

    python3 -m bench.vault_bench --seconds 20 --clients 8
    python3 -m bench.vault_bench --realms    (threshold realms: bench/realm_bench.py)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Client-side KSF cost is not what this measures; keep it tiny (the server never runs the KSF).
BENCH_KSF = {"memory_kib": 8, "iterations": 1, "parallelism": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("vault did not start")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tasks(pid: int) -> dict[int, tuple[int, int, int, int]]:
    """Per thread of ``pid``: (CPU ticks, voluntary, involuntary context switches, ticks
    in the kernel).

    ``/proc/PID/status`` counts the main thread's switches only; the threads' are in
    ``/proc/PID/task/TID/``.  A thread that ends between two samples is not counted."""
    out: dict[int, tuple[int, int, int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended
        switches = {k: v for k, _, v in (line.partition(":") for line in status.splitlines())
                    if k.endswith("ctxt_switches")}
        out[int(task.name)] = (int(fields[11]) + int(fields[12]),
                               int(switches.get("voluntary_ctxt_switches", 0)),
                               int(switches.get("nonvoluntary_ctxt_switches", 0)),
                               int(fields[12]))
    return out


def thread_stats(pid: int, before: dict[int, tuple[int, int, int, int]],
                 after: dict[int, tuple[int, int, int, int]], n: int) -> dict[str, object]:
    """Where a server's CPU went between two ``_tasks`` samples, per operation (``n``):
    the event loop's thread (the main one) against the worker threads, and the context
    switches of all its threads."""
    tick = os.sysconf("SC_CLK_TCK")
    d = {tid: tuple(b - a for a, b in zip(before.get(tid, (0, 0, 0, 0)), v, strict=True))
         for tid, v in after.items()}
    main = d.get(pid, (0, 0, 0, 0))
    workers = [v for tid, v in d.items() if tid != pid]
    per = max(n, 1)
    return {
        "main_thread_cpu_ms_per_op": round(main[0] / tick * 1000 / per, 3),
        "worker_threads_cpu_ms_per_op": round(sum(v[0] for v in workers) / tick * 1000 / per, 3),
        "worker_threads_busy": sum(1 for v in workers if v[0] or v[1]),
        "voluntary_switches_per_op": round(sum(v[1] for v in d.values()) / per, 2),
        "involuntary_switches_per_op": round(sum(v[2] for v in d.values()) / per, 2),
        "kernel_cpu_share": round(sum(v[3] for v in d.values())
                                  / max(sum(v[0] for v in d.values()), 1), 3),
    }


def _fresh_pg_database(dsn: str) -> str:
    """A new empty database on the server of ``dsn``; its DSN."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"strongroom_bench_{os.getpid()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return make_conninfo(dsn, dbname=name)


def _drop_pg_database(dsn: str, bench_dsn: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = conninfo_to_dict(bench_dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _worker(url: str, token: str, locator: bytes, cpus: set[int], stop_at: float,
            out: mp.Queue) -> None:
    os.sched_setaffinity(0, cpus)
    from strongroom.client import flows
    from strongroom.client.keywrap import open_release, unwrap_key
    from strongroom.client.vault_client import VaultClient
    from strongroom.vault import _opaque as opaque

    loc = flows.VaultLocator.from_json(locator)
    cfg = loc.config(BENCH_KSF)
    done: list[tuple[float, float]] = []  # (when it completed, its latency)
    with VaultClient(url, loc.account, token, slot=loc.slot) as client:
        while time.time() < stop_at:
            t0 = time.perf_counter()
            # One complete login = exactly two requests (what the target counts).
            ke1, st = opaque.LoginClient.start(b"bench password", config=cfg)
            ans = client.login_start(ke1)
            ke3, sk, ek = opaque.LoginClient.finish(st, ans.ke2, config=cfg,
                                                    expected_server_public_key=loc.server_public_key)
            sealed = client.login_finish(ans.session_id, ke3)
            unwrap_key(ek, open_release(sk, sealed, loc.account, ans.session_id), loc.account)
            done.append((time.time(), time.perf_counter() - t0))
    out.put(done)


def _sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.time()))


def measure_window(procs: list[mp.Process], q: mp.Queue, pids: list[int], stop_at: float,
                   seconds: float,
                   tasks: list[dict[int, tuple[int, int, int, int]]] | None = None
                   ) -> tuple[list, float, float, list[float]]:  # type: ignore[type-arg]
    """Run the load processes; the servers' CPU over the last ``seconds`` before ``stop_at``.

    Returns what each worker put on ``q``, the window (t0, t1) and each server's CPU seconds in
    it; ``tasks``, if given, receives the first server's ``_tasks`` at t0 and at t1.  A worker reports when each operation completed; count only those inside the window,
    so neither the warm-up (imports, connections) nor the tail is counted without its CPU.
    """
    for p in procs:
        p.start()
    _sleep_until(stop_at - seconds)
    cpu0, t0 = [_cpu_seconds(pid) for pid in pids], time.time()
    if tasks is not None:
        tasks.append(_tasks(pids[0]))
    _sleep_until(stop_at)
    cpu1, t1 = [_cpu_seconds(pid) for pid in pids], time.time()
    if tasks is not None:
        tasks.append(_tasks(pids[0]))
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    return results, t0, t1, [max(b - a, 1e-9) for a, b in zip(cpu0, cpu1, strict=True)]


def main() -> None:
    if "--realms" in sys.argv[1:]:  # threshold realms: bench/realm_bench.py
        from .realm_bench import main as realm_main

        realm_main(sys.argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--clients", type=int, default=8, help="load processes")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--db", help="record store: a PostgreSQL DSN; the bench creates a fresh "
                                 "database there and drops it after (default: a SQLite file)")
    ap.add_argument("--threads", type=int, help="the vault's worker threads (default: its own)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    all_cpus = os.sched_getaffinity(0)
    load_cpus = (all_cpus - {a.server_cpu}) or all_cpus

    with tempfile.TemporaryDirectory(prefix="strongroom-vault-bench-") as tmp:
        port = _free_port()
        env = {**os.environ, "STRONGROOM_VAULT_PASSPHRASE": "bench"}
        db = _fresh_pg_database(a.db) if a.db else str(Path(tmp) / "vault.db")
        server = subprocess.Popen(
            ["taskset", "-c", str(a.server_cpu), sys.executable, "-m", "strongroom.cli.main",
             "vault", "serve", "--db", db, "--secrets", str(Path(tmp) / "s.json"),
             "--port", str(port), "--kdf-memory-kib", "1024", "--attempt-limit", "10",
             *(["--threads", str(a.threads)] if a.threads else [])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(port)
            token = subprocess.run([sys.executable, "-m", "strongroom.cli.main", "vault",
                                    "account", "create", "bench", "--db", db], env=env,
                                   check=True, capture_output=True, text=True).stdout.strip()
            url = f"http://127.0.0.1:{port}"
            from strongroom.client import flows
            from strongroom.client.vault_client import VaultClient
            from strongroom.crypto.keys import BackupKey
            from strongroom.storage.memory import MemoryBackend
            from strongroom.vault.params import KsfBounds

            backend = MemoryBackend()
            with VaultClient(url, "bench", token) as c:
                loc = flows.enable(backend, BackupKey.generate(), c, "bench password",
                                   ksf=BENCH_KSF, bounds=KsfBounds(minimum=BENCH_KSF))
            result = _run(a, url, token, loc.to_json(), load_cpus, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)
            if a.db:
                _drop_pg_database(a.db, db)
    result["command"] = " ".join(["python3 -m bench.vault_bench"] + sys.argv[1:])
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:28} {v}")


def _run(a: argparse.Namespace, url: str, token: str, locator: bytes, load_cpus: set[int],
         server_pid: int) -> dict[str, object]:
    q: mp.Queue = mp.Queue()
    stop_at = time.time() + 1.0 + a.seconds
    procs = [mp.Process(target=_worker, args=(url, token, locator, load_cpus, stop_at, q))
             for _ in range(a.clients)]
    # The first second lets workers import and connect; it is not measured.
    tasks: list[dict[int, tuple[int, int, int, int]]] = []
    results, t0, t1, (cpu,) = measure_window(procs, q, [server_pid], stop_at, a.seconds, tasks)
    lats = sorted(lat for done in results for when, lat in done if t0 <= when <= t1)
    n = len(lats)
    wall = max(t1 - t0, 1e-9)
    return {
        "logins": n,
        "seconds": round(wall, 2),
        "logins_per_s": round(n / wall, 1),
        "vault_cpu_s": round(cpu, 2),
        "vault_cpu_util": round(cpu / wall, 2),
        "logins_per_vault_cpu_s": round(n / cpu, 1),
        "median_ms": round(statistics.median(lats) * 1000, 2) if n else None,
        "p99_ms": round(lats[min(n - 1, int(n * 0.99))] * 1000, 2) if n else None,
        "server_cpu": a.server_cpu,
        "load_cpus": sorted(load_cpus),
        "clients": a.clients,
        "vault_threads": a.threads or "default",
        "store": "postgresql" if a.db else "sqlite",
        "loadavg_1m": round(os.getloadavg()[0], 2),
        # Per complete login (two requests): the server's threads, from /proc.
        **thread_stats(server_pid, tasks[0], tasks[1], n),
    }


if __name__ == "__main__":
    main()
