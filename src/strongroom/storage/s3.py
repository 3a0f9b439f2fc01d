"""The S3 backend (boto3): AWS S3 and every S3-compatible store.

Locations are written as restic writes them: ``s3:http://127.0.0.1:8333/bucket/prefix``
or ``s3:s3.eu-central-1.amazonaws.com/bucket/prefix`` (https implied).  Credentials
are given explicitly (``access_key``, ``secret_key``, ``session_token``: what an
app uses, see :func:`strongroom.storage_s3`) or come from boto3's standard chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``~/.aws/credentials``, instance roles).

``put_if_absent`` is a conditional write (``If-None-Match: *``): the server
refuses with 412 when the key exists, so two writers can never both create a
name.  Objects above ``multipart_threshold`` are uploaded in parts; the object
only appears when the upload is completed, so readers never see a part.

Every single-request upload carries its CRC32 (``x-amz-checksum-crc32``), which the
server checks against the body it received: SeaweedFS stored an empty object when
the uploading process died after sending the headers and before any byte of the body
(docs/spec/storage.md §4); with the checksum it stores nothing.

botocore's own retries are switched off: retries belong to ``RetryBackend``,
which knows which of our errors are transient.
"""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from ..errors import (
    ObjectNotFound,
    PermanentStorageError,
    RepositoryNotFound,
    StorageError,
    TransientStorageError,
    UsageError,
)
from .base import Backend, ObjectInfo, check_name, is_valid_name

MiB = 1024 * 1024

_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
    "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
    "ConditionalRequestConflict", "OperationAborted", "TooManyRequestsException",
}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_TRANSIENT_EXC = (
    bexc.ConnectionError,  # EndpointConnectionError, ConnectionClosedError, timeouts
    bexc.HTTPClientError,
    bexc.IncompleteReadError,
    bexc.ResponseStreamingError,
)


