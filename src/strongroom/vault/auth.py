"""Which account is asking: standalone bearer tokens or the chat app's JWTs.

A vault runs in one of two modes.  Standalone: ``strongroom vault account
create NAME`` makes a random token, prints it once and stores only its
SHA-256 (the token has 256 bits of entropy, so a fast hash is enough and a
lookup by hash leaks nothing useful).  Federated: the chat app's auth service
signs a JWT whose ``sub`` is the account id; the vault checks signature,
issuer, audience, expiry and a maximum lifetime with a configured public key,
or with the key named by the token's ``kid`` in a JWKS file that it reloads
when the file changes (key rotation without a restart, :class:`JwksFile`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .account_id import check_account_id, is_valid_account_id
from .store import RecordStore

TOKEN_PREFIX = "srv1_"
_log = logging.getLogger(__name__)


class Authenticator(ABC):
    """Turns a bearer credential into an account id, or None."""

    #: Whether ``account`` may wait on something outside the process (a database
    #: server): then the HTTP app calls it from a worker thread, never on its event loop.
    may_wait: bool = True

    @abstractmethod
    def account(self, bearer: str) -> str | None:
        """The account this credential proves, or None if it proves nothing."""

    def account_later(self, bearer: str, then: Callable[[str | None], None]) -> None:
        """Call ``then`` with :meth:`account` of ``bearer``: here, or (a token table on a
        database server) in the first round trip of this thread's next store operation,
        before it returns or keeps anything (``RecordStore.defer_token_lookup``), or at
        :meth:`settle`.  The caller MUST call :meth:`settle` before it answers."""
        then(self.account(bearer))

    def settle(self, *, run: bool = True) -> None:
        """Run the check :meth:`account_later` deferred, if any (``run=False``: drop it,
        for a request handed on to a path that checks its credential itself)."""


def hash_token(token: str) -> bytes:
    """SHA-256 of a standalone token (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenAuth(Authenticator):
    """Standalone mode: per-account random bearer tokens."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.may_wait = not store.local_reads

    def create_account(self, name: str, rng: Callable[[int], bytes] = os.urandom) -> str:
        """Create (or re-key) account ``name``; return its new token (shown once)."""
        check_account_id(name)
        token = TOKEN_PREFIX + base64.urlsafe_b64encode(rng(32)).rstrip(b"=").decode()
        self.store.put_account(name, hash_token(token))
        return token

    def account(self, bearer: str) -> str | None:
        if not bearer.startswith(TOKEN_PREFIX) or len(bearer) > 100:
            return None
        return self.store.account_for_token(hash_token(bearer))

    def account_later(self, bearer: str, then: Callable[[str | None], None]) -> None:
        if not bearer.startswith(TOKEN_PREFIX) or len(bearer) > 100:
            then(None)
            return
        # PostgreSQL: the lookup rides on the request's first round trip (one fewer).
        self.store.defer_token_lookup(hash_token(bearer), then)

    def settle(self, *, run: bool = True) -> None:
        self.store.settle_token_lookup(run=run)


#: A token may live at most this long (``exp - iat``, or ``exp - now`` without ``iat``).
DEFAULT_JWT_MAX_LIFETIME = 24 * 3600
# NumericDate claims outside this range are refused before any arithmetic: a
# huge integer would overflow the float comparison with the clock.
_MAX_NUMERIC_DATE = 2**63
#: Signature algorithms a JWT may use; ``none`` and the HMAC ones never.
JWT_ALGORITHMS = ("EdDSA", "ES256", "RS256")
#: A JWKS file larger than this, or with more keys, is refused.
JWKS_MAX_BYTES = 1 << 20
JWKS_MAX_KEYS = 64
# JWK members that only a private or a symmetric key has: such a key never belongs on
# the vault (whoever reads its configuration could then sign tokens).
_SECRET_MEMBERS = frozenset(("d", "p", "q", "dp", "dq", "qi", "oth", "k"))


class JwksFile:
    """The chat app's public signing keys: a JWKS file (RFC 7517 §5), keys chosen by ``kid``.

    The file is read at start (a bad file is ``UsageError``) and read again
    whenever its modification time, size or inode changes, checked with one
    ``stat`` per token: the auth service rotates keys by rewriting the file
    (write a temporary file and rename it over, so a reader never sees half of
    it), with no vault restart.  A changed file that does not load keeps the
    keys loaded before and is logged, so a broken rewrite locks nobody out.

    Every key MUST have a distinct non-empty ``kid``, be an OKP (Ed25519), EC
    (P-256) or RSA public key for one of :data:`JWT_ALGORITHMS`, and hold no
    private or symmetric member; ``use``, when present, MUST be ``sig``.
    """

    def __init__(self, path: str | os.PathLike[str],
                 algorithms: tuple[str, ...] = JWT_ALGORITHMS) -> None:
        self.path = Path(path)
        self._algorithms = algorithms
        self._mutex = threading.Lock()
        stamp = self._stamp()
        if stamp is None:
            raise UsageError(f"cannot read the JWKS file {self.path}")
        try:
            self._keys = self._load()
        except ValueError as exc:
            raise UsageError(f"the JWKS file {self.path} is not usable: {exc}") from None
        self._seen: tuple[int, ...] = stamp

    def kids(self) -> list[str]:
        """The key ids loaded now (after a reload check)."""
        self._refresh()
        return sorted(self._keys)

    def key(self, kid: object) -> Any:
        """The key (a PyJWK) for ``kid``, or None; reloads the file first if it changed."""
        self._refresh()
        return self._keys.get(kid) if isinstance(kid, str) else None

    def _stamp(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)

    def _refresh(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return  # a file removed for a moment (or for good) keeps the keys in force
        with self._mutex:
            if stamp == self._seen:
                return
            self._seen = stamp
            try:
                keys = self._load()
            except ValueError as exc:
                _log.error("JWKS file %s changed but is not usable (%s); keeping the %d keys "
                           "loaded before", self.path, exc, len(self._keys))
                return
            _log.warning("JWKS file %s reloaded: key ids %s", self.path, ", ".join(sorted(keys)))
            self._keys = keys

    def _load(self) -> dict[str, Any]:
        """Parse the file; ``ValueError`` saying what is wrong (never a key's bytes)."""
        from jwt import PyJWK, PyJWTError

        try:
            with open(self.path, "rb") as f:
                raw = f.read(JWKS_MAX_BYTES + 1)
        except OSError as exc:
            raise ValueError(exc.strerror or "unreadable") from None
        if len(raw) > JWKS_MAX_BYTES:
            raise ValueError(f"larger than {JWKS_MAX_BYTES} bytes")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ValueError("not JSON") from None
        entries = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(entries, list) or not 1 <= len(entries) <= JWKS_MAX_KEYS:
            raise ValueError(f'no "keys" array of 1 to {JWKS_MAX_KEYS} keys')
        keys: dict[str, Any] = {}
        for i, entry in enumerate(entries):
            kid = entry.get("kid") if isinstance(entry, dict) else None
            if not isinstance(kid, str) or not kid or len(kid) > 256:
                raise ValueError(f"key {i} has no kid")
            if kid in keys:
                raise ValueError(f"kid {kid!r} appears twice")
            if _SECRET_MEMBERS & set(entry):
                raise ValueError(f"key {kid!r} is a private or symmetric key; the vault needs "
                                 "public keys only")
            if entry.get("use", "sig") != "sig":
                raise ValueError(f"key {kid!r} is not a signing key")
            try:
                jwk = PyJWK(entry)
            except PyJWTError as exc:
                raise ValueError(f"key {kid!r}: {type(exc).__name__}") from None
            if jwk.algorithm_name not in self._algorithms:
                raise ValueError(f"key {kid!r} is for {jwk.algorithm_name}, not one of "
                                 f"{', '.join(self._algorithms)}")
            keys[kid] = jwk
        return keys

    def __repr__(self) -> str:
        return f"<JwksFile {self.path}>"


class JwtAuth(Authenticator):
    """Federated mode: a JWT from the chat app's auth service (``sub`` = account id).

    ``exp`` is required, ``iat`` and ``nbf`` are optional; each MUST be a JSON
    integer (not a float, NaN, Infinity, boolean or string: Python's JSON
    parser accepts ``NaN`` and ``Infinity``, and a token with ``exp: Infinity``
    would never expire).  A token is refused when expired, not yet valid
    (``nbf`` or ``iat`` in the future), or valid for longer than
    ``max_lifetime`` seconds, so a leaked issuer-signed token cannot be
    good for years.  All times are checked against the injected ``clock``
    with ``leeway`` seconds of tolerance for clock skew.
    """

    may_wait = False  # a signature check; the JWKS file is re-read only when it changed

    def __init__(self, public_key: str | bytes | JwksFile, *, issuer: str, audience: str,
                 algorithms: tuple[str, ...] = JWT_ALGORITHMS,
                 clock: Callable[[], float] = time.time, leeway: float = 30.0,
                 max_lifetime: float = DEFAULT_JWT_MAX_LIFETIME) -> None:
        import jwt  # optional dependency of the vault

        self._jwt = jwt
        if not issuer or not audience:
            raise UsageError("JWT mode needs an issuer and an audience")
        if not (isinstance(max_lifetime, int | float) and 0 < max_lifetime < _MAX_NUMERIC_DATE):
            raise UsageError("the JWT maximum lifetime must be a positive number of seconds")
        self.public_key, self.issuer, self.audience = public_key, issuer, audience
        self.algorithms, self._clock, self._leeway = list(algorithms), clock, leeway
        self.max_lifetime = max_lifetime

    def account(self, bearer: str) -> str | None:
        jwt = self._jwt
        key: Any = self.public_key
        try:
            if isinstance(key, JwksFile):
                # Several keys: the token names its key; no kid, or an unknown one, is refused
                # (trying every key would let any of them stand in for the named one).
                key = key.key(jwt.get_unverified_header(bearer).get("kid"))
                if key is None:
                    return None
            claims = jwt.decode(
                bearer, key, algorithms=self.algorithms, audience=self.audience,
                issuer=self.issuer, leeway=self._leeway,
                # Times are checked below, strictly and against the injected clock
                # (PyJWT reads the wall clock and accepts "123" and 1.5e9).
                options={"require": ["exp", "sub", "iss", "aud"], "verify_exp": False,
                         "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        if not (isinstance(claims, dict) and self._times_ok(claims)):
            return None
        sub = claims.get("sub")
        # A subject that is no account id (vault-protocol §7.1) proves no account.
        return sub if is_valid_account_id(sub) else None

    def _times_ok(self, claims: dict[str, Any]) -> bool:
        """``exp``/``iat``/``nbf`` are integers, the token is valid now and not too long-lived."""
        try:
            exp, iat, nbf = (_numeric_date(claims, name) for name in ("exp", "iat", "nbf"))
        except ValueError:
            return False
        now, leeway = self._clock(), self._leeway
        if exp is None or exp + leeway < now:
            return False
        if (nbf is not None and nbf - leeway > now) or (iat is not None and iat - leeway > now):
            return False
        return exp - (iat if iat is not None else now) <= self.max_lifetime


def _numeric_date(claims: dict[str, Any], name: str) -> int | None:
    """The claim as an integer, None if absent; ``ValueError`` if anything else."""
    if name not in claims:
        return None
    value = claims[name]
    # type() and not isinstance(): True is an int to Python, not a time to us.
    if type(value) is not int or not -_MAX_NUMERIC_DATE < value < _MAX_NUMERIC_DATE:
        raise ValueError(f"{name} is not an integer NumericDate")
    return value


__all__ = ["DEFAULT_JWT_MAX_LIFETIME", "JWT_ALGORITHMS", "TOKEN_PREFIX", "Authenticator", "JwksFile",
           "JwtAuth", "TokenAuth", "hash_token"]
