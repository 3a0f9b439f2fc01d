"""The vault's replicated database on one machine: 3 etcd, 3 Patroni + PostgreSQL 15, vault nodes.

The production shape (docs/vault-operations.md) rehearsed on loopback, with real
processes: etcd (Debian ``etcd-server``) as Patroni's consensus store, Patroni
(Debian ``patroni``) managing three PostgreSQL 15 nodes in strict synchronous
mode, and ``strongroom vault serve`` nodes that reach the leader through a
libpq multi-host DSN with ``target_session_attrs=read-write``.  The
configuration files are rendered from ``deploy/vault-cluster/*.in``, the same
templates a three-host deployment uses.

Everything lives in one directory (default ``/tmp/strongroom-vault-cluster``):
``cluster.json`` (ports, process ids; secrets are in 0600 files beside it), the
rendered configuration, the data and a log per process.  Used by
``scripts/vault-cluster.sh`` (up, down, status, render) and by the reliability
tests (``tests/reliability/test_failover.py``), which also kill, freeze and
restart single processes through it.

    python -m tests.support.vault_cluster up [--dir DIR] [--vaults 3]
    python -m tests.support.vault_cluster status [--dir DIR]
    python -m tests.support.vault_cluster down [--dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

from .servers import free_ports

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "deploy" / "vault-cluster"
DEFAULT_DIR = Path(os.environ.get("STRONGROOM_CLUSTER_DIR", "/tmp/strongroom-vault-cluster"))
SCOPE = "strongroom-vault"
VAULT_DB, VAULT_ROLE = "strongroom_vault", "strongroom_vault"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
STARTUP_TIMEOUT = 120.0


def available() -> str | None:
    """None when etcd, Patroni and PostgreSQL 15 are installed, else what is missing."""
    missing = [name for name, ok in (("etcd-server", shutil.which("etcd")),
                                     ("patroni", shutil.which("patroni")),
                                     ("postgresql-15", (PG_BIN / "initdb").exists())) if not ok]
    return ", ".join(missing) or None


def render(template: str, values: dict[str, Any]) -> str:
    """``deploy/vault-cluster/<template>`` with ``${...}`` filled in (a missing name is an error)."""
    return Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _signal(pid: int | None, sig: int, *, group: bool = False) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        (os.killpg if group else os.kill)(pid, sig)


def _write_private(path: Path, text: str, owner: str | None = None) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    if owner:
        shutil.chown(path, owner, owner)


class VaultCluster:
    """One rehearsal cluster in ``root``; its state survives this process (``cluster.json``)."""

    def __init__(self, root: Path = DEFAULT_DIR) -> None:
        self.root = Path(root)
        self.state_file = self.root / "cluster.json"
        self.state: dict[str, Any] = {}
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())
        # PostgreSQL refuses to run as root: as root, Patroni runs as ``postgres``.
        self.pg_user = "postgres" if os.geteuid() == 0 else None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- layout ------------------------------------------------------------------------

    def _plan(self, vaults: int) -> dict[str, Any]:
        ports = iter(free_ports(6 + 6 + vaults))
        etcd = [{"name": f"etcd{i}", "client_port": next(ports), "peer_port": next(ports)}
                for i in (1, 2, 3)]
        pg = [{"name": f"pg{i}", "pg_port": next(ports), "api_port": next(ports)} for i in (1, 2, 3)]
        vault = [{"name": f"vault{i}", "port": next(ports)} for i in range(1, vaults + 1)]
        return {"etcd": etcd, "pg": pg, "vault": vault, "pids": {}}

    def _save(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=2) + "\n")

    def _secret(self, name: str) -> str:
        return (self.root / "secrets" / name).read_text(encoding="utf-8").strip()

    @property
    def etcd_endpoints(self) -> str:
        """``host:port,...`` of the etcd members' client API."""
        return ",".join(f"127.0.0.1:{e['client_port']}" for e in self.state["etcd"])

    @property
    def vault_dsn(self) -> str:
        """What every vault node is given: all three nodes, settle on the writable one."""
        hosts = ",".join("127.0.0.1" for _ in self.state["pg"])
        ports = ",".join(str(p["pg_port"]) for p in self.state["pg"])
        return (f"host={hosts} port={ports} dbname={VAULT_DB} user={VAULT_ROLE} "
                "target_session_attrs=read-write")

    @property
    def vault_urls(self) -> list[str]:
        """The vault nodes' base URLs."""
        return [f"http://127.0.0.1:{v['port']}" for v in self.state["vault"]]

    def superuser_dsn(self, node: str | None = None) -> str:
        """libpq DSN of the superuser on ``node`` (default: whichever accepts writes)."""
        pgs = [p for p in self.state["pg"] if node in (None, p["name"])]
        return (f"host={','.join('127.0.0.1' for _ in pgs)} "
                f"port={','.join(str(p['pg_port']) for p in pgs)} user=postgres dbname=postgres "
                f"password={self._secret('superuser')} connect_timeout=3"
                + (" target_session_attrs=read-write" if node is None else ""))

    # -- up / down -----------------------------------------------------------------------

    def up(self, *, vaults: int = 3, passphrase: str | None = None) -> None:
        """Create (first time) or restart every process; return when logins can work."""
        if self.running():
            raise RuntimeError(f"a cluster is already running in {self.root}; run down first")
        fresh = not self.state
        if fresh:
            self.root.mkdir(parents=True, exist_ok=True)
            self.root.chmod(0o755)
            (self.root / "secrets").mkdir(mode=0o700, exist_ok=True)
            for name in ("superuser", "replication", "vault-db", "vault-passphrase"):
                _write_private(self.root / "secrets" / name, secrets.token_urlsafe(24) + "\n")
            if passphrase:
                _write_private(self.root / "secrets" / "vault-passphrase", passphrase + "\n")
            self.state = self._plan(vaults)
            self._save()
        self._render()
        for e in self.state["etcd"]:
            self.start_etcd(e["name"])
        self._wait(lambda: self.etcd_healthy() >= 2, "etcd quorum")
        for p in self.state["pg"]:
            self.start_patroni(p["name"])
        self.wait_writable()
        self.wait_sync_standby()
        if fresh:
            self._create_vault_database()
        for v in self.state["vault"]:
            self.start_vault(v["name"])

    def _render(self) -> None:
        owner = self.pg_user
        initial = ",".join(f"{e['name']}=http://127.0.0.1:{e['peer_port']}" for e in self.state["etcd"])
        for e in self.state["etcd"]:
            d = self.root / e["name"]
            d.mkdir(exist_ok=True)
            (d / "etcd.yml").write_text(render("etcd.yml.in", {
                "name": e["name"], "data_dir": d / "data", "scheme": "http",
                "listen_host": "127.0.0.1", "host": "127.0.0.1", "client_port": e["client_port"],
                "peer_port": e["peer_port"], "initial_cluster": initial, "scope": SCOPE}))
        for p in self.state["pg"]:
            d = self.root / p["name"]
            d.mkdir(exist_ok=True)
            if owner:
                shutil.chown(d, owner, owner)
            d.chmod(0o700)
            _write_private(d / "patroni.yml", render("patroni.yml.in", {
                "scope": SCOPE, "name": p["name"], "listen_host": "127.0.0.1", "host": "127.0.0.1",
                "api_port": p["api_port"], "pg_port": p["pg_port"], "etcd_hosts": self.etcd_endpoints,
                "scheme": "http", "data_dir": d / "data", "state_dir": d, "socket_dir": d,
                "superuser_password": self._secret("superuser"),
                "replication_password": self._secret("replication"),
                "network": "127.0.0.1/32"}), owner)
        # The vault nodes' libpq password file: the password never appears in an argument.
        _write_private(self.root / "secrets" / "vault.pgpass",
                       "".join(f"127.0.0.1:{p['pg_port']}:{VAULT_DB}:{VAULT_ROLE}:"
                               f"{self._secret('vault-db')}\n" for p in self.state["pg"]))

    def _create_vault_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            # CREATE ROLE takes no bind parameters: the password goes in as a quoted literal.
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(VAULT_ROLE), sql.Literal(self._secret("vault-db"))))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(VAULT_DB), sql.Identifier(VAULT_ROLE)))

    def down(self) -> None:
        """Stop every process (vaults, then Patroni and its PostgreSQL, then etcd); keep the data."""
        for v in self.state.get("vault", []):
            self.stop(v["name"])
        for p in self.state.get("pg", []):
            self.stop(p["name"])
        for e in self.state.get("etcd", []):
            self.stop(e["name"])

    def destroy(self) -> None:
        """``down`` and delete the directory."""
        self.down()
        shutil.rmtree(self.root, ignore_errors=True)
        self.state = {}

    def running(self) -> bool:
        """Whether any process of this cluster is alive."""
        return any(_pid_alive(pid) for pid in self.state.get("pids", {}).values())

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], *, env: dict[str, str] | None = None,
               user: str | None = None, cwd: Path | None = None) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115  # the child keeps it
        kw: dict[str, Any] = {}
        if user:
            kw.update(user=user, group=user, extra_groups=[])
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env or dict(os.environ), cwd=cwd or self.root,
                                start_new_session=True, **kw)
        log.close()
        self._procs[name] = proc
        self.state["pids"][name] = proc.pid
        self._save()

    def start_etcd(self, name: str) -> None:
        """Start (or restart) etcd member ``name``."""
        self._spawn(name, ["etcd", "--config-file", str(self.root / name / "etcd.yml")])

    def start_patroni(self, name: str) -> None:
        """Start (or restart) Patroni node ``name``, which starts its PostgreSQL."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root / name),
               "LANG": "C.UTF-8"}
        self._spawn(name, ["patroni", str(self.root / name / "patroni.yml")], env=env,
                    user=self.pg_user, cwd=self.root / name)

    def start_vault(self, name: str) -> None:
        """Start vault node ``name`` on the cluster; return when it listens."""
        v = next(x for x in self.state["vault"] if x["name"] == name)
        env = self.vault_env()
        # Every node must hold the same secrets (the same OPAQUE server key): the first
        # node to start creates the sealed file; the others wait for it.
        secrets_file = self.root / "vault-secrets.json"
        first = not secrets_file.exists()
        self._spawn(name, [sys.executable, "-m", "strongroom.cli.main", "vault", "serve",
                           "--secrets", str(secrets_file), "--port", str(v["port"]),
                           "--kdf-memory-kib", "1024", "--attempt-limit", "10"], env=env)
        self._wait(lambda: self._listening(v["port"]), f"{name} listening",
                   proc=self.state["pids"][name])
        if first:
            self._wait(secrets_file.exists, "the vault secrets file")

    def vault_env(self) -> dict[str, str]:
        """Environment of a ``strongroom vault`` command on this cluster's database."""
        return {**os.environ, "STRONGROOM_VAULT_PASSPHRASE": self._secret("vault-passphrase"),
                "STRONGROOM_VAULT_DB": self.vault_dsn,
                "PGPASSFILE": str(self.root / "secrets" / "vault.pgpass")}

    def create_account(self, name: str) -> str:
        """``strongroom vault account create NAME`` on the cluster; the token."""
        return subprocess.run([sys.executable, "-m", "strongroom.cli.main", "vault", "account",
                               "create", name], env=self.vault_env(), check=True,
                              capture_output=True, text=True, timeout=60).stdout.strip()

    def stop(self, name: str, timeout: float = 20.0) -> None:
        """SIGTERM the process (its group), SIGKILL what is left after ``timeout``."""
        pid = self.state.get("pids", {}).get(name)
        postmaster = self.postmaster_pid(name) if name.startswith("pg") else None
        if pid and _pid_alive(pid):
            _signal(pid, signal.SIGCONT, group=True)
            _signal(postmaster, signal.SIGCONT, group=True)
            _signal(pid, signal.SIGTERM, group=True)
            end = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < end:
                self._reap(name)
                time.sleep(0.1)
            _signal(pid, signal.SIGKILL, group=True)
        if postmaster and _pid_alive(postmaster):
            _signal(postmaster, signal.SIGKILL, group=True)
        self._reap(name, wait=10.0)

    def _reap(self, name: str, wait: float = 0.0) -> None:
        proc = self._procs.get(name)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait) if wait else proc.poll()
            if proc.returncode is not None:
                del self._procs[name]

    def kill(self, name: str) -> None:
        """SIGKILL process ``name`` alone (for a ``pg`` node: its Patroni, not PostgreSQL)."""
        _signal(self.state["pids"].get(name), signal.SIGKILL)
        self._reap(name, wait=10.0)

    def postmaster_pid(self, node: str) -> int | None:
        """The PostgreSQL postmaster of ``node``, from its ``postmaster.pid``."""
        try:
            pid = int((self.root / node / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def kill_postgres(self, node: str) -> int:
        """``kill -9`` the postmaster of ``node`` (Patroni stays); returns its pid."""
        pid = self.postmaster_pid(node)
        if pid is None:
            raise RuntimeError(f"{node} has no running PostgreSQL")
        os.kill(pid, signal.SIGKILL)
        return pid

    def freeze(self, node: str) -> None:
        """Cut ``node`` off: SIGSTOP its Patroni and PostgreSQL (sockets open, nothing answers)."""
        postmaster = self.postmaster_pid(node)
        _signal(self.state["pids"][node], signal.SIGSTOP, group=True)
        _signal(postmaster, signal.SIGSTOP, group=True)

    def thaw(self, node: str) -> None:
        """Undo :meth:`freeze`."""
        _signal(self.postmaster_pid(node), signal.SIGCONT, group=True)
        _signal(self.state["pids"][node], signal.SIGCONT, group=True)

    # -- observation ------------------------------------------------------------------------

    @staticmethod
    def _listening(port: int) -> bool:
        import socket

        with socket.socket() as s:
            s.settimeout(1.0)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def _wait(self, ok: Any, what: str, timeout: float = STARTUP_TIMEOUT,
              proc: int | None = None) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with contextlib.suppress(Exception):
                if ok():
                    return
            if proc is not None and not _pid_alive(proc):
                raise RuntimeError(f"{what}: the process exited; see the logs in {self.root}")
            time.sleep(0.2)
        raise TimeoutError(f"{what}: not ready after {timeout:.0f} s; see the logs in {self.root}"
                           f"\n{self.log_tails()}")

    def log_tails(self, lines: int = 4) -> str:
        """The last ``lines`` lines of every process's log."""
        out = []
        for log in sorted(self.root.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(t[:300] for t in tail))
        return "\n".join(out)

    def etcd_healthy(self) -> int:
        """How many etcd members answer their health check."""
        import httpx

        n = 0
        for e in self.state["etcd"]:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                r = httpx.get(f"http://127.0.0.1:{e['client_port']}/health", timeout=1.0)
                n += r.json().get("health") == "true"
        return n

    def members(self) -> list[dict[str, Any]]:
        """Patroni's view of the members (``/cluster`` of the first node that answers)."""
        import httpx

        for p in self.state["pg"]:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                r = httpx.get(f"http://127.0.0.1:{p['api_port']}/cluster", timeout=1.0)
                if r.status_code == 200:
                    return list(r.json().get("members", []))
        return []

    def leader(self) -> str | None:
        """The member Patroni reports as leader and running, or None."""
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                return str(m["name"])
        return None

    def sync_standby(self) -> str | None:
        """The member named synchronous standby, or None."""
        for m in self.members():
            if m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming"):
                return str(m["name"])
        return None

    def wait_writable(self, timeout: float = STARTUP_TIMEOUT) -> str:
        """Wait until a leader accepts a write; return its name."""
        import psycopg

        def ok() -> bool:
            with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
                conn.execute("SELECT txid_current()")
            return self.leader() is not None

        self._wait(ok, "a writable leader", timeout)
        return self.leader() or "?"

    def wait_sync_standby(self, timeout: float = STARTUP_TIMEOUT) -> str:
        """Wait until a synchronous standby is named; return its name."""
        self._wait(lambda: self.sync_standby() is not None, "a synchronous standby", timeout)
        return self.sync_standby() or "?"

    def diagnose(self) -> dict[str, Any]:
        """What a failed run records: the leader's view of its sessions and standbys, and
        the tail of every vault node's log (each part "error: ..." when it cannot be read)."""
        import psycopg

        out: dict[str, Any] = {"members": self.members()}
        leader = self.leader()
        out["leader"] = leader
        if leader is not None:
            try:
                with psycopg.connect(self.superuser_dsn(leader), autocommit=True) as conn:
                    out["synchronous_standby_names"] = conn.execute(
                        "SHOW synchronous_standby_names").fetchone()[0]
                    out["wal_lsn"] = str(conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0])
                    out["replication"] = [list(map(str, r)) for r in conn.execute(
                        "SELECT application_name, state, sync_state, sent_lsn, flush_lsn "
                        "FROM pg_stat_replication ORDER BY 1").fetchall()]
                    # Sessions of the vault database by what they wait on.
                    out["vault_sessions"] = [list(map(str, r)) for r in conn.execute(
                        "SELECT state, wait_event_type, wait_event, left(query, 48), count(*), "
                        "max(now() - xact_start) FROM pg_stat_activity WHERE datname = %s "
                        "GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC", (VAULT_DB,)).fetchall()]
                    out["connections"] = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity").fetchone()[0]
            except psycopg.Error as exc:
                out["leader_sql"] = f"error: {type(exc).__name__}: {str(exc)[:300]}"
        logs = {}
        for v in self.state.get("vault", []):
            path = self.root / f"{v['name']}.log"
            try:
                logs[v["name"]] = [t[:300] for t in
                                   path.read_text(errors="replace").splitlines()[-12:]]
            except OSError as exc:
                logs[v["name"]] = [f"error: {exc}"]
        out["vault_logs"] = logs
        spy = os.environ.get("STRONGROOM_PYSPY")  # optional: where each vault thread waits
        if spy:
            stacks = {}
            for v in self.state.get("vault", []):
                pid = self.state["pids"].get(v["name"])
                try:
                    dump = subprocess.run([spy, "dump", "--pid", str(pid)], check=False, capture_output=True,
                                          text=True, timeout=30).stdout
                except (OSError, subprocess.TimeoutExpired) as exc:
                    dump = f"error: {exc}"
                stacks[v["name"]] = dump[-20000:]
            out["vault_stacks"] = stacks
        return out

    def status(self) -> dict[str, Any]:
        """Every process (alive or not), the Patroni members, the etcd health."""
        procs = {name: {"pid": pid, "alive": _pid_alive(pid)}
                 for name, pid in self.state.get("pids", {}).items()}
        return {"dir": str(self.root), "processes": procs,
                "etcd_healthy": self.etcd_healthy() if self.state else 0,
                "members": [{k: m.get(k) for k in ("name", "role", "state", "timeline", "lag")}
                            for m in (self.members() if self.state else [])],
                "vault_urls": self.vault_urls if self.state else [],
                "vault_dsn": self.vault_dsn if self.state else None}


@contextlib.contextmanager
def running_cluster(*, vaults: int = 3) -> Iterator[VaultCluster]:
    """A fresh cluster in a new directory for the duration of the block; destroyed after
    (kept, stopped, when ``STRONGROOM_KEEP_CLUSTER`` is set, to read its logs).

    The directory is made under the system temp folder, not a test's ``tmp_path``: as
    root, PostgreSQL runs as ``postgres``, which must be able to reach its data.
    """
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="strongroom-vault-cluster-"))
    cluster = VaultCluster(root)
    try:
        cluster.up(vaults=vaults)
        yield cluster
    finally:
        if os.environ.get("STRONGROOM_KEEP_CLUSTER"):
            cluster.down()
        else:
            cluster.destroy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scripts/vault-cluster.sh",
        description="The vault's replicated database rehearsed on this machine: 3 etcd members, "
                    "3 Patroni/PostgreSQL 15 nodes (strict synchronous replication), vault nodes "
                    "on loopback.  See docs/vault-operations.md.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the cluster (created on first use) and print its status")
    up.add_argument("--vaults", type=int, default=3, help="vault nodes (first use only)")
    sub.add_parser("status", help="processes, Patroni members and roles, etcd health (JSON)")
    sub.add_parser("down", help="stop every process; the data stays for the next up")
    destroy = sub.add_parser("destroy", help="stop every process and delete the directory")
    destroy.add_argument("--yes", action="store_true", help="really delete the data")
    rnd = sub.add_parser("render", help="print the etcd or Patroni file of one host of a real "
                                        "three-host deployment (standard ports)")
    rnd.add_argument("what", choices=["etcd", "patroni"])
    rnd.add_argument("--name", required=True, help="this member's name (etcd1, pg1, ...)")
    rnd.add_argument("--host", required=True, help="this host's address, as the others reach it")
    rnd.add_argument("--members", help="etcd: every member as NAME=HOST,... (three)")
    rnd.add_argument("--etcd", help="patroni: the etcd hosts, HOST,HOST,HOST")
    rnd.add_argument("--network", help="patroni: the CIDR the nodes and vault hosts are in")
    rnd.add_argument("--secrets", type=Path, help="patroni: folder with the files superuser "
                                                  "and replication (one password each)")
    rnd.add_argument("--data-dir", type=Path, help="data folder (default per Debian layout)")
    for p in sub.choices.values():
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                       help=f"cluster directory (default {DEFAULT_DIR}, or $STRONGROOM_CLUSTER_DIR)")
    a = ap.parse_args(argv)
    if a.cmd == "render":
        return _render_one(a)
    missing = available()
    if missing and a.cmd == "up":
        print(f"vault-cluster: not installed: {missing} (apt-get install {missing.replace(',', '')})",
              file=sys.stderr)
        return 3
    cluster = VaultCluster(a.dir)
    if a.cmd in ("status", "down", "destroy") and not cluster.state:
        print(f"vault-cluster: no cluster in {a.dir}", file=sys.stderr)
        return 1
    try:
        if a.cmd == "up":
            cluster.up(vaults=a.vaults)
        elif a.cmd == "down":
            cluster.down()
        elif a.cmd == "destroy":
            if not a.yes:
                print(f"vault-cluster: would stop everything and delete {a.dir}; "
                      "repeat with --yes to do it", file=sys.stderr)
                return 2
            cluster.destroy()
            return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"vault-cluster: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(cluster.status(), indent=2))
    return 0