class S3Backend(Backend):
    """Objects under ``prefix/`` in ``bucket`` at ``endpoint``."""

    #: Requests the engine keeps in flight (:mod:`.tuning`); restic's S3 default is 5.
    preferred_concurrency = 5

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        prefix: str = "",
        *,
        create: bool = False,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        region: str | None = None,
        multipart_threshold: int = 64 * MiB,
        part_size: int = 16 * MiB,
        max_connections: int = 32,
        timeout: float = 60.0,
    ) -> None:
        if part_size < 5 * MiB:
            raise ValueError("S3 parts must be at least 5 MiB")
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = f"s3:{self.endpoint}/{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both the S3 access key and the secret key, or neither")
        if session_token is not None and access_key is None:
            raise ValueError("an S3 session token needs the access key and secret key")
        self._client = _make_client(self.endpoint, (access_key, secret_key, session_token),
                                    region, max_connections, timeout)
        self._closed = False
        self._check_bucket(create)

    @classmethod
    def from_location(cls, rest: str, *, create: bool = False, **options: Any) -> S3Backend:
        """Build from the part after ``s3:`` (``http(s)://HOST[:PORT]/BUCKET[/PREFIX]``)."""
        endpoint, bucket, prefix = parse_location(rest)
        return cls(endpoint, bucket, prefix, create=create, **options)

    # -- the contract ----------------------------------------------------------

    def get(self, name: str) -> bytes:
        key = self._key(name)
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with body:
                return bytes(body.read())
        except Exception as exc:
            raise self._error(exc, "get", name) from exc

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        if length == 0:
            self.stat(name)  # still ObjectNotFound for a missing object
            return b""
        key = self._key(name)
        try:
            body = self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}"
            )["Body"]
            with body:
                return bytes(body.read())
        except bexc.ClientError as exc:
            if _code(exc) == "InvalidRange":  # starts at or past the end: nothing to return
                return b""
            raise self._error(exc, "get", name) from exc
        except Exception as exc:
            raise self._error(exc, "get", name) from exc

    def put(self, name: str, data: bytes) -> None:
        key = self._key(name)
        try:
            if len(data) >= self.multipart_threshold:
                self._multipart(key, data, {})
            else:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data),
                                        ChecksumCRC32=_crc32(data))
        except Exception as exc:
            raise self._error(exc, "put", name) from exc

    def put_if_absent(self, name: str, data: bytes) -> bool:
        key = self._key(name)
        try:
            if len(data) >= self.multipart_threshold:
                self._multipart(key, data, {"IfNoneMatch": "*"})
            else:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data),
                                        IfNoneMatch="*", ChecksumCRC32=_crc32(data))
        except bexc.ClientError as exc:
            if _status(exc) == 412 or _code(exc) == "PreconditionFailed":
                return False
            raise self._error(exc, "create", name) from exc
        except Exception as exc:
            raise self._error(exc, "create", name) from exc
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        names: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"][len(base):]
                    if is_valid_name(name):  # skip "folder/" markers and foreign keys
                        names.append(name)
        except Exception as exc:
            raise self._error(exc, "list", prefix or "/") from exc
        return iter(names)

    def delete(self, name: str) -> None:
        key = self._key(name)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            err = self._error(exc, "delete", name)
            if not isinstance(err, ObjectNotFound):
                raise err from exc

    def stat(self, name: str) -> ObjectInfo:
        key = self._key(name)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._error(exc, "stat", name) from exc
        return ObjectInfo(name, int(head["ContentLength"]))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    # -- helpers ---------------------------------------------------------------

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    def _multipart(self, key: str, data: bytes, condition: dict[str, str]) -> None:
        """Upload in parts; the object appears atomically on completion."""
        upload = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        view = memoryview(data)
        starts = range(0, len(data), self.part_size)

        def send(numbered: tuple[int, int]) -> dict[str, Any]:
            number, start = numbered
            part = bytes(view[start:start + self.part_size])
            etag = self._client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload,
                                            PartNumber=number, Body=part)["ETag"]
            return {"ETag": etag, "PartNumber": number}

        try:
            with ThreadPoolExecutor(max_workers=min(4, len(starts))) as pool:
                parts = list(pool.map(send, enumerate(starts, start=1)))
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload,
                MultipartUpload={"Parts": parts}, **condition)
        except BaseException:
            # Abandoned parts cost storage until aborted; best effort, the
            # original error is the one worth reporting.
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            except Exception:  # noqa: BLE001, S110 - the original error is reported
                pass
            raise

    def _check_bucket(self, create: bool) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except bexc.ClientError as exc:
            if _status(exc) == 403:
                return  # a key without ListBucket rights may still read and write objects
            if _status(exc) != 404 and _code(exc) not in ("NoSuchBucket", "404", "NotFound"):
                raise self._error(exc, "open bucket", self.bucket) from exc
        except Exception as exc:
            raise self._error(exc, "open bucket", self.bucket) from exc
        if not create:
            raise RepositoryNotFound(f"no repository at {self.location}: "
                                     f"the bucket {self.bucket} does not exist")
        try:
            self._client.create_bucket(Bucket=self.bucket)
        except bexc.ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._error(exc, "create bucket", self.bucket) from exc
        except Exception as exc:
            raise self._error(exc, "create bucket", self.bucket) from exc

    def _error(self, exc: BaseException, action: str, name: str) -> StorageError:
        """Translate a boto/botocore failure into our tree; the message names backend and object."""
        where = f"{self.location}: cannot {action} {name}"
        at: dict[str, Any] = {"object": name, "location": self.location}
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, bexc.ClientError):
            code, status = _code(exc), _status(exc)
            if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
                return ObjectNotFound(f"object not found: {name} ({self.location})",
                                      object=name, location=self.location)
            if status == 301 or code in ("PermanentRedirect", "AuthorizationHeaderMalformed",
                                         "IllegalLocationConstraintException"):
                return PermanentStorageError(
                    f"{where}: the bucket is in another region ({code or status})",
                    hint="give the bucket's region and its endpoint", reason="wrong-region",
                    **at)
            if code == "NoSuchBucket":
                return PermanentStorageError(f"{where}: the bucket {self.bucket} does not exist",
                                             reason="no-bucket", **at)
            if code in _TRANSIENT_CODES or status >= 500 or status in (409, 429):
                return TransientStorageError(f"{where}: {code or status} (temporary)", **at)
            if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId",
                                         "SignatureDoesNotMatch"):
                return PermanentStorageError(
                    f"{where}: access denied ({code})",
                    hint="check the S3 access key, secret key and the bucket policy",
                    reason="access-denied", **at)
            return PermanentStorageError(f"{where}: {code or status}", **at)
        if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
            return PermanentStorageError(
                f"{where}: no S3 credentials found",
                hint="give an S3 access key and secret key", reason="no-credentials", **at)
        if isinstance(exc, (*_TRANSIENT_EXC, OSError)):
            return TransientStorageError(f"{where}: {type(exc).__name__} (network)",
                                         reason="network", **at)
        if isinstance(exc, bexc.BotoCoreError):
            return PermanentStorageError(f"{where}: {type(exc).__name__}", **at)
        if isinstance(exc, ValueError | TypeError):
            raise exc  # caller misuse stays a built-in error
        return PermanentStorageError(f"{where}: {type(exc).__name__}")


