"""The vault's HTTP face: a thin FastAPI app over :class:`~strongroom.vault.core.Vault`.

All binary fields are base64url without padding inside JSON.  Every error is
``{"error": CODE, "message": TEXT}`` with a 4xx status (503 when the record
store failed); the table is in ``docs/spec/vault-protocol.md`` §3.  Bodies
larger than ``max_body`` are refused with 413 before they are parsed.
"""

# No "from __future__ import annotations": FastAPI reads the endpoints' annotations at runtime.

import base64
import binascii
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AttemptsExhausted,
    BackupHeadConflict,
    InvalidAccountId,
    InvalidLogin,
    RealmNotRegistered,
    UsageError,
    VaultAuthError,
    VaultProtocolError,
    VaultSessionInvalid,
    VaultStoreError,
)
from .account_id import check_account_id
from .auth import Authenticator
from .core import MAX_HEAD_COUNTER, Vault, check_slot
from .realm import Realm, RealmRegistration
from .route import (
    Caller,
    DirectRoutes,
    legacy_slot,
    path_slot,
    read_body,
    replay_body,
    route_class,
)

MAX_BODY = 16 * 1024
#: The vault protocol version (spec §3); 3 added slots and the record's KSF parameters.
PROTOCOL = 3
_B64 = r"^[A-Za-z0-9_-]*$"


