"""`WatchExecution` for the browser: one JSON line per state, until the execution ends.

`GET /console/api/tenants/{tenantId}/executions/{executionId}:watch[?afterVersion=N]` answers
`application/x-ndjson`: each line is `{"execution": {...}}` in TPF's JSON, the first one the
current state. Errors before the first line are ordinary problem answers (404 for an unknown
execution); an error after it is a last line `{"error": {"status", "reason", "detail"}}`. An
empty line every few seconds keeps idle proxies from closing the stream and notices a reader
that went away (the gRPC watch is then cancelled). The stream ends when the execution is
terminal, and at once when the gateway shuts down, so a stop never waits on open consoles.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Collection
from typing import Any

from aiohttp import web

from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf_gateway.adaptations import problem_of
from tpf_gateway.auth import TokenGuard
from tpf_gateway.problems import Problem, ProblemError
from tpf_gateway.routes import Family, Route, Upstream
from tpf_gateway.tpf_json import message_to_json
from tpf_gateway.upstream import UpstreamError, Upstreams

_WATCH = epb.DESCRIPTOR.services_by_name["ExecutionService"].methods_by_name["WatchExecution"]
# Idle proxies commonly close after 30-60 s without a byte.
HEARTBEAT_S = 10.0


class Watches:
    """The watch handler, and the streams open right now (ended at shutdown)."""

    def __init__(
        self,
        read_route: Route,
        upstreams: Upstreams,
        guard: TokenGuard,
        *,
        enabled_families: Collection[Family],
    ) -> None:
        self._route = read_route
        self._upstreams = upstreams
        self._guard = guard
        self._enabled = frozenset(enabled_families)
        self._stopping = asyncio.Event()

    async def stop(self, _: web.Application) -> None:
        """aiohttp's on_shutdown hook: end every open stream now."""
        self._stopping.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if Family.CONTROL_PLANE not in self._enabled:
            raise ProblemError(Problem(status=404, message="The control-plane API is disabled"))
        token = self._guard.check(self._route, request.headers.get("Authorization"))
        messages = self._upstreams.stream(
            Upstream.COORDINATOR, _WATCH, _watch_request(request), caller_token=token
        )
        try:
            return await self._relay(request, messages)
        finally:
            await messages.aclose()

    async def _relay(
        self, request: web.Request, messages: AsyncGenerator[Any, None]
    ) -> web.StreamResponse:
        stop = asyncio.ensure_future(self._stopping.wait())
        following: asyncio.Future[Any] = asyncio.ensure_future(anext(messages, None))
        try:
            try:
                # Wait for the first state before answering, so a failure is a real status.
                message = await following
            except UpstreamError as error:
                raise ProblemError(problem_of(self._route, error)) from None
            response = web.StreamResponse(
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
            )
            response.content_type = "application/x-ndjson"
            response.charset = "utf-8"
            await response.prepare(request)
            try:
                try:
                    while message is not None:
                        execution = message_to_json(message.execution)
                        await response.write(_line({"execution": execution}))
                        following = asyncio.ensure_future(anext(messages, None))
                        message = await self._next(following, stop, response)
                except UpstreamError as error:
                    problem = problem_of(self._route, error)
                    await response.write(_line({"error": _problem_json(problem)}))
                await response.write_eof()
            except ConnectionResetError:
                # The reader went away (or the gateway is closing its connections); `handle`
                # cancels the gRPC watch.
                pass
            return response
        finally:
            stop.cancel()
            following.cancel()
            # Let a cancelled read finish before the stream is closed.
            await asyncio.gather(following, return_exceptions=True)

    async def _next(
        self,
        following: asyncio.Future[Any],
        stop: asyncio.Future[Any],
        response: web.StreamResponse,
    ) -> Any:
        """The next message; None at the end of the stream or when the gateway stops."""
        while True:
            done, _ = await asyncio.wait(
                {following, stop}, timeout=HEARTBEAT_S, return_when="FIRST_COMPLETED"
            )
            if following in done:
                return following.result()
            if stop in done:
                return None
            await response.write(b"\n")


def _watch_request(request: web.Request) -> epb.WatchExecutionRequest:
    message = epb.WatchExecutionRequest(
        tenant_id=request.match_info["tenantId"], execution_id=request.match_info["executionId"]
    )
    after = request.query.get("afterVersion")
    if after is not None:
        try:
            message.after_version = int(after)
        except ValueError:
            raise ProblemError(
                Problem(
                    status=400,
                    message=f"afterVersion must be an integer, got {after!r}",
                    reason="FIELD_INVALID",
                    metadata={"field": "afterVersion"},
                )
            ) from None
    return message


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"status": problem.status, "reason": problem.reason, "detail": problem.message}


def _line(value: Any) -> bytes:
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
