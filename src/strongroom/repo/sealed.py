"""Sealed objects: index, snapshot and lock objects share one envelope.

Layout (see the spec, "Sealed object")::

    magic (4) | salt (32) | AES-256-GCM(nonce 0, plaintext, aad = magic || name)

Binding the object name into the AAD means a swapped or renamed object fails
authentication instead of being read as another one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from ..crypto.aead import SALT_SIZE, TAG_SIZE, ObjectCipher
from ..crypto.keys import BackupKey
from ..errors import DataDamaged, FormatError
from ..storage.base import Backend
from .pack import padme

Rng = Callable[[int], bytes]
_H32 = re.compile(r"^[0-9a-f]{32}$")


def named_objects(names: Iterable[str], prefix: str) -> list[str]:
    """The names ``<prefix><32 lowercase hex>``; anything else there is ignored (spec §1)."""
    return sorted(n for n in names if n.startswith(prefix) and _H32.match(n[len(prefix):]))


#: Bytes a sealed object adds to its plaintext: magic, salt, tag.
OVERHEAD = 4 + SALT_SIZE + TAG_SIZE


def seal_object(key: BackupKey, label: bytes, magic: bytes, name: str, plaintext: bytes,
                rng: Rng) -> bytes:
    """Encrypt ``plaintext`` as the object ``name`` under a fresh per-object key."""
    salt = rng(SALT_SIZE)
    cipher = ObjectCipher(key, label, salt)
    return magic + salt + cipher.seal(0, plaintext, magic + name.encode())


def open_object(key: BackupKey, label: bytes, magic: bytes, name: str, data: bytes) -> bytes:
    """Decrypt the object ``name``; ``FormatError``/``DataDamaged`` if it is not genuine."""
    if len(data) < len(magic) + SALT_SIZE + TAG_SIZE or data[: len(magic)] != magic:
        raise FormatError(f"{name}: not a Strongroom object of the expected kind")
    salt = data[len(magic) : len(magic) + SALT_SIZE]
    cipher = ObjectCipher(key, label, salt)
    return cipher.open(0, data[len(magic) + SALT_SIZE :], magic + name.encode(), name)


# -- bounded reads and strict JSON (spec §1, "Size caps" and "JSON documents") ---------

#: Size caps of the objects read whole (spec §1).  Each is checked with ``stat`` before
#: anything is downloaded, and the read itself asks for at most one byte more.
CONFIG_MAX = 64 * 1024
LOCK_MAX = 64 * 1024
SNAPSHOT_MAX = 16 * 1024 * 1024
INDEX_MAX = 64 * 1024 * 1024
#: A JSON document nests at most this deep (a snapshot needs 2, a config 2, a lock 1).
JSON_MAX_DEPTH = 8
#: Smallest stored size of a padded sealed object (index, snapshot): below it every
#: object is the same size, so a small day's counts are not visible at all.
PAD_FLOOR = 4096


def fetch_capped(backend: Backend, name: str, cap: int) -> bytes:
    """The whole object ``name`` if it is at most ``cap`` bytes; ``DataDamaged`` if larger.

    The size is asked first (``stat``), so a huge object is refused without reading
    it; the read then asks for ``cap + 1`` bytes at most, so an object replaced by a
    larger one in between is refused too.  ``ObjectNotFound`` passes through.
    """
    size = backend.stat(name).size
    if size > cap:
        raise DataDamaged(f"{name} is {size} bytes, more than the {cap} bytes an object of "
                          "its kind may have; it was not read")
    data = backend.get_range(name, 0, cap + 1)
    if len(data) > cap:
        raise DataDamaged(f"{name} is more than the {cap} bytes an object of its kind may "
                          "have; it was not read")
    return data


def padded_length(unpadded: int) -> int:
    """Stored size of a padded sealed object whose unpadded stored size is ``unpadded``."""
    return padme(max(unpadded, PAD_FLOOR))


def _refuse_constant(name: str) -> Any:
    raise FormatError(f"JSON constant {name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise FormatError("JSON number out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise FormatError("JSON object with a repeated key")
    return out


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if chr(c) not in "[]{}")


def strict_json(data: bytes, what: str, cap: int) -> Any:
    """Parse a JSON document the provider (or a key holder) wrote; ``FormatError`` if unfit.

    Refused: more than ``cap`` bytes, invalid UTF-8, nesting deeper than
    ``JSON_MAX_DEPTH`` (measured before parsing), ``NaN``/``Infinity`` and numbers
    that overflow to them, integers of more digits than Python converts, repeated keys.
    """
    if len(data) > cap:
        raise FormatError(f"{what}: larger than {cap} bytes")
    brackets = _STRINGS.sub(b"", bytes(data)).translate(None, _NOT_BRACKETS)
    depth = 0
    for c in brackets:
        depth += 1 if c in b"[{" else -1
        if depth > JSON_MAX_DEPTH:
            raise FormatError(f"{what}: nested deeper than {JSON_MAX_DEPTH} levels")
    try:
        return json.loads(bytes(data).decode("utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite_float, object_pairs_hook=_no_duplicates)
    except FormatError as exc:
        raise FormatError(f"{what}: {exc.message}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, digits
        raise FormatError(f"{what}: not valid JSON") from exc


def json_int(doc: dict[str, Any], key: str, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """``doc[key]`` as an integer in ``[lo, hi]`` (``true``/``false`` are not integers)."""
    v = doc.get(key)
    if type(v) is not int or not lo <= v <= hi:
        raise FormatError(f"{what}: field {key!r} is not an integer in [{lo}, {hi}]")
    return v


def json_number(doc: dict[str, Any], key: str, what: str, lo: float, hi: float) -> float:
    """``doc[key]`` as a finite number in ``[lo, hi]``."""
    v = doc.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
        raise FormatError(f"{what}: field {key!r} is not a number in [{lo}, {hi}]")
    return float(v)


def json_str(doc: dict[str, Any], key: str, what: str, max_len: int = 4096) -> str:
    """``doc[key]`` as a string of at most ``max_len`` characters."""
    v = doc.get(key)
    if type(v) is not str or len(v) > max_len:
        raise FormatError(f"{what}: field {key!r} is not a string of at most {max_len} "
                          "characters")
    return v


def json_bool(doc: dict[str, Any], key: str, what: str) -> bool:
    """``doc[key]`` as ``true``/``false``."""
    v = doc.get(key)
    if type(v) is not bool:
        raise FormatError(f"{what}: field {key!r} is not true or false")
    return v


def json_hex(doc: dict[str, Any], key: str, what: str, size: int) -> bytes:
    """``doc[key]`` as exactly ``size`` bytes written in lowercase hex."""
    v = doc.get(key)
    if type(v) is not str or len(v) != 2 * size or not _HEX.match(v):
        raise FormatError(f"{what}: field {key!r} is not {size} bytes of hex")
    return bytes.fromhex(v)


_HEX = re.compile(r"^[0-9a-f]*$")
