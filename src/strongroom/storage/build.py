"""Public builders for backends, as an app needs them: explicit credentials, no
process-wide environment, and the same wrappers the CLI gets.

Every builder returns a backend ready for :meth:`strongroom.Repository.open`:
network backends (S3, rclone) come wrapped in :class:`~.retry.RetryBackend`
(transient failures retried with backoff) and :class:`~.readahead.ReadAheadBackend`
(one request per pack instead of one per frame), exactly as
:func:`~.registry.open_backend` wraps them for a location string.  Pass
``retry=False`` for the bare backend (tests that count requests).

Credentials go only into the client that uses them: never into the backend's
``location``, a message or a ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import Backend
from .readahead import ReadAheadBackend
from .registry import _cloud_module, open_backend
from .retry import RetryBackend


def wrapped(backend: Backend, *, retry: bool = True) -> Backend:
    """``backend`` inside the retry and read-ahead wrappers (as a network backend needs)."""
    return ReadAheadBackend(RetryBackend(backend)) if retry else backend


def storage_local(path: str | os.PathLike[str], *, create: bool = False) -> Backend:
    """A folder on this machine (``create``: make it if missing)."""
    from .local import LocalBackend

    return LocalBackend(os.fspath(path), create=create)


def storage_memory() -> Backend:
    """A fresh in-memory backend (tests, examples; gone when the process ends)."""
    from .memory import MemoryBackend

    return MemoryBackend()


def storage_s3(endpoint: str, bucket: str, prefix: str = "", *,
               access_key: str | None = None, secret_key: str | None = None,
               session_token: str | None = None, region: str | None = None,
               create: bool = False, retry: bool = True, **tuning: Any) -> Backend:
    """An S3 (or S3-compatible) bucket, with the app's own credentials.

    ``endpoint`` is ``https://HOST[:PORT]`` (``http://`` for a local test server).
    ``access_key`` and ``secret_key`` go together; ``session_token`` is for
    temporary (STS) credentials.  With no credentials, boto3's standard chain
    (environment, profile, instance role) is used.  ``region`` defaults to
    ``us-east-1``.  ``tuning`` passes ``multipart_threshold``, ``part_size``,
    ``max_connections``, ``timeout`` to :class:`~.s3.S3Backend`.
    ``create`` makes the bucket if it does not exist.
    """
    mod = _cloud_module("s3", "s3")
    backend: Backend = mod.S3Backend(endpoint, bucket, prefix, create=create,
                                     access_key=access_key, secret_key=secret_key,
                                     session_token=session_token, region=region, **tuning)
    return wrapped(backend, retry=retry)


def storage_rclone(remote: str, *, config_file: str | os.PathLike[str] | None = None,
                   env: Mapping[str, str] | None = None, create: bool = False,
                   retry: bool = True, **options: Any) -> Backend:
    """Any rclone remote, written ``REMOTE:PATH`` as ``rclone`` writes it.

    ``config_file`` is the app's own ``rclone.conf`` (instead of the user's);
    ``env`` adds variables for the rclone process only, e.g. a remote defined
    entirely by ``RCLONE_CONFIG_<NAME>_TYPE`` and friends.  ``create`` makes the
    folder if it does not exist.
    """
    mod = _cloud_module("rclone", "rclone")
    extra = dict(env or {})
    if config_file is not None:
        extra["RCLONE_CONFIG"] = os.fspath(Path(config_file).expanduser())
    backend: Backend = mod.RcloneBackend(remote, create=create, env=extra, **options)
    return wrapped(backend, retry=retry)


def storage_from_location(location: str, *, create: bool = False,
                          retry: bool = True) -> Backend:
    """The backend a location string names (``/path``, ``local:``, ``s3:``, ``rclone:``,
    ``memory:``), as the CLI's ``--repo`` reads it; S3 credentials from the environment."""
    return open_backend(location, create=create, retry=retry)


__all__ = ["storage_from_location", "storage_local", "storage_memory", "storage_rclone",
           "storage_s3", "wrapped"]
