"""The vault's FastAPI route class: one worker-thread call per request.

FastAPI's own request handler (``APIRoute.get_route_handler``) solves each
endpoint's dependency graph on every request, runs a sync endpoint in a worker
thread, then validates the returned dict against the return annotation in a
second worker thread (a third when the bearer check reads a database server);
each hand-off between the event loop and a thread is two context switches and
most of a login's HTTP cost (docs/vault-operations.md §8).

:class:`VaultRoute` serves the endpoints of the vault's one shape — parameters
among ``account`` (the caller, from :class:`Caller`), ``slot`` (the path's
``{slot}``, :func:`path_slot`, or the legacy slot, :func:`legacy_slot``) and
``body`` (a required pydantic model) — by one worker-thread call that checks
the caller, validates the body from its bytes and runs the endpoint, and it
answers with the endpoint's dict as JSON (``pydantic_core.to_json``, the bytes
FastAPI would send).  The signature is still FastAPI's to read, so the OpenAPI
schema is unchanged.  Whatever this path does not take — a content type FastAPI
would not parse as JSON (``application/json`` and ``application/*+json`` it does,
with any parameters, ``charset`` included), a missing or empty body, a body that is not JSON or
does not validate — goes to FastAPI's own handler, which decides exactly as
before: every error answer is FastAPI's.  Any other endpoint (a ``Request``
parameter, an optional body) is FastAPI's entirely.

:class:`DirectRoutes`, in front of the FastAPI app, hands a request for such an
endpoint to that call without Starlette's middleware and router, and the call
runs in the app's own thread pool (a bare executor hand-off).  FastAPI's native telemetry does not see
the requests served this way (the vault configures none).
"""

from __future__ import annotations

import asyncio
import email.message
import functools
import inspect
import json
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar, get_type_hints

import anyio.to_thread
import pydantic_core
from fastapi import Request
from fastapi.params import Depends
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

#: The bearer check: (Authorization header, account in the path) → the account, or raise.
Authorize = Callable[[str, str], str]
_JSON = "application/json"
_JSON_BYTES = _JSON.encode()
_FALLBACK = object()
#: What Starlette's ``ServerErrorMiddleware`` answers for an exception no handler takes.
_SERVER_ERROR = b"Internal Server Error"


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case), as Starlette's ``Headers.get``."""
    for k, v in headers:
        if k == name:
            return v
    return None


