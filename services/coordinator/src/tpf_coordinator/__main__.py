"""`python -m tpf_coordinator`: settings → logging → database → migrations → serve.

`tpf-coordinator migrate` applies the pending migrations and exits (once per rollout).
"""

from __future__ import annotations

from tpf_config.service_cli import parse_service_args
from tpf_coordinator.server import SERVICE_FULL_NAMES, build_coordinator
from tpf_coordinator.settings import CoordinatorSettings
from tpf_rpc.server import run_main, serve
from tpf_store import migrate_service_database, open_service_database
from tpf_store.errors import database_unavailable, text_not_storable


async def run(settings: CoordinatorSettings) -> None:
    database = await open_service_database(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        component="coordinator",
        package="tpf_coordinator",
        pool_name="tpf-coordinator",
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        migrate_on_start=settings.migrate_on_start,
    )
    try:
        coordinator = build_coordinator(settings, database.pool, database.url)
        await coordinator.start()
    except BaseException:
        await database.close()
        raise

    async def on_stop() -> None:
        await coordinator.stop()
        await database.close()

    await serve(
        settings=settings,
        service_name="tpf-coordinator",
        domain="tpf.coordinator",
        register=coordinator.register,
        service_full_names=SERVICE_FULL_NAMES,
        on_stop=on_stop,
        error_translators=[database_unavailable, text_not_storable],
        metrics_registry=coordinator.metrics_registry,
        server_options=[
            ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
            ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ],
    )


async def migrate(settings: CoordinatorSettings) -> None:
    await migrate_service_database(
        database_url=settings.database_url,
        data_dir=settings.data_dir,
        component="coordinator",
        package="tpf_coordinator",
    )


def main() -> None:
    command = parse_service_args(
        "tpf-coordinator", CoordinatorSettings, commands=("serve", "migrate")
    )
    chosen = migrate if command == "migrate" else run
    run_main(CoordinatorSettings, service_name="tpf-coordinator", run=chosen)


if __name__ == "__main__":
    main()
