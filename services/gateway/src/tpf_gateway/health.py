"""`/q/health/...` as Quarkus SmallRye Health answers them (TPF_WIRE §7); no authentication.

Liveness says the process serves HTTP. Readiness adds TPF's `pipeline-dependencies` check:
UP with `data.state = HEALTHY` only when the coordinator's and the registry's gRPC health both
say SERVING; otherwise 503 with `UNHEALTHY` and `data.error` naming what is not serving.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tpf_gateway.upstream import Upstreams

LIVE_CHECK = "pipeline-runtime"
READY_CHECK = "pipeline-dependencies"


def _check(name: str, up: bool, data: dict[str, Any] | None = None) -> dict[str, Any]:
    check: dict[str, Any] = {"name": name, "status": "UP" if up else "DOWN"}
    if data is not None:
        check["data"] = data
    return check


def _answer(checks: list[dict[str, Any]]) -> web.Response:
    up = all(check["status"] == "UP" for check in checks)
    return web.json_response(
        {"status": "UP" if up else "DOWN", "checks": checks}, status=200 if up else 503
    )


class Health:
    def __init__(self, upstreams: Upstreams, *, timeout_s: float) -> None:
        self._upstreams = upstreams
        self._timeout_s = timeout_s

    def app(self) -> web.Application:
        """An application serving the health routes and nothing else."""
        app = web.Application()
        self.add_routes(app)
        return app

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/q/health", self.combined)
        app.router.add_get("/q/health/live", self.live)
        app.router.add_get("/q/health/ready", self.ready)
        app.router.add_get("/q/health/started", self.live)

    async def live(self, _: web.Request) -> web.Response:
        return _answer([_check(LIVE_CHECK, True)])

    async def ready(self, _: web.Request) -> web.Response:
        return _answer([_check(LIVE_CHECK, True), await self._dependencies()])

    async def combined(self, request: web.Request) -> web.Response:
        return await self.ready(request)

    async def _dependencies(self) -> dict[str, Any]:
        upstreams = list(self._upstreams.targets.items())
        answers = await asyncio.gather(
            *(
                self._upstreams.serving(upstream, timeout_s=self._timeout_s)
                for upstream, _ in upstreams
            )
        )
        data: dict[str, Any] = {}
        errors: list[str] = []
        for (upstream, target), (serving, detail) in zip(upstreams, answers, strict=True):
            data[upstream.value] = detail if not serving else "SERVING"
            if not serving:
                errors.append(f"{upstream.value} at {target}: {detail}")
        healthy = not errors
        data["state"] = "HEALTHY" if healthy else "UNHEALTHY"
        if errors:
            data["error"] = "; ".join(errors)
        return _check(READY_CHECK, healthy, data)