def _render_one(a: argparse.Namespace) -> int:
    """``render``: one host's file of a real deployment, on stdout (passwords from files)."""
    if a.what == "etcd":
        if not a.members:
            print("vault-cluster: render etcd needs --members NAME=HOST,...", file=sys.stderr)
            return 2
        initial = ",".join(f"{n}=http://{h}:2380" for n, h in
                           (m.split("=", 1) for m in a.members.split(",")))
        print(render("etcd.yml.in", {
            "name": a.name, "data_dir": a.data_dir or f"/var/lib/etcd/{SCOPE}", "scheme": "http",
            "listen_host": a.host, "host": a.host, "client_port": 2379, "peer_port": 2380,
            "initial_cluster": initial, "scope": SCOPE}), end="")
        return 0
    if not (a.etcd and a.network and a.secrets):
        print("vault-cluster: render patroni needs --etcd, --network and --secrets", file=sys.stderr)
        return 2
    data = a.data_dir or Path(f"/var/lib/postgresql/15/{SCOPE}")
    try:
        pw = {k: (a.secrets / k).read_text(encoding="utf-8").strip()
              for k in ("superuser", "replication")}
    except OSError as exc:
        print(f"vault-cluster: cannot read a password file: {exc}", file=sys.stderr)
        return 2
    print(render("patroni.yml.in", {
        "scope": SCOPE, "name": a.name, "listen_host": a.host, "host": a.host, "api_port": 8008,
        "pg_port": 5432, "etcd_hosts": ",".join(f"{h}:2379" for h in a.etcd.split(",")),
        "scheme": "http", "data_dir": data, "state_dir": data.parent,
        "socket_dir": "/var/run/postgresql", "superuser_password": pw["superuser"],
        "replication_password": pw["replication"], "network": a.network}), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
