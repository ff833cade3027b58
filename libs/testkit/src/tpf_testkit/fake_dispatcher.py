"""A fake dispatcher: the WorkService protocol of a real dispatcher, with no worker behind it.

It claims in batches (long-poll), "runs" every claimed step at once (or through an injectable
async step function, to fail or to stall one), renews the leases of what is still running,
reports outcomes in batches (`step_completed` to the next step, `pipeline_completed` after the
last of `steps`), and stops cleanly. Tests use it to put load on a coordinator; `bench/` uses it
to measure one.

It never dies of an RPC failure: UNAVAILABLE, DEADLINE_EXCEEDED and friends (a coordinator
killed or restarting, Postgres away) are counted and retried with a short backoff, forever,
until `stop()`. Any other failure of a call is counted and that call's work is dropped: the
coordinator's sweeper requeues it once its lease runs out. A rejected completion (stale fencing
token) means the execution moved on without us, so that work is dropped too.

Usage:

    async with FakeDispatcher([coordinator.target], steps=4) as dispatcher:
        ...submit executions...
        await wait_until(lambda: dispatcher.stats.succeeded >= n)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc
import psycopg

from tpf.common.v1 import error_reason_pb2, execution_status_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import execution_service_pb2_grpc, work_service_pb2_grpc
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf_rpc.channel import TRANSIENT_CODES, client_channel
from tpf_testkit.coalescing_submitter import CoalescingSubmitter
from tpf_testkit.registry_client import ADMIN

log = logging.getLogger(__name__)

# A killed coordinator must be noticed again within milliseconds once it listens again; gRPC's
# default reconnect backoff grows to two minutes.
FAST_RECONNECT: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]
MAX_BATCH = 500
SUCCEEDED = execution_status_pb2.EXECUTION_STATUS_SUCCEEDED
STALE = error_reason_pb2.ERROR_REASON_STALE_FENCING_TOKEN

# What a step function returns: the outcome to report, or None for the default outcome (the
# step succeeded: next step, or pipeline completed after the last one).
StepFunction = Callable[[wpb.WorkItem], Awaitable[wpb.WorkOutcome | None]]


class DropWork(Exception):
    """Raised by a step function: forget the item without reporting (a worker that vanished).

    The dispatcher stops renewing its lease, so the sweeper requeues it after the lease.
    """


def step_completed(
    item: wpb.WorkItem, *, continue_claim: bool = False, worker_id: str = "fake-worker"
) -> wpb.WorkOutcome:
    """The step ran and returned its input unchanged; the next step runs on it."""
    return wpb.WorkOutcome(
        execution_id=item.execution_id,
        tenant_id=item.identity.tenant_id,
        fencing_token=item.fencing_token,
        worker_id=worker_id,
        step_completed=wpb.StepCompletedOutcome(
            next_step_index=item.step_index + 1,
            output_payloads=[item.input_payload],
            continue_claim=continue_claim,
        ),
    )


def pipeline_completed(item: wpb.WorkItem, *, worker_id: str = "fake-worker") -> wpb.WorkOutcome:
    """The last step ran; its input is the pipeline's result."""
    return wpb.WorkOutcome(
        execution_id=item.execution_id,
        tenant_id=item.identity.tenant_id,
        fencing_token=item.fencing_token,
        worker_id=worker_id,
        pipeline_completed=wpb.PipelineCompletedOutcome(output_payloads=[item.input_payload]),
    )


def failed(
    item: wpb.WorkItem,
    *,
    retryable: bool = True,
    failure_class: str = "java.lang.IllegalStateException",
    message: str = "injected failure",
) -> wpb.WorkOutcome:
    """The step failed (a worker FAILED result)."""
    return wpb.WorkOutcome(
        execution_id=item.execution_id,
        tenant_id=item.identity.tenant_id,
        fencing_token=item.fencing_token,
        worker_id="fake-worker",
        failed=wpb.FailedOutcome(failure_class=failure_class, message=message, retryable=retryable),
    )