def b64e(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str, what: str) -> bytes:
    """Strict base64url (padding optional) → bytes; ``VaultProtocolError`` otherwise."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise VaultProtocolError(f"{what} is not valid base64url") from None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


B64Field = Annotated[str, Field(max_length=4096, pattern=_B64)]


class RegistrationStartBody(_Body):
    """OPAQUE RegistrationRequest."""

    request: B64Field


class KsfBody(_Body):
    """Argon2id parameters of a record (spec §1.3, §2.2); bounds checked by the vault."""

    memory_kib: StrictInt
    iterations: StrictInt
    parallelism: StrictInt


class RegistrationFinishBody(_Body):
    """OPAQUE RegistrationRecord, the wrapped K, the record-proof fields, the KSF parameters."""

    registration_id: Annotated[str, Field(min_length=1, max_length=64, pattern=_B64)]
    record: B64Field
    wrapped_key: B64Field
    proof_verifier: Annotated[str, Field(min_length=43, max_length=44, pattern=_B64)]
    proof: Annotated[str | None, Field(default=None, min_length=43, max_length=44,
                                       pattern=_B64)] = None
    ksf: KsfBody | None = None


class DeleteBody(_Body):
    """The record proof that allows deleting a record (spec §2.1)."""

    proof: Annotated[str | None, Field(default=None, min_length=43, max_length=44,
                                       pattern=_B64)] = None


class LoginStartBody(_Body):
    """OPAQUE KE1."""

    ke1: B64Field


class LoginFinishBody(_Body):
    """OPAQUE KE3 for a session from login start."""

    session_id: Annotated[str, Field(min_length=1, max_length=64, pattern=_B64)]
    ke3: B64Field


class HeadBody(_Body):
    """The next backup head: counter (exactly the current one + 1) and its 32-byte tag."""

    counter: Annotated[StrictInt, Field(ge=1, le=MAX_HEAD_COUNTER)]
    tag: Annotated[str, Field(min_length=43, max_length=44, pattern=_B64)]


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked = None, False
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                if not v.isdigit() or int(v) > self.limit:
                    await _error(413, "too_large", f"request body over {self.limit} bytes")(
                        scope, receive, send)
                    return
                length = v
            elif k == b"transfer-encoding":
                chunked = True
        if length is not None and not chunked:
            # The server reads no more than the declared length (HTTP/1.1 framing):
            # the body is within the limit, and the app reads it as it comes.
            await self.app(scope, receive, send)
            return
        # Read the whole (small) body first, so a stream without a length is
        # cut off at the limit too, then replay it to the app.
        body = await read_body(receive, self.limit)
        if body is None:
            return  # the client went away
        if len(body) > self.limit:
            await _error(413, "too_large", f"request body over {self.limit} bytes")(
                scope, receive, send)
            return
        await self.app(scope, replay_body(body, receive), send)


#: The vault core's worker threads unless ``--threads`` says otherwise (anyio's default).
#: Fewer threads cost less CPU per login in one process with the client's work in it
#: (2.1 ms with 40, 1.6 ms with 2), but made no difference to ``bench.vault_bench``
#: against a real server (400-470 logins per vault CPU-second for 1, 2 and 40), and
#: each request whose commit waits (a slow disk, a failover) holds a thread.
DEFAULT_WORKER_THREADS = 40


def create_app(vault: Vault, auth: Authenticator, *, max_body: int = MAX_BODY,
               worker_threads: int | None = None) -> Any:
    """The ASGI app: FastAPI routes wrapped in the body-size limit.

    ``worker_threads`` bounds the thread pool the endpoints run in (default:
    ``DEFAULT_WORKER_THREADS``); a request beyond it waits for a free thread.
    """
    threads = worker_threads or DEFAULT_WORKER_THREADS
    if threads < 1:
        raise UsageError("the vault needs at least one worker thread")

    # The endpoints' worker threads (route.VaultRoute); FastAPI's own handler, for what
    # those do not take, runs in anyio's pool, bounded the same.
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vault-worker")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        try:
            yield
        finally:
            pool.shutdown(wait=False)

    def bearer(header: str, account: str) -> str:
        """The token of an ``Authorization`` header (401 without one), after the account
        id's own check (400 invalid_account before anything else, spec §7.1)."""
        check_account_id(account)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Http(401, "unauthenticated", "missing or invalid bearer token")
        return token.strip()

    def judge(account: str) -> Callable[[str | None], None]:
        """The verdict on the account a token proves (None: none) for ``account``."""
        def then(who: str | None) -> None:
            if who is None:
                raise _Http(401, "unauthenticated", "missing or invalid bearer token")
            if who != account:
                raise _Http(403, "forbidden", "this token belongs to another account")
        return then

    def authorize(header: str, account: str) -> str:
        judge(account)(auth.account(bearer(header, account)))
        return account

    def authorize_later(header: str, account: str) -> str:
        """``authorize``, with the token lookup perhaps deferred to the request's first
        store round trip (``Authenticator.account_later``); settled before any answer."""
        auth.account_later(bearer(header, account), judge(account))
        return account

    # The check runs before the body is validated (401 before 400): in the endpoint's
    # worker-thread call (route.VaultRoute), or, where FastAPI's own handler serves a
    # request, as a dependency on the event loop when it never waits (a local token
    # table, a JWT signature) and in a worker thread when it may wait on a database server.
    check = Caller(authorize, may_wait=auth.may_wait, later=authorize_later,
                   settle=auth.settle)
    app = FastAPI(title="Strongroom Backup Key Vault", version=str(PROTOCOL),
                  description="OPAQUE (RFC 9807) key escrow with a guess limit. "
                  "See docs/spec/vault-protocol.md.", lifespan=lifespan)
    app.router.route_class = route_class(check, pool)
    _install_errors(app)
    caller = check.dependency

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        """The vault's public key (to pin), OPAQUE context and guess limit."""
        return {"protocol": PROTOCOL, "server_public_key": b64e(vault.server_public_key),
                "context": b64e(vault.config.context),
                "attempt_limit": vault.policy.attempt_limit,
                "session_ttl": vault.policy.session_ttl}

    @app.get("/v1/whoami")
    def whoami(request: Request) -> dict[str, str]:
        """The account the bearer credential belongs to."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        who = auth.account(token.strip()) if scheme.lower() == "bearer" and token else None
        if who is None:
            raise _Http(401, "unauthenticated", "missing or invalid bearer token")
        return {"account": who}

    @app.get("/v1/accounts/{account}/slots")
    def slots(account: str = Depends(caller)) -> dict[str, Any]:
        """Every slot of the account that holds a record ("" is the legacy slot)."""
        return {"slots": [{"slot": x.slot, **_status_doc(x.status)} for x in vault.slots(account)]}

    # Each slot's routes (spec §3); the same routes without ``/slots/{slot}`` are the
    # account's legacy slot, which records from protocol 2 live in.
    for prefix in ("/v1/accounts/{account}/slots/{slot}", "/v1/accounts/{account}"):
        _slot_routes(app, vault, prefix, caller)
    _realm_routes(app, Realm(vault), caller)  # docs/spec/realms.md §5

    @app.api_route("/v1/accounts/{rest:path}", methods=["GET", "POST", "DELETE"],
                   include_in_schema=False)
    def unmatched(rest: str) -> None:
        """No route matched: an account id with a '/' in it is 400, anything else 404."""
        for tail in _ACCOUNT_ENDPOINTS:
            if rest.endswith("/" + tail) and len(rest) > len(tail) + 1:
                account, _sep, slot = rest[: -len(tail) - 1].partition("/slots/")
                check_account_id(account)
                if _sep:
                    check_slot(slot)  # a slot id with a '/' in it
        raise _Http(404, "not_found", "no such endpoint")

    direct = DirectRoutes(app)
    return BodyLimit(direct, max_body) if max_body else direct


def _status_doc(st: Any) -> dict[str, Any]:
    return {"exists": st.exists, "locked": st.locked, "attempts_left": st.attempts_left,
            "attempt_limit": st.attempt_limit, "ksf": st.ksf}


def _slot_routes(app: FastAPI, vault: Vault, prefix: str, caller: Any) -> None:
    """Register one slot's endpoints under ``prefix`` (with or without ``{slot}``)."""
    dep = path_slot if "{slot}" in prefix else legacy_slot

    @app.post(f"{prefix}/registration/start")
    def registration_start(body: RegistrationStartBody, slot: str = Depends(dep),
            account: str = Depends(caller)) -> dict[str, str]:
        """OPAQUE registration: RegistrationRequest → RegistrationResponse (one-time OPRF key)."""
        started = vault.registration_start(account, b64d(body.request, "request"), slot=slot)
        return {"response": b64e(started.response), "registration_id": started.registration_id}

    @app.post(f"{prefix}/registration/finish", status_code=201)
    def registration_finish(body: RegistrationFinishBody, slot: str = Depends(dep),
            account: str = Depends(caller)) -> dict[str, Any]:
        """Deposit the OPAQUE record, the wrapped K and the KSF parameters; resets the counter.

        Replacing an active record needs its record proof."""
        proof = b64d(body.proof, "proof") if body.proof is not None else None
        vault.registration_finish(account, b64d(body.record, "record"),
                                  b64d(body.wrapped_key, "wrapped_key"),
                                  registration_id=body.registration_id,
                                  proof_verifier=b64d(body.proof_verifier, "proof_verifier"),
                                  proof=proof, slot=slot,
                                  ksf=body.ksf.model_dump() if body.ksf is not None else None)
        return {"registered": True, "attempt_limit": vault.policy.attempt_limit}

    @app.post(f"{prefix}/login/start")
    def login_start(body: LoginStartBody, slot: str = Depends(dep),
            account: str = Depends(caller)) -> dict[str, Any]:
        """KE1 → KE2; the guess is counted and committed before this answer."""
        s = vault.login_start(account, b64d(body.ke1, "ke1"), slot=slot)
        return {"session_id": s.session_id, "ke2": b64e(s.ke2), "attempts_left": s.attempts_left}

    @app.post(f"{prefix}/login/finish")
    def login_finish(body: LoginFinishBody, slot: str = Depends(dep),
            account: str = Depends(caller)) -> dict[str, str]:
        """KE3 → the wrapped K sealed under a key from the session key."""
        sealed = vault.login_finish(account, body.session_id, b64d(body.ke3, "ke3"), slot=slot)
        return {"sealed_key": b64e(sealed)}

    @app.get(f"{prefix}/record")
    def record_status(slot: str = Depends(dep), account: str = Depends(caller)) -> dict[str, Any]:
        """Whether a record exists, whether it is locked, attempts left, its KSF parameters."""
        return _status_doc(vault.status(account, slot=slot))

    @app.delete(f"{prefix}/record")
    def record_delete(body: DeleteBody | None = None, slot: str = Depends(dep),
            account: str = Depends(caller)) -> dict[str, bool]:
        """Erase this slot's record, wrapped K, counter and sessions (an active one: with proof)."""
        proof = b64d(body.proof, "proof") if body is not None and body.proof is not None else None
        return {"deleted": vault.delete(account, proof, slot=slot)}

    @app.get(f"{prefix}/head")
    def head_get(slot: str = Depends(dep), account: str = Depends(caller)) -> dict[str, Any]:
        """The slot's backup head: counter (0 if never advanced) and tag (null then)."""
        h = vault.head(account, slot=slot)
        return {"counter": h.counter, "tag": b64e(h.tag) if h.tag is not None else None}

    @app.post(f"{prefix}/head")
    def head_advance(body: HeadBody, slot: str = Depends(dep),
            account: str = Depends(caller)) -> dict[str, Any]:
        """Advance the head by exactly one (compare-and-set); 409 ``head_conflict`` otherwise."""
        h = vault.advance_head(account, body.counter, b64d(body.tag, "tag"), slot=slot)
        return {"counter": h.counter, "tag": b64e(h.tag or b"")}


