"""TerminalEventService through real registry and coordinator processes: the terminal-event feed
(commit order, a transaction committing behind a later one, tenant scope, long poll) and the
consumers' durable cursors (created at the end, forward only)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import psycopg
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_dead_letters import dead_letters_of, fail_permanently, redrive
from tests.e2e.test_coordinator_executions import get, submit_request
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import CONTROL_PLANE_A
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import terminal_event_service_pb2 as tpb
from tpf.coordinator.v1 import terminal_event_service_pb2_grpc

pytestmark = pytest.mark.e2e

if TYPE_CHECKING:
    Feed = terminal_event_service_pb2_grpc.TerminalEventServiceAsyncStub


@pytest.fixture
async def client(suite: Suite) -> AsyncIterator[CoordinatorClient]:
    async with coordinator_client(suite.coordinator.target) as opened:
        yield opened


def feed_of(client: CoordinatorClient) -> Feed:
    return terminal_event_service_pb2_grpc.TerminalEventServiceStub(client.channel)


async def poll(
    feed: Feed, after: str, *, tenants: tuple[str, ...] = (), wait_ms: int = 0, limit: int = 0
) -> tpb.PollTerminalEventsResponse:
    request = tpb.PollTerminalEventsRequest(
        tenant_ids=tenants, after_position=after, max_events=limit
    )
    request.wait.FromMilliseconds(wait_ms)
    response: tpb.PollTerminalEventsResponse = await feed.PollTerminalEvents(request)
    return response


async def read_all(feed: Feed, after: str, count: int, **kwargs: Any) -> list[Any]:
    """Poll on from `after` until `count` events came (long polls, so no busy loop)."""
    events: list[Any] = []
    position = after
    while len(events) < count:
        page = await poll(feed, position, wait_ms=5000, **kwargs)
        assert page.events or page.next_position, "a poll always says where to go on"
        events.extend(page.events)
        position = page.next_position
    return events


async def open_cursor(feed: Feed, name: str, *tenants: str) -> tpb.OpenEventCursorResponse:
    response: tpb.OpenEventCursorResponse = await feed.OpenEventCursor(
        tpb.OpenEventCursorRequest(consumer_id=name, tenant_ids=tenants)
    )
    return response


async def cancel(client: CoordinatorClient, suite: Suite, execution_id: str) -> Any:
    return (
        await client.executions.CancelExecution(
            epb.CancelExecutionRequest(tenant_id=suite.tenant, execution_id=execution_id)
        )
    ).execution


async def submitted(client: CoordinatorClient, suite: Suite, key: str) -> str:
    response = await client.executions.SubmitExecution(submit_request(suite, key=key))
    return response.execution_id


async def test_terminal_transitions_are_fed_once_each_in_commit_order_with_their_state(
    suite: Suite, client: CoordinatorClient
) -> None:
    feed = feed_of(client)
    start = (await open_cursor(feed, "order")).cursor.position
    ids = [await submitted(client, suite, f"k-{n}") for n in range(5)]
    cancelled = [await cancel(client, suite, eid) for eid in reversed(ids)]

    events = await read_all(feed, start, 5, tenants=(suite.tenant,))

    assert [e.execution_id for e in events] == [c.execution_id for c in cancelled]
    positions = [e.position for e in events]
    assert len(set(positions)) == 5
    for event, execution in zip(events, cancelled, strict=True):
        assert event.status == st.EXECUTION_STATUS_CANCELLED
        assert (event.tenant_id, event.pipeline_id) == (
            suite.tenant,
            execution.identity.pipeline_id,
        )
        assert event.version == execution.version == 1
        assert event.release_version == execution.identity.release_version
        assert event.updated_at_epoch_ms == execution.updated_at_epoch_ms
        assert not event.HasField("error_code") and event.terminal_reason == ""
    # Nothing more: submissions and other steps are not terminal.
    rest = await poll(feed, events[-1].position)
    assert list(rest.events) == []


async def test_an_event_committing_behind_a_later_one_is_not_skipped(
    suite: Suite, client: CoordinatorClient
) -> None:
    """Transaction A writes its terminal history row first (lower id) but commits after B.
    While A is open, B's event is held back; once A commits both come, A first."""
    feed = feed_of(client)
    start = (await open_cursor(feed, "race")).cursor.position
    slow, fast = await submitted(client, suite, "slow"), await submitted(client, suite, "fast")
    before = (await get(client, suite, slow)).execution
    async with await psycopg.AsyncConnection.connect(
        suite.coordinator_env["TPF_DATABASE_URL"]
    ) as conn:
        # What a slow CancelExecution would write, held uncommitted.
        await conn.execute(
            "UPDATE executions SET status = 'CANCELLED', version = 1, updated_at_ms = %s "
            "WHERE tenant_id = %s AND execution_id = %s AND version = 0",
            (before.updated_at_epoch_ms + 1, suite.tenant, slow),
        )
        await conn.execute(
            "INSERT INTO execution_history (tenant_id, execution_id, version, event, from_status,"
            " to_status, step_index, attempt, actor, release_version, occurred_at_ms) VALUES "
            "(%s, %s, 1, 'CANCELLED', 'QUEUED', 'CANCELLED', 0, 0, 'test', %s, %s)",
            (
                suite.tenant,
                slow,
                before.identity.release_version,
                before.updated_at_epoch_ms + 1,
            ),
        )
        await cancel(client, suite, fast)
        assert (await get(client, suite, fast)).execution.status == st.EXECUTION_STATUS_CANCELLED

        held = await poll(feed, start, tenants=(suite.tenant,))
        assert list(held.events) == [], "B is committed, but A (before it) may still commit"
        await conn.commit()

    events = await read_all(feed, held.next_position, 2, tenants=(suite.tenant,))
    assert [e.execution_id for e in events] == [slow, fast]


