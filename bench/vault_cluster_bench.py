"""Complete logins per vault CPU-second on the replicated cluster, with N records stored.

Runs against the rehearsal cluster (``scripts/vault-cluster.sh up``: 3 etcd, 3
Patroni/PostgreSQL 15 in strict synchronous mode), so every counted guess is
committed on the leader and its synchronous standby before KE2 goes out.

1. ``--records N``: the record table is filled to N rows.  The rows are clones,
   made by the database itself (``INSERT ... SELECT`` over ``generate_series``), of
   one account registered through the API, each under its own account id: the
   same columns and sizes as a real record (the sealed blob does not verify under
   another id, so they are never logged into; they are what the table, its index
   and the replicas carry).  Reported: rows per second of the fill, and bytes per
   record (table + TOAST + indexes, divided by the row count) on the leader.
2. A fresh vault node pinned to one CPU (``--server-cpu``) serves the login load
   from processes on the other CPU(s), exactly as ``bench/vault_bench.py`` does:
   logins per second, the vault's CPU seconds per login, median and p99.

    scripts/vault-cluster.sh up
    python3 -m bench.vault_cluster_bench --records 1000000 --seconds 20 --clients 8
    python3 -m bench.vault_cluster_bench --records 1000000 --seconds 20 --clients 8 --cluster-cpus 1

``--cluster-cpus`` moves the cluster's processes off the vault's CPU (on separate hosts in a
deployment, they share it here unless moved).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.servers import free_port
from tests.support.vault_cluster import DEFAULT_DIR, VAULT_DB, VaultCluster

from bench.vault_bench import BENCH_KSF, _run, _wait

BATCH = 100_000


def _leader_conn(cluster: VaultCluster):  # type: ignore[no-untyped-def]
    import psycopg

    dsn = cluster.superuser_dsn().replace("dbname=postgres", f"dbname={VAULT_DB}")
    return psycopg.connect(dsn, autocommit=True)


def fill(cluster: VaultCluster, template_account: str, records: int) -> dict[str, float]:
    """Clone ``template_account``'s record until the table holds ``records`` rows."""
    from strongroom.vault.store import RecordRow

    cols = [c.strip() for c in RecordRow.COLUMNS.split(",")]
    rest = ", ".join(cols[1:])
    with _leader_conn(cluster) as conn:
        have = int(conn.execute("SELECT count(*) FROM vault_records").fetchone()[0])
        t0, added = time.monotonic(), 0
        while have < records:
            n = min(BATCH, records - have)
            conn.execute(
                f"INSERT INTO vault_records ({', '.join(cols)}) "
                f"SELECT 'bulk-' || lpad(g::text, 10, '0'), {rest} "
                "FROM vault_records AS t, generate_series(%s, %s) AS g "
                "WHERE t.account_id = %s ON CONFLICT DO NOTHING",
                (have, have + n - 1, template_account))
            have = int(conn.execute("SELECT count(*) FROM vault_records").fetchone()[0])
            added += n
            print(f"  {have:,} records ({added / (time.monotonic() - t0):,.0f} rows/s)",
                  file=sys.stderr, flush=True)
        fill_s = time.monotonic() - t0
        conn.execute("ANALYZE vault_records")
        total, heap, rows = conn.execute(
            "SELECT pg_total_relation_size('vault_records'), pg_relation_size('vault_records'), "
            "count(*) FROM vault_records").fetchone()
    return {"records": int(rows), "fill_s": round(fill_s, 1),
            "fill_rows_per_s": round(added / fill_s, 0) if added else None,
            "bytes_per_record_total": round(int(total) / int(rows), 1),
            "bytes_per_record_heap": round(int(heap) / int(rows), 1)}


def _cluster_pids(root: Path) -> list[int]:
    """The cluster's processes: those whose command line names ``root`` (etcd,
    Patroni, the postmasters) and all their descendants (PostgreSQL backends)."""
    parent: dict[int, int] = {}
    named: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        pid = int(entry.name)
        parent[pid] = int(stat.rpartition(")")[2].split()[1])
        if str(root).encode() in cmdline and pid != os.getpid():
            named.add(pid)
    found = set(named)
    grew = True
    while grew:
        kids = {p for p, pp in parent.items() if pp in found and p not in found}
        found |= kids
        grew = bool(kids)
    return sorted(found)


def pin_cluster(root: Path, cpus: set[int]) -> int:
    """Move every thread of the cluster's processes to ``cpus`` (new backends inherit
    it from their postmaster); the number of processes moved."""
    moved = 0
    for pid in _cluster_pids(root):
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.sched_setaffinity(int(task.name), cpus)
            moved += 1
        except OSError:  # exited meanwhile
            continue
    return moved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the running cluster's directory")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=8, help="load processes")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--threads", type=int, help="the vault's worker threads (default: its own)")
    ap.add_argument("--cluster-cpus", default="",
                    help="move the cluster's processes (etcd, Patroni, PostgreSQL) to these CPUs, "
                         "e.g. 1: off the vault's CPU, as on separate hosts (default: where they are)")
    ap.set_defaults(db="cluster")  # what bench.vault_bench._run reports as the store
    a = ap.parse_args()
    cluster = VaultCluster(a.dir)
    if not cluster.state or cluster.leader() is None:
        sys.exit(f"vault_cluster_bench: no running cluster in {a.dir} (scripts/vault-cluster.sh up)")
    all_cpus = os.sched_getaffinity(0)
    load_cpus = (all_cpus - {a.server_cpu}) or all_cpus
    pinned = 0
    if a.cluster_cpus:
        pinned = pin_cluster(a.dir, {int(c) for c in a.cluster_cpus.split(",")})
    else:  # a run without the option undoes an earlier one's pinning
        pin_cluster(a.dir, all_cpus)
    port = free_port()
    env = cluster.vault_env()
    log = open(cluster.root / f"bench-vault-{port}.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        ["taskset", "-c", str(a.server_cpu), sys.executable, "-m", "strongroom.cli.main",
         "vault", "serve", "--secrets", str(cluster.root / "vault-secrets.json"),
         "--port", str(port), "--attempt-limit", "10",
         *(["--threads", str(a.threads)] if a.threads else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(port)
        url = f"http://127.0.0.1:{port}"
        name = f"bench-{os.getpid()}"
        token = cluster.create_account(name)
        from strongroom.client import flows
        from strongroom.client.vault_client import VaultClient
        from strongroom.crypto.keys import BackupKey
        from strongroom.storage.memory import MemoryBackend
        from strongroom.vault.params import KsfBounds
        from strongroom.vault.store import record_key

        with VaultClient(url, name, token) as c:
            loc = flows.enable(MemoryBackend(), BackupKey.generate(), c, "bench password",
                               ksf=BENCH_KSF, bounds=KsfBounds(minimum=BENCH_KSF))
        stored = fill(cluster, record_key(name, loc.slot), a.records)
        result = _run(a, url, token, loc.to_json(), load_cpus, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    result.update(stored)
    result.update(cluster_cpus=a.cluster_cpus or "all", cluster_processes_pinned=pinned)
    result.update(store="patroni-cluster (3 nodes, strict synchronous)",
                  loadavg_1m=round(os.getloadavg()[0], 2),
                  command=" ".join(["python3 -m bench.vault_cluster_bench"] + sys.argv[1:]))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
