"""The client side of threshold realms (``docs/spec/realms.md``): register, recover,
delete, status and the threshold backup head.

The client does all the combining; realms never talk to each other.  Every
request of one round goes to all realms in parallel (one thread per realm).
All randomness is drawn from ``rng`` in the calling thread, in a fixed order,
so a run with fixed randomness is reproducible (the vectors of §11).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pysodium
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ..client.vault_client import VaultClient
from ..crypto.keys import BackupKey
from ..errors import (
    AttemptsExhausted,
    FormatError,
    InvalidLogin,
    ProtocolError,
    RealmsUnavailable,
    ServerKeyMismatch,
    StrongroomError,
    UsageError,
    VaultError,
    VaultProtocolError,
)
from ..opaque import _group, dleq, oprf
from ..opaque._kdf import sha512
from ..vault import labels as vault_labels
from ..vault.params import KsfBounds, encode_ksf
from ..vault.sealing import derive, frame
from . import labels, shamir
from .locator import RealmEntry, RealmLocator

Rng = Callable[[int], bytes]
#: Receives one dict per message (realm index, operation, request and answer, binary as hex).
#: For the vectors and tests only: a register message holds shares and the record proof.
Trace = Callable[[dict[str, Any]], None]
T = TypeVar("T")

_H2G_DST = b"HashToGroup-" + oprf.context_string(dleq.MODE_VOPRF)
_B = _group.scalar_mult_base((1).to_bytes(32, "little"))
_BINARY = {"oprf_share", "public_share", "unlock_tag", "key_share", "wrapped_key",
           "proof_verifier", "proof", "blinded", "evaluation", "tag", "server_public_key"}


# -- the formulas of realms.md §3 -----------------------------------------------------------

def salt(account: str, slot: str) -> bytes:
    """``SHA-256(frame(SALT, account, slot))[0:16]``."""
    return hashlib.sha256(frame(labels.SALT, account.encode(), slot.encode())).digest()[:16]


def stretch(password: bytes, account: str, slot: str, ksf: Mapping[str, int]) -> bytes:
    """``pw' = Argon2id(password, salt, ksf)``, 64 bytes (libsodium for one lane)."""
    m, t, p = ksf["memory_kib"], ksf["iterations"], ksf["parallelism"]
    if p == 1 and m * 1024 <= pysodium.crypto_pwhash_MEMLIMIT_MAX:
        return bytes(pysodium.crypto_pwhash(64, password, salt(account, slot), t, m * 1024,
                                            pysodium.crypto_pwhash_ALG_ARGON2ID13))
    return Argon2id(salt=salt(account, slot), length=64, iterations=t, lanes=p,
                    memory_cost=m).derive(password)


def hash_to_group(pw2: bytes) -> bytes:
    """RFC 9497 HashToGroup with the VOPRF context string."""
    return oprf.hash_to_group(pw2, _H2G_DST)


def finalize(pw2: bytes, n: bytes) -> bytes:
    """``y = SHA-512(I2OSP(len(pw'), 2) || pw' || I2OSP(32, 2) || N || "Finalize")``."""
    return sha512(len(pw2).to_bytes(2, "big") + pw2 + len(n).to_bytes(2, "big") + n + b"Finalize")


def unlock_tag(y: bytes, realm_id: bytes, account: str, slot: str, index: int) -> bytes:
    """``HMAC(HKDF(y, UNLOCK_KEY), frame(UNLOCK_TAG, rid_i, account, slot, u8(idx_i)))``."""
    key = derive(y, labels.UNLOCK_KEY)
    msg = frame(labels.UNLOCK_TAG, realm_id, account.encode(), slot.encode(), bytes([index]))
    return hmac.new(key, msg, hashlib.sha256).digest()


def encryption_key(y: bytes, e: bytes) -> bytes:
    """``k_enc = HKDF(frame(HKDF(y, WRAP), e), K_ENC)``."""
    return derive(frame(derive(y, labels.WRAP), e), labels.K_ENC)


def _k_ad(account: str, slot: str) -> bytes:
    return frame(labels.K_ENC, account.encode(), slot.encode())


def encrypt_key(y: bytes, e: bytes, key: BackupKey, account: str, slot: str, rng: Rng) -> bytes:
    """``c = AEAD(k_enc, K, ad = frame(K_ENC, account, slot))``: nonce || ct || tag."""
    nonce = rng(12)
    return nonce + AESGCM(encryption_key(y, e)).encrypt(nonce, key.secret_bytes(),
                                                          _k_ad(account, slot))


