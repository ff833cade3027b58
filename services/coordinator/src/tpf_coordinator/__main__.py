"""`python -m tpf_coordinator`: settings → logging → database → migrations → serve."""

from __future__ import annotations

import asyncio
import logging
import sys

from tpf_config import ConfigError, load_settings
from tpf_coordinator.server import SERVICE_FULL_NAMES, build_coordinator
from tpf_coordinator.settings import CoordinatorSettings
from tpf_rpc.server import serve
from tpf_store import migrate, open_pool
from tpf_store.embedded import embedded_default_database
from tpf_store.errors import database_unavailable
from tpf_telemetry import configure_logging

log = logging.getLogger("tpf_coordinator")


async def run(settings: CoordinatorSettings) -> None:
    embedded = None
    if settings.database_url is not None:
        url = settings.database_url
    else:
        embedded, url = await asyncio.to_thread(embedded_default_database, settings.data_dir)
        log.info("using embedded Postgres", extra={"data_dir": str(settings.data_dir)})
    pool = await open_pool(
        url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        name="tpf-coordinator",
    )
    coordinator = None

    async def on_stop() -> None:
        if coordinator is not None:
            await coordinator.stop()
        await pool.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)

    try:
        await migrate(pool, component="coordinator", package="tpf_coordinator")
        coordinator = build_coordinator(settings, pool, url)
        await coordinator.start()
    except BaseException:
        await on_stop()
        raise
    await serve(
        settings=settings,
        service_name="tpf-coordinator",
        domain="tpf.coordinator",
        register=coordinator.register,
        service_full_names=SERVICE_FULL_NAMES,
        on_stop=on_stop,
        error_translators=[database_unavailable],
        server_options=[
            ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
            ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ],
    )


def main() -> None:
    try:
        settings = load_settings(CoordinatorSettings)
    except ConfigError as error:
        print(f"tpf-coordinator: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(service="tpf-coordinator", level=settings.log_level, fmt=settings.log_format)
    try:
        asyncio.run(run(settings))
    except ConfigError as error:
        log.error("configuration error: %s", error)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
