"""The dispatcher's engine: claim work while there is capacity, run each item on a worker,
renew the leases of what runs, report outcomes in batches, and drain on shutdown.

Back-pressure: a claim asks only for free slots, so no more than `max_in_flight` items are
ever held. Safety rests on the coordinator's fencing, not on this process: an outcome whose
fencing token went stale is rejected there, and the work is simply dropped here.

Drain (SIGTERM): no new claims; running items finish and are reported within the drain
timeout. Whatever has not finished by then is not reported at all: its lease runs out and the
coordinator's sweeper requeues it (not counted as a retry), so another dispatcher runs it.

Calls to the coordinator are repeated only as `retrying` says (UNAVAILABLE and
DEADLINE_EXCEEDED, a bounded number of times). A report that still cannot be delivered is
dropped like an abandoned one, and it never holds up the reports behind it: once its first
attempt failed, its repeats run on their own while the next batches are reported.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from tpf.common.v1 import error_reason_pb2
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.coordinator.v1 import work_service_pb2_grpc
from tpf_dispatcher.outcomes import dispatch_failed
from tpf_dispatcher.retrying import RetryBudget, call_with_retries, sleep_or_give_up

log = logging.getLogger(__name__)

MAX_ITEMS_PER_CALL = 1000  # the WorkService limit for RenewLeases and CompleteWork
_LOOP_RESTART_PAUSE_S = 1.0
_ONE_ATTEMPT = RetryBudget(attempts=1)

_Key = tuple[str, str]  # (tenant id, execution id)


class DispatcherState(StrEnum):
    RUNNING = "RUNNING"
    DRAINING = "DRAINING"


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    dispatcher_id: str
    max_in_flight: int
    claim_batch_size: int
    claim_wait_ms: int
    lease_ms: int
    renew_interval_s: float
    rpc_timeout_s: float
    complete_linger_s: float
    complete_batch_size: int
    # CompleteWork calls whose first attempt may be in flight at once.
    complete_concurrency: int = 1
    # Ask to keep the claim after a step (WorkService `continue_claim`): the next step comes
    # back with the commit, saving a claim per step.
    continue_claim: bool = True
    tenant_ids: tuple[str, ...] = ()
    pipeline_ids: tuple[str, ...] = ()
    release_versions: tuple[str, ...] = ()
    # How often a claim or a report is tried while the coordinator cannot be reached.
    retry: RetryBudget = field(default_factory=RetryBudget)


@dataclass(slots=True)
class Counters:
    """What the dispatcher did since it started (see DispatcherCounters in the proto)."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    rejected: int = 0
    lease_lost: int = 0
    abandoned: int = 0
    undelivered: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    dispatcher_id: str
    state: DispatcherState
    in_flight: int
    max_in_flight: int
    counters: Counters


@dataclass(slots=True)
class _Running:
    item: wpb.WorkItem
    task: asyncio.Task[None] | None = None
    is_reported: bool = False


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """`action`, run on the first call only."""
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return run


def _key_of(item: wpb.WorkItem) -> _Key:
    return (item.identity.tenant_id, item.execution_id)


class ItemRunner(Protocol):
    """Runs one work item to the outcome to report (tpf_dispatcher.executor.Executor)."""

    async def run(self, item: wpb.WorkItem) -> wpb.WorkOutcome: ...


