"""The backup tools under comparison, each driven through its own command line.

Every tool gets the same operations with its default settings, except that each
uses real encryption: restic always encrypts (password from ``RESTIC_PASSWORD``);
borg with ``--encryption repokey-blake2`` and its default lz4 compression;
Strongroom with its defaults and a key file.  Caches and per-user state go under
the run's work directory so repetitions do not share them.
"""

from __future__ import annotations

import shutil
import sys
from abc import ABC, abstractmethod
from pathlib import Path

from bench import measure
from strongroom.errors import UsageError

PASSWORD = "bench-password-not-secret"


class Tool(ABC):
    """One backup program: how to init, back up, restore and check a repository."""

    name: str

    def __init__(self, state: Path) -> None:
        self.state = state  # the tool's cache/config directory for this repetition

    @abstractmethod
    def env(self) -> dict[str, str]:
        """Environment for every command of this tool."""

    @abstractmethod
    def init(self, repo: Path) -> list[str]:
        """Command creating an empty repository at *repo*."""

    @abstractmethod
    def backup(self, repo: Path, source: Path, label: str) -> list[str]:
        """Command backing up *source* as a new snapshot named *label* where names exist."""

    @abstractmethod
    def restore(self, repo: Path, label: str, target: Path) -> tuple[list[str], Path | None]:
        """Command restoring snapshot *label* into *target*, and the cwd to run it in."""

    @abstractmethod
    def check(self, repo: Path) -> list[str]:
        """Command checking the repository, reading all data."""

    @abstractmethod
    def version(self) -> list[str]:
        """Command printing the tool's version."""

    def available(self) -> bool:
        """Whether the tool's program is installed."""
        return shutil.which(self.program) is not None

    program: str


class Restic(Tool):
    """restic with its defaults (0.14: repository format 2, zstd compression 'auto')."""

    name = program = "restic"

    def env(self) -> dict[str, str]:
        return {"RESTIC_PASSWORD": PASSWORD, "RESTIC_CACHE_DIR": str(self.state / "cache")}

    def init(self, repo: Path) -> list[str]:
        return ["restic", "--repo", str(repo), "init"]

    def backup(self, repo: Path, source: Path, label: str) -> list[str]:
        return ["restic", "--repo", str(repo), "backup", "--tag", label, str(source)]

    def restore(self, repo: Path, label: str, target: Path) -> tuple[list[str], Path | None]:
        return ["restic", "--repo", str(repo), "restore", "latest", "--target", str(target)], None

    def check(self, repo: Path) -> list[str]:
        return ["restic", "--repo", str(repo), "check", "--read-data"]

    def version(self) -> list[str]:
        return ["restic", "version"]


class Borg(Tool):
    """borg 1.2 with repokey-blake2 encryption and its default lz4 compression."""

    name = program = "borg"

    def env(self) -> dict[str, str]:
        return {
            "BORG_PASSPHRASE": PASSWORD,
            "BORG_BASE_DIR": str(self.state),
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        }

    def init(self, repo: Path) -> list[str]:
        return ["borg", "init", "--encryption", "repokey-blake2", str(repo)]

    def backup(self, repo: Path, source: Path, label: str) -> list[str]:
        return ["borg", "create", f"{repo}::{label}", str(source)]

    def restore(self, repo: Path, label: str, target: Path) -> tuple[list[str], Path | None]:
        # borg extracts into the current directory.
        return ["borg", "extract", f"{repo}::{label}"], target

    def check(self, repo: Path) -> list[str]:
        return ["borg", "check", "--verify-data", str(repo)]

    def version(self) -> list[str]:
        return ["borg", "--version"]


class Strongroom(Tool):
    """Strongroom through its console script, with its defaults and a key file."""

    name = program = "strongroom"

    @staticmethod
    def command() -> list[str]:
        """The console script of this Python (a venv's bin is often not on PATH)."""
        beside = Path(sys.executable).with_name("strongroom")
        if beside.exists():
            return [str(beside)]
        found = shutil.which("strongroom")
        return [found] if found else [sys.executable, "-m", "strongroom.cli.main"]

    def available(self) -> bool:
        return True  # importable here (bench imports strongroom), so command() always works

    def env(self) -> dict[str, str]:
        return {"XDG_CACHE_HOME": str(self.state / "cache"), "XDG_CONFIG_HOME": str(self.state / "config"),
                "XDG_DATA_HOME": str(self.state / "data")}

    def _base(self, repo: Path) -> list[str]:
        return [*self.command(), "--repo", str(repo), "--key-file", str(self.state / "key")]

    def init(self, repo: Path) -> list[str]:
        return [*self._base(repo), "init"]

    def backup(self, repo: Path, source: Path, label: str) -> list[str]:
        return [*self._base(repo), "backup", str(source)]

    def restore(self, repo: Path, label: str, target: Path) -> tuple[list[str], Path | None]:
        return [*self._base(repo), "restore", "latest", "--target", str(target)], None

    def check(self, repo: Path) -> list[str]:
        return [*self._base(repo), "check", "--read-data"]

    def version(self) -> list[str]:
        return [*self.command(), "--version"]


class StrongroomNoChats(Strongroom):
    """Strongroom with ``backup --no-chats``: the cost of the chat catalogue, side by side."""

    name = "strongroom-nochats"

    def backup(self, repo: Path, source: Path, label: str) -> list[str]:
        return [*super().backup(repo, source, label), "--no-chats"]


TOOLS: dict[str, type[Tool]] = {"strongroom": Strongroom, "restic": Restic, "borg": Borg,
                                "strongroom-nochats": StrongroomNoChats}


def select(names: str) -> list[str]:
    """Validate a comma-separated tool list (UsageError for unknown or missing tools)."""
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in TOOLS]
    if unknown or not chosen:
        raise UsageError(f"unknown tool(s): {', '.join(unknown) or '(none given)'}",
                         hint=f"choose from {','.join(TOOLS)}")
    missing = [n for n in chosen if not TOOLS[n](Path(".")).available()]
    if missing:
        raise UsageError(f"not installed: {', '.join(missing)}", hint="run scripts/setup-system.sh")
    return chosen


def version_of(tool: Tool) -> str:
    """The tool's version line."""
    try:
        return measure.run(tool.version(), env=tool.env()).output.strip().splitlines()[0]
    except (measure.ToolFailed, IndexError):
        return "unknown"
