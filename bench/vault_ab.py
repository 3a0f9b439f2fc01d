"""Paired A/B of two source trees: what one login (or realm recovery) costs each vault.

Solo runs of ``bench.vault_bench`` on a shared machine scatter by ±30 % from one minute
to the next.  Here two ``strongroom vault serve`` processes, one from each tree
(``TREE/src`` on ``PYTHONPATH``), run at the same time, both pinned to ``--server-cpu``,
and each load process alternates one complete login (KE1 + KE3) on A and one on B, or,
with ``--realms``, one complete 1-of-1 realm recovery (evaluate + unlock) on each.  Both
servers see the same machine; the ratio B/A of work per server-CPU-second is what to read
(absolute figures are lower than solo ones: two servers share one CPU).

    python3 -m bench.vault_ab /work/wt-base /work/wt-new --seconds 8 --clients 3 [--db DSN]
    python3 -m bench.vault_ab /work/wt-base /work/wt-new --realms
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .realm_bench import PASSWORD, recovery_step
from .vault_bench import BENCH_KSF, _free_port, _wait, measure_window


def _start(tree: str, tmp: Path, name: str, dsn: str | None, cpu: int, realms: bool
           ) -> tuple[subprocess.Popen[bytes], str, str, bytes, str | None]:
    env = {**os.environ, "STRONGROOM_VAULT_PASSPHRASE": "bench", "PYTHONPATH": f"{tree}/src"}
    d = tmp / name
    d.mkdir()
    db, dbname = str(d / "vault.db"), None
    if dsn:
        import psycopg
        from psycopg.conninfo import make_conninfo

        dbname = f"strongroom_ab_{name}_{os.getpid()}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname}")
            conn.execute(f"CREATE DATABASE {dbname}")
        db = make_conninfo(dsn, dbname=dbname)
    port = _free_port()
    proc = subprocess.Popen(
        ["taskset", "-c", str(cpu), sys.executable, "-m", "strongroom.cli.main", "vault", "serve",
         "--db", db, "--secrets", str(d / "s.json"), "--port", str(port),
         "--kdf-memory-kib", "1024", "--attempt-limit", "10"],
        env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(port)
    token = subprocess.run([sys.executable, "-m", "strongroom.cli.main", "vault", "account",
                            "create", "bench", "--db", db], env=env, cwd=tree, check=True,
                           capture_output=True, text=True).stdout.strip()
    url = f"http://127.0.0.1:{port}"
    from strongroom.client.vault_client import VaultClient
    from strongroom.crypto.keys import BackupKey

    with VaultClient(url, "bench", token) as c:
        if realms:
            from strongroom.realms import client as rc

            locator = rc.register([c], BackupKey.generate(), PASSWORD.encode(), account="bench",
                                  slot=os.urandom(16).hex(), threshold=1, ksf=BENCH_KSF,
                                  rng=os.urandom, created=int(time.time())).locator.to_json()
        else:
            from strongroom.client import flows
            from strongroom.storage.memory import MemoryBackend
            from strongroom.vault.params import KsfBounds

            locator = flows.enable(MemoryBackend(), BackupKey.generate(), c, PASSWORD,
                                   ksf=BENCH_KSF, bounds=KsfBounds(minimum=BENCH_KSF)).to_json()
    return proc, url, token, locator, dbname


def _login_step(url: str, token: str, locator: bytes) -> Any:
    from strongroom.client import flows
    from strongroom.client.keywrap import open_release, unwrap_key
    from strongroom.client.vault_client import VaultClient
    from strongroom.vault import _opaque as opaque

    loc = flows.VaultLocator.from_json(locator)
    cfg = loc.config(BENCH_KSF)
    client = VaultClient(url, loc.account, token, slot=loc.slot)

    def step() -> None:
        ke1, st = opaque.LoginClient.start(PASSWORD.encode(), config=cfg)
        ans = client.login_start(ke1)
        ke3, sk, ek = opaque.LoginClient.finish(st, ans.ke2, config=cfg,
                                                expected_server_public_key=loc.server_public_key)
        sealed = client.login_finish(ans.session_id, ke3)
        unwrap_key(ek, open_release(sk, sealed, loc.account, ans.session_id), loc.account)

    return step


def _worker(targets: list[tuple[str, str, bytes]], realms: bool, cpus: set[int],
            stop_at: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    os.sched_setaffinity(0, cpus)
    steps = [(recovery_step if realms else _login_step)(*t) for t in targets]
    done: list[list[float]] = [[] for _ in steps]  # per target: when each one completed
    while time.time() < stop_at:
        for i, step in enumerate(steps):  # A, then B, then A, ...
            step()
            done[i].append(time.time())
    out.put(done)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree_a")
    ap.add_argument("tree_b")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--db", help="a PostgreSQL DSN (each server gets a fresh database there)")
    ap.add_argument("--realms", action="store_true", help="realm recoveries, not logins")
    a = ap.parse_args()
    all_cpus = os.sched_getaffinity(0)
    load_cpus = (all_cpus - {a.server_cpu}) or all_cpus
    with tempfile.TemporaryDirectory(prefix="strongroom-vault-ab-") as tmp:
        servers = [_start(tree, Path(tmp), name, a.db, a.server_cpu, a.realms)
                   for tree, name in ((a.tree_a, "a"), (a.tree_b, "b"))]
        try:
            q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
            stop_at = time.time() + 1.0 + a.seconds
            targets = [(url, token, loc) for _p, url, token, loc, _n in servers]
            procs = [mp.Process(target=_worker, args=(targets, a.realms, load_cpus, stop_at, q))
                     for _ in range(a.clients)]
            results, t0, t1, cpu = measure_window(procs, q, [s[0].pid for s in servers],
                                                   stop_at, a.seconds)
            done = [sum(1 for r in results for when in r[i] if t0 <= when <= t1)
                    for i in range(2)]
        finally:
            for s in servers:
                s[0].terminate()
                s[0].wait(timeout=10)
            if a.db:
                import psycopg

                with psycopg.connect(a.db, autocommit=True) as conn:
                    for s in servers:
                        conn.execute(f"DROP DATABASE IF EXISTS {s[4]} WITH (FORCE)")
    per = [done[i] / cpu[i] for i in range(2)]
    what = "recoveries" if a.realms else "logins"
    print(json.dumps({
        "utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "store": "postgresql" if a.db else "sqlite", "measured": what,
        f"a_{what}_per_server_cpu_s": round(per[0], 1),
        f"b_{what}_per_server_cpu_s": round(per[1], 1),
        "b_over_a": round(per[1] / per[0], 3), "count": done,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "command": " ".join(["python3 -m bench.vault_ab"] + sys.argv[1:])}))


if __name__ == "__main__":
    main()