@dataclass
class DispatcherStats:
    """What one dispatcher saw; every counter only grows."""

    claim_calls: int = 0
    claimed: int = 0
    continued: int = 0
    complete_calls: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    succeeded: int = 0
    renew_calls: int = 0
    renewed: int = 0
    renew_refused: int = 0
    dropped: int = 0
    step_errors: int = 0
    # RPC failures by "Method:CODE".
    rpc_errors: Counter[str] = field(default_factory=Counter)
    # Longest single attempt of each method, seconds (a call stuck until its deadline shows).
    slowest_call_s: dict[str, float] = field(default_factory=dict)
    # execution id -> time.time() when a CompleteWork answer said SUCCEEDED.
    succeeded_at: dict[str, float] = field(default_factory=dict)

    @property
    def rpc_error_count(self) -> int:
        return sum(self.rpc_errors.values())


@dataclass
class _Running:
    item: wpb.WorkItem
    task: asyncio.Task[None] | None = None
    reported: bool = False


class FakeDispatcher:
    """One dispatcher instance (`dispatcher_id`) over one or more coordinator targets.

    With several targets, consecutive calls go to the next target in turn (replicas behind no
    load balancer). `steps` is the pipeline length the default step function assumes.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        steps: int,
        dispatcher_id: str | None = None,
        token: str | None = ADMIN,
        batch: int = 100,
        max_in_flight: int = 200,
        wait_ms: int = 1000,
        lease_ms: int = 30_000,
        renew_interval_s: float | None = None,
        step: StepFunction | None = None,
        continue_claim: bool = False,
        complete_concurrency: int = 1,
        use_request_ids: bool = True,
        rpc_timeout_s: float = 10.0,
    ) -> None:
        if not targets:
            raise ValueError("at least one coordinator target")
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch must be within 1..{MAX_BATCH}")
        self.dispatcher_id = dispatcher_id or f"fake-{uuid.uuid4().hex[:8]}"
        self.stats = DispatcherStats()
        self._steps = steps
        self._batch = batch
        self._max_in_flight = max_in_flight
        self._wait_ms = wait_ms
        self._lease_ms = lease_ms
        self._renew_interval_s = renew_interval_s or lease_ms / 3000
        self._step = step
        self._continue = continue_claim
        self._complete_concurrency = complete_concurrency
        self._use_request_ids = use_request_ids
        self._rpc_timeout_s = rpc_timeout_s
        self._channels = [
            client_channel(target, token=token, options=FAST_RECONNECT) for target in targets
        ]
        self._stubs = [work_service_pb2_grpc.WorkServiceStub(c) for c in self._channels]
        self._next_stub = itertools.cycle(range(len(self._stubs)))
        self._running: dict[tuple[str, str], _Running] = {}
        self._outcomes: asyncio.Queue[wpb.WorkOutcome] = asyncio.Queue()
        self._slot_freed = asyncio.Event()
        self._progress = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.renewals_paused = False

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDispatcher:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        name = self.dispatcher_id
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name=f"{name}-claim"),
            asyncio.create_task(self._renew_loop(), name=f"{name}-renew"),
            *(
                asyncio.create_task(self._complete_loop(), name=f"{name}-complete-{n}")
                for n in range(self._complete_concurrency)
            ),
        ]

    async def stop(self) -> None:
        """Stop claiming, cancel running steps, close the channels. Idempotent."""
        self._stopping.set()
        running = [r.task for r in self._running.values() if r.task is not None]
        for task in [*self._tasks, *running]:
            task.cancel()
        for task in [*self._tasks, *running]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for channel in self._channels:
            await channel.close()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def wait_for_successes(self, count: int) -> None:
        """Return once `count` executions were reported SUCCEEDED to this dispatcher."""
        while self.stats.succeeded < count:
            self._progress.clear()
            await self._progress.wait()

    def raise_if_crashed(self) -> None:
        """Re-raise the error of a loop that died (it should never happen)."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"{task.get_name()} died") from task.exception()

    # -- calls -----------------------------------------------------------------------------

    def _stub(self) -> work_service_pb2_grpc.WorkServiceAsyncStub:
        return self._stubs[next(self._next_stub)]

    async def _call(
        self, method: str, request: Any, *, timeout_s: float, retry: bool = True
    ) -> Any | None:
        """Call `method` until it answers; None if stopping or after a non-transient error."""
        pause_s = 0.02
        while not self._stopping.is_set():
            stub = self._stub()
            started = time.monotonic()
            try:
                return await getattr(stub, method)(request, timeout=timeout_s)
            except grpc.aio.AioRpcError as error:
                code = error.code()
                self.stats.rpc_errors[f"{method}:{code.name}"] += 1
                if code not in TRANSIENT_CODES:
                    log.warning("%s %s failed: %s %s", self.dispatcher_id, method, code, error)
                    return None
                if not retry:
                    return None
            finally:
                took = time.monotonic() - started
                if took > self.stats.slowest_call_s.get(method, 0.0):
                    self.stats.slowest_call_s[method] = round(took, 3)
            # Jittered backoff, so two dispatchers do not hammer a restarting coordinator in step.
            await asyncio.sleep(pause_s * (0.5 + random.random()))
            pause_s = min(pause_s * 2, 0.5)
        return None

    # -- claiming and running --------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            capacity = self._max_in_flight - len(self._running)
            if capacity <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            request = wpb.ClaimWorkRequest(
                dispatcher_id=self.dispatcher_id, max_items=min(self._batch, capacity)
            )
            request.wait.FromMilliseconds(self._wait_ms)
            request.lease_duration.FromMilliseconds(self._lease_ms)
            if self._use_request_ids:
                request.request_id = str(uuid.uuid4())
            self.stats.claim_calls += 1
            response = await self._call(
                "ClaimWork", request, timeout_s=self._wait_ms / 1000 + self._rpc_timeout_s
            )
            if response is None:
                continue
            self.stats.claimed += len(response.work_items)
            for item in response.work_items:
                self._run(item)

    def _run(self, item: wpb.WorkItem) -> None:
        key = (item.identity.tenant_id, item.execution_id)
        previous = self._running.get(key)
        if previous is not None and previous.task is not None:
            previous.task.cancel()  # a newer claim of the same execution: the old one is stale
        running = _Running(item)
        self._running[key] = running
        if self._step is None:
            # The instant step: no task, the outcome is ready now.
            running.reported = True
            self._outcomes.put_nowait(self._default_outcome(item))
        else:
            running.task = asyncio.create_task(self._run_step(key, running))

    def _default_outcome(self, item: wpb.WorkItem) -> wpb.WorkOutcome:
        if item.step_index + 1 >= self._steps:
            return pipeline_completed(item)
        return step_completed(item, continue_claim=self._continue)

    async def _run_step(self, key: tuple[str, str], running: _Running) -> None:
        assert self._step is not None
        try:
            outcome = await self._step(running.item)
        except DropWork:
            self._forget(key, running.item.fencing_token)
            return
        except Exception:
            log.exception("step function failed on %s", running.item.execution_id)
            self.stats.step_errors += 1
            self._forget(key, running.item.fencing_token)
            return
        running.reported = True
        self._outcomes.put_nowait(outcome or self._default_outcome(running.item))

    def _forget(self, key: tuple[str, str], token: int) -> None:
        current = self._running.get(key)
        if current is not None and current.item.fencing_token == token:
            del self._running[key]
            self._slot_freed.set()

    # -- completing ------------------------------------------------------------------------

    async def _complete_loop(self) -> None:
        while not self._stopping.is_set():
            outcomes = [await self._outcomes.get()]
            # At most one outcome per execution in a batch (the protocol refuses repeats): a
            # stale claim's outcome and its successor's go in separate calls.
            batched = {(outcomes[0].tenant_id, outcomes[0].execution_id)}
            later: list[wpb.WorkOutcome] = []
            while len(outcomes) < self._batch and not self._outcomes.empty():
                outcome = self._outcomes.get_nowait()
                key = (outcome.tenant_id, outcome.execution_id)
                (later if key in batched else outcomes).append(outcome)
                batched.add(key)
            for outcome in later:
                self._outcomes.put_nowait(outcome)
            request = wpb.CompleteWorkRequest(dispatcher_id=self.dispatcher_id, outcomes=outcomes)
            if self._use_request_ids:
                request.request_id = str(uuid.uuid4())
            self.stats.complete_calls += 1
            response = await self._call("CompleteWork", request, timeout_s=self._rpc_timeout_s)
            if response is None:
                for outcome in outcomes:
                    self.stats.dropped += 1
                    self._forget((outcome.tenant_id, outcome.execution_id), outcome.fencing_token)
                continue
            now = time.time()
            for outcome, result in zip(outcomes, response.results, strict=True):
                key = (outcome.tenant_id, outcome.execution_id)
                self._forget(key, outcome.fencing_token)
                if not result.accepted:
                    self.stats.rejected[
                        error_reason_pb2.ErrorReason.Name(result.rejection_reason)
                    ] += 1
                    continue
                self.stats.accepted += 1
                if result.status == SUCCEEDED:
                    self.stats.succeeded += 1
                    self.stats.succeeded_at[outcome.execution_id] = now
                    self._progress.set()
                if result.HasField("next_work_item"):
                    self.stats.continued += 1
                    self._run(result.next_work_item)

    # -- renewing --------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(self._renew_interval_s)
            if self.renewals_paused or not self._running:
                continue
            held = [r.item for r in self._running.values()]
            for start in range(0, len(held), MAX_BATCH):
                await self._renew([i for i in held[start : start + MAX_BATCH]])

    async def _renew(self, items: list[wpb.WorkItem]) -> None:
        request = wpb.RenewLeasesRequest(
            dispatcher_id=self.dispatcher_id,
            leases=[
                wpb.LeaseRenewal(
                    execution_id=i.execution_id,
                    tenant_id=i.identity.tenant_id,
                    fencing_token=i.fencing_token,
                )
                for i in items
            ],
        )
        request.lease_duration.FromMilliseconds(self._lease_ms)
        self.stats.renew_calls += 1
        # A renewal is worth retrying only until the next round; do not pile them up.
        response = await self._call(
            "RenewLeases", request, timeout_s=self._rpc_timeout_s, retry=False
        )
        if response is None:
            return
        for item, result in zip(items, response.results, strict=True):
            if result.renewed:
                self.stats.renewed += 1
                continue
            key = (item.identity.tenant_id, item.execution_id)
            running = self._running.get(key)
            if running is None or running.item.fencing_token != item.fencing_token:
                continue  # finished meanwhile
            if running.reported:
                continue  # its outcome is on the way; the commit decides
            # The lease is lost: stop the step; its outcome would be rejected anyway.
            self.stats.renew_refused += 1
            if running.task is not None:
                running.task.cancel()
            self._forget(key, item.fencing_token)


