"""Which account is asking: standalone bearer tokens or the chat app's JWTs.

A vault runs in one of two modes.  Standalone: ``strongroom vault account
create NAME`` makes a random token, prints it once and stores only its
SHA-256 (the token has 256 bits of entropy, so a fast hash is enough and a
lookup by hash leaks nothing useful).  Federated: the chat app's auth service
signs a JWT whose ``sub`` is the account id; the vault checks signature,
issuer, audience and expiry with a configured public key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from ..errors import UsageError
from .core import check_account_id
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


class JwtAuth(Authenticator):
    """Federated mode: a JWT from the chat app's auth service (``sub`` = account id)."""

    def __init__(self, public_key: str | bytes, *, issuer: str, audience: str,
                 algorithms: tuple[str, ...] = ("EdDSA", "ES256", "RS256"),
                 clock: Callable[[], float] = time.time, leeway: float = 30.0) -> None:
        import jwt  # optional dependency of the vault

        self._jwt = jwt
        if not issuer or not audience:
            raise UsageError("JWT mode needs an issuer and an audience")
        self.public_key, self.issuer, self.audience = public_key, issuer, audience
        self.algorithms, self._clock, self._leeway = list(algorithms), clock, leeway

    def account(self, bearer: str) -> str | None:
        jwt = self._jwt
        try:
            claims = jwt.decode(
                bearer, self.public_key, algorithms=self.algorithms, audience=self.audience,
                issuer=self.issuer, leeway=self._leeway,
                options={"require": ["exp", "sub", "iss", "aud"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        # Expiry checked against the injected clock (testable without sleeping).
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp + self._leeway < self._clock():
            return None
        sub = claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


__all__ = ["TOKEN_PREFIX", "Authenticator", "JwtAuth", "TokenAuth", "hash_token"]