def parse_location(rest: str) -> tuple[str, str, str]:
    """Split ``http(s)://HOST[:PORT]/BUCKET[/PREFIX]`` (or ``HOST/BUCKET/...``)."""
    if "://" not in rest:
        rest = "https://" + rest
    parts = urlsplit(rest)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"invalid S3 location s3:{rest}",
                         hint="write it as s3:https://HOST[:PORT]/BUCKET[/PREFIX]")
    if "@" in parts.netloc:
        raise UsageError("credentials do not belong in the S3 location",
                         hint="give the access key and secret key separately",
                         reason="credentials-in-location")
    bucket, _, prefix = parts.path.strip("/").partition("/")
    if not bucket:
        raise UsageError(f"no bucket in S3 location s3:{rest}",
                         hint="write it as s3:https://HOST[:PORT]/BUCKET[/PREFIX]")
    return f"{parts.scheme}://{parts.netloc}", bucket, prefix.strip("/")


def _make_client(endpoint: str, credentials: tuple[str | None, str | None, str | None],
                 region: str | None, max_connections: int, timeout: float) -> Any:
    # Explicit credentials (an app's own) win over the environment; None falls back to
    # boto3's standard chain.  They live only in the client, never in a message or repr.
    access_key, secret_key, session_token = credentials
    session = boto3.session.Session()
    region = region or session.region_name or os.environ.get("AWS_REGION") or "us-east-1"
    virtual = endpoint.endswith(".amazonaws.com")
    config = Config(
        region_name=region,
        retries={"total_max_attempts": 1},
        max_pool_connections=max_connections,
        connect_timeout=min(timeout, 10.0),
        read_timeout=timeout,
        # payload_signing_enabled=False: botocore would otherwise SHA-256 every
        # request body (always over http, and over https without a checksum
        # header), costing client and server CPU on each upload.  The body is
        # AEAD ciphertext our reader authenticates; the signature still covers
        # the method, key and headers.
        s3={"addressing_style": "auto" if virtual else "path", "payload_signing_enabled": False},
        # Every stored byte is already authenticated by our AEAD; extra CRCs
        # only break older S3-compatible servers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                          aws_secret_access_key=secret_key, aws_session_token=session_token,
                          config=config)


def _crc32(data: bytes) -> str:
    """The ``x-amz-checksum-crc32`` value of ``data``: base64 of the big-endian CRC32."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _code(exc: bexc.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: bexc.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)




__all__ = ["S3Backend", "parse_location"]
