"""The version-3 vault locator: a realm set (``docs/spec/realms.md`` §9).

``ext/vault.json`` names the realms (URL, realm id, Shamir index, public
share), the threshold, the OPRF public key ``P``, the account and the slot,
with a MAC under a key from K.  Before K is known it is only as trustworthy
as storage: a substituted share makes an honest realm's answer look wrong
(recovery fails), never makes a wrong answer open K.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field, replace

from ..crypto.hashing import equal, hmac_sha256
from ..crypto.keys import BackupKey
from ..errors import FormatError, ObjectNotFound, ProtocolError
from ..storage.base import Backend
from ..vault.sealing import derive, frame
from . import labels

LOCATOR = "ext/vault.json"
FORMAT = "strongroom-vault-locator/3"
LOCATOR_CAP = 64 * 1024
_SLOT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class RealmEntry:
    """One realm of the set: where it is, who it is, its index and public share ``P_i``."""

    url: str
    realm_id: bytes
    index: int
    public_share: bytes


@dataclass(frozen=True)
class RealmLocator:
    """Which realms hold this repository's key, and the public values recovery checks."""

    account: str
    slot: str
    threshold: int
    public_key: bytes
    realms: tuple[RealmEntry, ...]
    created: int = 0
    mac: bytes | None = field(default=None, repr=False)

    def _mac_input(self) -> bytes:
        parts = [labels.LOCATOR_MAC, FORMAT.encode(), self.account.encode(), self.slot.encode(),
                 bytes([self.threshold]), self.public_key, self.created.to_bytes(8, "big"),
                 bytes([len(self.realms)])]
        for r in self.realms:
            parts += [r.url.encode(), r.realm_id, bytes([r.index]), r.public_share]
        return frame(*parts)

    def _mac(self, key: BackupKey) -> bytes:
        return hmac_sha256(derive(key.secret_bytes(), labels.LOCATOR_MAC), self._mac_input())

    def signed(self, key: BackupKey) -> RealmLocator:
        """This locator with its MAC under ``HKDF(K, LOCATOR_MAC)``."""
        return replace(self, mac=self._mac(key))

    def verify(self, key: BackupKey) -> None:
        """``FormatError`` unless the MAC verifies under K (constant-time compare)."""
        if self.mac is None or not equal(self.mac, self._mac(key)):
            raise FormatError(f"{LOCATOR} does not authenticate under this backup's key: the "
                              "storage provider (or someone with write access) altered it",
                              hint="open it with the 64-digit key, turn the password off and "
                                   "enable a new one")

    def to_json(self) -> bytes:
        """The bytes of ``ext/vault.json`` (sign first)."""
        if self.mac is None:
            raise ValueError("sign the locator before writing it")
        doc = {"format": FORMAT, "account": self.account, "slot": self.slot,
               "threshold": self.threshold, "public_key": _b64e(self.public_key),
               "created": self.created, "mac": _b64e(self.mac),
               "realms": [{"url": r.url, "realm_id": _b64e(r.realm_id), "index": r.index,
                           "public_share": _b64e(r.public_share)} for r in self.realms]}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> RealmLocator:
        """Parse strictly (realms.md §9); ``FormatError`` before anything is sent."""
        from ..repo.sealed import json_int, json_str, strict_json
        from .shamir import MAX_REALMS  # with libsodium's group code: only for a locator

        what = LOCATOR
        d = strict_json(data, what, LOCATOR_CAP)
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise FormatError(f"{what} is not a realm-set locator")
        account, slot = json_str(d, "account", what, 128), json_str(d, "slot", what, 64)
        if not _SLOT.match(slot):
            raise FormatError(f"{what}: the slot id is malformed")
        raw = d.get("realms")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_REALMS:
            raise FormatError(f"{what}: 'realms' must list 1 to {MAX_REALMS} realms")
        n = len(raw)
        threshold = json_int(d, "threshold", what, 1, MAX_REALMS)
        if not n // 2 < threshold <= n:
            raise FormatError(f"{what}: the threshold is not a strict majority of the realms")
        realms = []
        for pos, r in enumerate(raw, start=1):
            if not isinstance(r, dict) or set(r) != {"url", "realm_id", "index", "public_share"}:
                raise FormatError(f"{what}: realm {pos} is malformed")
            index = json_int(r, "index", what, 1, MAX_REALMS)
            if index != pos:
                raise FormatError(f"{what}: realm indices must be 1..n in order")
            realms.append(RealmEntry(json_str(r, "url", what, 2048),
                                     _element(json_str(r, "realm_id", what, 64), what),
                                     index, _element(json_str(r, "public_share", what, 64), what)))
        if len({r.url for r in realms}) != n:
            raise FormatError(f"{what}: a realm is listed twice")
        mac = _b64d(json_str(d, "mac", what, 64), what)
        if len(mac) != 32:
            raise FormatError(f"{what}: the MAC is not 32 bytes")
        return cls(account, slot, threshold, _element(json_str(d, "public_key", what, 64), what),
                   tuple(realms), json_int(d, "created", what, 0, 2**63 - 1), mac)


def read_realm_locator(backend: Backend) -> RealmLocator | None:
    """The repository's realm-set locator; None if there is none or it names one vault."""
    from ..repo.sealed import fetch_capped, strict_json

    try:
        data = fetch_capped(backend, LOCATOR, LOCATOR_CAP)
    except ObjectNotFound:
        return None
    doc = strict_json(data, LOCATOR, LOCATOR_CAP)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    return RealmLocator.from_json(data)


def _element(text: str, what: str) -> bytes:
    # Imported here: libsodium's group code is needed to read a realm locator, not to
    # learn that a repository has none (every command opening a repository asks).
    from ..opaque import _group

    raw = _b64d(text, what)
    try:
        return _group.deserialize_element(raw)
    except ProtocolError:
        raise FormatError(f"{what}: a key or public share is not a group element") from None


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64d(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise FormatError(f"{what}: a field is not base64url") from None


__all__ = ["FORMAT", "LOCATOR", "RealmEntry", "RealmLocator", "read_realm_locator"]
