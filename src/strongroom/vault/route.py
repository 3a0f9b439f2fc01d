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
schema is unchanged.  Whatever this path does not take — a content type other
than ``application/json``, a missing or empty body, a body that is not JSON or
does not validate — goes to FastAPI's own handler, which decides exactly as
before: every error answer is FastAPI's.  Any other endpoint (a ``Request``
parameter, an optional body) is FastAPI's entirely.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, get_type_hints

import anyio.to_thread
import pydantic_core
from fastapi import Request
from fastapi.params import Depends
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

#: The bearer check: (Authorization header, account in the path) → the account, or raise.
Authorize = Callable[[str, str], str]
_JSON = "application/json"
_FALLBACK = object()


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

    def __init__(self, authorize: Authorize, *, may_wait: bool) -> None:
        self.authorize = authorize
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

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        plan = self._plan()
        if plan is None:
            return standard
        takes_account, slot_of, model = plan
        endpoint, status = self.endpoint, self.status_code or 200
        authorize = self.caller.authorize if self.caller is not None else None

        def run(authorization: str, path: dict[str, Any], body: Any) -> Any:
            # FastAPI's order: the dependencies (the caller: 401/403), then the body's validation.
            kwargs: dict[str, Any] = {}
            if takes_account and authorize is not None:
                kwargs["account"] = authorize(authorization, path["account"])
            if slot_of is not None:
                kwargs["slot"] = slot_of(path)
            if model is not None:
                try:
                    kwargs["body"] = model.model_validate(body)
                except ValidationError:
                    return _FALLBACK
            return pydantic_core.to_json(endpoint(**kwargs))

        async def handle(request: Request) -> Response:
            body = None
            if model is not None:
                # Parsed before anything else, as FastAPI does (malformed JSON is 400 even
                # without a token), and with the same parser (json.loads of the bytes).
                raw = await request.body()
                if not raw or request.headers.get("content-type") != _JSON:
                    return await standard(request)
                try:
                    body = json.loads(raw)
                except Exception:  # noqa: BLE001  # FastAPI's handler says what is wrong
                    return await standard(request)
            content = await anyio.to_thread.run_sync(
                run, request.headers.get("authorization", ""), request.path_params, body)
            if content is _FALLBACK:
                return await standard(request)
            return Response(content, status_code=status, media_type=_JSON)

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


def route_class(caller: Caller) -> type[VaultRoute]:
    """The route class of one app, bound to its bearer check."""
    return type("VaultRoute", (VaultRoute,), {"caller": caller})


__all__ = ["Authorize", "Caller", "VaultRoute", "legacy_slot", "path_slot", "route_class"]
