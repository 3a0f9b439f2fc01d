"""Which account is asking: standalone bearer tokens or the chat app's JWTs.

A vault runs in one of two modes.  Standalone: ``strongroom vault account
create NAME`` makes a random token, prints it once and stores only its
SHA-256 (the token has 256 bits of entropy, so a fast hash is enough and a
lookup by hash leaks nothing useful).  Federated: the chat app's auth service
signs a JWT whose ``sub`` is the account id; the vault checks signature,
issuer, audience, expiry and a maximum lifetime with a configured public key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from .account_id import check_account_id, is_valid_account_id
from .store import RecordStore

TOKEN_PREFIX = "srv1_"


class Authenticator(ABC):
    """Turns a bearer credential into an account id, or None."""

    @abstractmethod
    def account(self, bearer: str) -> str | None:
        """The account this credential proves, or None if it proves nothing."""


def hash_token(token: str) -> bytes:
    """SHA-256 of a standalone token (what the store keeps)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenAuth(Authenticator):
    """Standalone mode: per-account random bearer tokens."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store

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


#: A token may live at most this long (``exp - iat``, or ``exp - now`` without ``iat``).
DEFAULT_JWT_MAX_LIFETIME = 24 * 3600
# NumericDate claims outside this range are refused before any arithmetic: a
# huge integer would overflow the float comparison with the clock.
_MAX_NUMERIC_DATE = 2**63


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

    def __init__(self, public_key: str | bytes, *, issuer: str, audience: str,
                 algorithms: tuple[str, ...] = ("EdDSA", "ES256", "RS256"),
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
        try:
            claims = jwt.decode(
                bearer, self.public_key, algorithms=self.algorithms, audience=self.audience,
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


__all__ = ["DEFAULT_JWT_MAX_LIFETIME", "TOKEN_PREFIX", "Authenticator", "JwtAuth", "TokenAuth", "hash_token"]
