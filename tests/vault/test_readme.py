"""The README's password commands, run as written against a real vault process.

Only what a script cannot do at a terminal is changed, and each change is
listed: placeholders (``...``) get values, the paths and the port point into
the test's folder and a free port, the account's token is captured from
``vault account create`` (a person copies it from the screen), passwords come
from the documented environment variables instead of the prompt (the new one
after ``change-password``), the "new
device" gets its own config folder, and ``disable`` gets ``--yes`` (there is
no terminal to confirm on).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from . import pg

ROOT = Path(__file__).resolve().parents[2]


def _password_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("With a password, through the Backup Key Vault:")
    block = text[start:].split("```sh\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def _script(lines: list[str], tmp: Path, port: int) -> str:
    out = ["set -euo pipefail", f"cd {tmp}"]
    for line in lines:
        code = line.split("  #", 1)[0].rstrip()
        if line.startswith("# a new device"):
            out.append(f"export STRONGROOM_CONFIG_DIR={tmp}/device2")
        if not code or code.startswith("#"):
            continue
        code = code.replace("/mnt/backup/phone", f"{tmp}/phone").replace("~/", f"{tmp}/")
        code = code.replace("8443", str(port))
        if code.startswith("export STRONGROOM_VAULT_PASSPHRASE="):
            code = "export STRONGROOM_VAULT_PASSPHRASE='readme passphrase'"
        elif code.startswith("export STRONGROOM_VAULT_TOKEN="):
            code = 'export STRONGROOM_VAULT_TOKEN="$TOKEN"'
        elif " vault account create " in code:
            code = f"TOKEN=$({code})"
        elif code.endswith("&"):  # the vault in the background: wait until it listens
            code = (f"{code}\nVAULT=$!\ntrap 'kill $VAULT' EXIT\n"
                    f"for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null "
                    "&& break; sleep 0.1; done")
        elif " disable --password" in code:
            code += " --yes"
        elif code.endswith(" change-password"):  # from now on a person types the new one
            code += '\nexport STRONGROOM_PASSWORD="$STRONGROOM_NEW_PASSWORD"'
        out.append(code)
    return "\n".join(out) + "\n"


@pytest.mark.vault
def test_readme_password_commands_run_as_written(tmp_path: Path) -> None:
    lines = _password_block()
    assert any("init --password" in x for x in lines) and any("restore latest" in x for x in lines)
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "msgstore.db").write_bytes(b"chat history\n" * 5000)
    port = pg.free_port()
    script = _script(lines, tmp_path, port)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "STRONGROOM_CONFIG_DIR": str(tmp_path / "device1"), "STRONGROOM_KEYRING": "no",
           "STRONGROOM_PASSWORD": "correct horse", "STRONGROOM_NEW_PASSWORD": "battery staple"}
    env.pop("STRONGROOM_REPO", None)
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          check=False,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{script}\n--- stderr:\n{done.stderr[-4000:]}"
    restored = list((tmp_path / "restored").rglob("msgstore.db"))
    assert len(restored) == 1
    assert restored[0].read_bytes() == (tmp_path / "chat" / "msgstore.db").read_bytes()
    assert re.search(r"only the 64-digit key", done.stderr)
    assert not (tmp_path / "phone" / "ext" / "vault.json").exists()
