"""OPAQUE benchmark: server logins per second per core, and client login latency.

Run: ``python3 -m bench.opaque_bench [--logins 2000] [--runs 5] [--client-runs 5]``

(a) Server side, in-process, one thread (= one core): a complete login is
    ``LoginServer.start`` on a KE1 plus ``LoginServer.finish`` on the KE3.
    The client side is precomputed outside the timed loop: each login's
    server randomness is fixed in advance so the KE2 computed in the timed
    loop is the one the client already answered, and every timed login is
    checked to succeed.  Real records and fake (unknown-account) KE2s are
    timed separately.
(b) Client side: ``LoginClient.start`` + ``LoginClient.finish`` with the
    default Argon2id parameters (the server's work is not counted).

Each figure is the median of ``--runs`` runs.  Server rates are given per
CPU second of the benchmarking thread (= per core, robust to other load) and
per wall-clock second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from strongroom.errors import InvalidLogin
from strongroom.opaque import (
    IdentityKSF,
    LoginClient,
    LoginServer,
    OpaqueConfig,
    RegistrationClient,
    RegistrationServer,
    ServerSetup,
)

PASSWORD = b"correct horse battery staple"
CRED = b"account-0001"
# Bytes the server draws per login: masking nonce, server nonce, key-share seed
# (+ a masking key first for a fake record).
SERVER_DRAW = 32 + 32 + 32
FAKE_DRAW = 64 + SERVER_DRAW


def _replay(data: bytes) -> Callable[[int], bytes]:
    offset = 0

    def rng(n: int) -> bytes:
        nonlocal offset
        offset += n
        return data[offset - n : offset]

    return rng


def _register(setup: ServerSetup, config: OpaqueConfig) -> bytes:
    request, state = RegistrationClient.start(PASSWORD, config=config)
    response = RegistrationServer.respond(setup, request, CRED, config=config)
    return RegistrationClient.finish(state, response, config=config)[0]


def _prepare(setup: ServerSetup, record: bytes | None, config: OpaqueConfig, count: int):
    """Per login: (KE1, server randomness, KE3). Runs the client side, untimed."""
    cases = []
    for _ in range(count):
        ke1, c_state = LoginClient.start(PASSWORD, config=config)
        draws = os.urandom(FAKE_DRAW if record is None else SERVER_DRAW)
        ke2, _ = LoginServer.start(setup, record, ke1, CRED, config=config, rng=_replay(draws))
        try:
            ke3 = LoginClient.finish(c_state, ke2, config=config)[0]
        except InvalidLogin:  # a fake KE2 never verifies: send a KE3 that will fail
            ke3 = os.urandom(64)
        cases.append((ke1, draws, ke3))
    return cases


def server_logins_per_second(setup, record, config, cases) -> tuple[float, float]:
    """Time complete server-side logins: (per wall second, per CPU second).

    CPU time is this thread's only, so the second figure is "per core" even
    when other processes share the machine.  Every real login must verify.
    """
    ok = 0
    cpu_start = time.thread_time()
    start = time.perf_counter()
    for ke1, draws, ke3 in cases:
        _, state = LoginServer.start(setup, record, ke1, CRED, config=config, rng=_replay(draws))
        try:
            LoginServer.finish(state, ke3)
            ok += 1
        except InvalidLogin:  # the fake-KE2 cases: counted by not counting them
            continue
    elapsed = time.perf_counter() - start
    cpu = time.thread_time() - cpu_start
    expected = len(cases) if record is not None else 0
    if ok != expected:
        raise SystemExit(f"benchmark invalid: {ok} of {len(cases)} logins verified")
    return len(cases) / elapsed, len(cases) / cpu


def client_login_seconds(setup: ServerSetup, config: OpaqueConfig) -> float:
    """One client login (start + finish) with ``config``; server time excluded."""
    record = _register(setup, config)
    t0 = time.perf_counter()
    ke1, state = LoginClient.start(PASSWORD, config=config)
    t1 = time.perf_counter()
    ke2, s_state = LoginServer.start(setup, record, ke1, CRED, config=config)
    t2 = time.perf_counter()
    ke3, session, _ = LoginClient.finish(state, ke2, config=config)
    t3 = time.perf_counter()
    if LoginServer.finish(s_state, ke3) != session:
        raise SystemExit("benchmark invalid: session keys differ")
    return (t1 - t0) + (t3 - t2)


def main() -> None:
    """Run both benchmarks and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--client-runs", type=int, default=5)
    args = parser.parse_args()

    setup = ServerSetup.generate()
    fast = OpaqueConfig(ksf=IdentityKSF())  # the KSF runs on the client only
    record = _register(setup, fast)
    rows = []
    for label, rec in (("server, registered account", record), ("server, unknown (fake KE2)", None)):
        cases = _prepare(setup, rec, fast, args.logins)
        runs = [server_logins_per_second(setup, rec, fast, cases) for _ in range(args.runs)]
        wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
        rows.append((label + " (CPU time)", f"{statistics.median(cpu):,.0f} logins/s/core",
                     f"min {min(cpu):,.0f}  max {max(cpu):,.0f}"))
        rows.append((label + " (wall time)", f"{statistics.median(wall):,.0f} logins/s",
                     f"min {min(wall):,.0f}  max {max(wall):,.0f}"))

    default = OpaqueConfig()
    ksf = default.ksf
    times = [client_login_seconds(setup, default) for _ in range(args.client_runs)]
    rows.append(((f"client login, Argon2id m={ksf.memory_kib} KiB t={ksf.iterations} "
                 f"p={ksf.parallelism}"), f"{statistics.median(times) * 1000:,.0f} ms",
                 f"min {min(times) * 1000:,.0f}  max {max(times) * 1000:,.0f}"))

    print(f"OPAQUE-3DH ristretto255/SHA-512, {args.logins} logins x {args.runs} runs (median)")
    width = max(len(r[0]) for r in rows)
    for label, value, spread in rows:
        print(f"  {label:<{width}}  {value:>22}  ({spread})")


if __name__ == "__main__":
    main()
