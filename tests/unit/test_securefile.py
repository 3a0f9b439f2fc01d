"""Local secret files and private directories (strongroom.securefile), on a real file system."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from strongroom.errors import LocalSecretsUnsafe
from strongroom.securefile import (
    check_private_dir,
    check_private_dirs,
    ensure_private_dir,
    write_secret_file,
)


class Names:
    """The temporary names' randomness, in order (so a test can plant links at them)."""

    def __init__(self, *draws: bytes) -> None:
        self.draws = list(draws)

    def __call__(self, n: int) -> bytes:
        assert n == 8
        return self.draws.pop(0)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _planted_links(tmp_path: Path, final: Path, draws: list[bytes]) -> Path:
    """A victim file, and a link to it at every temporary name in ``draws``."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"victim")
    for d in draws:
        (final.parent / f".{final.name}.{d.hex()}.tmp").symlink_to(victim)
    return victim


@pytest.mark.usefixtures("umask_000")
@pytest.mark.parametrize("replace", [True, False])
def test_umask_000_still_gives_0600(tmp_path: Path, replace: bool) -> None:
    path = tmp_path / "secret.json"
    write_secret_file(path, b"s3cret", replace=replace)
    assert path.read_bytes() == b"s3cret" and _mode(path) == 0o600
    assert os.listdir(tmp_path) == ["secret.json"]  # no temporary file left


@pytest.mark.parametrize("replace", [True, False])
def test_links_planted_at_temporary_names_are_never_followed(tmp_path: Path, replace: bool) -> None:
    final = tmp_path / "secrets.json"
    draws = [b"\x01" * 8, b"\x02" * 8]
    victim = _planted_links(tmp_path, final, draws)
    write_secret_file(final, b"s3cret", replace=replace, rng=Names(*draws, b"\x03" * 8))
    assert victim.read_bytes() == b"victim"
    assert final.read_bytes() == b"s3cret" and not final.is_symlink() and _mode(final) == 0o600
    # The planted links are someone else's; they are left, and nothing else is.
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["secrets.json", "victim"] + [f".secrets.json.{d.hex()}.tmp" for d in draws])


def test_link_at_the_final_name_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"victim")
    final = tmp_path / "heads.json"
    final.symlink_to(victim)
    write_secret_file(final, b"new")
    assert victim.read_bytes() == b"victim"
    assert not final.is_symlink() and final.read_bytes() == b"new" and _mode(final) == 0o600


@pytest.mark.parametrize("dangling", [True, False])
def test_exclusive_write_refuses_a_link_at_the_final_name(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "target"
    if not dangling:
        target.write_bytes(b"victim")
    final = tmp_path / "k.key"
    final.symlink_to(target)
    with pytest.raises(FileExistsError):
        write_secret_file(final, b"key", replace=False)
    assert final.is_symlink() and target.exists() is not dangling
    if not dangling:
        assert target.read_bytes() == b"victim"
    assert sorted(os.listdir(tmp_path)) == (["k.key"] if dangling else ["k.key", "target"])


def test_exclusive_write_never_overwrites(tmp_path: Path) -> None:
    final = tmp_path / "k.key"
    final.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        write_secret_file(final, b"new", replace=False)
    assert final.read_bytes() == b"old" and os.listdir(tmp_path) == ["k.key"]


def test_replace_swaps_the_whole_file(tmp_path: Path) -> None:
    final = tmp_path / "heads.json"
    final.write_bytes(b"old content that is longer")
    os.chmod(final, 0o644)
    write_secret_file(final, b"new")
    assert final.read_bytes() == b"new" and _mode(final) == 0o600


@pytest.mark.usefixtures("umask_000")
def test_private_dirs_are_0700_under_umask_000(tmp_path: Path) -> None:
    config = tmp_path / "home" / ".config" / "strongroom"
    keys = config / "keys"
    assert ensure_private_dir(keys, top=config) == keys
    for d in (tmp_path / "home", tmp_path / "home" / ".config", config, keys):
        assert _mode(d) == 0o700, d
    ensure_private_dir(keys, top=config)  # existing and private: fine


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702, 0o1777])
def test_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    config = tmp_path / "cfg"
    config.mkdir()
    os.chmod(config, mode)
    with pytest.raises(LocalSecretsUnsafe, match="writable by other users") as err:
        ensure_private_dir(config / "keys", top=config)
    assert err.value.exit_code == 2 and "chmod 700" in (err.value.hint or "")
    assert not (config / "keys").exists()  # nothing is created inside it


def test_inner_directory_writable_by_others_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    (config / "heads").mkdir(parents=True)
    os.chmod(config / "heads", 0o777)
    with pytest.raises(LocalSecretsUnsafe, match="heads"):
        ensure_private_dir(config / "heads", top=config)
    with pytest.raises(LocalSecretsUnsafe):
        check_private_dirs(config / "heads", top=config)


def test_a_link_is_refused_even_to_a_private_directory(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "cfg"
    link.symlink_to(real)
    with pytest.raises(LocalSecretsUnsafe, match="symbolic link"):
        ensure_private_dir(link / "keys", top=link)
    with pytest.raises(LocalSecretsUnsafe, match="symbolic link"):
        check_private_dir(link)


def test_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cfg").write_text("x")
    with pytest.raises(LocalSecretsUnsafe, match="not a directory"):
        check_private_dir(tmp_path / "cfg")


def test_another_users_directory_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        other = tmp_path / "theirs"
        other.mkdir(mode=0o700)
        os.chown(other, 65534, 65534)
    else:
        other = Path("/")  # root's, and this test does not run as root
    with pytest.raises(LocalSecretsUnsafe, match="belongs to another user"):
        check_private_dir(other)


def test_top_must_enclose_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ensure_private_dir(tmp_path / "a", top=tmp_path / "b")
    assert not (tmp_path / "a").exists()


def test_a_name_source_that_only_clashes_gives_up(tmp_path: Path) -> None:
    final = tmp_path / "s.json"
    (tmp_path / f".s.json.{'05' * 8}.tmp").write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        write_secret_file(final, b"x", rng=lambda n: b"\x05" * n)
    assert not final.exists() and len(os.listdir(tmp_path)) == 1
