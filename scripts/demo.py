#!/usr/bin/env python3
"""The Strongroom journey in about a minute: back up a chat store, lose the device, restore.

Runs the real ``strongroom`` command line as subprocesses, in a temporary
directory, and prints every command and its output:

1. make a small sample chat store (SQLite message database + media files);
2. ``init --key-file`` (the key goes to a 0600 file, as a user writes it down);
3. first ``backup``;
4. new messages arrive; second ``backup`` adds only what changed;
5. the device is lost: a fresh device has no key store;
6. ``restore latest`` with the 64-digit key, and a byte-for-byte comparison;
7. what a wrong key (one mistyped digit) does: exit 11, nothing downloaded.

With the Backup Key Vault (password option), on embedded defaults: an
embedded vault (SQLite record store + software keystore) runs as a
subprocess on a free port; ``enable --password`` deposits the wrapped key;
the new device restores with the password alone; a wrong password shows the
attempts left.

Each step is a method listed in ``Demo.STEPS``; later journeys (the password
vault) add their own steps there.  Exits non-zero if any check fails.

    python3 scripts/demo.py            # ~5,000 messages, a dozen media files
    python3 scripts/demo.py --quick    # smaller, for the test suite
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ["hello", "see", "you", "tomorrow", "ok", "thanks", "where", "are", "you", "lunch", "at", "noon", "call", "me", "later", "photo", "from", "the", "trip", "happy", "birthday", "running", "late", "meeting", "moved", "to", "friday"]


class DemoFailed(Exception):
    """A demo check did not hold."""


def make_chat_store(root: Path, *, messages: int, chats: int, media: int, seed: int) -> None:
    """A WhatsApp-like store: ``msgstore.db`` with indexes, plus ``Media/`` files."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    db = sqlite3.connect(root / "msgstore.db")
    db.executescript("""
        CREATE TABLE chat (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE message (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL,
                              sent_at INTEGER NOT NULL, from_me INTEGER NOT NULL,
                              read INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL);
        CREATE INDEX message_chat_time ON message (chat_id, sent_at);
        CREATE INDEX message_unread ON message (read) WHERE read = 0;
    """)
    db.executemany("INSERT INTO chat (id, name) VALUES (?, ?)",
                   [(i, f"chat {i}") for i in range(1, chats + 1)])
    add_messages(db, messages, chats=chats, rng=rng, start=1_700_000_000)
    db.commit()
    db.close()
    media_dir = root / "Media"
    media_dir.mkdir()
    kinds = [("IMG-{:04d}.jpg", 50_000, 900_000), ("PTT-{:04d}.opus", 5_000, 200_000),
             ("DOC-{:04d}.pdf", 10_000, 60_000)]
    for i in range(media):
        pattern, low, high = kinds[i % len(kinds)]
        (media_dir / pattern.format(i)).write_bytes(rng.randbytes(rng.randint(low, high)))


def add_messages(db: sqlite3.Connection, count: int, *, chats: int, rng: random.Random,
                 start: int) -> None:
    """Insert ``count`` messages spread over the chats."""
    rows = []
    for i in range(count):
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14)))
        rows.append((rng.randint(1, chats), start + 37 * i, rng.randint(0, 1), body))
    db.executemany("INSERT INTO message (chat_id, sent_at, from_me, body) VALUES (?, ?, ?, ?)",
                   rows)


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


