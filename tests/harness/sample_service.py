"""A minimal gRPC service for testing the `start_service` harness itself.

It serves only grpc.health.v1 on 127.0.0.1:$TPF_GRPC_PORT and shuts down like our services do:
on SIGTERM it reports NOT_SERVING, stops with a grace period and exits 0.
Set TPF_SAMPLE_FAIL_AT_START to make it exit with code 3 before listening, printing that value.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

FAIL_AT_START_ENV = "TPF_SAMPLE_FAIL_AT_START"
EXIT_CODE_FAILED_START = 3
_GRACE_S = 1.0


async def serve(port: int) -> None:
    server = grpc.aio.server()
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    await stop_requested.wait()

    await health_servicer.enter_graceful_shutdown()
    await server.stop(_GRACE_S)


def main() -> int:
    failure = os.environ.get(FAIL_AT_START_ENV)
    if failure:
        print(f"sample service refusing to start: {failure}", file=sys.stderr)
        return EXIT_CODE_FAILED_START
    asyncio.run(serve(int(os.environ["TPF_GRPC_PORT"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
