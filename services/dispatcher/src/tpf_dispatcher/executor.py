"""Run one claimed work item on a worker and say what to report: resolve the pinned release's
worker, check its identity, send the command with the step's timeout, map the answer.

Never raises for anything a worker or the registry does: every way a run can go wrong becomes
a failed outcome the coordinator records (TPF_WIRE §9.7), so the execution is retried or
dead-lettered instead of silently waiting for its lease to expire.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.registry.v1 import worker_pb2
from tpf_dispatcher.clients import WorkerClients, WorkerIdentityMismatch
from tpf_dispatcher.commands import command_for, step_timeout_s
from tpf_dispatcher.directory import ReleaseFacts, ReleaseKey, WorkerDirectory, wall_clock_ms
from tpf_dispatcher.metrics import DispatcherMetrics
from tpf_dispatcher.outcomes import (
    REGISTRY_UNAVAILABLE,
    WORKER_IDENTITY_MISMATCH,
    FailureClasses,
    dispatch_failed,
    no_worker,
    outcome_for_result,
    transport_failed,
)
from tpf_telemetry import continue_trace
from tpf_worker.transports import TransportFailure

log = logging.getLogger(__name__)
# A proxy: it uses whichever provider the service configured (none set: no spans).
_tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    default_timeout_s: float
    failure_classes: FailureClasses


class Executor:
    def __init__(
        self,
        directory: WorkerDirectory,
        clients: WorkerClients,
        config: ExecutorConfig,
        *,
        now_ms: Callable[[], int] = wall_clock_ms,
        metrics: DispatcherMetrics | None = None,
    ) -> None:
        self._directory = directory
        self._clients = clients
        self._config = config
        self._now_ms = now_ms
        self._metrics = metrics if metrics is not None else DispatcherMetrics()

    async def run(self, item: wpb.WorkItem) -> wpb.WorkOutcome:
        """The outcome to report for `item`, traced as `run step` in the trace of the
        execution's submit (the worker call is a child of it).

        A step that ran names only its execution and step (the trace's `claim step` has the
        rest: each attribute costs CPU on every step); a failed one names all of it, so a
        search for failures by tenant, pipeline or release finds it."""
        with continue_trace(
            _tracer,
            "run step",
            traceparent=item.trace_parent,
            kind=SpanKind.CONSUMER,
            attributes={"tpf.execution_id": item.execution_id, "tpf.step_index": item.step_index},
        ) as span:
            outcome = await self._run(item)
            kind = outcome.WhichOneof("outcome") or ""
            span.set_attribute("tpf.outcome", kind)
            if kind == "failed":
                identity = item.identity
                span.set_attributes(
                    {
                        "tpf.tenant_id": identity.tenant_id,
                        "tpf.pipeline_id": identity.pipeline_id,
                        "tpf.release_version": identity.release_version,
                        "tpf.step_id": item.step.step_id,
                        "tpf.attempt": item.attempt,
                        "tpf.failure_class": outcome.failed.failure_class,
                    }
                )
                span.set_status(StatusCode.ERROR, outcome.failed.failure_class)
            return outcome

    async def _run(self, item: wpb.WorkItem) -> wpb.WorkOutcome:
        identity = item.identity
        key = ReleaseKey(identity.tenant_id, identity.pipeline_id, identity.release_version)
        try:
            resolution = await self._directory.workers(key)
            release = await self._directory.release(key)
        except grpc.aio.AioRpcError as error:
            log.warning(
                "registry call failed for execution %s: %s %s",
                item.execution_id,
                error.code().name,
                error.details(),
                extra={"tenant": identity.tenant_id, "execution_id": item.execution_id},
            )
            return dispatch_failed(
                item,
                REGISTRY_UNAVAILABLE,
                f"Resolving workers of tenant {identity.tenant_id}, pipeline "
                f"{identity.pipeline_id}, release {identity.release_version} failed: "
                f"{error.code().name} {error.details()}",
            )
        worker, reasons = self._pick(resolution.workers, release.artifact_digest)
        if worker is None:
            reason = "; ".join(reasons) if reasons else "the registry names no HEALTHY worker"
            return no_worker(item, reason)
        return await self._call(item, key, worker, release)

    def _pick(
        self, workers: tuple[worker_pb2.Worker, ...], release_digest: str
    ) -> tuple[worker_pb2.Worker | None, list[str]]:
        # The registry lists the most recent heartbeat first; prefer a worker in this process.
        reasons: list[str] = []
        reachable = []
        for worker in workers:
            reason = self._clients.unreachable_reason(worker, release_digest)
            if reason is None:
                reachable.append(worker)
            else:
                reasons.append(reason)
        local = [w for w in reachable if w.protocol == "local"]
        preferred = local or reachable
        return (preferred[0] if preferred else None), reasons

    async def _call(
        self,
        item: wpb.WorkItem,
        key: ReleaseKey,
        worker: worker_pb2.Worker,
        release: ReleaseFacts,
    ) -> wpb.WorkOutcome:
        timeout_s = step_timeout_s(item, self._config.default_timeout_s)
        context = {
            "tenant": item.identity.tenant_id,
            "execution_id": item.execution_id,
            "version": item.fencing_token,
        }
        started = time.perf_counter()
        try:
            client = await self._clients.client_for(
                worker, item.identity, release_digest=release.artifact_digest, timeout_s=timeout_s
            )
            result = await client.execute(command_for(item), timeout_s=timeout_s)
        except WorkerIdentityMismatch as error:
            self._metrics.transport_errors.labels(worker.protocol).inc()
            self._directory.forget(key)
            self._clients.distrust(worker, release.artifact_digest)
            log.error("%s", error, extra=context)
            return dispatch_failed(
                item, WORKER_IDENTITY_MISMATCH, str(error), worker_id=worker.worker_id
            )
        except TransportFailure as failure:
            self._metrics.transport_errors.labels(worker.protocol).inc()
            # The worker may be gone or replaced: resolve again and re-check its identity.
            self._directory.forget(key)
            self._clients.distrust(worker, release.artifact_digest)
            log.warning(
                "worker %s failed for execution %s: %s",
                worker.worker_id,
                item.execution_id,
                failure,
                extra=context,
            )
            return transport_failed(item, failure, worker_id=worker.worker_id)
        outcome = outcome_for_result(
            item,
            result,
            step_count=release.step_count,
            classes=self._config.failure_classes,
            worker_id=worker.worker_id,
            fallback_deadline_epoch_ms=self._now_ms() + int(timeout_s * 1000),
        )
        self._metrics.step_duration.labels(
            worker.protocol, outcome.WhichOneof("outcome") or "none"
        ).observe(time.perf_counter() - started)
        return outcome
