"""The operator console at `/console`: static files, its session route, its RPC routes and the
execution watch, all on the gateway's own auth and error edge (docs/console.md)."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from tpf_gateway.auth import TokenGuard
from tpf_gateway.console.api import SESSION_PATH, WATCH_PATH, console_routes, get_execution_route
from tpf_gateway.console.assets import AssetServer, add_security_headers, load_assets
from tpf_gateway.console.watch import Watches
from tpf_gateway.routes import Family
from tpf_gateway.transcoder import Transcoder, json_response
from tpf_gateway.upstream import Upstreams

__all__ = ["add_console"]


def add_console(
    app: web.Application,
    upstreams: Upstreams,
    guard: TokenGuard,
    *,
    enabled_families: Collection[Family],
) -> None:
    """Serve the console on `app` (before it starts)."""
    routes = console_routes()

    async def session(request: web.Request) -> web.Response:
        access = guard.access(request.headers.get("Authorization"))
        return json_response(
            {
                "access": access.value,
                "controlPlaneEnabled": Family.CONTROL_PLANE in enabled_families,
                "adminEnabled": Family.ADMIN in enabled_families,
            }
        )

    app.router.add_get(SESSION_PATH, session)
    watches = Watches(
        get_execution_route(routes), upstreams, guard, enabled_families=enabled_families
    )
    app.router.add_get(WATCH_PATH, watches.handle)
    app.on_shutdown.append(watches.stop)
    Transcoder(routes, upstreams, guard, enabled_families=enabled_families).add_routes(app)
    AssetServer(load_assets()).add_routes(app)
    app.on_response_prepare.append(add_security_headers)
