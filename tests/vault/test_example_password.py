"""The SDK's password example runs as documented, against a real vault process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import VaultProcess

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "password_mode.py"


@pytest.mark.vault
def test_password_example_runs(tmp_path: Path) -> None:
    with VaultProcess(tmp_path) as vp:
        token = vp.create_account("alice")
        env = {**os.environ, "STRONGROOM_VAULT": vp.url, "STRONGROOM_VAULT_TOKEN": token}
        done = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path / "work")],
                              check=False, env=env,
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "attempts left: 10" in out and "wrong password, 9 attempts left" in out
    assert "restored byte-identical: True" in out
    assert "Traceback" not in done.stderr
