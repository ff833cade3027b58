"""How the dispatcher repeats its calls to the coordinator: the real engine and its real channel
(`coordinator_channel`) against a WorkService served in the test that answers each call as the
test scripts it.

- INTERNAL, UNKNOWN and ABORTED are not repeated: the report is dropped at once, its slot freed.
- UNAVAILABLE and DEADLINE_EXCEEDED are repeated, with the same request id, at most the budget's
  attempts; the channel adds none of its own.
- A report being repeated does not hold up the reports behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from tests.harness.wait import wait_until
from tpf.common.v1 import pinned_identity_pb2
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.coordinator.v1 import work_service_pb2_grpc
from tpf_dispatcher.dispatcher import DispatchConfig, Dispatcher
from tpf_dispatcher.retrying import RetryBudget, coordinator_channel

TENANT = "t-1"
Context = grpc.aio.ServicerContext[Any, Any]
# Decides the answer to one CompleteWork: a status code to fail with, None to accept it.
Script = Callable[[wpb.CompleteWorkRequest], grpc.StatusCode | None]


def accept_all(request: wpb.CompleteWorkRequest) -> grpc.StatusCode | None:
    return None


@dataclass
class FakeWorkService(work_service_pb2_grpc.WorkServiceServicer):
    """Hands out the items the test queues and answers CompleteWork as `script` says."""

    script: Script = accept_all
    # CompleteWork calls that failed by script sleep this long first (DEADLINE_EXCEEDED).
    hang_s: float = 0.0
    to_claim: asyncio.Queue[wpb.WorkItem] = field(default_factory=asyncio.Queue)
    claims: list[str] = field(default_factory=list)
    # Every CompleteWork call: (request id, execution ids).
    reports: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)

    async def ClaimWork(self, request: wpb.ClaimWorkRequest, context: Context) -> Any:
        self.claims.append(request.request_id)
        try:
            first = await asyncio.wait_for(self.to_claim.get(), timeout=0.05)
        except TimeoutError:
            return wpb.ClaimWorkResponse()
        return wpb.ClaimWorkResponse(work_items=[first])

    async def RenewLeases(self, request: wpb.RenewLeasesRequest, context: Context) -> Any:
        return wpb.RenewLeasesResponse(
            results=[wpb.LeaseRenewalResult(renewed=True) for _ in request.leases]
        )

    async def CompleteWork(self, request: wpb.CompleteWorkRequest, context: Context) -> Any:
        ids = tuple(o.execution_id for o in request.outcomes)
        self.reports.append((request.request_id, ids))
        code = self.script(request)
        if code is not None:
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                await asyncio.sleep(self.hang_s)
            await context.abort(code, f"scripted {code.name}")
        self.accepted.extend(ids)
        return wpb.CompleteWorkResponse(
            results=[
                wpb.WorkOutcomeResult(execution_id=i, tenant_id=TENANT, accepted=True) for i in ids
            ]
        )

    def attempts_of(self, execution_id: str) -> list[str]:
        """The request ids of every CompleteWork that carried `execution_id`."""
        return [request_id for request_id, ids in self.reports if execution_id in ids]


class InstantRunner:
    """Completes each item's pipeline at once, or when the test releases it."""

    def __init__(self) -> None:
        self.held: dict[str, asyncio.Event] = {}

    def hold(self, execution_id: str) -> asyncio.Event:
        return self.held.setdefault(execution_id, asyncio.Event())

    async def run(self, item: wpb.WorkItem) -> wpb.WorkOutcome:
        if item.execution_id in self.held:
            await self.held[item.execution_id].wait()
        outcome = wpb.WorkOutcome(
            execution_id=item.execution_id,
            tenant_id=item.identity.tenant_id,
            fencing_token=item.fencing_token,
        )
        outcome.pipeline_completed.SetInParent()
        return outcome


def work_item(execution_id: str) -> wpb.WorkItem:
    return wpb.WorkItem(
        execution_id=execution_id,
        identity=pinned_identity_pb2.PinnedIdentity(tenant_id=TENANT),
        fencing_token=1,
    )


@dataclass
class Running:
    service: FakeWorkService
    runner: InstantRunner
    dispatcher: Dispatcher

    def claimable(self, *execution_ids: str) -> None:
        for execution_id in execution_ids:
            self.service.to_claim.put_nowait(work_item(execution_id))


@asynccontextmanager
async def running(
    service: FakeWorkService, budget: RetryBudget, *, max_in_flight: int = 4
) -> AsyncIterator[Running]:
    server = grpc.aio.server()
    work_service_pb2_grpc.add_WorkServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = coordinator_channel(f"127.0.0.1:{port}", token=None, tls=None)
    runner = InstantRunner()
    dispatcher = Dispatcher(
        DispatchConfig(
            dispatcher_id="d-retries",
            max_in_flight=max_in_flight,
            claim_batch_size=1,
            claim_wait_ms=0,
            lease_ms=60_000,
            renew_interval_s=60.0,
            rpc_timeout_s=0.3,
            complete_linger_s=0.0,
            complete_batch_size=10,
            continue_claim=False,
            retry=budget,
        ),
        work_service_pb2_grpc.WorkServiceStub(channel),
        runner,
    )
    dispatcher.start()
    try:
        yield Running(service, runner, dispatcher)
    finally:
        await dispatcher.close()
        await channel.close()
        await server.stop(None)


