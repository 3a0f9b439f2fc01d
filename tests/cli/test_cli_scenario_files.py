"""Scenario files (``scenarios/*.txt``, after age's testscript): commands and what they must say.

Format, one directive a line (``#`` starts a comment):

* ``$ [NAME=value ...] strongroom ARGS`` runs the CLI in-process; ``$WORK`` is
  the test's temp dir, ``$REPO`` is ``$WORK/repo`` (also ``STRONGROOM_REPO``);
* ``? N`` the exit code the last command must have had (required after each);
* ``stdout~ TEXT`` / ``stderr~ TEXT`` TEXT must appear in that stream;
* ``stderr! TEXT`` TEXT must not appear (e.g. ``Traceback``);
* ``file PATH TEXT`` creates a file with TEXT and a newline.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from cli_harness import Run, make_invoke

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.txt"))


def _expand(text: str, work: Path) -> str:
    return text.replace("$REPO", str(work / "repo")).replace("$WORK", str(work))


def _run_line(line: str, work: Path) -> Run:
    words = shlex.split(_expand(line, work))
    env = {"STRONGROOM_REPO": str(work / "repo")}
    while words and "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words and words[0] == "strongroom", f"not a strongroom command: {line}"
    return make_invoke()(*words[1:], env=env)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path: Path, tmp_path: Path) -> None:
    last: Run | None = None
    checked = True
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        where = f"{path.name}:{number}"
        if not line or line.startswith("#"):
            continue
        directive, _, rest = line.partition(" ")
        if directive == "$":
            assert checked, f"{where}: the previous command has no '? N' line"
            last, checked = _run_line(rest, tmp_path), False
            continue
        if directive == "file":
            name, _, text = rest.partition(" ")
            target = Path(_expand(name, tmp_path))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n")
            continue
        assert last is not None, f"{where}: no command before {directive}"
        if directive == "?":
            assert last.code == int(rest), f"{where}: exit {last.code}\n{last.err}"
            checked = True
        elif directive in ("stdout~", "stderr~"):
            stream = last.out if directive == "stdout~" else last.err
            assert _expand(rest, tmp_path) in stream, f"{where}: {rest!r} not in\n{stream}"
        elif directive == "stderr!":
            assert _expand(rest, tmp_path) not in last.err, f"{where}: {rest!r} in\n{last.err}"
        else:
            raise AssertionError(f"{where}: unknown directive {directive!r}")
    assert checked, f"{path.name}: the last command has no '? N' line"


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 3
