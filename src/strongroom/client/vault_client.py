"""HTTP client of the Backup Key Vault (httpx), mapping every answer to ``strongroom.errors``.

Only this module sees httpx exceptions; callers get ``VaultUnreachable``,
``VaultAuthError``, ``InvalidLogin`` (with ``attempts_left``),
``AttemptsExhausted``, ``VaultSessionInvalid`` or ``VaultProtocolError``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

import httpx

from ..errors import (
    AttemptsExhausted,
    BackupHeadConflict,
    InvalidAccountId,
    InvalidLogin,
    RealmNotRegistered,
    StrongroomError,
    UsageError,
    VaultAuthError,
    VaultProtocolError,
    VaultSessionInvalid,
    VaultUnreachable,
)
from ..vault.account_id import check_account_id


def b64e(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: Any, what: str) -> bytes:
    """base64url → bytes, ``VaultProtocolError`` if the vault sent garbage."""
    if not isinstance(text, str):
        raise VaultProtocolError(f"the vault's {what} is missing")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise VaultProtocolError(f"the vault's {what} is not base64url") from None


@dataclass(frozen=True)
class LoginAnswer:
    """What login start returned."""

    session_id: str
    ke2: bytes
    attempts_left: int


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (also as ``::ffff:127.x.y.z``)."""
    if host.lower() == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False  # any other name may resolve anywhere; "127.1"-style shorthands too
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def check_vault_url(url: str) -> None:
    """Refuse a URL the bearer token must not travel to (spec §3): not http(s), or
    plain ``http://`` to a host that is not loopback."""
    try:
        # httpx's own parser: the host checked is exactly the host httpx connects to.
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        # The text is not echoed: a mistyped option may hold a token.
        raise VaultUnreachable("not a vault URL (it must be https://HOST[:PORT])",
                               hint="give the vault as https://HOST[:PORT]")
    if parsed.scheme == "http" and not is_loopback_host(parsed.host):
        # Only the host is named: the URL might carry user info.
        raise UsageError(
            f"refusing plain http:// to the vault at {parsed.host}: the account's token would "
            "cross the network unencrypted",
            hint="use https:// (TLS in front of the vault); plain http:// is allowed only to "
                 "localhost, 127.0.0.0/8 and ::1")


_BEARER = re.compile(r"[!-~]{1,16384}")
#: Hands out the account's bearer credential (a token or a JWT); see :class:`VaultClient`.
TokenProvider = Callable[[], str]


