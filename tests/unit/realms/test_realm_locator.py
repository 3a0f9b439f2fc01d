"""The version-3 locator (realms.md §9): strict parsing before any guess, MAC under K."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.crypto.keys import BackupKey
from strongroom.errors import FormatError
from strongroom.opaque import _group
from strongroom.realms.locator import RealmEntry, RealmLocator


def _point(n: int) -> bytes:
    return _group.scalar_mult_base(n.to_bytes(32, "little"))


def _locator(key: BackupKey) -> RealmLocator:
    realms = tuple(RealmEntry(f"https://realm{i}.example", _point(10 + i), i, _point(20 + i))
                   for i in (1, 2, 3))
    return RealmLocator("alice", "ab12", 2, _point(7), realms, 1_800_000_000).signed(key)


def test_round_trip_and_mac() -> None:
    key = BackupKey.generate()
    loc = _locator(key)
    again = RealmLocator.from_json(loc.to_json())
    assert again == loc
    again.verify(key)
    with pytest.raises(FormatError, match="does not authenticate"):
        again.verify(BackupKey.generate())


@pytest.mark.parametrize("field", ["account", "slot", "threshold", "created", "url", "share"])
def test_every_field_is_under_the_mac(field: str) -> None:
    key = BackupKey.generate()
    doc: dict[str, Any] = json.loads(_locator(key).to_json())
    if field == "threshold":
        doc["threshold"] = 3
    elif field == "created":
        doc["created"] += 1
    elif field == "url":
        doc["realms"][0]["url"] = "https://evil.example"
    elif field == "share":
        doc["realms"][1]["public_share"] = json.loads(_locator(key).to_json())["realms"][2][
            "public_share"]
    else:
        doc[field] = doc[field] + "x"
    with pytest.raises(FormatError):
        RealmLocator.from_json(json.dumps(doc).encode()).verify(key)


def _mutated(edit: Any) -> bytes:
    doc: dict[str, Any] = json.loads(_locator(BackupKey.generate()).to_json())
    edit(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("edit", [
    lambda d: d.update(threshold=1),                         # not a strict majority
    lambda d: d.update(threshold=True),                      # a boolean is no integer
    lambda d: d["realms"].append(dict(d["realms"][0], index=4)),  # a URL twice
    lambda d: d["realms"][0].update(index=2),                # indices out of order
    lambda d: d["realms"][0].update(public_share="A" * 43),  # the identity: no element
    lambda d: d["realms"][0].update(extra=1),                # unknown field
    lambda d: d.update(realms=[]),
    lambda d: d.update(slot="a/b"),
    lambda d: d.update(mac="AAAA"),
    lambda d: d.update(format="strongroom-vault-locator/2"),
], ids=["majority", "bool", "twice", "order", "identity", "extra", "empty", "slot", "mac",
        "format"])
def test_malformed_locators_are_format_errors(edit: Any) -> None:
    with pytest.raises(FormatError):
        RealmLocator.from_json(_mutated(edit))


def test_a_single_vault_reader_refuses_a_realm_set_locator() -> None:
    from strongroom.client.flows import VaultLocator

    with pytest.raises(FormatError, match="not a vault locator of this version"):
        VaultLocator.from_json(_locator(BackupKey.generate()).to_json())