FAST = RetryBudget(attempts=3, first_pause_s=0.01, max_pause_s=0.05)


def failing(execution_id: str, code: grpc.StatusCode, *, times: int = 1_000) -> Script:
    """Fail the first `times` reports carrying `execution_id` with `code`."""
    failures = 0

    def script(request: wpb.CompleteWorkRequest) -> grpc.StatusCode | None:
        nonlocal failures
        if any(o.execution_id == execution_id for o in request.outcomes) and failures < times:
            failures += 1
            return code
        return None

    return script


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.ABORTED]
)
async def test_a_report_refused_for_good_is_dropped_at_once(code: grpc.StatusCode) -> None:
    service = FakeWorkService(script=failing("e-1", code))
    async with running(service, FAST) as run:
        run.claimable("e-1")
        await wait_until(lambda: run.dispatcher.snapshot().counters.undelivered == 1)
        assert run.dispatcher.snapshot().in_flight == 0, "its slot is free"
        # The dispatcher goes on with the next work.
        run.claimable("e-2")
        await wait_until(lambda: "e-2" in service.accepted, what="e-2 reported")
        assert len(service.attempts_of("e-1")) == 1, "not repeated"
        assert "e-1" not in service.accepted
        assert run.dispatcher.snapshot().counters.completed == 1


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
async def test_an_unreachable_coordinator_gets_the_budgets_attempts_and_no_more(
    code: grpc.StatusCode,
) -> None:
    service = FakeWorkService(script=failing("e-1", code), hang_s=1.0)
    async with running(service, FAST) as run:
        run.claimable("e-1")
        await wait_until(
            lambda: run.dispatcher.snapshot().counters.undelivered == 1, what="given up"
        )
        attempts = service.attempts_of("e-1")
        # One layer of retries: the channel's own policy would turn each attempt into several.
        assert len(attempts) == FAST.attempts
        assert len(set(attempts)) == 1, "every attempt carries the same request id"
        assert run.dispatcher.snapshot().in_flight == 0


async def test_a_report_that_gets_through_on_a_later_attempt_is_recorded() -> None:
    service = FakeWorkService(script=failing("e-1", grpc.StatusCode.UNAVAILABLE, times=2))
    async with running(service, FAST) as run:
        run.claimable("e-1")
        await wait_until(lambda: "e-1" in service.accepted, what="e-1 reported")
        assert len(service.attempts_of("e-1")) == 3
        await wait_until(lambda: run.dispatcher.snapshot().counters.completed == 1)
        assert run.dispatcher.snapshot().counters.undelivered == 0


async def test_a_report_being_repeated_does_not_hold_up_the_others() -> None:
    """While e-1's report is repeated (a long budget), e-2 finishes, is reported and frees its
    slot; e-1 alone still holds one."""
    patient = RetryBudget(attempts=100, first_pause_s=0.1, max_pause_s=0.1)
    service = FakeWorkService(script=failing("e-1", grpc.StatusCode.UNAVAILABLE))
    async with running(service, patient, max_in_flight=2) as run:
        second_done = run.runner.hold("e-2")
        run.claimable("e-1", "e-2")
        await wait_until(lambda: len(service.attempts_of("e-1")) >= 2, what="e-1 repeated")
        second_done.set()
        await wait_until(lambda: "e-2" in service.accepted, what="e-2 reported")
        # The service records e-2 before the dispatcher has read the answer and freed the slot.
        await wait_until(
            lambda: run.dispatcher.snapshot().in_flight == 1,
            what="only e-1 held (e-2's slot freed)",
        )
        snapshot = run.dispatcher.snapshot()
        assert snapshot.counters.completed == 1
        assert len(service.attempts_of("e-1")) < patient.attempts, "e-1 is still being repeated"
        # The freed slot is used: a third item is claimed and reported meanwhile.
        run.claimable("e-3")
        await wait_until(lambda: "e-3" in service.accepted, what="e-3 reported")


async def test_a_claim_refused_for_good_is_not_repeated() -> None:
    """Every ClaimWork refused with INTERNAL is a new claim (its own request id), made after a
    pause, never the same call repeated."""

    class RefusingClaims(FakeWorkService):
        async def ClaimWork(self, request: wpb.ClaimWorkRequest, context: Context) -> Any:
            self.claims.append(request.request_id)
            await context.abort(grpc.StatusCode.INTERNAL, "scripted INTERNAL")

    service = RefusingClaims()
    async with running(service, FAST):
        await wait_until(lambda: len(service.claims) >= 3, what="three claims")
    assert len(set(service.claims)) == len(service.claims)
