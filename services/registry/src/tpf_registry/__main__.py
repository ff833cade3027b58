"""`python -m tpf_registry`: settings → logging → database → migrations → serve.

`tpf-registry migrate` applies the pending migrations and exits (once per rollout).
"""

from __future__ import annotations

from tpf_config.service_cli import parse_service_args
from tpf_registry.server import SERVICE_FULL_NAMES, build_metrics, build_registrar
from tpf_registry.settings import RegistrySettings
from tpf_rpc.server import run_main, serve
from tpf_store import migrate_service_database, open_service_database
from tpf_store.errors import database_unavailable, text_not_storable


async def run(settings: RegistrySettings) -> None:
    database = await open_service_database(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        component="registry",
        package="tpf_registry",
        pool_name="tpf-registry",
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        migrate_on_start=settings.migrate_on_start,
    )
    metrics_registry, gauges = build_metrics(settings, database.pool)
    if settings.metrics_port:
        gauges.start()

    async def on_stop() -> None:
        await gauges.close()
        await database.close()

    await serve(
        settings=settings,
        service_name="tpf-registry",
        domain="tpf.registry",
        register=build_registrar(settings, database.pool),
        service_full_names=SERVICE_FULL_NAMES,
        on_stop=on_stop,
        metrics_registry=metrics_registry,
        error_translators=[database_unavailable, text_not_storable],
        server_options=[
            ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
            ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ],
    )


async def migrate(settings: RegistrySettings) -> None:
    await migrate_service_database(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        component="registry",
        package="tpf_registry",
    )


def main() -> None:
    command = parse_service_args("tpf-registry", RegistrySettings, commands=("serve", "migrate"))
    chosen = migrate if command == "migrate" else run
    run_main(RegistrySettings, service_name="tpf-registry", run=chosen)


if __name__ == "__main__":
    main()
