"""The SQS bridge as a process between moto's SQS and real registry + coordinator processes:
submit and complete over SQS, replies, idempotent redelivery, the bridge DLQ, kill -9, visibility
extension, graceful SIGTERM and terminal events, also of executions that ended while no bridge
ran (issues 7 and 11, docs/sqs-bridge.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiobotocore.session import get_session

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import submit_request
from tests.e2e.test_coordinator_interactions import park
from tests.harness.moto import MotoServer
from tests.harness.wait import wait_until
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.fake_dispatcher import FakeDispatcher, failed, submit_all
from tests.support.registry_client import ADMIN, registry_client
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import ORDER_TYPE, TRANSITION, order
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.registry.v1 import worker_service_pb2 as wspb

pytestmark = pytest.mark.e2e

BRIDGE = "tpf_sqs_bridge"
STEPS = 4  # the restaurant release


@dataclass(frozen=True)
class Queues:
    submit: str
    completion: str
    responses: str
    replies: str
    events: str
    dead_letters: str


@pytest.fixture
async def sqs(moto_server: MotoServer) -> AsyncIterator[Any]:
    """A test-side SQS client on moto (sends requests, reads replies, events, dead letters)."""
    async with get_session().create_client("sqs", **moto_server.client_kwargs) as client:
        yield client


@pytest.fixture
async def queues(sqs: Any) -> Queues:
    """Fresh queues for this test; names are unique because moto is shared by the whole run."""
    run = uuid.uuid4().hex[:10]

    async def create(role: str) -> str:
        response = await sqs.create_queue(QueueName=f"bridge-{run}-{role}")
        url: str = response["QueueUrl"]
        return url

    return Queues(
        submit=await create("submit"),
        completion=await create("completion"),
        responses=await create("responses"),
        replies=await create("replies"),
        events=await create("events"),
        dead_letters=await create("dlq"),
    )


def bridge_env(suite: Suite, moto: MotoServer, queues: Queues, **overrides: str) -> dict[str, str]:
    """Environment of a bridge process: moto through the AWS_* variables, as in production."""
    env = {
        **moto.client_env,
        "TPF_COORDINATOR_TARGET": suite.coordinator.target,
        "TPF_COORDINATOR_TOKEN": ADMIN,
        "TPF_SQS_SUBMIT_QUEUE_URL": queues.submit,
        "TPF_SQS_COMPLETION_QUEUE_URL": queues.completion,
        "TPF_SQS_RESPONSE_QUEUE_URL": queues.responses,
        "TPF_SQS_DEAD_LETTER_QUEUE_URL": queues.dead_letters,
        "TPF_SQS_WAIT_TIME_S": "1",
        "TPF_SQS_VISIBILITY_TIMEOUT_S": "5",
        "TPF_SQS_VISIBILITY_HEARTBEAT_S": "1",
        "TPF_COORDINATOR_CALL_TIMEOUT_S": "10",
    }
    env.update(overrides)
    return env


def submit_body(
    suite: Suite, *, key: str | None = None, reply_to: str | None = None, **order_fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantId": suite.tenant,
        "pipelineId": PIPELINE_ID,
        "inputShape": "UNI",
        "inputPayload": {
            "payloadTypeId": ORDER_TYPE,
            "payloadEncoding": TRANSITION,
            "payload": json.dumps(order(**order_fields), separators=(",", ":")),
        },
    }
    if key is not None:
        body["idempotencyKey"] = key
    if reply_to is not None:
        body["replyQueueUrl"] = reply_to
    return body


async def send(sqs: Any, queue_url: str, body: dict[str, Any] | str) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    response = await sqs.send_message(QueueUrl=queue_url, MessageBody=text)
    message_id: str = response["MessageId"]
    return message_id


async def take(sqs: Any, queue_url: str, count: int, *, timeout_s: float = 30) -> list[Any]:
    """Receive and delete `count` JSON bodies from a queue (more if they arrive together)."""
    bodies: list[Any] = []

    async def enough() -> bool:
        response = await sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in response.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(bodies) >= count

    await wait_until(enough, timeout_s=timeout_s, what=f"{count} messages on {queue_url}")
    return bodies


async def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages on the queue, visible or in flight."""
    response = await sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    attributes = response["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


async def all_executions(client: CoordinatorClient, suite: Suite) -> list[Any]:
    found: list[Any] = []
    request = epb.ListExecutionsRequest(tenant_id=suite.tenant, page_size=1000)
    while True:
        page = await client.executions.ListExecutions(request)
        found.extend(page.executions)
        if not page.next_page_token:
            return found
        request.page_token = page.next_page_token


@contextlib.contextmanager
def paused(pid: int | None) -> Iterator[None]:
    """SIGSTOP a process of this test for the block: its calls hang, as a very slow one would."""
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_submit_message_is_answered_with_the_execution_id_on_the_reply_queue(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    start_service(BRIDGE, bridge_env(suite, moto_server, queues))
    message_id = await send(
        sqs, queues.submit, submit_body(suite, key="k-1", reply_to=queues.replies)
    )
    # No replyQueueUrl: the configured response queue gets the reply.
    await send(sqs, queues.submit, submit_body(suite, key="k-2"))

    [reply] = await take(sqs, queues.replies, 1)
    [default_reply] = await take(sqs, queues.responses, 1)

    assert reply["type"] == "submitted" and reply["messageId"] == message_id
    assert reply["tenantId"] == suite.tenant and reply["duplicate"] is False
    assert reply["statusUrl"] == f"/pipeline/executions/{reply['executionId']}"
    assert default_reply["type"] == "submitted"
    async with coordinator_client(suite.coordinator.target) as client:
        for answered, key in ((reply, "k-1"), (default_reply, "k-2")):
            found = await client.executions.GetExecution(
                epb.GetExecutionRequest(
                    tenant_id=suite.tenant, execution_id=answered["executionId"]
                )
            )
            assert found.execution.idempotency_key == key
            assert found.execution.identity.pipeline_id == PIPELINE_ID
    await wait_until(lambda: _is_empty(sqs, queues.submit), what="answered messages deleted")
    assert await queue_depth(sqs, queues.dead_letters) == 0


async def test_the_same_body_sent_twice_creates_one_execution(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    start_service(BRIDGE, bridge_env(suite, moto_server, queues))
    body = submit_body(suite, key="same-order", reply_to=queues.replies)
    await send(sqs, queues.submit, body)
    [first] = await take(sqs, queues.replies, 1)
    await send(sqs, queues.submit, body)
    [second] = await take(sqs, queues.replies, 1)

    assert first["executionId"] == second["executionId"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert first["messageId"] != second["messageId"]
    async with coordinator_client(suite.coordinator.target) as client:
        assert len(await all_executions(client, suite)) == 1


async def test_a_message_redelivered_after_the_bridge_died_creates_one_execution(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    """The bridge dies with the call in flight; the message becomes visible again, is received a
    second time and answered once. No idempotency key: the server's derived key dedupes."""
    bridge = start_service(BRIDGE, bridge_env(suite, moto_server, queues))
    with paused(suite.coordinator.pid):
        await send(sqs, queues.submit, submit_body(suite, reply_to=queues.replies))
        await wait_until(
            lambda: _in_flight(sqs, queues.submit), what="the bridge holding the message"
        )
        bridge.kill()
    bridge.start()

    [reply] = await take(sqs, queues.replies, 1)
    async with coordinator_client(suite.coordinator.target) as client:
        executions = await all_executions(client, suite)
    assert [e.execution_id for e in executions] == [reply["executionId"]]
    await wait_until(lambda: _is_empty(sqs, queues.submit), what="the message deleted")


async def _in_flight(sqs: Any, queue_url: str) -> bool:
    response = await sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    return int(response["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) > 0


async def _is_empty(sqs: Any, queue_url: str) -> bool:
    return await queue_depth(sqs, queue_url) == 0


async def test_poison_messages_are_rejected_and_dead_lettered_with_the_reason(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    start_service(BRIDGE, bridge_env(suite, moto_server, queues))
    not_json = await send(sqs, queues.submit, "{not json")
    missing = submit_body(suite, reply_to=queues.replies)
    del missing["pipelineId"]
    missing_id = await send(sqs, queues.submit, missing)
    unknown_tenant = submit_body(suite, reply_to=queues.replies)
    unknown_tenant["tenantId"] = "no-such-tenant"
    unknown_id = await send(sqs, queues.submit, unknown_tenant)
    bad_encoding = submit_body(suite, reply_to=queues.replies)
    bad_encoding["inputPayload"]["payloadEncoding"] = "text/plain"
    bad_encoding_id = await send(sqs, queues.submit, bad_encoding)
    bad_completion = json.dumps({"tenantId": suite.tenant, "responsePayload": {"ok": True}})
    completion_id = await send(sqs, queues.completion, bad_completion)

    dead = {entry["messageId"]: entry for entry in await take(sqs, queues.dead_letters, 5)}
    rejected = {r["messageId"]: r for r in await take(sqs, queues.replies, 3)}
    defaults = {r["messageId"]: r for r in await take(sqs, queues.responses, 2)}

    expected = {
        not_json: ("FIELD_INVALID", "submit"),
        missing_id: ("FIELD_REQUIRED", "submit"),
        unknown_id: ("NO_ACTIVE_RELEASE", "submit"),
        bad_encoding_id: ("PAYLOAD_ENCODING_UNSUPPORTED", "submit"),
        completion_id: ("FIELD_REQUIRED", "complete"),
    }
    assert {mid: (e["reason"], e["operation"]) for mid, e in dead.items()} == expected
    assert all(e["cause"] == "permanent" for e in dead.values())
    assert dead[not_json]["body"] == "{not json", "the original body is kept for a redrive"
    assert json.loads(dead[unknown_id]["body"]) == unknown_tenant
    assert dead[unknown_id]["grpcCode"] == "FAILED_PRECONDITION"
    # Bodies naming a reply queue are answered there; the others on the response queue.
    assert set(rejected) == {missing_id, unknown_id, bad_encoding_id}
    assert set(defaults) == {not_json, completion_id}
    assert all(r["type"] == "rejected" for r in [*rejected.values(), *defaults.values()])
    assert rejected[unknown_id]["reason"] == "NO_ACTIVE_RELEASE"
    assert rejected[unknown_id]["tenantId"] == "no-such-tenant"
    assert await queue_depth(sqs, queues.submit) == 0
    assert await queue_depth(sqs, queues.completion) == 0


async def test_a_message_failing_transiently_is_dead_lettered_after_max_receives(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    # The pipeline's only worker is drained: nothing can run it. Transient (a worker may come
    # back), but no outage of the suite, so the receive limit applies.
    async with registry_client(suite.registry.target) as registry:
        await registry.workers.DrainWorker(
            wspb.DrainWorkerRequest(
                tenant_id=suite.tenant, pipeline_id=PIPELINE_ID, worker_id="local-worker"
            )
        )
    start_service(BRIDGE, bridge_env(suite, moto_server, queues, TPF_SQS_MAX_RECEIVES="2"))
    message_id = await send(
        sqs, queues.submit, submit_body(suite, key="k", reply_to=queues.replies)
    )

    [entry] = await take(sqs, queues.dead_letters, 1)
    [rejected] = await take(sqs, queues.replies, 1)

    assert entry["messageId"] == message_id and entry["cause"] == "receives_exhausted"
    assert entry["grpcCode"] == "UNAVAILABLE" and entry["receiveCount"] == 2
    assert entry["reason"] == rejected["reason"] == "NO_WORKER_AVAILABLE"
    assert await queue_depth(sqs, queues.submit) == 0


async def test_a_message_outlives_a_coordinator_outage_past_max_receives(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    """An outage is not the message's fault: it is redelivered, not dead-lettered, and goes
    through once the coordinator is back."""
    bridge = start_service(BRIDGE, bridge_env(suite, moto_server, queues, TPF_SQS_MAX_RECEIVES="2"))
    suite.coordinator.kill()
    message_id = await send(
        sqs, queues.submit, submit_body(suite, key="k", reply_to=queues.replies)
    )

    def retried() -> int:
        lines = [line for line in bridge.log_text().splitlines() if message_id in line]
        return sum("retried in" in line for line in lines)

    await wait_until(lambda: retried() >= 3, timeout_s=60, what="three receives, all refused")
    log = bridge.log_text()
    assert "COORDINATOR_UNAVAILABLE: The coordinator cannot be reached" in log
    assert "127.0.0.1" not in next(line for line in log.splitlines() if "retried in" in line)
    assert await queue_depth(sqs, queues.dead_letters) == 0

    await asyncio.to_thread(suite.coordinator.restart)
    [reply] = await take(sqs, queues.replies, 1, timeout_s=60)
    assert (reply["type"], reply["messageId"]) == ("submitted", message_id)
    assert await queue_depth(sqs, queues.dead_letters) == 0


async def test_a_slow_call_keeps_its_message_invisible_until_answered(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    start_service(
        BRIDGE,
        bridge_env(
            suite,
            moto_server,
            queues,
            TPF_SQS_VISIBILITY_TIMEOUT_S="2",
            TPF_SQS_VISIBILITY_HEARTBEAT_S="0.5",
        ),
    )
    with paused(suite.coordinator.pid):
        await send(sqs, queues.submit, submit_body(suite, key="slow", reply_to=queues.replies))
        await wait_until(lambda: _in_flight(sqs, queues.submit), what="the bridge holding it")
        # Three visibility timeouts: without extensions the message would be visible again.
        for _ in range(3):
            probe = await sqs.receive_message(
                QueueUrl=queues.submit, WaitTimeSeconds=2, VisibilityTimeout=0
            )
            assert probe.get("Messages", []) == [], "the message became visible mid-call"
    [reply] = await take(sqs, queues.replies, 1)
    assert reply["duplicate"] is False
    await wait_until(lambda: _is_empty(sqs, queues.submit), what="the message deleted")


async def test_sigterm_finishes_the_message_in_hand_and_exits_0(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    bridge = start_service(BRIDGE, bridge_env(suite, moto_server, queues))
    with paused(suite.coordinator.pid):
        await send(sqs, queues.submit, submit_body(suite, key="late", reply_to=queues.replies))
        await wait_until(lambda: _in_flight(sqs, queues.submit), what="the bridge holding it")
        exit_code = asyncio.create_task(asyncio.to_thread(bridge.terminate, 30.0))
        await wait_until(lambda: "stopping" in bridge.log_text(), what="SIGTERM received")
    assert await exit_code == 0
    [reply] = await take(sqs, queues.replies, 1)
    assert reply["type"] == "submitted" and reply["duplicate"] is False
    assert await queue_depth(sqs, queues.submit) == 0, "deleted before the bridge exited"


async def test_kill_9_mid_batch_then_restart_gives_every_message_exactly_one_execution(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    count = 30
    bridge = start_service(BRIDGE, bridge_env(suite, moto_server, queues))
    keys = [f"order-{n}" for n in range(count)]
    await asyncio.gather(
        *(
            send(sqs, queues.submit, submit_body(suite, key=k, reply_to=queues.replies))
            for k in keys
        )
    )
    replies = await take(sqs, queues.replies, 3)
    bridge.kill()
    bridge.start()

    # At least once: a message answered but not yet deleted when the bridge died is answered
    # again (duplicate) after the restart, so wait for every execution, not for `count` replies.
    deadline = time.monotonic() + 60
    while len({r["executionId"] for r in replies}) < count:
        assert time.monotonic() < deadline, f"replies for {len(replies)} of {count} messages"
        replies += await take(sqs, queues.replies, 1, timeout_s=60)
    async with coordinator_client(suite.coordinator.target) as client:
        executions = await all_executions(client, suite)
    by_key = {e.idempotency_key: e.execution_id for e in executions}
    assert sorted(by_key) == sorted(keys) and len(executions) == count
    replied = {(r["executionId"]) for r in replies}
    assert replied == set(by_key.values()), "every message was answered with its execution"
    await wait_until(lambda: _is_empty(sqs, queues.submit), what="every message deleted")
    assert await queue_depth(sqs, queues.dead_letters) == 0


async def test_a_completion_message_completes_the_interaction(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    start_service(BRIDGE, bridge_env(suite, moto_server, queues))
    async with coordinator_client(suite.coordinator.target) as client:
        parked = await park(client, suite)
        # A plain JSON object, wrapped as a java.util.Map envelope like TPF's SQS completion.
        await send(
            sqs,
            queues.completion,
            {
                "tenantId": suite.tenant,
                "interactionId": parked.interaction_id,
                "responsePayload": {"accepted": {"orderId": "o-9", "note": "by sqs"}},
                "idempotencyKey": "decision-1",
                "actor": "alice",
                "replyQueueUrl": queues.replies,
            },
        )
        [reply] = await take(sqs, queues.replies, 1)
        # Again by correlation id: the interaction is already completed.
        await send(
            sqs,
            queues.completion,
            {
                "tenantId": suite.tenant,
                "correlationId": parked.correlation_id,
                "responsePayload": {"accepted": {"orderId": "o-9"}},
                "replyQueueUrl": queues.replies,
            },
        )
        [again] = await take(sqs, queues.replies, 1)
        found = await client.executions.GetExecution(
            epb.GetExecutionRequest(tenant_id=suite.tenant, execution_id=parked.execution_id)
        )

    assert reply["type"] == "completed" and reply["status"] == "COMPLETED"
    assert reply["executionId"] == parked.execution_id
    assert reply["interactionId"] == parked.interaction_id and reply["duplicate"] is False
    assert again["duplicate"] is True and again["interactionId"] == parked.interaction_id
    assert found.execution.status == st.EXECUTION_STATUS_QUEUED
    assert found.execution.step_index == 3
    assert await queue_depth(sqs, queues.dead_letters) == 0


async def test_terminal_events_are_published_across_a_restart(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    env = bridge_env(
        suite,
        moto_server,
        queues,
        TPF_SQS_EVENTS_QUEUE_URL=queues.events,
        TPF_EVENTS_TENANTS=suite.tenant,
    )
    bridge = start_service(BRIDGE, env)
    await cursor_opened(bridge)

    async def submitted(key: str, **order_fields: Any) -> str:
        await send(
            sqs, queues.submit, submit_body(suite, key=key, reply_to=queues.replies, **order_fields)
        )
        [reply] = await take(sqs, queues.replies, 1)
        execution_id: str = reply["executionId"]
        return execution_id

    async with coordinator_client(suite.coordinator.target) as client:
        cancelled = await submitted("to-cancel")
        await client.executions.CancelExecution(
            epb.CancelExecutionRequest(tenant_id=suite.tenant, execution_id=cancelled)
        )
        [cancel_event] = await take(sqs, queues.events, 1)

        # Submitted, then the bridge is stopped (gracefully) and started again: the restarted
        # bridge reads on from its cursor and announces it when it ends.
        resumed = await submitted("resumed")
        assert await asyncio.to_thread(bridge.terminate) == 0, "SIGTERM exits 0"
        bridge.start()

        async def step(item: wpb.WorkItem) -> wpb.WorkOutcome | None:
            if "Poison" in item.input_payload.payload:
                return failed(item, retryable=False, message="poisoned order")
            return None

        async with FakeDispatcher([suite.coordinator.target], steps=STEPS, step=step):
            failing = await submitted("failing", customerName="Poison Ivy")
            events = await take(sqs, queues.events, 2)

    assert cancel_event["type"] == "execution.terminal"
    assert (cancel_event["executionId"], cancel_event["status"]) == (cancelled, "CANCELLED")
    assert cancel_event["tenantId"] == suite.tenant and cancel_event["pipelineId"] == PIPELINE_ID
    by_id = {event["executionId"]: event for event in events}
    assert by_id[resumed]["status"] == "SUCCEEDED"
    assert by_id[resumed]["errorCode"] is None and "deadLetterReason" not in by_id[resumed]
    assert by_id[failing]["status"] == "FAILED"
    assert by_id[failing]["errorCode"] == "NonRetryableException"
    assert by_id[failing]["errorMessage"] == "poisoned order"
    assert by_id[failing]["deadLetterReason"] == "non_retryable"
    assert by_id[failing]["version"] > 0


def events_env(suite: Suite, moto: MotoServer, queues: Queues, **overrides: str) -> dict[str, str]:
    """A bridge publishing terminal events (every tenant of its token unless overridden)."""
    return bridge_env(suite, moto, queues, TPF_SQS_EVENTS_QUEUE_URL=queues.events, **overrides)


async def cursor_opened(bridge: Any) -> None:
    """Wait until the bridge holds its place in the feed (a new cursor starts at the end)."""
    await wait_until(
        lambda: "publishing terminal events from cursor" in bridge.log_text(),
        what="the bridge's event cursor opened",
    )


async def finish_executions(suite: Suite, count: int, prefix: str) -> set[str]:
    """Submit `count` executions and run them to SUCCEEDED with a fake dispatcher."""
    requests = [submit_request(suite, key=f"{prefix}-{n}") for n in range(count)]
    async with (
        coordinator_client(suite.coordinator.target) as client,
        FakeDispatcher([suite.coordinator.target], steps=STEPS, continue_claim=True) as dispatcher,
    ):
        submitted = await submit_all(client.executions, requests)
        await wait_until(
            lambda: dispatcher.stats.succeeded >= count,
            timeout_s=120,
            what=f"{count} executions succeeded",
        )
    return {s.execution_id for s in submitted}


async def events_covering(
    sqs: Any, queue_url: str, expected: set[str], bodies: list[Any] | None = None
) -> list[Any]:
    """Take terminal events until every expected execution was announced; all bodies taken."""
    taken = bodies if bodies is not None else []
    deadline = time.monotonic() + 120
    while not expected <= {b["executionId"] for b in taken}:
        seen = len({b["executionId"] for b in taken} & expected)
        assert time.monotonic() < deadline, f"events for {seen} of {len(expected)} executions"
        taken += await take(sqs, queue_url, 1, timeout_s=60)
    return taken


async def test_executions_that_end_while_no_bridge_runs_are_announced_when_one_starts(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    bridge = start_service(BRIDGE, events_env(suite, moto_server, queues))
    await cursor_opened(bridge)
    assert await asyncio.to_thread(bridge.terminate) == 0

    finished = await finish_executions(suite, 200, "offline")
    assert await queue_depth(sqs, queues.events) == 0, "no bridge ran"
    bridge.start()
    events = await events_covering(sqs, queues.events, finished)

    assert len(events) == 200, "a graceful stop leaves nothing to announce twice"
    assert {e["executionId"] for e in events} == finished
    assert len({e["eventId"] for e in events}) == 200
    assert all(e["type"] == "execution.terminal" for e in events)
    assert all(e["status"] == "SUCCEEDED" and e["tenantId"] == suite.tenant for e in events)
    assert all(e["errorCode"] is None and e["version"] > 0 for e in events)


async def test_a_bridge_killed_while_publishing_misses_no_event_after_its_restart(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    env = events_env(
        suite, moto_server, queues, TPF_EVENTS_TENANTS=suite.tenant, TPF_EVENTS_BATCH_SIZE="10"
    )
    bridge = start_service(BRIDGE, env)
    await cursor_opened(bridge)
    assert await asyncio.to_thread(bridge.terminate) == 0
    finished = await finish_executions(suite, 200, "killed")

    bridge.start()
    before_kill = await take(sqs, queues.events, 1)
    # The coordinator is held still so that the bridge dies between pages: some published,
    # its cursor not (or not fully) advanced.
    with paused(suite.coordinator.pid):
        bridge.kill()
    bridge.start()
    events = await events_covering(sqs, queues.events, finished, before_kill)

    assert {e["executionId"] for e in events} == finished
    # At least once: a page published before the kill may come again, with the same eventId.
    by_execution: dict[str, set[str]] = {}
    for event in events:
        by_execution.setdefault(event["executionId"], set()).add(event["eventId"])
    assert all(len(ids) == 1 for ids in by_execution.values())


async def test_two_bridges_at_once_publish_every_event(
    suite: Suite, moto_server: MotoServer, queues: Queues, sqs: Any, start_service: Any
) -> None:
    env = events_env(suite, moto_server, queues, TPF_EVENTS_BATCH_SIZE="25")
    first, second = start_service(BRIDGE, env), start_service(BRIDGE, env)
    await cursor_opened(first)
    await cursor_opened(second)

    finished = await finish_executions(suite, 200, "twice")
    events = await events_covering(sqs, queues.events, finished)

    assert {e["executionId"] for e in events} == finished
    assert all(e["status"] == "SUCCEEDED" for e in events)