def _is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI's handler parses a body with this ``Content-Type`` as JSON
    (``json.loads`` of the bytes, whatever its parameters): ``application/json`` or
    ``application/*+json``, read as FastAPI reads it (``email.message``).  Without
    one it does not (``strict_content_type``, FastAPI's default)."""
    if content_type == _JSON_BYTES:
        return True
    if content_type is None:
        return False
    return _is_json_type(content_type)


@functools.lru_cache(maxsize=64)
def _is_json_type(content_type: bytes) -> bool:
    # FastAPI's own test (fastapi/routing.py, get_request_handler), on the header as
    # Starlette decodes it (latin-1); a pure function of the value, so it is cached.
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


@dataclass(frozen=True)
class _Direct:
    """How :class:`DirectRoutes` serves one route: ``call(headers, path params, body)``."""

    call: Callable[[list[tuple[bytes, bytes]], dict[str, Any], bytes | None],
                   Coroutine[Any, Any, bytes | object]]
    status: int
    has_body: bool


async def path_slot(slot: str) -> str:
    """The slot named in the path (a FastAPI dependency, async: no thread for it)."""
    return slot


async def legacy_slot() -> str:
    """The account's legacy slot, on routes without ``/slots/{slot}``."""
    return ""


class Caller:
    """The bearer check, as a FastAPI dependency (for the schema and FastAPI's handler).

    A check that may wait on a database server (``may_wait``) is a sync
    dependency, so FastAPI runs it in a worker thread; one that never waits
    runs on the event loop.  :class:`VaultRoute` calls ``authorize`` itself,
    in the same worker-thread call as the endpoint.
    """

    def __init__(self, authorize: Authorize, *, may_wait: bool, later: Authorize | None = None,
                 settle: Callable[..., None] | None = None) -> None:
        self.authorize = authorize
        #: The check with its token lookup perhaps deferred to the request's first store
        #: round trip, and how to settle it before answering (``Authenticator.settle``).
        self.later, self.settle = later, settle
        self.dependency: Callable[..., Any] = self._in_thread if may_wait else self._on_loop

    def _in_thread(self, request: Request, account: str) -> str:
        return self.authorize(request.headers.get("authorization", ""), account)

    async def _on_loop(self, request: Request, account: str) -> str:
        return self.authorize(request.headers.get("authorization", ""), account)


class VaultRoute(APIRoute):
    """An ``APIRoute`` whose endpoints of the vault's shape run in one thread call.

    Subclassed per app by :func:`route_class` with that app's :class:`Caller`.
    """

    caller: ClassVar[Caller | None] = None
    #: The worker threads the endpoints run in (None: anyio's default thread pool).
    pool: ClassVar[Executor | None] = None
    #: Set by ``get_route_handler`` when the route has the vault's shape.
    direct: _Direct | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        plan = self._plan()
        if plan is None:
            return standard
        takes_account, slot_of, model = plan
        endpoint, status = self.endpoint, self.status_code or 200
        caller, pool = self.caller, self.pool
        authorize = caller.authorize if caller is not None else None
        settle = caller.settle if caller is not None and caller.later is not None else None
        if settle is not None:
            authorize = caller.later  # type: ignore[union-attr]

        def run(authorization: str, path: dict[str, Any], body: Any) -> Any:
            # FastAPI's order: the dependencies (the caller: 401/403), then the body's
            # validation.  A deferred token lookup (Caller.later) is settled before any
            # answer, and before any error the endpoint raised: 401/403 comes first.
            kwargs: dict[str, Any] = {}
            if takes_account and authorize is not None:
                kwargs["account"] = authorize(authorization, path["account"])
            try:
                if slot_of is not None:
                    kwargs["slot"] = slot_of(path)
                if model is not None:
                    try:
                        kwargs["body"] = model.model_validate(body)
                    except ValidationError:
                        if settle is not None:
                            settle(run=False)  # FastAPI's handler checks the token itself
                        return _FALLBACK
                result = endpoint(**kwargs)
            except BaseException:
                if settle is not None:
                    settle()
                raise
            if settle is not None:
                settle()
            return pydantic_core.to_json(result)

        async def direct(headers: list[tuple[bytes, bytes]], path: dict[str, Any],
                         raw: bytes | None) -> bytes | object:
            """The answer's JSON, or ``_FALLBACK`` for FastAPI's handler (raises what the
            endpoint raises).  ``raw``: the body (None for an endpoint without one)."""
            body = None
            if model is not None:
                # Parsed before anything else, as FastAPI does (malformed JSON is 400 even
                # without a token), and with the same parser (json.loads of the bytes).
                if not raw or not _is_json(_header(headers, b"content-type")):
                    return _FALLBACK
                try:
                    body = json.loads(raw)
                except Exception:  # noqa: BLE001  # FastAPI's handler says what is wrong
                    return _FALLBACK
            authorization = _header(headers, b"authorization")
            token = authorization.decode("latin-1") if authorization else ""
            if pool is None:
                return await anyio.to_thread.run_sync(run, token, path, body)
            # A bare executor hand-off: anyio's (capacity limiter, cancel scopes) cost
            # ~20 µs more per request.  A cancelled request still lets the call finish
            # (a counted guess stays counted); only its answer is dropped.
            return await asyncio.get_running_loop().run_in_executor(pool, run, token, path, body)

        async def handle(request: Request) -> Response:
            raw = await request.body() if model is not None else None
            content = await direct(request.scope["headers"], request.path_params, raw)
            if content is _FALLBACK:
                return await standard(request)
            assert isinstance(content, bytes)
            return Response(content, status_code=status, media_type=_JSON)

        self.direct = _Direct(direct, status, model is not None)
        return handle

    def _plan(self) -> tuple[bool, Callable[[dict[str, Any]], str] | None,
                             type[BaseModel] | None] | None:
        """How to call this endpoint directly, or None when FastAPI's handler must."""
        takes_account = False
        slot_of: Callable[[dict[str, Any]], str] | None = None
        model: type[BaseModel] | None = None
        hints = get_type_hints(self.endpoint)
        for name, p in inspect.signature(self.endpoint).parameters.items():
            dep = p.default.dependency if isinstance(p.default, Depends) else None
            if name == "account" and self.caller is not None and dep == self.caller.dependency:
                takes_account = True
            elif name == "slot" and dep is path_slot and "{slot}" in self.path:
                slot_of = _path_slot
            elif name == "slot" and dep is legacy_slot:
                slot_of = _legacy_slot
            elif (name == "body" and p.default is inspect.Parameter.empty
                  and isinstance(hints.get(name), type) and issubclass(hints[name], BaseModel)):
                model = hints[name]
            else:
                return None
        return takes_account, slot_of, model


def _path_slot(path: dict[str, Any]) -> str:
    return str(path["slot"])


def _legacy_slot(_path: dict[str, Any]) -> str:
    return ""


class DirectRoutes:
    """ASGI in front of the FastAPI app: a request for a :class:`VaultRoute` endpoint
    goes straight to that endpoint, past Starlette's middleware and router.

    The stack in between (server-error and exception middleware, FastAPI's exit
    stack and telemetry hooks, a regular-expression match against each route in
    turn, a ``Request`` and a ``Response`` object) cost about as much CPU per
    request as the vault core's own work besides the cryptography
    (docs/vault-operations.md §8).  Which route a path names is decided here
    exactly as Starlette's router decides it: the app's routes are tried in their
    order, a route matches when its literal path segments are equal and each
    ``{param}`` segment is non-empty (Starlette's ``str`` convertor), and a route
    whose path this cannot read (another convertor) ends the table: from there on,
    FastAPI decides.  An error the endpoint raises is answered by the app's own
    exception handler for it (Starlette's lookup along the exception's MRO), one
    no handler takes by Starlette's plain 500, and re-raised.  Anything the
    direct call does not take (see :class:`VaultRoute`), another scope type, a
    ``root_path``, or a path no direct route names goes to the app, with the body
    replayed when it was read.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._table: dict[int, list[tuple[tuple[str | None, ...], frozenset[str],
                                          _Direct | None, tuple[str, ...]]]] | None = None

    @property
    def routes(self) -> list[Any]:
        """The app's routes."""
        return list(self.app.routes)

    def _build(self) -> dict[int, list[tuple[tuple[str | None, ...], frozenset[str],
                                              _Direct | None, tuple[str, ...]]]]:
        table: dict[int, list[tuple[tuple[str | None, ...], frozenset[str], _Direct | None,
                                    tuple[str, ...]]]] = {}
        for route in self.app.router.routes:
            path = getattr(route, "path", None)
            methods = getattr(route, "methods", None)
            if not isinstance(path, str) or not path.startswith("/") or not methods:
                break  # a mount, a websocket route, ...: Starlette decides from here on
            segments: list[str | None] = []
            names: list[str] = []
            for seg in path.split("/")[1:]:
                if seg.startswith("{") and seg.endswith("}") and seg[1:-1].isidentifier():
                    segments.append(None)
                    names.append(seg[1:-1])
                elif "{" in seg or "}" in seg:
                    return table  # a convertor ({rest:path}): FastAPI decides from here on
                else:
                    segments.append(seg)
            direct = route.direct if isinstance(route, VaultRoute) else None
            table.setdefault(len(segments), []).append(
                (tuple(segments), frozenset(methods), direct, tuple(names)))
        return table

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        if self._table is None:
            self._table = self._build()
        parts = scope["path"].split("/")[1:]
        method = scope["method"]
        for template, methods, direct, names in self._table.get(len(parts), ()):
            params = []
            for want, got in zip(template, parts, strict=True):
                if want is None:
                    if not got:
                        break
                    params.append(got)
                elif want != got:
                    break
            else:
                if method not in methods:
                    continue  # Starlette: a partial match; a later route may match fully
                if direct is not None:
                    await self._serve(direct, dict(zip(names, params, strict=True)),
                                      scope, receive, send)
                    return
                break
        await self.app(scope, receive, send)

    async def _serve(self, d: _Direct, path: dict[str, Any], scope: Any, receive: Any,
                     send: Any) -> None:
        raw = None
        if d.has_body:
            raw = await read_body(receive)
            if raw is None:
                return  # the client went away
        try:
            content = await d.call(scope["headers"], path, raw)
        except Exception as exc:  # noqa: BLE001  # answered as the app's handlers answer it
            await self._error(exc, scope, receive, send)
            return
        if content is _FALLBACK:
            await self.app(scope, replay_body(raw, receive) if raw is not None else receive, send)
            return
        assert isinstance(content, bytes)
        await send({"type": "http.response.start", "status": d.status,
                    "headers": [(b"content-length", str(len(content)).encode()),
                                (b"content-type", _JSON_BYTES)]})
        await send({"type": "http.response.body", "body": content})

    async def _error(self, exc: Exception, scope: Any, receive: Any, send: Any) -> None:
        handlers = self.app.exception_handlers
        handler = None
        if isinstance(exc, StarletteHTTPException):
            handler = handlers.get(exc.status_code)
        if handler is None:
            for cls in type(exc).__mro__:
                if cls in handlers and cls is not Exception:
                    handler = handlers[cls]
                    break
        if handler is None:
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-length", str(len(_SERVER_ERROR)).encode()),
                                    (b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": _SERVER_ERROR})
            raise exc
        response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)
        exc.__traceback__ = None  # as Starlette: a reused exception keeps no old tracebacks


async def read_body(receive: Any, limit: int | None = None) -> bytes | None:
    """A request's whole body from ASGI ``receive`` (None if the client went away),
    read no further than the first message that takes it over ``limit`` bytes."""
    body, more = b"", True
    while more:
        msg = await receive()
        if msg["type"] != "http.request":
            return None
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
        if limit is not None and len(body) > limit:
            break
    return body


def replay_body(body: bytes, receive: Any) -> Any:
    """An ASGI ``receive`` that yields ``body`` once, then what ``receive`` yields."""
    replayed = False

    async def replay() -> Any:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def route_class(caller: Caller, pool: Executor | None = None) -> type[VaultRoute]:
    """The route class of one app, bound to its bearer check and its worker threads."""
    return type("VaultRoute", (VaultRoute,), {"caller": caller, "pool": pool})


__all__ = ["Authorize", "Caller", "DirectRoutes", "VaultRoute", "legacy_slot", "path_slot", "read_body",
           "replay_body", "route_class"]