def decrypt_key(y: bytes, e: bytes, c: bytes, account: str, slot: str) -> BackupKey | None:
    """K from ``c``, or None if it does not open."""
    if len(c) < 12 + 16:
        return None
    try:
        raw = AESGCM(encryption_key(y, e)).decrypt(c[:12], c[12:], _k_ad(account, slot))
    except InvalidTag:
        return None
    try:
        return BackupKey.from_bytes(raw)
    except ValueError:
        return None


def record_proof(key: BackupKey, account: str) -> bytes:
    """vault-protocol §5's record proof (the realms keep its SHA-256)."""
    return derive(key.secret_bytes(), vault_labels.RECORD_PROOF + b"\x00" + account.encode())


def guess_bound(n: int, k: int, f: int, limit: int) -> int:
    """realms.md §7: ``⌊(n − f)·limit / (k − f)⌋`` candidates for ``f < k`` compromised realms."""
    if not 0 <= f < k <= n:
        raise ValueError("need 0 <= f < k <= n")
    return (n - f) * limit // (k - f)


# -- results --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecoveryResult:
    """K, and the realms recovery left out (URL: reason), e.g. to repair them."""

    key: BackupKey
    excluded: dict[str, str] = field(default_factory=dict)
    #: Realms still holding a second registration next to this locator's (a change that
    #: did not finish there): :func:`commit` drops it.
    unfinished: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<RecoveryResult excluded={sorted(self.excluded)}>"


@dataclass(frozen=True)
class RegistrationResult:
    """The signed locator and the realms that did not accept (URL: reason)."""

    locator: RealmLocator
    missed: dict[str, str] = field(default_factory=dict)


# -- helpers --------------------------------------------------------------------------------

def _parallel(fn: Callable[[int], T], indices: Sequence[int]) -> dict[int, T | StrongroomError]:
    """``fn(i)`` for each index at once; a Strongroom error is returned, not raised."""
    def run(i: int) -> T | StrongroomError:
        try:
            return fn(i)
        except StrongroomError as exc:
            return exc

    if not indices:
        return {}
    with ThreadPoolExecutor(max_workers=len(indices)) as pool:
        return dict(zip(indices, pool.map(run, indices), strict=True))