_B64_32 = Annotated[str, Field(min_length=43, max_length=44, pattern=_B64)]


class RealmRegisterBody(_Body):
    """One realm's part of a realm-set registration (realms.md §4.1, §5)."""

    index: Annotated[StrictInt, Field(ge=1, le=16)]
    oprf_share: _B64_32
    public_share: _B64_32
    unlock_tag: _B64_32
    key_share: _B64_32
    wrapped_key: Annotated[str, Field(min_length=2, max_length=344, pattern=_B64)]
    proof_verifier: _B64_32
    proof: Annotated[str | None, Field(default=None, min_length=43, max_length=44,
                                       pattern=_B64)] = None
    ksf: KsfBody
    keep: _B64_32 | None = None


class RealmEvaluateBody(_Body):
    """The blinded element ``M`` to evaluate (a guess, counted before the answer)."""

    blinded: _B64_32
    public_share: _B64_32 | None = None


class RealmHeadBody(HeadBody):
    """A lagging realm's head, moved forward in one step: with the record proof."""

    proof: _B64_32


class RealmCommitBody(_Body):
    """The registration to keep (its public share), with the record proof."""

    public_share: _B64_32
    proof: _B64_32


class RealmUnlockBody(_Body):
    """The unlock tag that proves knowledge of the OPRF output for this realm."""

    tag: _B64_32


