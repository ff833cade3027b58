"""`python -m tpf_dispatcher`: settings → logging → local pipelines → claim loop + serve.

SIGTERM/SIGINT drain the dispatcher while its status RPC still answers (state DRAINING); only
then does the gRPC server stop and the process exit 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tpf_config.service_cli import parse_service_args
from tpf_dispatcher.server import SERVICE_FULL_NAMES, build_dispatcher
from tpf_dispatcher.settings import DispatcherSettings
from tpf_rpc.server import run_main, serve


class DrainThenStop(asyncio.Event):
    """The stop event handed to `serve`, whose SIGTERM/SIGINT handlers call `set()`.

    Here `set()` first runs `drain` (the server keeps answering meanwhile) and only then lets
    `serve` shut the server down. A second signal while draining changes nothing.
    """

    def __init__(self, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self._drain = drain
        self._draining: asyncio.Task[None] | None = None

    def set(self) -> None:
        if self._draining is None:
            self._draining = asyncio.get_running_loop().create_task(self._drain_then_set())

    async def _drain_then_set(self) -> None:
        try:
            await self._drain()
        finally:
            super().set()


async def run(settings: DispatcherSettings) -> None:
    service = build_dispatcher(settings)
    service.start()
    await serve(
        settings=settings,
        service_name="tpf-dispatcher",
        domain="tpf.dispatcher",
        register=service.register,
        service_full_names=SERVICE_FULL_NAMES,
        stop_event=DrainThenStop(lambda: service.dispatcher.drain(settings.drain_timeout_s)),
        on_stop=service.close,
        metrics_registry=service.metrics_registry,
    )


def main() -> None:
    parse_service_args("tpf-dispatcher", DispatcherSettings, distribution="tpf-dispatcher")
    run_main(DispatcherSettings, service_name="tpf-dispatcher", run=run)


if __name__ == "__main__":
    main()
