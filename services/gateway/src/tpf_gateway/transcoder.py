"""The one handler behind every route: guard, bind, call, answer.

For each route of the table: the family must be enabled (else TPF's empty 404), TPF's blank
path-id check runs (400 `<name> is required`), the bearer token is checked, the request is
bound to the RPC's request message, the RPC is called, and the response (or its
`response_body` field) is written in TPF's JSON. Errors become Problems through the adaptation
table; rendering them is the error middleware's job.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from aiohttp import web
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from tpf_gateway.adaptations import problem_of, recovery_for
from tpf_gateway.auth import TokenGuard
from tpf_gateway.binding import HttpInput, bind_request
from tpf_gateway.problems import Problem, ProblemError
from tpf_gateway.routes import Family, Route
from tpf_gateway.tpf_json import Json, field_to_json, message_to_json
from tpf_gateway.upstream import UpstreamError, Upstreams

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def response_json(route: Route, response: Message) -> Json:
    """The body of a success: the whole response, or its `response_body` field."""
    if route.response_body:
        field = route.method.output_type.fields_by_name[route.response_body]
        return field_to_json(response, field)
    return message_to_json(response)


def json_response(value: Json) -> web.Response:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=text, content_type="application/json", charset="utf-8")


class Transcoder:
    def __init__(
        self,
        routes: Sequence[Route],
        upstreams: Upstreams,
        guard: TokenGuard,
        *,
        enabled_families: Collection[Family],
    ) -> None:
        self._routes = tuple(routes)
        self._upstreams = upstreams
        self._guard = guard
        self._enabled = frozenset(enabled_families)

    def add_routes(self, app: web.Application) -> None:
        """Register every route, in the table's order (literal segments before variables)."""
        for route in self._routes:
            app.router.add_route(route.http_method, route.path, self._handler(route))

    def _handler(self, route: Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.handle(route, request)

        return handle

    async def handle(self, route: Route, request: web.Request) -> web.Response:
        if route.family not in self._enabled:
            raise ProblemError(
                Problem(
                    status=404,
                    message=f"The {route.family.value} API is disabled",
                    empty_tpf_body=True,
                )
            )
        if route.is_tpf:
            _require_path_ids(route, request)
        caller_token = self._guard.check(route, request.headers.get("Authorization"))
        body = await request.read() if route.body else b""
        message = bind_request(
            route,
            HttpInput(path_params=request.match_info, query=list(request.query.items()), body=body),
        )
        return json_response(await self._answer(route, message, caller_token))

    async def _answer(self, route: Route, message: Message, caller_token: str | None) -> Json:
        async def call(method: MethodDescriptor, request: Message) -> Any:
            return await self._upstreams.call(
                route.upstream, method, request, caller_token=caller_token
            )

        try:
            return response_json(route, await call(route.method, message))
        except UpstreamError as error:
            recovery = recovery_for(route, error)
            if recovery is None:
                raise ProblemError(problem_of(route, error)) from None
            failed = error
        try:
            return await recovery(message, call)
        except UpstreamError as error:
            raise ProblemError(problem_of(route, error)) from failed


def _require_path_ids(route: Route, request: web.Request) -> None:
    # TPF checks blank ids before the token (§1.1 guard order).
    for variable in route.variables:
        if not request.match_info.get(variable.name, "").strip():
            raise ProblemError(
                Problem(status=400, message=f"{variable.name} is required", reason="FIELD_REQUIRED")
            )