class VaultClient:
    """One account at one vault, served by one or several nodes.  ``transport`` lets tests
    run in-process.

    ``token`` is the account's bearer credential: a string, ``None`` (public
    endpoints only), or a *token provider*, a callable with no arguments that
    returns one (vault-protocol §3, "Expiring credentials").  A provider is
    called before the first request that needs a credential, and again when
    the vault answers 401 ``unauthenticated`` (expired or revoked); the request
    is then sent once more with the new credential.  Nothing else is retried: a
    second 401, or a provider that returns the credential just refused, is
    ``VaultAuthError``; a wrong password (401 ``invalid_login``) never calls it.


    ``url`` is one base URL, or several separated by commas: the nodes of one
    replicated vault (docs/vault-operations.md), tried in that order.  A request
    moves on to the next node only when the connection to a node could not be
    made (nothing was sent, so nothing was counted); never after an answer,
    503 included, and never after a request went out without an answer, except
    for reads (GET), which change nothing.  The node that last answered is
    tried first next time.

    Every URL must be ``https://``, or ``http://`` to a loopback host
    (``UsageError`` otherwise): the bearer token never crosses a network in clear
    text.  Redirects are not followed, so an https vault cannot send it to http.
    Proxy variables are ignored for a loopback vault.
    """

    def __init__(self, url: str, account: str | None, token: str | TokenProvider | None, *,
                 timeout: float = 15.0, transport: httpx.BaseTransport | None = None,
                 slot: str = "") -> None:
        urls = [u.strip().rstrip("/") for u in url.split(",")]
        for u in urls:
            check_vault_url(u)
        if account is not None:  # None: only info() and whoami() (no account yet)
            check_account_id(account)  # InvalidAccountId before anything is sent (spec §7.1)
        #: Every node's URL; ``url`` is the first (what a locator records).
        self.urls: tuple[str, ...] = tuple(urls)
        self.url, self.slot = urls[0], slot
        self.account: str = account if account is not None else ""
        self._provider: TokenProvider | None = token if callable(token) else None
        self._token: str | None = None if callable(token) else (token or None)
        self._nodes = [self._node(u, timeout, transport) for u in urls]
        self._http = self._nodes[0]  # the first node's client
        self._current = 0
        self._use(self._token)
        self._set_account(account)

    def _set_account(self, account: str | None) -> None:
        self._base = f"/v1/accounts/{quote(account, safe='')}" if account is not None else ""
        # One backup's slot (spec §2.2); "" is the account's legacy slot (protocol 2 records).
        self._acct = (f"{self._base}/slots/{quote(self.slot, safe='')}" if self.slot
                      else self._base)

    def for_slot(self, slot: str) -> VaultClient:
        """A client of another slot of the same account, sharing this one's connections."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.slot = slot
        other._set_account(self.account or None)
        return other

    @staticmethod
    def _node(url: str, timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
        if transport is None and is_loopback_host(httpx.URL(url).host):
            # A loopback vault is this machine: never through HTTP(S)_PROXY/ALL_PROXY, which
            # would hand a proxy the token (in clear text for http://; spec §3).  httpx reads
            # proxies from the environment only for a transport it builds itself; this one
            # still honours SSL_CERT_FILE/SSL_CERT_DIR.  A remote https:// vault may go through
            # a proxy: CONNECT shows it the host name only, TLS protects the rest.
            transport = httpx.HTTPTransport()
        return httpx.Client(base_url=url, timeout=timeout, transport=transport,
                            follow_redirects=False)

    def info(self) -> dict[str, Any]:
        """Public facts: server public key, context, guess limit."""
        return self._call("GET", "/v1/info")

    def whoami(self) -> str:
        """The account the credential belongs to (``InvalidAccountId`` if it breaks the rule)."""
        account = self._call("GET", "/v1/whoami").get("account")
        if not isinstance(account, str):
            raise VaultProtocolError("the vault's whoami answer has no account")
        check_account_id(account)
        return account

    def registration_start(self, request: bytes) -> tuple[bytes, str]:
        """Send the OPAQUE RegistrationRequest; get the RegistrationResponse and its id."""
        r = self._call("POST", f"{self._acct}/registration/start", {"request": b64e(request)})
        reg_id = r.get("registration_id")
        if not isinstance(reg_id, str) or not reg_id:
            raise VaultProtocolError("the vault's registration answer has no registration id")
        return b64d(r.get("response"), "registration response"), reg_id

    def registration_finish(self, registration_id: str, record: bytes, wrapped_key: bytes,
                            proof_verifier: bytes, proof: bytes,
                            ksf: dict[str, int] | None = None) -> None:
        """Deposit the record and the wrapped K, with the record proof (spec §2.1) and the
        Argon2id parameters the vault keeps with the record (§2.2)."""
        body: dict[str, Any] = {"registration_id": registration_id, "record": b64e(record),
                                "wrapped_key": b64e(wrapped_key),
                                "proof_verifier": b64e(proof_verifier), "proof": b64e(proof)}
        if ksf is not None:
            body["ksf"] = dict(ksf)
        self._call("POST", f"{self._acct}/registration/finish", body)

    def login_start(self, ke1: bytes) -> LoginAnswer:
        """KE1 → KE2 (this spends a guess)."""
        r = self._call("POST", f"{self._acct}/login/start", {"ke1": b64e(ke1)})
        left, sid = r.get("attempts_left"), r.get("session_id")
        if not isinstance(left, int) or not isinstance(sid, str):
            raise VaultProtocolError("the vault's login answer is incomplete")
        return LoginAnswer(sid, b64d(r.get("ke2"), "KE2"), left)

    def login_finish(self, session_id: str, ke3: bytes) -> bytes:
        """KE3 → the sealed wrapped K."""
        r = self._call("POST", f"{self._acct}/login/finish",
                       {"session_id": session_id, "ke3": b64e(ke3)})
        return b64d(r.get("sealed_key"), "sealed key")

    def status(self) -> dict[str, Any]:
        """exists, locked, attempts_left, attempt_limit, ksf (the record's parameters)."""
        return self._call("GET", f"{self._acct}/record")

    def slots(self) -> list[dict[str, Any]]:
        """Every slot of the account with a record: slot id and its status."""
        got = self._call("GET", f"{self._base}/slots").get("slots")
        if not isinstance(got, list) or not all(isinstance(x, dict) for x in got):
            raise VaultProtocolError("the vault's slot list is malformed")
        return got

    def delete(self, proof: bytes | None = None) -> bool:
        """Erase this account's record (with its record proof); True if one existed."""
        body = {"proof": b64e(proof)} if proof is not None else None
        return bool(self._call("DELETE", f"{self._acct}/record", body).get("deleted"))

    def head(self) -> tuple[int, bytes | None]:
        """The account's backup head ``(counter, tag)``; ``(0, None)`` if never advanced."""
        r = self._call("GET", f"{self._acct}/head")
        counter, tag = r.get("counter"), r.get("tag")
        if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
            raise VaultProtocolError("the vault's backup head has no valid counter")
        if counter == 0:
            return 0, None
        raw = b64d(tag, "backup head tag")
        if len(raw) != 32:
            raise VaultProtocolError("the vault's backup head tag is not 32 bytes")
        return counter, raw

    def advance_head(self, counter: int, tag: bytes) -> None:
        """Advance the head to ``counter`` (old + 1); ``BackupHeadConflict`` if someone else did."""
        self._call("POST", f"{self._acct}/head", {"counter": counter, "tag": b64e(tag)})

    # -- realm endpoints (docs/spec/realms.md §5) ----------------------------------

    def realm_register(self, body: dict[str, Any]) -> dict[str, Any]:
        """Deposit this realm's part of a realm-set registration (binary fields already
        base64url, as the spec's request)."""
        return self._call("POST", f"{self._acct}/realm/register", body)

    def realm_status(self) -> dict[str, Any]:
        """exists, locked, attempts_left, attempt_limit, ksf, index of this slot's realm record."""
        return self._call("GET", f"{self._acct}/realm")

    def realm_evaluate(self, blinded: bytes, public_share: bytes | None = None
                       ) -> dict[str, Any]:
        """``M`` → ``{evaluation, proof, attempts_left}`` (this spends a guess at the realm)
        under the registration with ``public_share`` (default: the realm's first)."""
        body = {"blinded": b64e(blinded)}
        if public_share is not None:
            body["public_share"] = b64e(public_share)
        return self._call("POST", f"{self._acct}/realm/evaluate", body)

    def realm_catch_up_head(self, counter: int, tag: bytes, proof: bytes) -> None:
        """Bring this realm's lagging head up to ``(counter, tag)`` in one step (realms.md §8);
        ``BackupHeadConflict`` if it is not below ``counter``."""
        self._call("POST", f"{self._acct}/realm/head",
                   {"counter": counter, "tag": b64e(tag), "proof": b64e(proof)})

    def realm_commit(self, public_share: bytes, proof: bytes) -> bool:
        """Keep only the registration with ``public_share`` (realms.md §4.3)."""
        return bool(self._call("POST", f"{self._acct}/realm/commit",
                               {"public_share": b64e(public_share), "proof": b64e(proof)}
                               ).get("committed"))

    def realm_unlock(self, tag: bytes) -> dict[str, Any]:
        """The unlock tag → ``{key_share, wrapped_key}``."""
        return self._call("POST", f"{self._acct}/realm/unlock", {"tag": b64e(tag)})

    def realm_delete(self, proof: bytes | None = None) -> bool:
        """Erase this slot's realm record (with the record proof); True if one existed."""
        body = {"proof": b64e(proof)} if proof is not None else None
        return bool(self._call("DELETE", f"{self._acct}/realm", body).get("deleted"))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.account and path not in ("/v1/info", "/v1/whoami"):
            raise UsageError("this vault client has no account")
        if self._provider is not None and self._token is None and path != "/v1/info":
            self._use(self._fresh_token(None))
        status, data = self._answer(method, path, body)
        if (status == 401 and data.get("error") == "unauthenticated"
                and self._provider is not None):
            # Refused before anything was done (authentication comes first, spec §3):
            # sending the same request again with a new credential is safe.
            self._use(self._fresh_token(self._token))
            status, data = self._answer(method, path, body)
        if status >= 300:
            raise _error(status, data)
        return data

    def _answer(self, method: str, path: str, body: dict[str, Any] | None
                ) -> tuple[int, dict[str, Any]]:
        resp = self._send(method, path, body)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise VaultProtocolError(f"the vault sent a non-JSON answer (HTTP {resp.status_code})")
        return resp.status_code, data

    def _use(self, token: str | None) -> None:
        self._token = token
        if token:
            for node in self._nodes:  # every node gets the same credential
                node.headers["authorization"] = f"Bearer {token}"

    def _fresh_token(self, refused: str | None) -> str:
        """A credential from the provider; ``VaultAuthError`` if it has none to give."""
        assert self._provider is not None
        try:
            token = self._provider()
        except StrongroomError:
            raise
        except Exception as exc:
            # Its message could hold a credential: name only the type.
            raise VaultAuthError(f"the token provider failed ({type(exc).__name__})") from exc
        if not isinstance(token, str) or not token:
            raise VaultAuthError("the token provider returned no token")
        if not _BEARER.fullmatch(token):
            # One HTTP header value (a newline would split the header); not echoed.
            raise VaultAuthError("the token provider returned something that is not a token "
                                 "(printable ASCII without spaces)")
        if refused is not None and hmac.compare_digest(token.encode(), refused.encode()):
            raise VaultAuthError("the vault refused this account's credentials, and the token "
                                 "provider returned the same one again",
                                 hint="the provider must return a new token when called again")
        return token

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        """The first answer from a node, starting with the one that answered last."""
        n = len(self._nodes)
        failures: list[str] = []
        last: httpx.TransportError | None = None
        for i in range(n):
            k = (self._current + i) % n
            try:
                resp = self._nodes[k].request(method, path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failures.append(f"{self.urls[k]}: {type(exc).__name__}")  # nothing was sent
                last = exc
                continue
            except httpx.TransportError as exc:
                if method == "GET":
                    failures.append(f"{self.urls[k]}: {type(exc).__name__}")
                    last = exc
                    continue
                # Sent, no answer: the vault may have acted on it (a guess counted).  Not
                # sent again elsewhere: the caller decides, knowing a guess may be spent.
                raise VaultUnreachable(
                    f"the Backup Key Vault at {self.urls[k]} did not answer "
                    f"({type(exc).__name__})",
                    hint="try again; a guess that may have been counted stays counted") from exc
            self._current = k
            return resp
        # Chained to the last connection failure: callers (and tests) can tell a dead node
        # from an answer such as 503.
        raise VaultUnreachable(
            "the Backup Key Vault cannot be reached (" + "; ".join(failures) + ")") from last

    def close(self) -> None:
        """Close the connection pools."""
        for node in self._nodes:
            node.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        more = f" (+{len(self.urls) - 1} nodes)" if len(self.urls) > 1 else ""
        slot = f" slot={self.slot}" if self.slot else ""
        return f"<VaultClient {self.url}{more} account={self.account}{slot}>"


def _error(status: int, data: dict[str, Any]) -> StrongroomError:
    code, msg = data.get("error"), str(data.get("message", ""))[:300]
    if code == "invalid_login":
        left = data.get("attempts_left")
        left = left if isinstance(left, int) and not isinstance(left, bool) else None
        return AttemptsExhausted() if left == 0 else InvalidLogin(attempts_left=left)
    if code == "locked":
        return AttemptsExhausted()
    if code == "not_registered":
        return RealmNotRegistered(f"the realm holds no record for this backup: {msg}")
    if code == "session_invalid":
        return VaultSessionInvalid()
    if code == "head_conflict":
        conflict = BackupHeadConflict()
        current = data.get("counter")
        conflict.current = current if isinstance(current, int) else None
        return conflict
    if code == "invalid_account":
        return InvalidAccountId(f"the vault refused the account id: {msg}")
    if code == "proof_required":
        return VaultAuthError(f"the vault refused: {msg}",
                              hint="open the repository with its key or password first")
    if status in (401, 403):
        return VaultAuthError(f"the vault refused this account's credentials: {msg}")
    if status == 503:
        return VaultUnreachable(f"the vault is unavailable: {msg}",
                                hint="try again later; a guess that may have been counted stays counted")
    return VaultProtocolError(f"the vault refused the request (HTTP {status}, {code}): {msg}")


__all__ = ["LoginAnswer", "TokenProvider", "VaultClient", "b64d", "b64e", "check_vault_url", "is_loopback_host"]
