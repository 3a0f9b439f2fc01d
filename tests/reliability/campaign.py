"""Shared helpers of the reliability campaigns: scale, figures, file trees.

``STRONGROOM_CAMPAIGN_SCALE`` chooses the size of every campaign: ``ci`` (the
default, what ``make test`` runs) or ``full`` (the documented full-size run).
``STRONGROOM_CAMPAIGN_OUT``, when set, names a file to which each campaign
appends one JSON line of figures; ``docs/reliability.md`` quotes those lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

SCALE = os.environ.get("STRONGROOM_CAMPAIGN_SCALE", "ci").strip().lower() or "ci"
if SCALE not in {"ci", "full"}:
    raise RuntimeError(f"STRONGROOM_CAMPAIGN_SCALE must be 'ci' or 'full', not {SCALE!r}")


def sized(ci: int, full: int) -> int:
    """``ci`` at CI scale, ``full`` at full scale."""
    return full if SCALE == "full" else ci


def record(campaign: str, figures: dict[str, Any]) -> None:
    """Append one campaign's figures to ``$STRONGROOM_CAMPAIGN_OUT`` (if set)."""
    out = os.environ.get("STRONGROOM_CAMPAIGN_OUT")
    if not out:
        return
    line = json.dumps({"campaign": campaign, "scale": SCALE, **figures}, sort_keys=True)
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    """Relative path -> (sha256 of the content or link target, permission bits) of a tree."""
    out: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(
                os.path.join(dirpath, d))]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link:" + os.readlink(path), 0)
            else:
                h = hashlib.sha256()
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
                out[rel] = (h.hexdigest(), stat.S_IMODE(st.st_mode))
    return out


CLI = [sys.executable, "-m", "strongroom.cli.main"]


def cli_env(workdir: Path, repo: str, key_file: Path, **extra: str) -> dict[str, str]:
    """Environment for a ``strongroom`` child: its own config dir, no keyring, a key file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(STRONGROOM_CONFIG_DIR=str(workdir / "cfg"), STRONGROOM_KEYRING="no",
               STRONGROOM_REPO=repo, STRONGROOM_KEY_FILE=str(key_file), **extra)
    return env


def cli(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``strongroom ARGS`` to completion (stdin closed)."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def cli_json(args: list[str], env: dict[str, str], *, ok: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Run ``strongroom --json ARGS``; the JSON document, asserting the exit status."""
    done = cli(["--json", *args], env)
    assert done.returncode in ok, (args, done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def write_random_tree(root: Path, total: int, files: int, seed: int) -> None:
    """``files`` incompressible files totalling about ``total`` bytes under ``root``."""
    rnd = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    each = max(1, total // files)
    for i in range(files):
        with open(root / f"f{i:05d}.bin", "wb") as fh:
            left = each
            while left:
                n = min(left, 1 << 20)
                fh.write(rnd.randbytes(n))
                left -= n