async def test_a_long_poll_answers_when_an_execution_ends(
    suite: Suite, client: CoordinatorClient
) -> None:
    feed = feed_of(client)
    start = (await open_cursor(feed, "long-poll")).cursor.position
    eid = await submitted(client, suite, "late")
    waiting = asyncio.create_task(poll(feed, start, wait_ms=30_000))
    await cancel(client, suite, eid)
    page = await waiting
    assert [e.execution_id for e in page.events] == [eid]


async def test_a_failure_redriven_since_is_fed_as_it_was(
    suite: Suite, client: CoordinatorClient
) -> None:
    feed = feed_of(client)
    start = (await open_cursor(feed, "redriven")).cursor.position
    eid = await fail_permanently(client, suite, error_code="BadInput")
    failed = (await get(client, suite, eid)).execution
    await dead_letters_of(client).RedriveExecution(redrive(suite, eid, allow_failed=True))
    assert (await get(client, suite, eid)).execution.status == st.EXECUTION_STATUS_QUEUED

    [event] = await read_all(feed, start, 1)

    assert (event.status, event.version) == (st.EXECUTION_STATUS_FAILED, failed.version)
    assert (event.error_code, event.error_message) == (failed.error_code, failed.error_message)
    assert event.terminal_reason == failed.terminal_reason == "non_retryable"


async def test_a_cursor_starts_at_the_end_and_only_moves_forward(
    suite: Suite, client: CoordinatorClient
) -> None:
    feed = feed_of(client)
    await cancel(client, suite, await submitted(client, suite, "before"))
    opened = await open_cursor(feed, "bridge", suite.tenant)
    assert opened.created and list(opened.cursor.tenant_ids) == [suite.tenant]
    assert list((await poll(feed, opened.cursor.position)).events) == [], "the past is skipped"

    await cancel(client, suite, await submitted(client, suite, "after"))
    [event] = await read_all(feed, opened.cursor.position, 1)
    again = await open_cursor(feed, "bridge", suite.tenant)
    assert not again.created and again.cursor.position == opened.cursor.position

    moved = await feed.AdvanceEventCursor(
        tpb.AdvanceEventCursorRequest(
            consumer_id="bridge", tenant_ids=[suite.tenant], position=event.position
        )
    )
    back = await feed.AdvanceEventCursor(
        tpb.AdvanceEventCursorRequest(
            consumer_id="bridge", tenant_ids=[suite.tenant], position=opened.cursor.position
        )
    )
    assert moved.advanced and moved.cursor.position == event.position
    assert moved.cursor.version == 1
    assert not back.advanced and back.cursor.position == event.position, "never backwards"
    assert (await open_cursor(feed, "bridge", suite.tenant)).cursor.position == event.position
    # Every tenant (the admin token's scope) is another cursor.
    assert (await open_cursor(feed, "bridge")).created


async def test_the_feed_shows_only_the_tenants_of_the_token(
    suite: Suite, client: CoordinatorClient
) -> None:
    await cancel(client, suite, await submitted(client, suite, "theirs"))
    async with coordinator_client(suite.coordinator.target, CONTROL_PLANE_A) as tenant_a:
        feed_a = feed_of(tenant_a)
        await expect_error(
            poll(feed_a, "", tenants=(suite.tenant,)),
            grpc.StatusCode.PERMISSION_DENIED,
            "TENANT_NOT_IN_SCOPE",
        )
        await expect_error(
            open_cursor(feed_a, "spy", suite.tenant),
            grpc.StatusCode.PERMISSION_DENIED,
            "TENANT_NOT_IN_SCOPE",
        )
        own = await poll(feed_a, "")
        cursor = await open_cursor(feed_a, "mine")
    assert list(own.events) == [] and own.next_position
    assert list(cursor.cursor.tenant_ids) == ["tenant-a"], "no tenants means the token's"
    everything = await read_all(feed_of(client), "", 1)
    assert [e.tenant_id for e in everything] == [suite.tenant]


async def test_malformed_requests_are_refused(suite: Suite, client: CoordinatorClient) -> None:
    feed = feed_of(client)
    await expect_error(
        poll(feed, "not-a-position"), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"
    )
    await expect_error(
        poll(feed, "", limit=-1), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_OUT_OF_RANGE"
    )
    await expect_error(
        poll(feed, "", wait_ms=61_000), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_OUT_OF_RANGE"
    )
    await expect_error(open_cursor(feed, " "), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_REQUIRED")
    await expect_error(
        open_cursor(feed, "x" * 257), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_INVALID"
    )
    await expect_error(
        feed.AdvanceEventCursor(tpb.AdvanceEventCursorRequest(consumer_id="c", position="")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "FIELD_REQUIRED",
    )
