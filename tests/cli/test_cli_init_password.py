"""``init --password`` checks the vault, the token and the password before it creates anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import Invoke


@pytest.mark.parametrize(("env", "code", "says"), [
    ({}, 2, "no vault given"),
    ({"STRONGROOM_VAULT": "http://127.0.0.1:9"}, 2, "no vault token"),
    # A vault nobody answers at: refused before a repository exists (no guess, no repo).
    ({"STRONGROOM_VAULT": "http://127.0.0.1:9", "STRONGROOM_VAULT_TOKEN": "srv1_x"}, 23,
     "cannot be reached"),
])
def test_init_password_refuses_before_creating_anything(invoke: Invoke, tmp_path: Path,
                                                        env: dict[str, str], code: int,
                                                        says: str) -> None:
    repo = tmp_path / "repo"
    r = invoke("--repo", repo, "init", "--password", env=env)
    assert r.code == code, r.err
    assert says in r.err
    assert not repo.exists() or not any(repo.iterdir())
