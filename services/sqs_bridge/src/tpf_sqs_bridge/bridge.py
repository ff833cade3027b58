"""The bridge assembled from settings: SQS client, coordinator channel, consumers, events.

`start` launches one receive loop per configured input queue, and the terminal-event publisher
when an events queue is set; `drain` waits for them to finish the batch in hand once the stop
event is set (graceful SIGTERM), then closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from botocore.exceptions import NoRegionError

from tpf.coordinator.v1 import (
    execution_service_pb2_grpc,
    interaction_service_pb2_grpc,
    terminal_event_service_pb2_grpc,
)
from tpf_config import ConfigError, env_var_name
from tpf_rpc.channel import client_channel
from tpf_rpc.tls import client_certificates_of
from tpf_sqs_bridge.consumer import ConsumerPolicy, Destinations, QueueConsumer
from tpf_sqs_bridge.metrics import BridgeMetrics
from tpf_sqs_bridge.operations import CompleteOperation, SubmitOperation
from tpf_sqs_bridge.settings import BridgeSettings
from tpf_sqs_bridge.sqs import SqsEndpoint, SqsQueues, sqs_client
from tpf_sqs_bridge.terminal_events import TerminalEventPublisher

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Bridge:
    def __init__(self, settings: BridgeSettings, metrics: BridgeMetrics | None = None) -> None:
        self._settings = settings
        self._metrics = metrics if metrics is not None else BridgeMetrics()
        self._resources = contextlib.AsyncExitStack()
        self._consumers: list[QueueConsumer] = []
        self._events: TerminalEventPublisher | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        """Build the clients; raises ConfigError if SQS cannot be configured."""
        settings = self._settings
        token = await asyncio.to_thread(settings.resolved_coordinator_token)
        credentials = await asyncio.to_thread(settings.resolved_sqs_credentials)
        endpoint = SqsEndpoint(
            endpoint_url=settings.sqs_endpoint_url,
            region=settings.sqs_region,
            credentials=credentials,
            read_timeout_s=settings.sqs_wait_time_s + 20.0,
        )
        try:
            client: Any = await self._resources.enter_async_context(sqs_client(endpoint))
        except NoRegionError:
            raise ConfigError(
                f"No AWS region: set {env_var_name(BridgeSettings, 'sqs_region')} or AWS_REGION"
            ) from None
        tls = await asyncio.to_thread(client_certificates_of, settings)
        # No retry policy: redelivery (with its backoff) is the one retry layer of a message,
        # and the terminal-event feed retries in its own loop.
        channel = client_channel(settings.coordinator_target, token=token, tls=tls, retries=False)
        self._resources.push_async_callback(channel.close)
        queues = SqsQueues(client)
        executions = execution_service_pb2_grpc.ExecutionServiceStub(channel)
        if settings.sqs_events_queue_url is not None:
            self._events = TerminalEventPublisher(
                stub=terminal_event_service_pb2_grpc.TerminalEventServiceStub(channel),
                queues=queues,
                events_queue_url=settings.sqs_events_queue_url,
                cursor_name=settings.events_cursor_name,
                tenant_ids=settings.events_tenant_ids,
                batch_size=settings.events_batch_size,
                call_timeout_s=settings.coordinator_call_timeout_s,
                metrics=self._metrics,
            )
        self._consumers = self._build_consumers(queues, channel, executions)

    def _build_consumers(
        self,
        queues: SqsQueues,
        channel: Any,
        executions: execution_service_pb2_grpc.ExecutionServiceAsyncStub,
    ) -> list[QueueConsumer]:
        settings = self._settings
        assert settings.sqs_dead_letter_queue_url is not None  # checked by the settings
        policy = ConsumerPolicy(
            batch_size=settings.sqs_batch_size,
            wait_time_s=settings.sqs_wait_time_s,
            visibility_timeout_s=settings.sqs_visibility_timeout_s,
            visibility_heartbeat_s=settings.sqs_visibility_heartbeat_s,
            max_receives=settings.sqs_max_receives,
        )
        destinations = Destinations(
            default_reply_queue_url=settings.sqs_response_queue_url,
            dead_letter_queue_url=settings.sqs_dead_letter_queue_url,
        )
        consumers: list[QueueConsumer] = []
        if settings.sqs_submit_queue_url is not None:
            submit = SubmitOperation(executions, timeout_s=settings.coordinator_call_timeout_s)
            consumers.append(
                QueueConsumer(
                    queue_url=settings.sqs_submit_queue_url,
                    operation=submit,
                    queues=queues,
                    policy=policy,
                    destinations=destinations,
                    now_ms=_now_ms,
                    metrics=self._metrics,
                )
            )
        if settings.sqs_completion_queue_url is not None:
            complete = CompleteOperation(
                interaction_service_pb2_grpc.InteractionServiceStub(channel),
                timeout_s=settings.coordinator_call_timeout_s,
            )
            consumers.append(
                QueueConsumer(
                    queue_url=settings.sqs_completion_queue_url,
                    operation=complete,
                    queues=queues,
                    policy=policy,
                    destinations=destinations,
                    now_ms=_now_ms,
                    metrics=self._metrics,
                )
            )
        return consumers

    def start(self, stop: asyncio.Event) -> None:
        """Start the receive loops (and the terminal-event publisher)."""
        self._tasks = [
            asyncio.create_task(consumer.run(stop), name=f"consumer-{index}")
            for index, consumer in enumerate(self._consumers)
        ]
        if self._events is not None:
            self._tasks.append(asyncio.create_task(self._events.run(stop), name="terminal-events"))
        for task in self._tasks:
            # A loop that dies is a bug: stop the process so that it is restarted and noticed,
            # rather than staying "healthy" while nothing is consumed.
            task.add_done_callback(lambda done: _stop_if_crashed(done, stop))

    async def drain(self) -> None:
        """After stop: let the loops finish their batches, close clients."""
        try:
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await self._resources.aclose()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result


def _stop_if_crashed(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s died; stopping the bridge", task.get_name(), exc_info=task.exception())
        stop.set()
