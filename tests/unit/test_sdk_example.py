"""examples/chat_app_backup.py runs: create with a 64-digit key, backup with progress
and a stop, check, restore on a "new device" with strip, byte-identical."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chat_app_backup.py"


def test_the_chat_app_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env["STRONGROOM_STATE_DIR"] = str(tmp_path / "state")
    done = subprocess.run([sys.executable, str(EXAMPLE), "--quick"], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "write down the key:" in out and len(out.split(":\n  ")[1].split()[:16]) == 16
    assert "backup stopped by the user" in out or "before the stop took effect" in out
    assert "check: ok" in out and "(byte-identical)" in out
    assert "[backup] 100.0%" in done.stderr and "[restore] 100.0%" in done.stderr
    assert "Traceback" not in done.stderr
