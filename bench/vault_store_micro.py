"""CPU of one PostgreSQL record-store transaction, in-process (no HTTP, no vault core).

Each transaction is a login start's shape: BEGIN, the advisory lock and the record read
in the first round trip; the record upsert, a session insert and COMMIT in the second
(``PostgresStore.transact``).  Reported: CPU (user + system) and wall time per
transaction of this process, after a warm-up.  Run it with the tree to measure first on
``PYTHONPATH`` and pinned to one CPU, alternately for two trees:

    PYTHONPATH=TREE/src taskset -c 0 python3 -m bench.vault_store_micro --dsn DSN
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import psycopg
from psycopg.conninfo import make_conninfo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True, help="a PostgreSQL server (a fresh database is made)")
    ap.add_argument("--count", type=int, default=1500)
    a = ap.parse_args()
    from strongroom.vault.counter import State
    from strongroom.vault.store import Mutation, RecordRow, SessionRow
    from strongroom.vault.store_postgres import PostgresStore

    name = f"strongroom_micro_{os.getpid()}"
    with psycopg.connect(a.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    store = PostgresStore(make_conninfo(a.dsn, dbname=name), max_connections=2)
    try:
        sealed = os.urandom(300)
        row = RecordRow("bench", State.ACTIVE, 0, 10, 1, sealed, os.urandom(32))

        def fn(_cur: RecordRow | None, _s: SessionRow | None) -> Mutation:
            session = SessionRow(os.urandom(18).hex(), "bench", 1e12, 1, os.urandom(170), sealed)
            return Mutation(row=row, add_session=session, result=1)

        for _ in range(300):
            store.transact("bench", fn)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(a.count):
            store.transact("bench", fn)
        r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
    finally:
        store.close()
        with psycopg.connect(a.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                      "cpu_us_per_transaction": round(cpu / a.count * 1e6, 1),
                      "user_us_per_transaction": round((r1.ru_utime - r0.ru_utime) / a.count * 1e6, 1),
                      "wall_us_per_transaction": round(wall / a.count * 1e6, 1),
                      "loadavg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
