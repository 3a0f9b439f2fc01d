"""Imports go one way: the API layer uses the engine, never the other way round.

Issue 10 asked that the result types leave the ``api.py`` <-> ``repo/`` loop: the engine
builds ``strongroom.results`` types and never imports ``strongroom.api`` (nor the
password journey, the CLI or the vault client built on top of it).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "strongroom"
UPPER = ("api", "password", "aio", "cli", "client")


def _offenders(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.lstrip(".").split(".")
                up = name.startswith("..") and parts[0] in UPPER
                absolute = parts[0] == "strongroom" and len(parts) > 1 and parts[1] in UPPER
                if up or absolute:
                    found.append(f"{path.name}: {name}")
    return found


def test_the_engine_never_imports_the_layers_above_it() -> None:
    assert _offenders(sorted((SRC / "repo").rglob("*.py"))) == []


def test_the_scan_finds_such_an_import(tmp_path: Path) -> None:
    """Not blind: a module that imports the API (lazily, inside a function) is named."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..api import Repository\n    import strongroom.cli.main\n")
    assert _offenders([bad]) == ["bad.py: ..api", "bad.py: strongroom.cli.main"]
