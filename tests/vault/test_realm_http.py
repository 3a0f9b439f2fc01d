"""The realm endpoints over HTTP (docs/spec/realms.md §5) on both stores: authentication
first, errors as specified, malformed input never counted and never a 5xx."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.opaque import _group

from .conftest import SMALL_KSF, DetRng

SLOT = "5107"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _body(rng: DetRng) -> dict[str, Any]:
    s = _group.random_scalar(rng)
    return {"index": 1, "oprf_share": _b64(s), "public_share": _b64(_group.scalar_mult_base(s)),
            "unlock_tag": _b64(b"T" * 32), "key_share": _b64(_group.random_scalar(rng)),
            "wrapped_key": _b64(b"C" * 60),
            "proof_verifier": _b64(hashlib.sha256(b"P" * 32).digest()), "ksf": SMALL_KSF}


def _left(c: httpx.Client, auth: dict[str, str]) -> int:
    return int(c.get(f"/v1/accounts/alice/slots/{SLOT}/realm", headers=auth).json()
               ["attempts_left"])


def test_realm_endpoints_answer_as_specified(live: Any) -> None:
    server, auth_store = live
    alice = {"authorization": "Bearer " + auth_store.create_account("alice", DetRng(b"a"))}
    bob = {"authorization": "Bearer " + auth_store.create_account("bob", DetRng(b"b"))}
    base = f"/v1/accounts/alice/slots/{SLOT}/realm"
    m = _b64(_group.scalar_mult_base(_group.random_scalar(DetRng(b"m"))))
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post(f"{base}/evaluate", json={"blinded": m}, headers=alice).json()[
            "error"] == "not_registered"
        assert c.post(f"{base}/register", json=_body(DetRng(b"r")), headers=alice
                      ).status_code == 201
        assert c.post(f"{base}/evaluate", json={"blinded": m}).status_code == 401
        assert c.post(f"{base}/evaluate", json={"blinded": m}, headers=bob).status_code == 403
        assert c.post(f"{base}/evaluate", json={"blinded": m, "x": 1},
                      headers=alice).status_code == 400
        assert _left(c, alice) == 10  # none of the refused requests counted
        ok = c.post(f"{base}/evaluate", json={"blinded": m}, headers=alice)
        assert ok.status_code == 200 and ok.json()["attempts_left"] == 9
        wrong = c.post(f"{base}/unlock", json={"tag": _b64(b"X" * 32)}, headers=alice)
        assert wrong.status_code == 401 and wrong.json()["attempts_left"] == 9
        again = c.post(f"{base}/register", json=_body(DetRng(b"r2")), headers=alice)
        assert again.status_code == 403 and again.json()["error"] == "proof_required"
        rel = c.post(f"{base}/unlock", json={"tag": _b64(b"T" * 32)}, headers=alice)
        assert rel.status_code == 200 and rel.json()["wrapped_key"] == _b64(b"C" * 60)
        assert _left(c, alice) == 10
        assert c.request("DELETE", base, json={"proof": _b64(b"P" * 32)},
                         headers=alice).json() == {"deleted": True}


def test_a_staged_registration_and_its_commit_over_http(live: Any) -> None:
    """realms.md §4.3, §5: ``keep`` stages next to the kept registration, ``evaluate``
    picks one by ``public_share``, ``commit`` keeps one; bad input is a clear 4xx."""
    server, auth_store = live
    alice = {"authorization": "Bearer " + auth_store.create_account("alice", DetRng(b"a"))}
    base = f"/v1/accounts/alice/slots/{SLOT}/realm"
    m = _b64(_group.scalar_mult_base(_group.random_scalar(DetRng(b"m"))))
    proof = _b64(b"P" * 32)
    first, second = _body(DetRng(b"s1")), _body(DetRng(b"s2"))
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.post(f"{base}/register", json=first, headers=alice).status_code == 201
        staged = {**second, "proof": proof, "keep": first["public_share"]}
        assert c.post(f"{base}/register", json=staged, headers=alice).status_code == 201
        regs = c.get(base, headers=alice).json()["registrations"]
        assert [r["public_share"] for r in regs] == [first["public_share"],
                                                     second["public_share"]]
        other = _b64(_group.scalar_mult_base(_group.random_scalar(DetRng(b"o"))))
        miss = c.post(f"{base}/evaluate", json={"blinded": m, "public_share": other},
                      headers=alice)
        assert miss.status_code == 404 and miss.json()["error"] == "not_registered"
        assert c.post(f"{base}/evaluate", json={"blinded": m, "public_share": "x"},
                      headers=alice).status_code == 400
        assert _left(c, alice) == 10  # none of them counted
        for body in ({"public_share": second["public_share"]}, {"proof": proof},
                     {"public_share": "short", "proof": proof}):
            bad = c.post(f"{base}/commit", json=body, headers=alice)
            assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
        refused = c.post(f"{base}/commit", json={"public_share": second["public_share"],
                                                 "proof": _b64(b"Q" * 32)}, headers=alice)
        assert refused.status_code == 403 and refused.json()["error"] == "proof_required"
        assert c.post(f"{base}/commit", json={"public_share": other, "proof": proof},
                      headers=alice).status_code == 404
        ok = c.post(f"{base}/commit", json={"public_share": second["public_share"],
                                            "proof": proof}, headers=alice)
        assert ok.status_code == 200 and ok.json() == {"committed": True}
        regs = c.get(base, headers=alice).json()["registrations"]
        assert [r["public_share"] for r in regs] == [second["public_share"]]


def test_the_head_catch_up_over_http(live: Any) -> None:
    """realms.md §5, §8: ``POST …/realm/head`` with the record proof; bad input 4xx."""
    server, auth_store = live
    alice = {"authorization": "Bearer " + auth_store.create_account("alice", DetRng(b"a"))}
    base = f"/v1/accounts/alice/slots/{SLOT}"
    tag, proof = _b64(b"H" * 32), _b64(b"P" * 32)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        none = c.post(f"{base}/realm/head", json={"counter": 9, "tag": tag, "proof": proof},
                      headers=alice)
        assert none.status_code == 404 and none.json()["error"] == "not_registered"
        c.post(f"{base}/realm/register", json=_body(DetRng(b"r")), headers=alice)
        for bad in ({"counter": 9, "tag": tag}, {"counter": 0, "tag": tag, "proof": proof},
                    {"counter": True, "tag": tag, "proof": proof},
                    {"counter": 9, "tag": "short", "proof": proof}):
            r = c.post(f"{base}/realm/head", json=bad, headers=alice)
            assert r.status_code == 400 and r.json()["error"] == "bad_request", bad
        refused = c.post(f"{base}/realm/head",
                         json={"counter": 9, "tag": tag, "proof": _b64(b"Q" * 32)}, headers=alice)
        assert refused.status_code == 403 and refused.json()["error"] == "proof_required"
        ok = c.post(f"{base}/realm/head", json={"counter": 9, "tag": tag, "proof": proof},
                    headers=alice)
        assert ok.status_code == 200 and ok.json() == {"counter": 9, "tag": tag}
        assert c.get(f"{base}/head", headers=alice).json()["counter"] == 9
        back = c.post(f"{base}/realm/head", json={"counter": 3, "tag": tag, "proof": proof},
                      headers=alice)
        assert back.status_code == 409 and back.json()["error"] == "head_conflict"
        assert back.json()["counter"] == 9


_junk = st.one_of(st.none(), st.integers(), st.text(max_size=60),
                  st.binary(max_size=70).map(_b64), st.lists(st.integers(), max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(["evaluate", "unlock", "register", "commit"]),
       body=st.dictionaries(st.sampled_from(["blinded", "tag", "index", "oprf_share",
                                             "public_share", "unlock_tag", "key_share",
                                             "wrapped_key", "proof_verifier", "ksf", "proof",
                                             "keep"]),
                            _junk, max_size=9))
def test_malformed_realm_requests_are_4xx_and_never_counted(live: Any, op: str,
                                                            body: dict[str, Any]) -> None:
    server, auth_store = live
    alice = {"authorization": "Bearer " + auth_store.create_account("alice", DetRng(b"a"))}
    base = f"/v1/accounts/alice/slots/{SLOT}/realm"
    with httpx.Client(base_url=server.url, timeout=10) as c:
        if c.get(base, headers=alice).json()["exists"] is False:
            c.post(f"{base}/register", json=_body(DetRng(b"r")), headers=alice)
        before = _left(c, alice)
        r = c.post(f"{base}/{op}", json=body, headers=alice)
        assert 400 <= r.status_code < 500 or r.status_code in (200, 201), r.text
        if r.status_code >= 400:
            assert set(r.json()) >= {"error", "message"}
            assert _left(c, alice) == before
        if op == "evaluate" and r.status_code == 200:
            assert _left(c, alice) == before - 1
            c.post(f"{base}/unlock", json={"tag": _b64(b"T" * 32)}, headers=alice)