class Demo:
    """The journey, step by step, in one temporary directory."""

    STEPS = ("make_sample", "start_vault", "init", "enable_password", "first_backup",
             "new_messages", "lose_device", "restore_with_password", "restore", "wrong_key",
             "wrong_password")
    PASSWORD = "correct horse battery staple"

    def __init__(self, work: Path, *, quick: bool, realms: int = 0) -> None:
        self.work = work
        self.quick = quick
        self.realms = realms  # 0: one vault; n: a threshold realm set of n vaults
        self.chats = work / "phone" / "WhatsApp"
        self.repo = work / "backup-repository"
        self.key_file = work / "my-strongroom-key.txt"
        self.device = work / "phone" / "strongroom-config"
        self.restored = work / "new-phone" / "restored"
        self.seed = 2021
        self.vault_env: dict[str, str] = {}
        self.vault_proc: subprocess.Popen[bytes] | None = None
        self.realm_procs: list[subprocess.Popen[bytes]] = []

    # -- running the CLI ------------------------------------------------------------

    def strongroom(self, *args: str, expect: int = 0, env: dict[str, str] | None = None,
                   show: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``strongroom ARGS`` as a user would, print it, check the exit code."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
        full_env.update({"STRONGROOM_REPO": str(self.repo),
                         "STRONGROOM_CONFIG_DIR": str(self.device),
                         # Never touch the real user's keyring from a demo.
                         "STRONGROOM_KEYRING": "no"})
        full_env.update(self.vault_env)
        full_env.update(env or {})
        if show:
            print(f"  $ strongroom {shlex.join(args)}")
        done = subprocess.run([sys.executable, "-m", "strongroom.cli.main", *args],
                              capture_output=True, text=True, env=full_env, check=False)
        if show:
            for line in (done.stdout + done.stderr).splitlines():
                print(f"    {line}")
            print(f"    (exit code {done.returncode})")
        if done.returncode != expect:
            raise DemoFailed(f"'strongroom {shlex.join(args)}' exited {done.returncode}, "
                             f"expected {expect}:\n{done.stderr}")
        return done

    # -- the steps ---------------------------------------------------------------

    def make_sample(self) -> None:
        """A sample chat store: a SQLite message database and media files."""
        messages, chats, media = (600, 4, 4) if self.quick else (50_000, 40, 30)
        make_chat_store(self.chats, messages=messages, chats=chats, media=media, seed=self.seed)
        size = sum(p.stat().st_size for p in self.chats.rglob("*") if p.is_file())
        print(f"  {messages} messages in {chats} chats, {media} media files, "
              f"{size / 1e6:.1f} MB in {self.chats}")

    def init(self) -> None:
        """Create the repository; the 64-digit key goes to a file (mode 0600)."""
        self.strongroom("init", "--key-file", str(self.key_file))
        mode = self.key_file.stat().st_mode & 0o777
        if mode != 0o600:
            raise DemoFailed(f"key file mode is {mode:o}, not 600")
        print(f"  the key file is mode {mode:o}; this device also keeps the key, "
              "so backups need no typing")

    def start_vault(self) -> None:
        """Start an embedded Backup Key Vault (SQLite + software keystore) on a free port."""
        import socket

        if self.realms:
            self._start_realms()
            return

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        vault_dir = self.work / "vault"
        vault_dir.mkdir()
        db, secrets = str(vault_dir / "vault.db"), str(vault_dir / "vault-secrets.json")
        env = {**os.environ, "STRONGROOM_VAULT_PASSPHRASE": "demo vault passphrase"}
        print(f"  $ strongroom vault serve --db {db} --port {port}   (in the background)")
        self.vault_proc = subprocess.Popen(
            [sys.executable, "-m", "strongroom.cli.main", "vault", "serve", "--db", db,
             "--secrets", secrets, "--port", str(port), "--kdf-memory-kib", "8192"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or self.vault_proc.poll() is not None:
                raise DemoFailed("the vault did not start")
            time.sleep(0.1)
        token = self.strongroom("vault", "account", "create", "demo-user", "--db", db,
                                show=False, env={"STRONGROOM_VAULT_PASSPHRASE": "x"}).stdout.strip()
        print(f"  $ strongroom vault account create demo-user   -> token {token[:9]}… (kept by the app)")
        self.vault_env = {"STRONGROOM_VAULT": f"http://127.0.0.1:{port}",
                          "STRONGROOM_VAULT_TOKEN": token}

    def _start_realms(self) -> None:
        """A 2-of-3 (or k-of-n) realm set: n vaults, each its own database and secrets."""
        import socket

        urls, token_files = [], []
        env = {**os.environ, "STRONGROOM_VAULT_PASSPHRASE": "demo vault passphrase"}
        for i in range(1, self.realms + 1):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            d = self.work / f"realm{i}"
            d.mkdir()
            db, secrets = str(d / "vault.db"), str(d / "vault-secrets.json")
            print(f"  $ strongroom vault serve --db {db} --port {port}   (realm {i}, in the "
                  "background)")
            self.realm_procs.append(subprocess.Popen(
                [sys.executable, "-m", "strongroom.cli.main", "vault", "serve", "--db", db,
                 "--secrets", secrets, "--port", str(port), "--kdf-memory-kib", "8192"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 60
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline or self.realm_procs[-1].poll() is not None:
                    raise DemoFailed(f"realm {i} did not start")
                time.sleep(0.1)
            token = self.strongroom("vault", "account", "create", "demo-user", "--db", db,
                                    show=False, env={"STRONGROOM_VAULT_PASSPHRASE": "x"}
                                    ).stdout.strip()
            path = d / "token"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, token.encode())
            os.close(fd)
            urls.append(f"http://127.0.0.1:{port}")
            token_files.append(str(path))
        print(f"  the app configures {self.realms} realms (--vault given {self.realms} times, "
              f"threshold {self.realms // 2 + 1}) and one token file per realm")
        # --vault is repeatable: the variable splits at spaces; token files at os.pathsep.
        self.vault_env = {"STRONGROOM_VAULT": " ".join(urls),
                          "STRONGROOM_VAULT_TOKEN_FILE": os.pathsep.join(token_files)}

    def stop_vault(self) -> None:
        """Stop the embedded vault."""
        for proc in self.realm_procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
        if self.vault_proc is not None and self.vault_proc.poll() is None:
            self.vault_proc.terminate()
            self.vault_proc.wait(timeout=10)

    def enable_password(self) -> None:
        """Protect the key with a password: OPAQUE registration, wrapped key deposited."""
        self.strongroom("enable", "--password", env={"STRONGROOM_PASSWORD": self.PASSWORD})
        self.strongroom("vault", "status")

    def restore_with_password(self) -> None:
        """On the new phone: only the password (and the account's vault token)."""
        target = self.work / "new-phone" / "restored-with-password"
        print("  the user types the password (here: STRONGROOM_PASSWORD)")
        self.strongroom("restore", "latest", "--target", str(target),
                        env={"STRONGROOM_PASSWORD": self.PASSWORD})
        got = tree_digest(target / self.chats.relative_to(self.chats.anchor))
        if got != self.expected:
            raise DemoFailed(f"restored files differ: {sorted(set(got) ^ set(self.expected))}")
        print(f"  verified: all {len(got)} files restored with the password are byte-identical")

    def wrong_password(self) -> None:
        """A wrong password: exit 21 and the attempts left; 10 wrong ones destroy the key."""
        self.strongroom("snapshots", expect=21, env={"STRONGROOM_PASSWORD": "correct horse"})
        self.strongroom("vault", "status")

    def first_backup(self) -> None:
        """The first backup stores everything (encrypted)."""
        self.strongroom("backup", str(self.chats))

    def new_messages(self) -> None:
        """A day passes: new messages, some read; the second backup adds only the changes."""
        db = sqlite3.connect(self.chats / "msgstore.db")
        rng = random.Random(self.seed + 1)
        count = db.execute("SELECT COUNT(*) FROM message").fetchone()[0]
        chats = db.execute("SELECT COUNT(*) FROM chat").fetchone()[0]
        add_messages(db, max(count // 50, 10), chats=chats, rng=rng, start=1_800_000_000)
        # People read recent messages: the read flags change near the end of the table.
        db.execute("UPDATE message SET read = 1 WHERE id > ? AND id % 3 = 0", (count - 2000,))
        db.commit()
        db.close()
        print(f"  added {max(count // 50, 10)} messages, marked some as read")
        self.strongroom("backup", str(self.chats))
        self.strongroom("snapshots")
        self.expected = tree_digest(self.chats)

    def lose_device(self) -> None:
        """The phone is lost: the new one has no key store, so the key must be typed."""
        self.device = self.work / "new-phone" / "strongroom-config"
        self.strongroom("snapshots", expect=2)

    def restore(self) -> None:
        """Type the 64-digit key from paper (any spacing/case) and restore everything."""
        written_down = " ".join(line for line in self.key_file.read_text().splitlines()
                                if not line.startswith("#"))
        typed = written_down.upper().replace(" ", "-")
        print("  the user types the 64 digits from paper, in capitals with dashes "
              "(STRONGROOM_KEY)")
        self.strongroom("restore", "latest", "--target", str(self.restored),
                        env={"STRONGROOM_KEY": typed})
        restored_root = self.restored / self.chats.relative_to(self.chats.anchor)
        got = tree_digest(restored_root)
        if got != self.expected:
            raise DemoFailed(f"restored files differ: {sorted(set(got) ^ set(self.expected))}")
        print(f"  verified: all {len(got)} restored files are byte-identical (SHA-256)")

    def wrong_key(self) -> None:
        """A mistyped key: 'this key does not open this backup', before any download."""
        digits = self.key_file.read_text().splitlines()[-1]
        wrong = ("1" if digits[0] != "1" else "2") + digits[1:]
        self.strongroom("snapshots", expect=11, env={"STRONGROOM_KEY": wrong})
        self.strongroom("snapshots", expect=11, env={"STRONGROOM_KEY": digits[:-1]})

    def run(self) -> None:
        """Every step in order, with a heading each."""
        try:
            for number, name in enumerate(self.STEPS, 1):
                step = getattr(self, name)
                print(f"\n[{number}/{len(self.STEPS)}] {step.__doc__.splitlines()[0]}")
                step()
        finally:
            self.stop_vault()


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every check held."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data (for tests)")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it afterwards")
    parser.add_argument("--realms", type=int, default=0, metavar="N",
                        help="protect the password with a threshold realm set of N vaults "
                             "(e.g. 3: any 2 recover the key)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="strongroom-demo-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            Demo(work, quick=args.quick, realms=args.realms).run()
        except DemoFailed as exc:
            print(f"\ndemo FAILED: {exc}", file=sys.stderr)
            return 1
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s: every check held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
