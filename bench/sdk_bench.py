"""SDK responsiveness: GIL stalls of the KSF, event-loop lag, cancellation latency.

Run: ``python3 -m bench.sdk_bench [--runs 5] [--size-mb 64]``

(a) Argon2id (64 MiB, 3 passes, one lane) in a thread while a 1 ms heartbeat
    thread runs: the longest heartbeat gap, for libsodium (pysodium, the KSF's
    choice) and pyca/cryptography.  A gap near the stretch time means the GIL
    was held throughout.
(b) ``strongroom.aio`` backup, restore and an OPAQUE login with the default KSF
    while a 5 ms heartbeat task runs on the event loop: the latest it woke
    (raw), the part this process is responsible for (ours: raw minus the
    loop thread's wait for a CPU that other processes held; see
    ``tests/support/heartbeat.py``), and how many cores other processes used
    meanwhile; next to the same heartbeat with nothing running (the
    machine's own noise).
(c) Cancellation: ``Cancel.cancel()`` from a timer thread at a random moment
    of a backup and of a restore; the time until the operation has raised
    ``Cancelled`` (lock released, workers stopped).

Each figure is reported as median and maximum over ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tests.support.heartbeat import loop_lag_parts, thread_stall

import strongroom
from strongroom import aio, opaque

MiB = 1024 * 1024


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:6.1f} ms, max {max(values) * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=64)
    args = parser.parse_args()
    ksf = opaque.Argon2idKSF()
    print(f"(a) Argon2id {ksf.memory_kib // 1024} MiB x {ksf.iterations}, heartbeat thread gap")
    for name, fn in (("libsodium", ksf.stretch), ("pyca", ksf._stretch_pyca)):
        runs = [thread_stall(lambda fn=fn: fn(b"password")) for _ in range(args.runs)]
        print(f"    {name:10} stretch {fmt([r[0] for r in runs])}; gap {fmt([r[1] for r in runs])}")

    with tempfile.TemporaryDirectory(prefix="sdk-bench-") as tmp:
        root = Path(tmp)
        src = root / "src"
        (src / "Media").mkdir(parents=True)
        (src / "msgstore.db").write_bytes(os.urandom(args.size_mb * MiB))
        for i in range(500):
            (src / "Media" / f"IMG-{i:04}.jpg").write_bytes(os.urandom(30_000))
        key = strongroom.BackupKey.generate()
        location = str(root / "repo")
        strongroom.Repository.create(location, key).close()
        setup, cfg = opaque.ServerSetup.generate(), opaque.OpaqueConfig()
        req, st = opaque.RegistrationClient.start(b"pw", config=cfg)
        rec, _ = opaque.RegistrationClient.finish(
            st, opaque.RegistrationServer.respond(setup, req, b"a", config=cfg), config=cfg)
        outs = iter(range(10**6))

        async def backup() -> None:
            await (await aio.open(location, key)).backup([src])

        async def restore() -> None:
            await (await aio.open(location, key)).restore("latest", root / f"o{next(outs)}",
                                                          strip=str(src))

        async def login() -> None:
            ke1, c = opaque.LoginClient.start(b"pw", config=cfg)
            ke2, _s = opaque.LoginServer.start(setup, rec, ke1, b"a", config=cfg)
            await aio.call(opaque.LoginClient.finish, c, ke2, config=cfg)

        async def idle() -> None:
            await asyncio.sleep(1.0)

        print(f"(b) event-loop lag (5 ms heartbeat), {args.size_mb} MiB + 500 small files")
        for name, make in (("idle", idle), ("backup", backup), ("restore", restore),
                           ("login", login)):
            lags = [asyncio.run(loop_lag_parts(make)) for _ in range(args.runs)]
            others = statistics.median(lag.others for lag in lags)
            print(f"    {name:10} raw {fmt([lag.raw for lag in lags])}; "
                  f"ours {fmt([lag.ours for lag in lags])}; others {others:.2f} cores")

        print("(c) stop latency after Cancel.cancel() at a random moment")
        rnd = random.Random(1)
        repo = strongroom.Repository.open(location, key)
        for name in ("backup", "restore"):
            lat: list[float] = []
            for i in range(args.runs * 2):
                token, when = strongroom.Cancel(), []
                delay = rnd.uniform(0.05, 0.5)

                def fire(token=token, when=when, delay=delay) -> None:  # type: ignore[no-untyped-def]
                    time.sleep(delay)
                    when.append(time.monotonic())
                    token.cancel()

                timer = threading.Thread(target=fire)
                timer.start()
                try:
                    if name == "backup":
                        (src / "msgstore.db").write_bytes(os.urandom(args.size_mb * MiB))
                        repo.backup([src], cancel=token)
                    else:
                        repo.restore("latest", root / f"c{i}", cancel=token)
                except strongroom.Cancelled:
                    lat.append(time.monotonic() - when[0])
                timer.join()
            print(f"    {name:10} {fmt(lat) if lat else 'finished before every cancel'}"
                  f" ({len(lat)} cancelled)")


if __name__ == "__main__":
    main()
