"""Project-wide test configuration.

Under ``CI=true`` a skipped test is a failure: a test that needs a real server
(SeaweedFS, PostgreSQL, SoftHSM2, rclone) may skip on a laptop without it, but
CI must run it.  Each area keeps its own fixtures in its own conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if _ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skip is not allowed under CI=true: {report.longrepr}"


@pytest.fixture(autouse=True)
def _lock_sightings_per_test(tmp_path_factory: pytest.TempPathFactory,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test remembers its own lock sightings (spec §9), not the user's state dir."""
    monkeypatch.setenv("STRONGROOM_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def umask_000() -> Iterator[None]:
    """The loosest umask there is: nothing of what is made may depend on it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)
