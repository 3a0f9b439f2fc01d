"""A command imports what it needs and no more (issue 13: ``ls``, ``find`` and ``chats``
answer in under a second; every command used to pay for importing all of them).

Checked in a fresh interpreter, which modules a local ``ls``/``find``/``chats`` loaded:
not the vault's HTTP client, not rich's progress bars, not the other commands.  How fast
that is, is measured in ``bench/browse_bench.py``, never here.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.cli.main import COMMANDS, cli

#: Modules a local listing has no use for (the vault client and server, OPAQUE, S3,
#: progress bars, the parsers of chat exports, tar streams, the other commands).
NOT_FOR_LISTING = ("httpx", "rich", "boto3", "botocore", "tarfile", "fastapi", "pydantic",
                   "starlette", "uvicorn", "nacl", "pysodium", "strongroom.client.vault_client",
                   "strongroom.opaque", "strongroom.vault.server", "strongroom.vault.app",
                   "strongroom.repo.dump", "strongroom.repo.restore", "strongroom.repo.backup",
                   "strongroom.chats.whatsapp", "strongroom.chats.telegram",
                   "strongroom.chats.msgstore", "strongroom.cli.cmd_backup",
                   "strongroom.cli.cmd_vault", "strongroom.cli.cmd_restore")

_PROBE = """
import json, sys
from strongroom.cli.main import cli
code = cli.main(args=sys.argv[1:], standalone_mode=False)
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(args: list[str], env: dict[str, str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                          text=True, env=env, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return set(result["modules"])


@pytest.fixture
def repo(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "WhatsApp Chat with Ana.txt").write_text(
        "12/31/23, 9:15 PM - Ana: hello\n12/31/23, 9:16 PM - Bo: hi\n", encoding="utf-8")
    (src / "photo.jpg").write_bytes(os.urandom(1000))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(STRONGROOM_CONFIG_DIR=str(tmp_path / "config"), STRONGROOM_KEYRING="no")
    base = ["--repo", str(tmp_path / "repo"), "--key-file", str(tmp_path / "k.key")]
    for args in (["init", "--no-store"], ["backup", str(src)]):
        done = subprocess.run([sys.executable, "-m", "strongroom.cli.main", *base, *args],
                              capture_output=True, text=True, env=env, timeout=120,
                              stdin=subprocess.DEVNULL, check=False)
        assert done.returncode == 0, done.stderr
    return base, env


@pytest.mark.parametrize("words", [["ls", "latest"], ["find", "*.jpg"], ["chats"],
                                   ["--json", "chats"]], ids=" ".join)
def test_a_local_listing_imports_only_what_it_needs(repo: tuple[list[str], dict[str, str]],
                                                    words: list[str]) -> None:
    base, env = repo
    loaded = _modules_after([*base, *words], env)
    assert "strongroom.repo.engine" in loaded  # it did open the repository
    assert sorted(m for m in loaded if m.split(".")[0] in NOT_FOR_LISTING
                  or m in NOT_FOR_LISTING) == []


def test_version_imports_no_command() -> None:
    loaded = _modules_after(["--version"], dict(os.environ))
    assert sorted(m for m in loaded if m.startswith("strongroom.cli.cmd_")) == []
    assert "strongroom.api" not in loaded


@pytest.mark.parametrize(("name", "module"), sorted(COMMANDS.items()))
def test_every_command_is_in_the_module_the_table_names(name: str, module: str) -> None:
    command = importlib.import_module(f"strongroom.cli.{module}").command
    assert command.name == name
    assert cli.commands[name] is command
    assert cli.get_command(None, name) is command  # type: ignore[arg-type]


def test_an_unknown_command_is_a_usage_error_not_an_import(tmp_path: Path) -> None:
    assert cli.get_command(None, "nonesuch") is None  # type: ignore[arg-type]
    assert "nonesuch" not in cli.commands


def test_a_local_backup_loads_no_second_openssl(repo: tuple[list[str], dict[str, str]],
                                                tmp_path: Path) -> None:
    # hashlib (through hmac or secrets) loads the system OpenSSL beside pyca's own: 3.5 MB
    # of a backup's resident set (issue 12).  A message store and media need no CDC either.
    base, env = repo
    src = tmp_path / "second"
    src.mkdir()
    (src / "photo.jpg").write_bytes(os.urandom(3000))
    loaded = _modules_after([*base, "backup", str(src)], env)
    assert "strongroom.repo.backup" in loaded and "strongroom.client.rollback" in loaded
    assert sorted(m for m in loaded if m in ("_hashlib", "hashlib", "hmac", "secrets",
                                             "pyfastcdc.cy")) == []


def test_the_digests_are_the_standard_library_s() -> None:
    import hashlib
    import hmac

    from strongroom.crypto.hashing import equal, hmac_sha256, sha256

    for data in (b"", b"abc", os.urandom(1000)):
        assert sha256(data) == hashlib.sha256(data).digest()
        assert hmac_sha256(b"k" * 32, data) == hmac.new(b"k" * 32, data, hashlib.sha256).digest()
    assert equal(b"ab", b"ab") and not equal(b"ab", b"ac") and not equal(b"ab", b"abc")
    assert equal("f00d", "f00d") and not equal("f00d", "f00e")