def _realm_routes(app: FastAPI, realm: Realm, caller: Any) -> None:
    """The realm endpoints of one slot (realms.md §5)."""
    prefix = "/v1/accounts/{account}/slots/{slot}/realm"

    @app.post(f"{prefix}/register", status_code=201)
    def realm_register(body: RealmRegisterBody, slot: str = Depends(path_slot),
                       account: str = Depends(caller)) -> dict[str, Any]:
        """Deposit this realm's shares, unlock tag and encrypted K; resets the counter."""
        reg = RealmRegistration(
            body.index, b64d(body.oprf_share, "oprf_share"),
            b64d(body.public_share, "public_share"), b64d(body.unlock_tag, "unlock_tag"),
            b64d(body.key_share, "key_share"), b64d(body.wrapped_key, "wrapped_key"),
            b64d(body.proof_verifier, "proof_verifier"), body.ksf.model_dump())
        proof = b64d(body.proof, "proof") if body.proof is not None else None
        keep = b64d(body.keep, "keep") if body.keep is not None else None
        realm.register(account, slot, reg, proof=proof, keep=keep)
        return {"registered": True, "attempt_limit": realm.vault.policy.attempt_limit}

    @app.post(f"{prefix}/head")
    def realm_head(body: RealmHeadBody, slot: str = Depends(path_slot),
                   account: str = Depends(caller)) -> dict[str, Any]:
        """Bring a lagging head up to ``counter`` (above the current) in one step."""
        realm.catch_up_head(account, slot, body.counter, b64d(body.tag, "tag"),
                            b64d(body.proof, "proof"))
        return {"counter": body.counter, "tag": body.tag}

    @app.post(f"{prefix}/commit")
    def realm_commit(body: RealmCommitBody, slot: str = Depends(path_slot),
                     account: str = Depends(caller)) -> dict[str, bool]:
        """Keep only the registration with this public share (a change's last step)."""
        realm.commit(account, slot, b64d(body.public_share, "public_share"),
                     b64d(body.proof, "proof"))
        return {"committed": True}

    @app.get(prefix)
    def realm_status(slot: str = Depends(path_slot),
                     account: str = Depends(caller)) -> dict[str, Any]:
        """Whether a realm record exists, locked, evaluations left, its KSF and index."""
        st = realm.status(account, slot)
        return {"exists": st.exists, "locked": st.locked, "attempts_left": st.attempts_left,
                "attempt_limit": st.attempt_limit, "ksf": st.ksf, "index": st.index,
                "registrations": [{"public_share": b64e(p), "ksf": k}
                                  for p, k in st.registrations]}

    @app.post(f"{prefix}/evaluate")
    def realm_evaluate(body: RealmEvaluateBody, slot: str = Depends(path_slot),
                       account: str = Depends(caller)) -> dict[str, Any]:
        """``M`` → ``s_i·M`` with a DLEQ proof; the guess is counted and committed first."""
        share = b64d(body.public_share, "public_share") if body.public_share else None
        ev = realm.evaluate(account, slot, b64d(body.blinded, "blinded"), share)
        return {"evaluation": b64e(ev.evaluation), "proof": b64e(ev.proof),
                "attempts_left": ev.attempts_left}

    @app.post(f"{prefix}/unlock")
    def realm_unlock(body: RealmUnlockBody, slot: str = Depends(path_slot),
                     account: str = Depends(caller)) -> dict[str, Any]:
        """The matching unlock tag → this realm's key share and the encrypted K."""
        rel = realm.unlock(account, slot, b64d(body.tag, "tag"))
        return {"key_share": b64e(rel.key_share), "wrapped_key": b64e(rel.wrapped_key)}

    @app.delete(prefix)
    def realm_delete(body: DeleteBody | None = None, slot: str = Depends(path_slot),
                     account: str = Depends(caller)) -> dict[str, bool]:
        """Erase this slot's realm record (an active one: with its record proof)."""
        proof = b64d(body.proof, "proof") if body is not None and body.proof is not None else None
        return {"deleted": realm.delete(account, slot, proof)}


