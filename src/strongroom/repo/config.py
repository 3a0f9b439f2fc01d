"""The plaintext ``config`` object: format version, repository id, parameters, key check.

It is the only object a storage provider can read.  It is JSON (UTF-8), small,
and holds nothing secret: the key-check value is an HKDF output under its own
label, which reveals nothing about K or any other subkey.  Every field is
authenticated by ``mac``, an HMAC-SHA256 under a key derived from the
repository key RK, so a provider cannot change parameters unnoticed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..crypto import labels
from ..crypto.hashing import equal, hmac_sha256
from ..crypto.keys import BackupKey
from ..errors import (
    DataDamaged,
    FormatError,
    ObjectNotFound,
    RepositoryNotFound,
    UnsupportedVersion,
    UsageError,
    WrongKey,
)
from ..storage.base import Backend
from .sealed import CONFIG_MAX, fetch_capped, json_hex, json_int, strict_json

CONFIG_NAME = "config"
FORMAT_NAME = "strongroom-repository"
#: Version 2 pads index and snapshot objects (spec §15); version 1 repositories are
#: read and written as before (their objects unpadded, so older clients still read them).
MAJOR_VERSION = 2
MINOR_VERSION = 1


@dataclass(frozen=True)
class ChunkerParams:
    """Chunking parameters fixed at repository creation (dedup depends on them)."""

    cdc_min: int = 256 * 1024
    cdc_avg: int = 1024 * 1024
    cdc_max: int = 4 * 1024 * 1024
    media_piece: int = 4 * 1024 * 1024
    sqlite_pages_per_blob: int = 1
    frame_target: int = 128 * 1024
    pack_target: int = 4 * 1024 * 1024

    def validate(self) -> None:
        """Raise ``FormatError`` unless every parameter is sane."""
        ok = (64 <= self.cdc_min <= self.cdc_avg <= self.cdc_max <= 1 << 26
              and 4096 <= self.media_piece <= 1 << 28 and 1 <= self.sqlite_pages_per_blob <= 64
              and 1024 <= self.frame_target <= 1 << 24 and 4096 <= self.pack_target <= 1 << 30)
        if not ok:
            raise FormatError("config: chunker parameters out of range")

    def validate_new(self) -> None:
        """Also within what the FastCDC implementation accepts (spec §10); ``UsageError``.

        Checked when a repository is made: a reader still opens any config that
        :meth:`validate` accepts (restore needs no chunker), but a backup into a
        repository whose CDC parameters the chunker refuses could not run.
        """
        try:
            self.validate()
        except FormatError:
            raise UsageError("chunker parameters out of range (docs/spec/backup-format.md "
                             "§3)") from None
        if not (64 <= self.cdc_min <= 1 << 20 and 256 <= self.cdc_avg <= 4 << 20
                and 1024 <= self.cdc_max <= 16 << 20):
            raise UsageError("FastCDC needs 64 B <= cdc_min <= 1 MiB, 256 B <= cdc_avg <= "
                             "4 MiB and 1 KiB <= cdc_max <= 16 MiB (docs/spec/backup-format.md "
                             "§10)")


def repository_key(key: BackupKey, repo_id: bytes) -> BackupKey:
    """RK = HKDF(K, salt = repository id, "strongroom/v1/repository")."""
    return BackupKey.from_bytes(key.derive(labels.REPOSITORY, salt=repo_id))


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes the config MAC covers: every field but ``mac``, sorted, compact JSON."""
    body = {k: v for k, v in doc.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def config_mac(repo_key: BackupKey, doc: dict[str, Any]) -> str:
    """HMAC-SHA256 (hex) of the canonical config under HKDF(RK, "strongroom/v1/config")."""
    return hmac_sha256(repo_key.derive(labels.CONFIG), canonical(doc)).hex()


@dataclass(frozen=True)
class Config:
    """The parsed plaintext config (``doc`` is the whole JSON object, as stored)."""

    version: int
    minor: int
    repo_id: bytes
    keycheck: bytes
    created: int
    chunker: ChunkerParams
    doc: dict[str, Any] = field(default_factory=dict, compare=False)
    #: The bytes it was parsed from (None for a config made in memory).
    raw: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def padded(self) -> bool:
        """Whether index and snapshot objects are padded (format version 2 on)."""
        return self.version >= 2

    def to_public(self) -> dict[str, Any]:
        """The JSON form, also what ``Repository.public_config`` returns."""
        return dict(self.doc)

    def encode(self) -> bytes:
        """Serialize as stored."""
        return json.dumps(self.doc, indent=1, sort_keys=True).encode() + b"\n"

    def authenticate(self, key: BackupKey) -> BackupKey:
        """Check K (``WrongKey``), then every field (``DataDamaged``); return RK.

        Both comparisons are constant time.  The key check comes first so that a
        wrong key is never reported as damage.
        """
        if not equal(key.keycheck(self.repo_id), self.keycheck):
            raise WrongKey()
        repo_key = repository_key(key, self.repo_id)
        mac = self.doc.get("mac")
        if not isinstance(mac, str) or not equal(config_mac(repo_key, self.doc), mac):
            raise DataDamaged("config has been changed since the repository was created")
        if self.raw is not None and not equal(self.raw, self.encode()):
            # Same fields, other bytes (whitespace, key order, escapes): harmless in
            # itself, but a change all the same, and a tamper check must see every one.
            raise DataDamaged("config has been changed since the repository was created "
                              "(its bytes are not in the form Strongroom writes)")
        return repo_key


def new_config(key: BackupKey, repo_id: bytes, created: float,
               chunker: ChunkerParams | None = None) -> Config:
    """The config of a new repository made with ``key``."""
    params = chunker or ChunkerParams()
    params.validate_new()
    doc: dict[str, Any] = {
        "format": FORMAT_NAME, "version": MAJOR_VERSION, "minor": MINOR_VERSION,
        "id": repo_id.hex(), "created": int(created), "keycheck": key.keycheck(repo_id).hex(),
        "chunker": dict(vars(params)),
    }
    doc["mac"] = config_mac(repository_key(key, repo_id), doc)
    return Config(MAJOR_VERSION, MINOR_VERSION, repo_id, key.keycheck(repo_id), int(created),
                  params, doc)


def parse_config(data: bytes) -> Config:
    """Parse a stored config; ``UnsupportedVersion`` for a newer major, ``FormatError`` else.

    The provider can write this object, so every field is checked for type and
    range before use (spec §1, "JSON documents"): no value of a wrong type, ``NaN``/``Infinity`` or
    out-of-range number gets further than a ``FormatError``.
    """
    what = "config"
    doc = strict_json(data, what, CONFIG_MAX)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise FormatError("config: not a Strongroom repository config")
    version = json_int(doc, "version", what, 1)
    # Checked before anything else: a newer format may change every other field.
    if version > MAJOR_VERSION:
        raise UnsupportedVersion(
            f"this repository uses format version {version}; this Strongroom reads "
            f"versions 1 to {MAJOR_VERSION}")
    params = doc.get("chunker")
    if not isinstance(params, dict):
        raise FormatError("config: field 'chunker' is not an object")
    known = ChunkerParams.__dataclass_fields__
    # A newer minor version may add fields; unknown ones are ignored (but MAC'd).
    chunker = ChunkerParams(**{k: json_int(params, k, what, 0, 1 << 40)
                               for k in params if k in known})
    chunker.validate()
    repo_id, keycheck = json_hex(doc, "id", what, 16), json_hex(doc, "keycheck", what, 32)
    minor = json_int(doc, "minor", what, 0, 1 << 31) if "minor" in doc else 0
    return Config(version, minor, repo_id, keycheck, json_int(doc, "created", what),
                  chunker, doc, bytes(data))


def read_config(backend: Backend) -> Config:
    """Fetch and parse the config; ``RepositoryNotFound`` if there is none."""
    try:
        data = fetch_capped(backend, CONFIG_NAME, CONFIG_MAX)
    except ObjectNotFound:
        raise RepositoryNotFound(f"no Strongroom repository at {backend.location}") from None
    return parse_config(data)
