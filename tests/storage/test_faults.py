"""The S3 backend behind a misbehaving network (tests/support/faultproxy.py).

Wrapped in RetryBackend, every contract operation completes correctly through
drops, lost answers, delays and 5xx; permanent refusals fail fast and name the
backend and the object.  The proxy counts what it did, so no test can pass
without faults having been injected.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.storage.suite import CHECKS, Profile
from tests.support import servers
from tests.support.faultproxy import FaultProxy, Faults

from strongroom.errors import PermanentStorageError, TransientStorageError
from strongroom.storage.retry import RetryBackend
from strongroom.storage.s3 import MiB, S3Backend

pytestmark = [pytest.mark.s3, pytest.mark.xdist_group("servers")]

_counter = iter(range(10**6))


@pytest.fixture
def proxy(seaweedfs: servers.S3Server) -> Iterator[FaultProxy]:
    with FaultProxy(seaweedfs.url, seed=7) as p:
        yield p


def _through(proxy: FaultProxy, s3: servers.S3Server, attempts: int = 10) -> RetryBackend:
    inner = S3Backend(proxy.url, "strongroom-test", f"faults{next(_counter)}",
                      access_key=s3.access_key, secret_key=s3.secret_key, timeout=10,
                      multipart_threshold=5 * MiB, part_size=5 * MiB)
    return RetryBackend(inner, attempts=attempts, base_delay=0.005, max_delay=0.05)


FAULTY_CHECKS = ["put_get_roundtrip", "put_overwrites", "empty_object", "get_range",
                 "large_object", "put_if_absent", "list_prefix", "delete", "get_missing",
                 "prefix_names_distinct", "put_if_absent_concurrent"]


@pytest.mark.parametrize("check", FAULTY_CHECKS)
def test_contract_holds_through_faults(check: str, proxy: FaultProxy,
                                       seaweedfs: servers.S3Server) -> None:
    backend = _through(proxy, seaweedfs)  # opened while the network is healthy
    proxy.faults = Faults(drop=0.06, drop_after=0.06, error=0.08, delay=0.05)
    try:
        for _ in range(3):  # enough requests that every kind of fault happens
            CHECKS[check](backend, Profile(large=11 * MiB + 17, writers=4))
            for name in list(backend.list()):
                backend.delete(name)
    finally:
        backend.close()
    injected = proxy.fates["drop"] + proxy.fates["drop_after"] + proxy.fates["error"]
    assert injected > 0, proxy.fates


def test_lost_answer_to_conditional_create_still_counts_as_created(
        proxy: FaultProxy, seaweedfs: servers.S3Server) -> None:
    backend = _through(proxy, seaweedfs)
    # The first answer is lost: the server creates the object, we never hear back.
    proxy.faults = Faults(drop_after=1.0)
    proxy.fault_limit = 1
    assert backend.put_if_absent("snapshots/s", b"mine") is True
    assert proxy.fates["drop_after"] == 1
    assert backend.get("snapshots/s") == b"mine"
    assert backend.put_if_absent("snapshots/s", b"mine") is False


def test_permanent_refusal_fails_fast_naming_backend_and_object(
        proxy: FaultProxy, seaweedfs: servers.S3Server) -> None:
    backend = _through(proxy, seaweedfs)
    proxy.faults = Faults(status=403)
    before = proxy.requests
    with pytest.raises(PermanentStorageError) as info:
        backend.put("index/0123", b"x")
    assert proxy.requests - before == 1  # not retried
    assert f"s3:{proxy.url}/strongroom-test/" in str(info.value)
    assert "index/0123" in str(info.value)


def test_network_loss_exhausts_retries_with_a_clear_error(
        proxy: FaultProxy, seaweedfs: servers.S3Server) -> None:
    backend = _through(proxy, seaweedfs, attempts=3)
    proxy.down = True
    before = proxy.requests
    with pytest.raises(TransientStorageError, match=r"cannot get config: .*\(gave up after 3 attempts\)$"):
        backend.get("config")
    assert proxy.requests - before == 3
    proxy.down = False
    backend.put("config", b"ok")
    assert backend.get("config") == b"ok"


@pytest.mark.rclone
@pytest.mark.parametrize("check", ["put_get_roundtrip", "put_overwrites", "get_range",
                                   "put_if_absent", "list_prefix", "delete", "large_object"])
def test_rclone_contract_holds_through_faults(check: str, webdav: servers.WebDavServer) -> None:
    """rclone -> fault proxy -> rclone serve webdav."""
    from strongroom.storage.rclone import RcloneBackend

    with FaultProxy(webdav.url, seed=3) as proxy:
        env = webdav.rclone_env("fdav")
        env["RCLONE_CONFIG_FDAV_URL"] = proxy.url
        inner = RcloneBackend(f"fdav:faults{next(_counter)}", env=env, create=True)
        backend = RetryBackend(inner, attempts=10, base_delay=0.005, max_delay=0.05)
        proxy.faults = Faults(drop=0.05, drop_after=0.05, error=0.08, delay=0.05)
        try:
            for _ in range(2):
                CHECKS[check](backend, Profile(large=3 * MiB + 17))
                for name in list(backend.list()):
                    backend.delete(name)
        finally:
            backend.close()
        injected = proxy.fates["drop"] + proxy.fates["drop_after"] + proxy.fates["error"]
        assert injected > 0, proxy.fates


def test_slow_server_times_out_as_transient(proxy: FaultProxy,
                                            seaweedfs: servers.S3Server) -> None:
    inner = S3Backend(proxy.url, "strongroom-test", f"faults{next(_counter)}",
                      access_key=seaweedfs.access_key, secret_key=seaweedfs.secret_key,
                      timeout=0.5)
    backend = RetryBackend(inner, attempts=2, base_delay=0.001, max_delay=0.001)
    proxy.faults = Faults(delay=1.0, delay_seconds=1.5)
    with pytest.raises(TransientStorageError, match=r"cannot get config: ReadTimeoutError "
                                                    r"\(network\) \(gave up after 2 attempts\)"):
        backend.get("config")
    assert proxy.fates["delay"] == 2
