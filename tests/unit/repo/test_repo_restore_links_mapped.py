"""Links planted in the target of a *mapped* restore: SNAPSHOT:SUBPATH, strip= and the
include list a ``--chat`` restore builds.  Each maps snapshot paths to other target
paths than a plain restore, so the target-safety rules (backup-format §12: nothing
written outside the target, no link followed) are checked again for each mapping.

A victim directory outside the target holds a private file with known content, mode
and time; the target gets a link to it where the restore would write a directory
(the restore refuses: ``LocalWriteError``), or a link to the victim's file where it
would write a file (the link itself is replaced, the victim untouched).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from repo_helpers import make_tree
from test_repo_restore_escape import VICTIM_MTIME, assert_untouched

from strongroom import Repository
from strongroom.errors import LocalWriteError

# name -> (restore call, where the snapshot's .../chats/ lands under the target)
Mapping = Callable[[Repository, Path, Path, str], object]


def _subpath(repo: Repository, src: Path, target: Path, overwrite: str) -> object:
    return repo.restore(f"latest:{src}/chats", target, overwrite=overwrite)


def _strip(repo: Repository, src: Path, target: Path, overwrite: str) -> object:
    return repo.restore("latest", target, strip=str(src / "chats"), overwrite=overwrite)


def _chat(repo: Repository, src: Path, target: Path, overwrite: str) -> object:
    # What `restore --chat` does: the chat's files as an include list.
    return repo.restore("latest", target, include=[f"{src}/chats/notes.txt",
                                                   f"{src}/chats/media/p1.jpg"],
                        overwrite=overwrite)


def _chat_strip(repo: Repository, src: Path, target: Path, overwrite: str) -> object:
    return repo.restore("latest", target, include=[f"{src}/chats/notes.txt",
                                                   f"{src}/chats/media/p1.jpg"],
                        strip=str(src / "chats"), overwrite=overwrite)


MAPPINGS: dict[str, tuple[Mapping, Callable[[Path, Path], Path]]] = {
    "subpath": (_subpath, lambda target, src: target),
    "strip": (_strip, lambda target, src: target),
    "chat": (_chat, lambda target, src: target / str(src / "chats").lstrip("/")),
    "chat+strip": (_chat_strip, lambda target, src: target),
}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """Outside the target: a private file, modes and times as ``assert_untouched`` expects."""
    d = tmp_path / "victim"
    d.mkdir(mode=0o700)
    key = d / "id_ed25519"
    key.write_bytes(b"private")
    key.chmod(0o600)
    os.utime(key, ns=(VICTIM_MTIME, VICTIM_MTIME))
    os.utime(d, ns=(VICTIM_MTIME, VICTIM_MTIME))
    return d


@pytest.fixture
def backed_up(repo: Repository, tmp_path: Path) -> Path:
    src = make_tree(tmp_path / "home" / "old")
    repo.backup([src])
    return src


@pytest.mark.parametrize("mapping", list(MAPPINGS))
@pytest.mark.parametrize("overwrite", ["always", "if-newer"])
def test_a_link_where_a_directory_goes_is_refused(repo: Repository, backed_up: Path,
                                                  tmp_path: Path, victim: Path,
                                                  mapping: str, overwrite: str) -> None:
    restore, base_of = MAPPINGS[mapping]
    target = tmp_path / "target"
    base = base_of(target, backed_up)
    base.mkdir(parents=True)
    (base / "media").symlink_to(victim)  # the snapshot has a directory media/ here
    with pytest.raises(LocalWriteError, match="not a directory"):
        restore(repo, backed_up, target, overwrite)
    assert_untouched(victim)
    assert (base / "media").is_symlink()


@pytest.mark.parametrize("mapping", list(MAPPINGS))
def test_a_link_where_a_file_goes_is_replaced_not_followed(repo: Repository,
                                                           backed_up: Path, tmp_path: Path,
                                                           victim: Path,
                                                           mapping: str) -> None:
    restore, base_of = MAPPINGS[mapping]
    target = tmp_path / "target"
    base = base_of(target, backed_up)
    base.mkdir(parents=True)
    (base / "notes.txt").symlink_to(victim / "id_ed25519")
    restore(repo, backed_up, target, "always")
    assert_untouched(victim)
    notes = base / "notes.txt"
    assert not notes.is_symlink()
    assert notes.read_bytes() == (backed_up / "chats" / "notes.txt").read_bytes()
    assert (base / "media" / "p1.jpg").read_bytes() == \
        (backed_up / "chats" / "media" / "p1.jpg").read_bytes()


@pytest.mark.parametrize("mapping", ["chat"])
def test_a_link_on_the_prefix_path_is_refused(repo: Repository, backed_up: Path,
                                              tmp_path: Path, victim: Path,
                                              mapping: str) -> None:
    # Without strip, the old device's absolute path is recreated under the target: a
    # link at its first component must not carry the restore out of the target.
    restore, _ = MAPPINGS[mapping]
    target = tmp_path / "target"
    target.mkdir()
    first = str(backed_up).lstrip("/").split("/")[0]
    (target / first).symlink_to(victim)
    with pytest.raises(LocalWriteError, match="not a directory"):
        restore(repo, backed_up, target, "always")
    assert_untouched(victim)


def test_dry_runs_of_each_mapping_write_nothing_through_a_link(repo: Repository,
                                                               backed_up: Path,
                                                               tmp_path: Path,
                                                               victim: Path) -> None:
    for name, (restore, base_of) in MAPPINGS.items():
        target = tmp_path / f"dry-{name}"
        base = base_of(target, backed_up)
        base.mkdir(parents=True)
        (base / "media").symlink_to(victim)
        with pytest.raises(LocalWriteError, match="not a directory"):
            if name in ("subpath",):
                repo.restore(f"latest:{backed_up}/chats", target, dry_run=True)
            elif name == "strip":
                repo.restore("latest", target, strip=str(backed_up / "chats"), dry_run=True)
            else:
                repo.restore("latest", target, dry_run=True,
                             include=[f"{backed_up}/chats/media/p1.jpg"],
                             strip=str(backed_up / "chats") if "strip" in name else None)
        assert_untouched(victim)
        assert sorted(os.listdir(base)) == ["media"]
