"""The realm vectors (docs/spec/realms.md §11): a deterministic register and recover over
three realms, every message in hex, replayed against ``docs/spec/realm-vectors.json``.

Regenerate only when the spec changes, in the same commit:
``STRONGROOM_WRITE_REALM_VECTORS=1 .venv/bin/python -m pytest tests/vault/test_realm_vectors.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from strongroom.crypto.keys import BackupKey
from strongroom.opaque import _group
from strongroom.realms import client as rc
from strongroom.realms import shamir
from strongroom.vault.params import KsfBounds

from .conftest import SMALL_KSF, DetRng
from .realm_helpers import ACCOUNT, realm_set

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "spec" / "realm-vectors.json"
PASSWORD = b"correct horse battery staple"
SLOT = "00112233445566778899aabbccddeeff"
CREATED = 1_800_000_000
THRESHOLD = 2
BOUNDS = KsfBounds(minimum={"memory_kib": 8, "iterations": 1, "parallelism": 1})


def run(tmp: Path) -> dict[str, Any]:
    """The whole deterministic run; returns the vector document."""
    key = BackupKey(DetRng(b"realm-vectors-K")(32))
    messages: list[dict[str, Any]] = []
    with realm_set(tmp, 3, seed=b"realm-vectors") as realms:
        clients = [r.client() for r in realms]
        reg = rc.register(clients, key, PASSWORD, account=ACCOUNT, slot=SLOT,
                          threshold=THRESHOLD, ksf=SMALL_KSF, rng=DetRng(b"realm-vectors-client"),
                          created=CREATED, trace=messages.append)
        got = rc.recover(reg.locator, clients, PASSWORD, bounds=BOUNDS,
                         rng=DetRng(b"realm-vectors-recover"), trace=messages.append)
        assert got.key.secret_bytes() == key.secret_bytes() and got.excluded == {}
        for c in clients:
            c.close()
        ids = [r.vault.server_public_key.hex() for r in realms]
        urls = [r.url for r in realms]
    # The client's randomness, drawn again in the order the spec's code draws it.
    rng = DetRng(b"realm-vectors-client")
    s = _group.random_scalar(rng)
    s_coeff = [_group.random_scalar(rng) for _ in range(THRESHOLD - 1)]
    e = _group.random_scalar(rng)
    e_coeff = [_group.random_scalar(rng) for _ in range(THRESHOLD - 1)]
    nonce = rng(12)
    r = _group.random_scalar(DetRng(b"realm-vectors-recover"))
    pw2 = rc.stretch(PASSWORD, ACCOUNT, SLOT, SMALL_KSF)
    n_elem = _group.scalar_mult(s, rc.hash_to_group(pw2))
    y = rc.finalize(pw2, n_elem)
    locator = json.loads(reg.locator.to_json())
    for entry, url in zip(locator["realms"], urls, strict=True):
        assert entry["url"] == url
        entry["url"] = f"realm-{entry['index']}"  # ports differ between runs
    for m in messages:
        if m["op"] == "register":
            m["request"]["ksf"] = dict(m["request"]["ksf"])
    return {
        "description": "docs/spec/realms.md §11: register and recover over 3 realms, k = 2; "
                       "randomness: SHA-512 counter mode over the seeds (tests/vault/conftest.py "
                       "DetRng); realm URLs replaced by realm-i in the locator (their MAC input "
                       "uses the real loopback URLs, so 'mac' is not reproducible here)",
        "inputs": {"password": PASSWORD.hex(), "account": ACCOUNT, "slot": SLOT,
                   "ksf": SMALL_KSF, "threshold": THRESHOLD, "created": CREATED,
                   "K": key.secret_bytes().hex(), "realm_ids": ids,
                   "client_seed": "realm-vectors-client", "recover_seed": "realm-vectors-recover"},
        "intermediate": {
            "salt": rc.salt(ACCOUNT, SLOT).hex(), "pw_stretched": pw2.hex(),
            "s": s.hex(), "s_coefficients": [a.hex() for a in s_coeff],
            "e": e.hex(), "e_coefficients": [a.hex() for a in e_coeff],
            "P": _group.scalar_mult_base(s).hex(), "N": n_elem.hex(), "y": y.hex(),
            "c_nonce": nonce.hex(), "blind_r": r.hex(),
            "M": _group.scalar_mult(r, rc.hash_to_group(pw2)).hex(),
            "lagrange_1_2": {str(i): v.hex() for i, v in shamir.lagrange_at_zero([1, 2]).items()},
        },
        "messages": messages,
        "locator": {k: v for k, v in locator.items() if k != "mac"},
    }


def test_realm_vectors_replay(tmp_path: Path) -> None:
    doc = run(tmp_path)
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if os.environ.get("STRONGROOM_WRITE_REALM_VECTORS") == "1":
        VECTORS.write_text(text)
    assert VECTORS.read_text() == text, "the realm vectors changed: spec first"