# -- submitting ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submitted:
    """One submission: its execution, and when it was sent and answered (time.time())."""

    execution_id: str
    submitted_at: float
    answered_at: float
    duplicate: bool


async def submit_all(
    executions: execution_service_pb2_grpc.ExecutionServiceAsyncStub,
    requests: Sequence[epb.SubmitExecutionRequest],
    *,
    concurrency: int = 32,
    rate_per_s: float | None = None,
    timeout_s: float = 10.0,
    coalesce: bool = False,
) -> list[Submitted]:
    """Submit every request, `concurrency` calls in flight, optionally paced at `rate_per_s`.

    Transient failures are retried; that is safe because a submission is idempotent per tenant,
    pipeline and idempotency key (a retry of one that did commit answers `duplicate`). The
    submission time is taken just before the first attempt. Results are in request order.

    `coalesce`: the calls in flight go through a CoalescingSubmitter (SubmitExecutions calls
    carrying whatever is waiting) instead of one SubmitExecution call each; every request
    must then be of the same tenant.
    """
    submitter = (
        CoalescingSubmitter(executions, requests[0].tenant_id, timeout_s=timeout_s)
        if coalesce and requests
        else None
    )
    results: list[Submitted | None] = [None] * len(requests)
    indexes = iter(range(len(requests)))
    start = time.time()

    async def one(index: int) -> Submitted:
        if rate_per_s:
            await asyncio.sleep(max(0.0, start + index / rate_per_s - time.time()))
        submitted_at = time.time()
        pause_s = 0.02
        while True:
            try:
                if submitter is not None:
                    response = await submitter.submit(requests[index])
                else:
                    response = await executions.SubmitExecution(requests[index], timeout=timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() not in TRANSIENT_CODES:
                    raise
                await asyncio.sleep(pause_s * (0.5 + random.random()))
                pause_s = min(pause_s * 2, 0.5)
                continue
            return Submitted(response.execution_id, submitted_at, time.time(), response.duplicate)

    async def worker() -> None:
        for index in indexes:  # one iterator shared by the workers: each index once
            results[index] = await one(index)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return [r for r in results if r is not None]


# -- checking what was committed -------------------------------------------------------------

_STATUSES = "SELECT status, count(*) FROM executions GROUP BY status"
_EVENTS = "SELECT event, count(*) FROM execution_history GROUP BY event"
_DUPLICATE_VERSIONS = """
SELECT tenant_id, execution_id, version, count(*) FROM execution_history
GROUP BY tenant_id, execution_id, version HAVING count(*) > 1
"""
# Versions of every execution are exactly 0..version, one history row each.
_VERSION_GAPS = """
SELECT e.execution_id FROM executions e
LEFT JOIN (SELECT tenant_id, execution_id, count(*) AS n, min(version) AS lo, max(version) AS hi
           FROM execution_history GROUP BY tenant_id, execution_id) h
  ON h.tenant_id = e.tenant_id AND h.execution_id = e.execution_id
WHERE h.n IS NULL OR h.lo <> 0 OR h.hi <> e.version OR h.n <> e.version + 1
"""
# The step a commit completed is the step the execution was at in the row before it.
_STEP_COMMITS = """
WITH h AS (
    SELECT tenant_id, execution_id, event,
           lag(step_index) OVER (PARTITION BY tenant_id, execution_id ORDER BY version) AS ran
    FROM execution_history
)
SELECT h.tenant_id, h.execution_id, h.ran, count(*) FROM h
JOIN executions e ON e.tenant_id = h.tenant_id AND e.execution_id = h.execution_id
WHERE h.event IN ('STEP_COMPLETED', 'SUCCEEDED') AND e.status = 'SUCCEEDED'
GROUP BY h.tenant_id, h.execution_id, h.ran
"""


@dataclass
class HistoryReport:
    """What `execution_history` says about a finished workload."""

    statuses: Counter[str]
    events: Counter[str]
    # (tenant, execution, version) recorded more than once.
    duplicate_versions: list[tuple[str, str, int]]
    # Executions whose history versions are not exactly 0..version.
    version_gaps: list[str]
    # (execution, step, commits) of SUCCEEDED executions whose step was committed != 1 time.
    step_commit_anomalies: list[tuple[str, int | None, int]]
    # SUCCEEDED executions whose committed steps are not exactly 0..steps-1.
    incomplete: list[str]

    @property
    def exactly_once(self) -> bool:
        return not (
            self.duplicate_versions
            or self.version_gaps
            or self.step_commit_anomalies
            or self.incomplete
        )


async def history_report(database_url: str, *, steps: int) -> HistoryReport:
    """Read the executions and their history straight from Postgres and check them."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        statuses = Counter({s: n for s, n in await (await conn.execute(_STATUSES)).fetchall()})
        events = Counter({e: n for e, n in await (await conn.execute(_EVENTS)).fetchall()})
        duplicates = [
            (t, e, v) for t, e, v, _ in await (await conn.execute(_DUPLICATE_VERSIONS)).fetchall()
        ]
        gaps = [e for (e,) in await (await conn.execute(_VERSION_GAPS)).fetchall()]
        per_step: dict[str, dict[int | None, int]] = {}
        for _tenant, execution, ran, count in await (await conn.execute(_STEP_COMMITS)).fetchall():
            per_step.setdefault(execution, {})[ran] = count
    anomalies = [
        (execution, ran, count)
        for execution, commits in per_step.items()
        for ran, count in commits.items()
        if count != 1
    ]
    incomplete = [e for e, commits in per_step.items() if set(commits) != set(range(steps))]
    missing = statuses["SUCCEEDED"] - len(per_step)
    if missing:
        incomplete.append(f"{missing} SUCCEEDED executions without step commits")
    return HistoryReport(statuses, events, duplicates, gaps, anomalies, incomplete)