_ACCOUNT_ENDPOINTS = ("registration/start", "registration/finish", "login/start", "login/finish",
                      "record", "head")


class _Http(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _install_errors(app: FastAPI) -> None:
    def handler(status: int, code: str) -> Any:
        async def h(_req: Request, exc: Exception) -> JSONResponse:
            msg = getattr(exc, "message", None) or str(exc)
            extra = {}
            if isinstance(exc, InvalidLogin):
                extra["attempts_left"] = getattr(exc, "attempts_left", None)
            if isinstance(exc, AttemptsExhausted):
                extra["attempts_left"] = 0
            if isinstance(exc, BackupHeadConflict):
                extra["counter"] = exc.current
            return _error(status, code, msg, **extra)
        return h

    async def http_error(_req: Request, exc: _Http) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    async def starlette_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    async def validation_error(_req: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
        return _error(400, "bad_request", "; ".join(parts) or "malformed request")

    app.add_exception_handler(_Http, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, starlette_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(VaultSessionInvalid, handler(409, "session_invalid"))
    app.add_exception_handler(BackupHeadConflict, handler(409, "head_conflict"))
    app.add_exception_handler(VaultProtocolError, handler(400, "bad_message"))
    app.add_exception_handler(RealmNotRegistered, handler(404, "not_registered"))
    app.add_exception_handler(InvalidAccountId, handler(400, "invalid_account"))
    app.add_exception_handler(UsageError, handler(400, "bad_request"))
    app.add_exception_handler(InvalidLogin, handler(401, "invalid_login"))
    app.add_exception_handler(AttemptsExhausted, handler(410, "locked"))
    app.add_exception_handler(VaultAuthError, handler(403, "proof_required"))
    app.add_exception_handler(VaultStoreError, handler(503, "unavailable"))


__all__ = ["MAX_BODY", "PROTOCOL", "b64d", "b64e", "create_app"]