class Dispatcher:
    def __init__(
        self,
        config: DispatchConfig,
        work: work_service_pb2_grpc.WorkServiceAsyncStub,
        executor: ItemRunner,
    ) -> None:
        self._config = config
        self._work = work
        self._executor = executor
        self._counters = Counters()
        self._running: dict[_Key, _Running] = {}
        self._outcomes: asyncio.Queue[wpb.WorkOutcome] = asyncio.Queue()
        # Set whenever an item leaves `_running` (a slot is free; drain may be done).
        self._slot_freed = asyncio.Event()
        self._draining = asyncio.Event()
        # Set when closing: pending coordinator retries stop.
        self._closing = asyncio.Event()
        self._claim_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Reports whose first attempt failed, being repeated on their own.
        self._deliveries: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._claim_task = asyncio.create_task(self._supervise("claim", self._claim_loop))
        self._tasks = [
            self._claim_task,
            asyncio.create_task(self._supervise("renew", self._renew_loop)),
            asyncio.create_task(self._supervise("report", self._report_loop)),
        ]

    def snapshot(self) -> Snapshot:
        return Snapshot(
            dispatcher_id=self._config.dispatcher_id,
            state=DispatcherState.DRAINING if self._draining.is_set() else DispatcherState.RUNNING,
            in_flight=len(self._running),
            max_in_flight=self._config.max_in_flight,
            counters=replace(self._counters),
        )

    async def drain(self, timeout_s: float) -> None:
        """Stop claiming, let running items finish and be reported for up to `timeout_s`,
        then stop everything. Unfinished items are abandoned unreported (see module doc)."""
        log.info("draining: %d item(s) in flight", len(self._running))
        self._draining.set()
        self._slot_freed.set()  # wake a claim loop waiting for capacity
        try:
            await asyncio.wait_for(self._drained(), timeout=timeout_s)
        except TimeoutError:
            log.warning(
                "drain timeout (%.1fs): abandoning %d item(s); their leases expire and the "
                "coordinator requeues them",
                timeout_s,
                len(self._running),
            )
        await self.close()

    async def close(self) -> None:
        """Stop every loop and running item now. Idempotent."""
        self._draining.set()
        self._closing.set()
        running = [r.task for r in self._running.values() if r.task is not None]
        self._counters.abandoned += len(self._running)
        self._running.clear()
        tasks, self._tasks = [*self._tasks, *running, *self._deliveries], []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drained(self) -> None:
        if self._claim_task is not None:
            # It ends after its current ClaimWork; what that claimed still runs and is reported.
            await asyncio.shield(self._claim_task)
        while self._running:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        # A loop must never die: a bug in one iteration is logged and the loop starts again.
        while not self._closing.is_set():
            try:
                await loop()
                return
            except Exception:
                log.exception("dispatcher %s loop failed; restarting it", name)
                await asyncio.sleep(_LOOP_RESTART_PAUSE_S)

    # -- claiming and running -----------------------------------------------------------

    async def _claim_loop(self) -> None:
        config = self._config
        # After a claim that failed for good, the next one waits, longer each time (up to the
        # budget's longest pause), so a coordinator answering INTERNAL is not called in a loop.
        pause_s = config.retry.first_pause_s
        while not self._draining.is_set():
            free = config.max_in_flight - len(self._running)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            request = wpb.ClaimWorkRequest(
                dispatcher_id=config.dispatcher_id,
                max_items=min(config.claim_batch_size, free),
                tenant_ids=config.tenant_ids,
                pipeline_ids=config.pipeline_ids,
                release_versions=config.release_versions,
                # Retries reuse the id: a claim whose answer was lost returns the same items.
                request_id=str(uuid.uuid4()),
            )
            request.wait.FromMilliseconds(config.claim_wait_ms)
            request.lease_duration.FromMilliseconds(config.lease_ms)
            timeout_s = config.claim_wait_ms / 1000 + config.rpc_timeout_s
            response = await call_with_retries(
                functools.partial(self._work.ClaimWork, request, timeout=timeout_s),
                what="ClaimWork",
                budget=config.retry,
                give_up=self._draining,
            )
            if response is None:
                await sleep_or_give_up(pause_s, self._draining)
                pause_s = min(pause_s * 2, config.retry.max_pause_s)
                continue
            pause_s = config.retry.first_pause_s
            for item in response.work_items:
                self._start(item)

    def _start(self, item: wpb.WorkItem) -> None:
        self._counters.claimed += 1
        key = _key_of(item)
        previous = self._running.get(key)
        if previous is not None and previous.task is not None:
            previous.task.cancel()  # a newer claim of the same execution: the old one is stale
        running = _Running(item)
        self._running[key] = running
        running.task = asyncio.create_task(self._run(running))

    async def _run(self, running: _Running) -> None:
        item = running.item
        try:
            outcome = await self._executor.run(item)
        except Exception as error:
            # A bug in a transport or in the mapping; still report, so the execution moves on.
            log.exception("running execution %s failed", item.execution_id)
            outcome = dispatch_failed(
                item,
                type(error).__name__,
                f"Dispatcher failed running execution {item.execution_id}: {error}",
            )
        if (
            self._config.continue_claim
            and outcome.WhichOneof("outcome") == "step_completed"
            and not self._draining.is_set()
        ):
            outcome.step_completed.continue_claim = True
        running.is_reported = True
        self._outcomes.put_nowait(outcome)

    def _forget(self, key: _Key, fencing_token: int) -> None:
        current = self._running.get(key)
        if current is not None and current.item.fencing_token == fencing_token:
            del self._running[key]
            self._slot_freed.set()

    # -- reporting ----------------------------------------------------------------------

    async def _report_loop(self) -> None:
        # While `complete_concurrency` reports go through, the next waits, so what finishes
        # meanwhile makes the next batch. One whose first attempt failed is repeated on its
        # own: the reports behind it go on, and their slots are freed, without waiting for it.
        calls = asyncio.Semaphore(max(1, self._config.complete_concurrency))
        while True:
            await calls.acquire()
            batch = await self._next_batch()
            delivery = asyncio.create_task(self._deliver(batch, _once(calls.release)))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(
        self, batch: list[wpb.WorkOutcome], first_attempt_done: Callable[[], None]
    ) -> None:
        request = wpb.CompleteWorkRequest(
            dispatcher_id=self._config.dispatcher_id,
            outcomes=batch,
            # Repeats reuse the id: a commit whose answer was lost is not rejected as stale.
            request_id=str(uuid.uuid4()),
        )
        try:
            response = await call_with_retries(
                functools.partial(
                    self._work.CompleteWork, request, timeout=self._config.rpc_timeout_s
                ),
                what=f"CompleteWork of {len(batch)} outcome(s)",
                budget=self._config.retry,
                give_up=self._closing,
                after_first_attempt=first_attempt_done,
            )
            if response is not None:
                for outcome, result in zip(batch, response.results, strict=True):
                    self._record(outcome, result)
                return
        except Exception:
            # A bug in handling the answer; the report counts as undelivered.
            log.exception("reporting %d outcome(s) failed", len(batch))
        finally:
            first_attempt_done()
        # Not delivered: drop the work and free its slots; the leases expire and the
        # coordinator requeues it.
        self._counters.undelivered += len(batch)
        for outcome in batch:
            self._forget((outcome.tenant_id, outcome.execution_id), outcome.fencing_token)

    async def _next_batch(self) -> list[wpb.WorkOutcome]:
        first = await self._outcomes.get()
        limit = min(self._config.complete_batch_size, MAX_ITEMS_PER_CALL)
        if (
            self._config.complete_linger_s > 0
            and self._outcomes.qsize() < limit - 1
            and self._any_unreported()
        ):
            # Wait a moment for what is still running to join the batch; with nothing else
            # running (a quiet system) the report goes at once, the linger would be pure delay.
            await asyncio.sleep(self._config.complete_linger_s)
        batch = [first]
        keys = {(first.tenant_id, first.execution_id)}
        later: list[wpb.WorkOutcome] = []
        while len(batch) < limit and not self._outcomes.empty():
            outcome = self._outcomes.get_nowait()
            key = (outcome.tenant_id, outcome.execution_id)
            # At most one outcome per execution per call (the protocol refuses repeats).
            (later if key in keys else batch).append(outcome)
            keys.add(key)
        for outcome in later:
            self._outcomes.put_nowait(outcome)
        return batch

    def _any_unreported(self) -> bool:
        """Whether an item is still running (its outcome not queued yet)."""
        return any(not running.is_reported for running in self._running.values())

    def _record(self, outcome: wpb.WorkOutcome, result: wpb.WorkOutcomeResult) -> None:
        self._forget((outcome.tenant_id, outcome.execution_id), outcome.fencing_token)
        if not result.accepted:
            self._counters.rejected += 1
            log.info(
                "outcome for execution %s rejected (%s): %s; work dropped",
                outcome.execution_id,
                error_reason_pb2.ErrorReason.Name(result.rejection_reason),
                result.rejection_message,
                extra={"tenant": outcome.tenant_id, "execution_id": outcome.execution_id},
            )
        elif outcome.WhichOneof("outcome") == "failed":
            self._counters.failed += 1
        else:
            self._counters.completed += 1
            if result.HasField("next_work_item"):
                # The claim continues: the next step is already ours, under a new fencing
                # token and a fresh lease (even while draining: it is held either way).
                self._start(result.next_work_item)

    # -- leases -------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.renew_interval_s)
            held = [r.item for r in self._running.values()]
            for start in range(0, len(held), MAX_ITEMS_PER_CALL):
                await self._renew(held[start : start + MAX_ITEMS_PER_CALL])

    async def _renew(self, items: list[wpb.WorkItem]) -> None:
        request = wpb.RenewLeasesRequest(
            dispatcher_id=self._config.dispatcher_id,
            leases=[
                wpb.LeaseRenewal(
                    execution_id=i.execution_id,
                    tenant_id=i.identity.tenant_id,
                    fencing_token=i.fencing_token,
                )
                for i in items
            ],
        )
        request.lease_duration.FromMilliseconds(self._config.lease_ms)
        # A renewal is worth trying once per round: the next round is the retry.
        response = await call_with_retries(
            functools.partial(self._work.RenewLeases, request, timeout=self._config.rpc_timeout_s),
            what="RenewLeases",
            budget=_ONE_ATTEMPT,
            give_up=self._closing,
        )
        if response is None:
            return
        for item, result in zip(items, response.results, strict=True):
            if not result.renewed:
                self._lose_lease(item, result)

    def _lose_lease(self, item: wpb.WorkItem, result: wpb.LeaseRenewalResult) -> None:
        key = _key_of(item)
        running = self._running.get(key)
        if running is None or running.item.fencing_token != item.fencing_token:
            return  # finished meanwhile
        if running.is_reported:
            return  # its outcome is on the way; the commit decides
        log.warning(
            "lease of execution %s refused (%s); stopping its work",
            item.execution_id,
            error_reason_pb2.ErrorReason.Name(result.rejection_reason),
            extra={"tenant": key[0], "execution_id": item.execution_id},
        )
        self._counters.lease_lost += 1
        if running.task is not None:
            running.task.cancel()
        self._forget(key, item.fencing_token)
