"""Every backend passes every clause of the storage contract (see suite.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.storage.suite import CHECKS, Profile

from strongroom.storage.base import Backend

_REMOTE = [pytest.mark.xdist_group("servers")]

KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("local", id="local"),
    pytest.param("retry-memory", id="retry-memory"),
    pytest.param("limit-local", id="limit-local"),
    pytest.param("readahead-local", id="readahead-local"),
    pytest.param("s3", id="s3", marks=[pytest.mark.s3, *_REMOTE]),
    pytest.param("rclone-webdav", id="rclone-webdav", marks=[pytest.mark.rclone, *_REMOTE]),
    pytest.param("rclone-local", id="rclone-local", marks=[pytest.mark.rclone]),
]

PROFILES = {
    "rclone-webdav": Profile(many=120, large=3 * 1024 * 1024 + 17, writers=4, rounds=6,
                             overwrite_gap=True),
    "rclone-local": Profile(many=120, large=3 * 1024 * 1024 + 17, writers=4, rounds=6),
    "s3": Profile(many=1100, large=11 * 1024 * 1024 + 17, writers=8, rounds=10),
}


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("kind", KINDS)
def test_backend_conforms(kind: str, check: str,
                          backend_factory: Callable[[str], Backend]) -> None:
    CHECKS[check](backend_factory(kind), PROFILES.get(kind, Profile()))
