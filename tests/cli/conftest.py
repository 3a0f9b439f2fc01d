"""Fixtures for the CLI scenarios: an isolated environment and a runner.

Every test gets its own config dir (the device key store) and the OS keyring
switched off, so no test reads or writes the real user's keys, and no
STRONGROOM_* variable from the calling shell leaks in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_harness import Invoke, make_invoke


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config dir, no keyring, no inherited STRONGROOM_* variables."""
    for name in list(os.environ):
        if name.startswith("STRONGROOM_"):
            monkeypatch.delenv(name)
    config = tmp_path / "device-config"
    monkeypatch.setenv("STRONGROOM_CONFIG_DIR", str(config))
    monkeypatch.setenv("STRONGROOM_KEYRING", "no")
    return config


@pytest.fixture
def invoke() -> Invoke:
    """Run ``strongroom ARGS`` in-process (see ``cli_harness``)."""
    return make_invoke()
