"""Opening a repository: wrong key, mistyped key, newer format, garbage config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo_helpers import Clock, Rng, SpyBackend

from strongroom import BackupKey, Repository
from strongroom.errors import (
    DataDamaged,
    FormatError,
    InvalidKeyFormat,
    UnsupportedVersion,
    WrongKey,
)
from strongroom.repo.config import config_mac, repository_key


def test_wrong_key_is_refused_before_any_data_is_read(backend: SpyBackend, repo: Repository,
                                                      tree: Path) -> None:
    repo.backup([tree])
    backend.gets.clear()
    with pytest.raises(WrongKey) as exc:
        Repository.open(backend, BackupKey.generate(Rng(99)))
    assert backend.gets == ["config"]
    assert exc.value.exit_code == 11 and "does not open this backup" in exc.value.message


def test_one_mistyped_digit_is_a_wrong_key(backend: SpyBackend, repo: Repository,
                                           key: BackupKey) -> None:
    digits = key.digits()
    typo = ("1" if digits[0] != "1" else "2") + digits[1:]
    with pytest.raises(WrongKey):
        Repository.open(backend, BackupKey.parse(typo))


def test_too_short_key_is_a_format_error_not_wrong_key(key: BackupKey) -> None:
    with pytest.raises(InvalidKeyFormat):
        BackupKey.parse(key.digits()[:-1])


def test_newer_major_version_is_refused(backend: SpyBackend, repo: Repository,
                                        key: BackupKey) -> None:
    cfg = json.loads(backend.inner.get("config"))
    cfg["version"] = 3
    backend.inner.put("config", json.dumps(cfg).encode())
    with pytest.raises(UnsupportedVersion) as exc:
        Repository.open(backend, key)
    assert exc.value.exit_code == 14
    # Also refused with a wrong key: the version is checked first.
    with pytest.raises(UnsupportedVersion):
        Repository.open(backend, BackupKey.generate())


def test_newer_minor_version_with_unknown_fields_still_opens(backend: SpyBackend,
                                                             repo: Repository,
                                                             key: BackupKey) -> None:
    cfg = json.loads(backend.inner.get("config"))
    cfg["minor"] = 7
    cfg["chunker"]["future_knob"] = 3
    cfg["future_field"] = {"x": [1, 2]}
    # As a newer Strongroom holding K would write it: the MAC covers the new fields,
    # and the bytes are in the stored form of spec §3.
    cfg["mac"] = config_mac(repository_key(key, bytes.fromhex(cfg["id"])), cfg)
    backend.inner.put("config", json.dumps(cfg, indent=1, sort_keys=True).encode() + b"\n")
    assert Repository.open(backend, key).id == repo.id


@pytest.mark.parametrize("change", [
    lambda d: d["chunker"].update(media_piece=65536),
    lambda d: d.update(created=d["created"] + 1),
    lambda d: d.update(minor=1),
    lambda d: d.update(extra="x"),
    lambda d: d.pop("mac"),
])
def test_any_change_to_the_config_is_detected(backend: SpyBackend, repo: Repository,
                                              key: BackupKey, change) -> None:  # type: ignore[no-untyped-def]
    cfg = json.loads(backend.inner.get("config"))
    change(cfg)
    backend.inner.put("config", json.dumps(cfg).encode())
    with pytest.raises(DataDamaged) as exc:
        Repository.open(backend, key)
    assert "config" in exc.value.message
    with pytest.raises(WrongKey):  # a wrong key is still told apart from damage
        Repository.open(backend, BackupKey.generate(Rng(5)))


def test_config_of_another_repository_with_the_same_key(backend: SpyBackend, repo: Repository,
                                                        key: BackupKey, tree: Path,
                                                        tmp_path: Path) -> None:
    repo.backup([tree])
    other = SpyBackend()
    Repository.create(other, key, rng=Rng(8))
    backend.inner.put("config", other.inner.get("config"))
    swapped = Repository.open(backend, key)  # a genuine config, made with this key...
    report = swapped.check()
    # ...but every object is bound to the original repository id.
    assert "config" in {p.object for p in report.problems}
    with pytest.raises(DataDamaged):
        swapped.restore("latest", tmp_path / "out")


@pytest.mark.parametrize("garbage", [b"", b"{", b"[]", b"\xff\xfe", b'{"format": "x"}',
                                     b'{"format": "strongroom-repository", "version": "1"}'])
def test_garbage_config_is_a_format_error(garbage: bytes, key: BackupKey) -> None:
    be = SpyBackend()
    be.put("config", garbage)
    with pytest.raises(FormatError):
        Repository.open(be, key)


def test_create_is_deterministic_given_rng_and_clock(key: BackupKey) -> None:
    a, b = SpyBackend(), SpyBackend()
    Repository.create(a, key, clock=Clock(), rng=Rng(1))
    Repository.create(b, key, clock=Clock(), rng=Rng(1))
    assert a.inner.get("config") == b.inner.get("config")


def test_foreign_objects_under_our_prefixes_are_ignored(backend: SpyBackend, repo: Repository,
                                                        tree: Path, tmp_path: Path) -> None:
    for name in ("index/README", "snapshots/x", "locks/ZZ", "data/aa/nothex", "ext/vault.json"):
        backend.inner.put(name, b"not ours")
    repo.backup([tree])
    assert len(repo.snapshots()) == 1 and repo.check(read_data=True).ok
    repo.forget(keep_last=1)
    repo.prune()
    assert backend.inner.get("ext/vault.json") == b"not ours"
    assert backend.inner.get("index/README") == b"not ours"


@pytest.mark.parametrize("params", [
    {"cdc_min": 64, "cdc_avg": 128, "cdc_max": 1024},            # avg below FastCDC's 256 B
    {"cdc_min": 1024, "cdc_avg": 4096, "cdc_max": 32 << 20},     # max above its 16 MiB
    {"cdc_min": 10, "cdc_avg": 4096, "cdc_max": 16384},          # below §3's ranges too
])
def test_chunker_parameters_fastcdc_refuses_are_refused_at_create(params: dict[str, int]) -> None:
    from strongroom.errors import UsageError
    from strongroom.repo.config import ChunkerParams
    from strongroom.repo.engine import Engine
    from strongroom.storage.memory import MemoryBackend

    backend = MemoryBackend()
    with pytest.raises(UsageError, match="out of range|FastCDC needs"):
        Engine.create(backend, BackupKey.generate(Rng(1)), chunker=ChunkerParams(**params))
    assert list(backend.list("")) == []  # nothing was written
