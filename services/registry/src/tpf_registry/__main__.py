"""`python -m tpf_registry`: settings → logging → database → migrations → serve."""

from __future__ import annotations

import asyncio
import logging
import sys

from tpf_config import ConfigError, load_settings
from tpf_registry.server import SERVICE_FULL_NAMES, build_registrar
from tpf_registry.settings import RegistrySettings
from tpf_rpc.server import serve
from tpf_store import migrate, open_pool
from tpf_store.embedded import embedded_default_database
from tpf_store.errors import database_unavailable
from tpf_telemetry import configure_logging

log = logging.getLogger("tpf_registry")


async def run(settings: RegistrySettings) -> None:
    embedded = None
    if settings.database_url is not None:
        url = settings.database_url
    else:
        # The embedded default: a private Postgres under the data directory.
        embedded, url = await asyncio.to_thread(embedded_default_database, settings.data_dir)
        log.info("using embedded Postgres", extra={"data_dir": str(settings.data_dir)})
    pool = await open_pool(
        url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        name="tpf-registry",
    )

    async def on_stop() -> None:
        await pool.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)

    try:
        await migrate(pool, component="registry", package="tpf_registry")
    except BaseException:
        await on_stop()
        raise
    await serve(
        settings=settings,
        service_name="tpf-registry",
        domain="tpf.registry",
        register=build_registrar(settings, pool),
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
        settings = load_settings(RegistrySettings)
    except ConfigError as error:
        print(f"tpf-registry: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(service="tpf-registry", level=settings.log_level, fmt=settings.log_format)
    try:
        asyncio.run(run(settings))
    except ConfigError as error:
        log.error("configuration error: %s", error)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