def _hexdoc(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if k in _BINARY and isinstance(v, str):
            out[k] = base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)).hex()
        else:
            out[k] = v
    return out


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64d(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise VaultProtocolError(f"the realm's {what} is missing")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise VaultProtocolError(f"the realm's {what} is not base64url") from None


def _reason(exc: StrongroomError) -> str:
    return f"{type(exc).__name__}: {exc.message}"


def realm_id(client: VaultClient, pin: bytes | None) -> bytes:
    """The realm's id (its ``GET /v1/info`` key); ``ServerKeyMismatch`` if not ``pin``."""
    rid = _b64d(client.info().get("server_public_key"), "public key")
    if len(rid) != 32:
        raise VaultProtocolError("the realm's public key is not 32 bytes")
    if pin is not None and not hmac.compare_digest(rid, pin):
        raise ServerKeyMismatch(f"the realm at {client.url} presents another public key than "
                                "the one configured: it may be an impostor",
                                hint="check the realm's address and the key given for it")
    return rid


def check_pins(loc: RealmLocator, pins: Mapping[str, bytes | None]) -> None:
    """``ServerKeyMismatch`` before any request if the locator names, for a realm whose key
    is configured (URL → key), another realm id: storage, or a realm, was swapped."""
    for r in loc.realms:
        pin = pins.get(r.url)
        if pin is not None and not hmac.compare_digest(pin, r.realm_id):
            raise ServerKeyMismatch(
                f"this repository names, for the realm at {r.url}, another public key than "
                "the one configured; nothing was sent",
                hint="the repository's vault locator may have been tampered with, or the key "
                     "given for that realm is not its key")


def _unavailable(what: str, failures: Mapping[str, str]) -> RealmsUnavailable:
    lines = [f"{url}: {why}" for url, why in sorted(failures.items())]
    return RealmsUnavailable(what + ("; " + "; ".join(lines) if lines else ""), failures=lines)


# -- register -------------------------------------------------------------------------------

def register(clients: Sequence[VaultClient], key: BackupKey, password: bytes, *, account: str,
             slot: str, threshold: int, ksf: Mapping[str, int], rng: Rng, created: int,
             register_threshold: int | None = None, pins: Sequence[bytes | None] | None = None,
             known_ids: Sequence[bytes | None] | None = None,
             keep: Sequence[bytes] | None = None,
             trace: Trace | None = None) -> RegistrationResult:
    """Share a fresh OPRF key and encryption scalar over ``clients`` (realms.md §4.1).

    ``keep`` (a password change, §4.3): each realm's public share in the current
    locator; the new registration is then *staged* next to that one, which stays
    usable until :func:`commit`.

    Raises ``RealmsUnavailable`` before sending anything if fewer than
    ``register_threshold`` (default all) realms can be reached, and after if
    fewer than ``threshold`` accepted; otherwise the locator is returned and
    the realms that missed it are in ``missed`` (the caller decides whether
    that is enough).
    """
    n = len(clients)
    if not 1 <= n <= shamir.MAX_REALMS or not n // 2 < threshold <= n:
        raise UsageError(f"1 to {shamir.MAX_REALMS} realms with a threshold that is a strict "
                         "majority of them (n/2 < k <= n)")
    need = n if register_threshold is None else register_threshold
    if not threshold <= need <= n:
        raise UsageError("register_threshold must be between the threshold and the number of realms")
    pins = list(pins) if pins is not None else [None] * n
    known = list(known_ids) if known_ids is not None else [None] * n
    pin_or_known = [p if p is not None else q for p, q in zip(pins, known, strict=True)]
    idx = list(range(1, n + 1))
    ids = _parallel(lambda i: realm_id(clients[i - 1], pin_or_known[i - 1]), idx)
    rids: dict[int, bytes] = {}
    unreachable: dict[str, str] = {}
    for i, r in ids.items():
        if isinstance(r, bytes):
            rids[i] = r
        elif isinstance(r, (VaultProtocolError, ServerKeyMismatch)):
            raise r  # an impostor, or not a vault: stop before anything is sent
        elif known[i - 1] is not None:
            rids[i] = known[i - 1]  # type: ignore[assignment]  # down now: its id is known
            unreachable[clients[i - 1].url] = _reason(r)
        else:
            unreachable[clients[i - 1].url] = _reason(r)
    if len(rids) < n or n - len(unreachable) < need:
        if n - len(unreachable) < need:
            raise _unavailable("too few realms can be reached to register; nothing was sent",
                               unreachable)
        raise _unavailable("not every realm could be reached before registering", unreachable)
    # Randomness in a fixed order (the vectors): s, its polynomial, e, its polynomial, c's nonce.
    s = _group.random_scalar(rng)
    s_shares = shamir.split(s, n, threshold, rng)
    e = _group.random_scalar(rng)
    e_shares = shamir.split(e, n, threshold, rng)
    pw2 = stretch(password, account, slot, ksf)
    y = finalize(pw2, _group.scalar_mult(s, hash_to_group(pw2)))
    c = encrypt_key(y, e, key, account, slot, rng)
    proof = record_proof(key, account)
    entries = tuple(RealmEntry(clients[i - 1].url, rids[i], i,
                               _group.scalar_mult_base(s_shares[i])) for i in idx)
    bodies = {i: {"index": i, "oprf_share": _b64e(s_shares[i]),
                  "public_share": _b64e(entries[i - 1].public_share),
                  "unlock_tag": _b64e(unlock_tag(y, rids[i], account, slot, i)),
                  "key_share": _b64e(e_shares[i]), "wrapped_key": _b64e(c),
                  "proof_verifier": _b64e(hashlib.sha256(proof).digest()),
                  "proof": _b64e(proof), "ksf": dict(ksf)} for i in idx}
    if keep is not None:
        for i in idx:
            bodies[i]["keep"] = _b64e(keep[i - 1])
    answers = _parallel(lambda i: clients[i - 1].for_slot(slot).realm_register(bodies[i]), idx)
    if trace is not None:
        for i in idx:
            a = answers[i]
            trace({"realm": i, "op": "register", "request": _hexdoc(bodies[i]),
                   "response": a if isinstance(a, dict) else {"error": _reason(a)}})
    missed = {clients[i - 1].url: _reason(a) for i, a in answers.items()
              if isinstance(a, StrongroomError)}
    loc = RealmLocator(account, slot, threshold, _group.scalar_mult_base(s), entries,
                       created).signed(key)
    if n - len(missed) < threshold:
        raise _unavailable(f"fewer than {threshold} realms accepted the registration", missed)
    return RegistrationResult(loc, missed)


# -- recover --------------------------------------------------------------------------------

def _match(loc: RealmLocator, clients: Sequence[VaultClient]) -> dict[int, VaultClient]:
    """The configured client of each realm of the locator, by URL (``UsageError`` if one is
    configured for another account than the locator's)."""
    by_url = {c.url: c for c in clients}
    for r in loc.realms:
        c = by_url.get(r.url)
        if c is not None and c.account != loc.account:
            raise UsageError(f"the realm at {r.url} is configured for account {c.account}, but "
                             f"this backup belongs to account {loc.account}")
    return {r.index: by_url[r.url].for_slot(loc.slot) for r in loc.realms if r.url in by_url}


def recover(loc: RealmLocator, clients: Sequence[VaultClient], password: bytes, *,
            bounds: KsfBounds, rng: Rng, confirm_last: Callable[[], bool] | None = None,
            trace: Trace | None = None) -> RecoveryResult:
    """K from the password and ``k`` realms of the locator (realms.md §4.2).

    ``clients`` are the configured realms (matched to the locator by URL).  A
    realm that is down, holds no record, disagrees on the parameters or returns
    a wrong evaluation is named and left out; with fewer than ``k`` usable
    realms recovery stops with ``RealmsUnavailable`` and no counted request is
    sent (or no further one, after the evaluations).
    """
    k = loc.threshold
    entries = {r.index: r for r in loc.realms}
    by_index = _match(loc, clients)
    excluded = {r.url: "not configured on this device" for r in loc.realms
                if r.index not in by_index}
    statuses = _parallel(lambda i: by_index[i].realm_status(), sorted(by_index))
    usable: dict[int, dict[str, Any]] = {}
    unfinished: list[int] = []
    for i, st in statuses.items():
        url = entries[i].url
        if isinstance(st, StrongroomError):
            excluded[url] = _reason(st)
        elif st.get("locked") or not st.get("exists"):
            excluded[url] = "holds no record for this backup" + (" (locked)" if st.get("locked")
                                                                  else "")
        elif st.get("index") != i:
            excluded[url] = "holds a record for another position in the realm list"
        elif (ksf_i := _registration_ksf(st, entries[i].public_share)) is None:
            excluded[url] = "holds another registration than this locator's (a stale record)"
        elif not isinstance(st.get("attempts_left"), int) or st["attempts_left"] < 1:
            excluded[url] = "has no attempt left"
        else:
            usable[i] = {**st, "ksf": ksf_i}
            if len(st.get("registrations") or ()) > 1:
                unfinished.append(i)
    groups: dict[bytes, list[int]] = {}
    for i, st in usable.items():
        try:
            groups.setdefault(encode_ksf(st.get("ksf") or {}), []).append(i)
        except (KeyError, TypeError, ValueError):
            excluded[entries[i].url] = "sent malformed key-stretching parameters"
    agreed = [g for g in groups.values() if len(g) >= k]
    if not agreed:
        if len(usable) >= k:
            raise VaultProtocolError("the realms disagree on this backup's key-stretching "
                                     "parameters; no attempt was spent")
        raise _unavailable(f"fewer than {k} realms can take part (no attempt was spent)", excluded)
    chosen = sorted(agreed[0])
    for i in usable:
        if i not in chosen:
            excluded.setdefault(entries[i].url, "disagrees with the others on the parameters")
    try:
        ksf = bounds.check(usable[chosen[0]]["ksf"])
    except ValueError as exc:
        raise VaultProtocolError(
            f"the realms' key-stretching parameters are outside what this device accepts "
            f"({exc}); no attempt was spent") from None
    last = sorted((usable[i]["attempts_left"] for i in chosen), reverse=True)[k - 1]
    if last == 1 and confirm_last is not None and not confirm_last():
        raise UsageError("stopped before the last attempt; nothing was spent")

    pw2 = stretch(password, loc.account, loc.slot, ksf)
    r = _group.random_scalar(rng)
    m = _group.scalar_mult(r, hash_to_group(pw2))
    answers = _parallel(lambda i: by_index[i].realm_evaluate(m, entries[i].public_share), chosen)
    valid: dict[int, bytes] = {}
    left: dict[int, int] = {}
    for i in chosen:
        a = answers[i]
        if trace is not None:
            trace({"realm": i, "op": "evaluate",
                   "request": {"blinded": m.hex(), "public_share": entries[i].public_share.hex()},
                   "response": _hexdoc(a) if isinstance(a, dict) else {"error": _reason(a)}})
        url = entries[i].url
        if isinstance(a, StrongroomError):
            excluded[url] = _reason(a)
            continue
        z = _checked_evaluation(a, m, entries[i])
        if z is None:
            excluded[url] = "returned a wrong evaluation (its proof does not verify)"
            continue
        valid[i] = z
        left[i] = a["attempts_left"] if isinstance(a.get("attempts_left"), int) else 0
    if len(valid) < k:
        raise _unavailable(f"fewer than {k} realms gave a valid evaluation", excluded)

    subset = sorted(valid)[:k]
    lam_check = shamir.combine_elements({i: entries[i].public_share for i in subset})
    if not hmac.compare_digest(lam_check, loc.public_key):
        raise FormatError("ext/vault.json: the realms' public shares do not combine to the "
                          "backup's public key (the locator was altered)")
    n_elem = _group.scalar_mult(_group.scalar_invert(r),
                                shamir.combine_elements({i: valid[i] for i in subset}))
    y = finalize(pw2, n_elem)
    tags = {i: unlock_tag(y, entries[i].realm_id, loc.account, loc.slot, i) for i in valid}
    released = _parallel(lambda i: by_index[i].realm_unlock(tags[i]), sorted(valid))
    shares: dict[int, tuple[bytes, bytes]] = {}
    wrong: dict[int, int] = {}
    for i in sorted(valid):
        rel = released[i]
        if trace is not None:
            trace({"realm": i, "op": "unlock", "request": {"tag": tags[i].hex()},
                   "response": _hexdoc(rel) if isinstance(rel, dict) else {"error": _reason(rel)}})
        url = entries[i].url
        if isinstance(rel, InvalidLogin):
            wrong[i] = rel.attempts_left if rel.attempts_left is not None else left[i]
            continue
        if isinstance(rel, AttemptsExhausted):
            wrong[i] = 0
            continue
        if isinstance(rel, StrongroomError):
            excluded[url] = _reason(rel)
            continue
        try:
            e_i = _group.deserialize_scalar(_b64d(rel.get("key_share"), "key share"))
            shares[i] = (e_i, _b64d(rel.get("wrapped_key"), "wrapped key"))
        except (ProtocolError, VaultProtocolError):
            excluded[url] = "released a malformed key share"
    if len(shares) < k:
        if wrong and not shares:  # no realm knew this y: the password is wrong
            raise _wrong_password(wrong, k)
        for i in wrong:
            excluded.setdefault(entries[i].url, "refused the unlock tag (a stale record?)")
        raise _unavailable(f"fewer than {k} realms released their key share", excluded)
    key = _open_with(shares, y, loc, k)
    if key is None:
        raise VaultError("the realms' key shares do not open this backup's key",
                         hint="a realm may be misbehaving; open the backup with the 64-digit key")
    loc.verify(key)
    for i in wrong:
        excluded.setdefault(entries[i].url, "refused the unlock tag (a stale record?)")
    return RecoveryResult(key, excluded, tuple(entries[i].url for i in sorted(unfinished)
                                               if entries[i].url not in excluded))


def _registration_ksf(st: Mapping[str, Any], public_share: bytes) -> Any:
    """The KSF of the realm's registration with ``public_share`` (None: it holds no such
    one).  A realm that does not list its registrations holds one: its ``ksf``."""
    regs = st.get("registrations")
    if not isinstance(regs, list) or not regs:
        return st.get("ksf")
    want = _b64e(public_share)
    for r in regs:
        if isinstance(r, dict) and r.get("public_share") == want:
            return r.get("ksf")
    return None


def _checked_evaluation(a: dict[str, Any], m: bytes, entry: RealmEntry) -> bytes | None:
    try:
        z = _group.deserialize_element(_b64d(a.get("evaluation"), "evaluation"))
        proof = _b64d(a.get("proof"), "proof")
    except (ProtocolError, VaultProtocolError):
        return None
    if z == m:  # a reflected element: OPRF key 1 (vault-protocol §1.8)
        return None
    return z if dleq.verify_proof(_B, entry.public_share, [m], [z], proof) else None


def _open_with(shares: Mapping[int, tuple[bytes, bytes]], y: bytes, loc: RealmLocator,
               k: int) -> BackupKey | None:
    """K from ``k`` released shares and one realm's ``c``: lowest indices first, then the
    other subsets (a realm that released a wrong share is outvoted)."""
    cs = list(dict.fromkeys(c for _e, c in shares.values()))
    for subset in itertools.combinations(sorted(shares), k):
        e = shamir.combine_scalars({i: shares[i][0] for i in subset})
        for c in cs:
            key = decrypt_key(y, e, c, loc.account, loc.slot)
            if key is not None:
                return key
    return None


def _wrong_password(wrong: Mapping[int, int], k: int) -> InvalidLogin | AttemptsExhausted:
    from ..client.flows import wrong_password

    left = sorted(wrong.values(), reverse=True)
    return wrong_password(left[k - 1] if len(left) >= k else 0)


# -- delete, status, head ---------------------------------------------------------------------

def delete(loc: RealmLocator, clients: Sequence[VaultClient], key: BackupKey
           ) -> dict[str, bool | str]:
    """``DELETE …/realm`` with the record proof on every realm: URL → deleted, or the error."""
    by_index = _match(loc, clients)
    proof = record_proof(key, loc.account)
    got = _parallel(lambda i: by_index[i].realm_delete(proof), sorted(by_index))
    entries = {r.index: r for r in loc.realms}
    out: dict[str, bool | str] = {r.url: "not configured on this device" for r in loc.realms
                                  if r.index not in by_index}
    for i, v in got.items():
        out[entries[i].url] = _reason(v) if isinstance(v, StrongroomError) else bool(v)
    return out


def commit(loc: RealmLocator, clients: Sequence[VaultClient], key: BackupKey,
           urls: Sequence[str] | None = None) -> dict[str, bool | str]:
    """``POST …/realm/commit``: each realm (of ``urls``, default all) keeps only the
    registration of ``loc`` (realms.md §4.3).  URL → True, or the error."""
    by_index = _match(loc, clients)
    entries = {r.index: r for r in loc.realms}
    chosen = [i for i in sorted(by_index) if urls is None or entries[i].url in urls]
    proof = record_proof(key, loc.account)
    got = _parallel(lambda i: by_index[i].realm_commit(entries[i].public_share, proof), chosen)
    return {entries[i].url: _reason(v) if isinstance(v, StrongroomError) else True
            for i, v in got.items()}


def status(loc: RealmLocator, clients: Sequence[VaultClient]) -> list[dict[str, Any]]:
    """Each realm of the locator: url, index and its status (or ``error``)."""
    by_index = _match(loc, clients)
    got = _parallel(lambda i: by_index[i].realm_status(), sorted(by_index))
    out = []
    for r in loc.realms:
        v = got.get(r.index)
        if v is None:
            out.append({"url": r.url, "index": r.index, "error": "not configured on this device"})
        elif isinstance(v, StrongroomError):
            out.append({"url": r.url, "index": r.index, "error": _reason(v)})
        else:
            out.append({"url": r.url, "index": r.index, **v})
    return out


def threshold_head(heads: Sequence[tuple[int, bytes | None] | None], k: int
                   ) -> tuple[int, list[bytes]]:
    """realms.md §8: the ``k``-th highest counter the realms report, with the tags reported
    for exactly that counter (most frequent first).  ``None`` entries are realms that did
    not answer; fewer than ``k`` answers is ``RealmsUnavailable``."""
    got = [h for h in heads if h is not None]
    if len(got) < k:
        raise RealmsUnavailable(f"fewer than {k} realms reported the backup head")
    counter = sorted((c for c, _t in got), reverse=True)[k - 1]
    tags = [t for c, t in got if c == counter and t is not None]
    ranked = sorted(set(tags), key=lambda t: (-tags.count(t), t))
    return counter, ranked


__all__ = ["RecoveryResult", "RegistrationResult", "check_pins", "commit", "decrypt_key", "delete", "encrypt_key",
           "encryption_key", "finalize", "guess_bound", "hash_to_group", "realm_id",
           "record_proof", "recover", "register", "salt", "status", "stretch", "threshold_head", "unlock_tag"]
