"""From a repository location string to a backend.

Accepted forms (restic's, so users can reuse what they know)::

    /path/to/folder, ./folder, ~/folder   local folder
    local:PATH                            local folder (any PATH, even one with ':')
    memory:                               a fresh in-memory backend (tests)
    s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]
    s3:HOST/BUCKET[/PREFIX]               https is implied
    rclone:REMOTE:PATH                    any remote configured with `rclone config`

Cloud modules are imported only when used, so boto3 stays an optional extra.
Cloud backends come wrapped in :class:`RetryBackend` (transient network
failures are retried with backoff) and :class:`ReadAheadBackend` (one request
per pack instead of one per frame); pass ``retry=False`` to get them bare.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from ..errors import UsageError
from .base import Backend
from .readahead import ReadAheadBackend
from .retry import RetryBackend

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.DOTALL)

_FORMS = (
    "use a folder path, local:PATH, s3:https://HOST/BUCKET/PREFIX, "
    "rclone:REMOTE:PATH or memory:"
)


def open_backend(location: str, *, create: bool = False, retry: bool = True) -> Backend:
    """Open the backend ``location`` names; ``create=True`` makes a missing folder or bucket."""
    if not isinstance(location, str) or not location.strip():
        raise UsageError("no repository location given", hint=_FORMS)
    location = location.strip()
    match = _SCHEME.match(location)
    # "C:" style or "./a:b" are paths: a scheme is letters before the first ':'
    # with no '/' in front of it.
    if match is None or "/" in match.group(1):
        return _local(location, create)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "local":
        return _local(rest, create)
    if scheme == "memory":
        if rest:
            raise UsageError(f"unexpected text after memory: in {location!r}", hint=_FORMS)
        from .memory import MemoryBackend

        return MemoryBackend()
    if scheme in ("s3", "rclone"):
        cls = "S3Backend" if scheme == "s3" else "RcloneBackend"
        backend = _cloud(scheme, cls, scheme, rest, create)
        return ReadAheadBackend(RetryBackend(backend)) if retry else backend
    raise UsageError(f"unknown storage scheme {scheme!r} in {location!r}", hint=_FORMS)


def _local(path: str, create: bool) -> Backend:
    if not path:
        raise UsageError("empty folder path", hint=_FORMS)
    from .local import LocalBackend

    return LocalBackend(path, create=create)


def _cloud_module(module: str, extra: str) -> Any:
    """The backend module ``module``; ``UsageError`` naming the extra if it is not installed."""
    try:
        return importlib.import_module(f"{__package__}.{module}")
    except ImportError as exc:
        raise UsageError(
            f"the {module} backend is not installed ({exc.name or exc}); "
            f"it needs the strongroom[{extra}] extra", reason="not-installed",
        ) from exc


def _cloud(module: str, cls: str, extra: str, rest: str, create: bool) -> Backend:
    backend: Backend = getattr(_cloud_module(module, extra), cls).from_location(
        rest, create=create)
    return backend


__all__ = ["open_backend"]
