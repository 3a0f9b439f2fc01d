"""docs/spec/vectors/ is exactly what scripts/make_format_vectors.py writes (no silent drift)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "docs" / "spec" / "vectors"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_format_vectors",
                                                  ROOT / "scripts" / "make_format_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "README.md"}


def test_regenerated_vectors_equal_the_committed_ones(tmp_path: Path) -> None:
    assert _generator().main(["--out", str(tmp_path / "v")]) == 0
    fresh, committed = _files(tmp_path / "v"), _files(VECTORS)
    assert sorted(fresh) == sorted(committed)
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert not changed, ("regenerate with `python3 scripts/make_format_vectors.py` if the "
                         f"format changed on purpose (and bump its version): {changed}")
    assert len(fresh) > 20
