"""Property: every object parser raises only FormatError/DataDamaged on arbitrary bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.keys import BackupKey
from strongroom.errors import DataDamaged
from strongroom.repo.config import parse_config
from strongroom.repo.index import decode_index, read_index
from strongroom.repo.locks import Lock
from strongroom.repo.manifest import decode_records, open_snapshot
from strongroom.repo.pack import parse_header

KEY = BackupKey.from_bytes(bytes(32))
PREFIXES = st.sampled_from([b"", b"SRP1", b"SRI1", b"SRS1", b"SRX1", b"SRL1", b"{"])


def _only_expected(fn, data: bytes) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(data)
    except DataDamaged:  # FormatError is a subclass
        pass


@settings(max_examples=300, deadline=None)
@given(PREFIXES, st.binary(max_size=400))
def test_parsers_raise_only_format_errors(prefix: bytes, tail: bytes) -> None:
    data = prefix + tail
    _only_expected(parse_config, data)
    _only_expected(lambda d: parse_header(KEY, bytes(16), d, "data/00/x"), data)
    _only_expected(lambda d: decode_index(d, "index/x"), data)
    _only_expected(lambda d: read_index(d, KEY, "index/x"), data)
    _only_expected(lambda d: list(decode_records(d, "s")), data)
    _only_expected(lambda d: open_snapshot(KEY, "00" * 16, d), data)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200))
def test_unreadable_lock_counts_as_stale(data: bytes) -> None:
    from strongroom.storage.memory import MemoryBackend

    be = MemoryBackend()
    be.put("locks/" + "00" * 16, data)
    lock = Lock(be, KEY, True, lambda: 0.0, lambda n: b"\x01" * n)
    lock.acquire()  # the garbage lock neither blocks nor crashes
    lock.release()
    assert list(be.list("locks/")) == []
