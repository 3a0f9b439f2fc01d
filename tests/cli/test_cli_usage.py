"""Usage mistakes and missing repositories: exit codes 2 and 10, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import Invoke, Run


def _one_clear_error(run: Run) -> str:
    assert "Traceback" not in run.err
    lines = run.err.splitlines()
    assert lines and lines[0].startswith("strongroom: error: ")
    return lines[0]


def test_no_repository_given(invoke: Invoke) -> None:
    run = invoke("snapshots")
    assert run.code == 2
    assert _one_clear_error(run) == "strongroom: error: no repository given"
    assert "STRONGROOM_REPO" in run.err


@pytest.mark.parametrize("command", [["snapshots"], ["check"], ["prune"],
                                     ["restore", "latest", "--target", "t"],
                                     ["backup", "."], ["key", "show", "--yes"]])
def test_missing_repository_is_exit_10(invoke: Invoke, tmp_path: Path,
                                       command: list[str]) -> None:
    run = invoke("--repo", tmp_path / "nothing-here", *command)
    assert run.code == 10
    assert "no repository" in _one_clear_error(run)
    assert "strongroom: hint: check --repo" in run.err


def test_empty_folder_is_not_a_repository(invoke: Invoke, tmp_path: Path) -> None:
    run = invoke("--repo", tmp_path, "snapshots")
    assert run.code == 10
    assert "no strongroom repository" in _one_clear_error(run).lower()


def test_repo_from_environment_and_after_the_command(invoke: Invoke, tmp_path: Path) -> None:
    env_repo, flag_repo = tmp_path / "from-env", tmp_path / "from-flag"
    run = invoke("snapshots", env={"STRONGROOM_REPO": str(env_repo)})
    assert run.code == 10 and str(env_repo) in run.err
    run = invoke("snapshots", "--repo", flag_repo, env={"STRONGROOM_REPO": str(env_repo)})
    assert run.code == 10 and str(flag_repo) in run.err and str(env_repo) not in run.err


@pytest.mark.parametrize(("args", "needle"), [
    (["backup"], "missing argument"),
    (["restore", "latest"], "missing option '--target'"),
    (["forget", "--keep-last", "0"], "--keep-last"),
    (["forget", "--keep-daily", "x"], "--keep-daily"),
    (["check", "--read-everything"], "no such option"),
    (["nonsense"], "no such command"),
])
def test_click_usage_errors_are_exit_2(invoke: Invoke, tmp_path: Path, args: list[str],
                                       needle: str) -> None:
    run = invoke("--repo", tmp_path, *args)
    assert run.code == 2
    assert needle in _one_clear_error(run)
    assert run.err.splitlines()[1].startswith("strongroom: hint: run 'strongroom")


def test_forget_without_policy_is_refused(invoke: Invoke, tmp_path: Path) -> None:
    run = invoke("--repo", tmp_path, "forget")
    assert run.code == 2
    assert _one_clear_error(run) == "strongroom: error: forget needs a policy"


def test_init_json_needs_key_file(invoke: Invoke, tmp_path: Path) -> None:
    run = invoke("--repo", tmp_path / "r", "--json", "init")
    assert run.code == 2
    assert "--key-file" in _one_clear_error(run)
    assert not (tmp_path / "r").exists()


def test_init_refuses_to_overwrite_a_key_file(invoke: Invoke, tmp_path: Path) -> None:
    existing = tmp_path / "old.key"
    existing.write_text("precious\n")
    run = invoke("--repo", tmp_path / "r", "--key-file", existing, "init")
    assert run.code == 2
    assert "already exists" in _one_clear_error(run)
    assert existing.read_text() == "precious\n"
    assert not (tmp_path / "r").exists()


def test_key_show_refuses_a_pipe_without_yes(invoke: Invoke, tmp_path: Path) -> None:
    run = invoke("--repo", tmp_path, "key", "show")
    assert run.code == 2
    assert "refusing to print the key" in _one_clear_error(run)
    assert "--yes" in run.err
    run = invoke("--repo", tmp_path, "key", "show", "--json")
    assert run.code == 2
