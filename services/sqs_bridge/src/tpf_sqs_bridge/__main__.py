"""`python -m tpf_sqs_bridge`: settings → logging → SQS and coordinator clients → consume.

gRPC serves only health (and reflection), so probes and tests see when the bridge is up. On
SIGTERM the receive loops stop asking for messages, finish the batch in hand, and the process
exits 0; messages not yet handled stay on their queues.
"""

from __future__ import annotations

import asyncio

from tpf_config.service_cli import parse_service_args
from tpf_rpc.server import run_main, serve
from tpf_sqs_bridge.bridge import Bridge
from tpf_sqs_bridge.metrics import BridgeMetrics
from tpf_sqs_bridge.settings import BridgeSettings
from tpf_telemetry.metrics import new_registry

SERVICE_NAME = "tpf-sqs-bridge"


async def run(settings: BridgeSettings) -> None:
    stop = asyncio.Event()
    metrics_registry = new_registry()
    bridge = Bridge(settings, BridgeMetrics(metrics_registry))
    await bridge.open()
    bridge.start(stop)

    async def on_stop() -> None:
        # serve() returns on SIGTERM/SIGINT by setting `stop`, which the loops watch too.
        stop.set()
        await bridge.drain()

    await serve(
        settings=settings,
        service_name=SERVICE_NAME,
        domain="tpf.sqs_bridge",
        register=lambda _server: None,
        service_full_names=(),
        on_stop=on_stop,
        stop_event=stop,
        metrics_registry=metrics_registry,
    )


def main() -> None:
    parse_service_args(SERVICE_NAME, BridgeSettings, distribution="tpf-sqs-bridge")
    run_main(BridgeSettings, service_name=SERVICE_NAME, run=run)


if __name__ == "__main__":
    main()
