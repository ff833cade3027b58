"""Outages answer fast and say why: every API, with Postgres, the coordinator or the registry down.

While Postgres is down, gRPC calls (coordinator and registry), REST calls through the gateway
(TPF's plain text on /tpf, problem JSON on /v1) and the CLI answer UNAVAILABLE / 503 with reason
DATABASE_UNAVAILABLE within ANSWER_BOUND_S; the SQS bridge keeps a message through it. While the
coordinator or the registry is down, the gateway answers 503 naming it, without the address it
tried. Timings are bounds on when an answer arrives (the wait for a pool connection, retries
not multiplied across layers), not performance measurements; each is printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from tests.e2e.conftest import Suite, suite
from tests.e2e.test_cli_coordinator import Tpf
from tests.e2e.test_gateway_routes import (
    ADM,
    CP_BASE,
    PIPE,
    Gateway,
    Reply,
    running_gateway,
    submit_body,
)
from tests.e2e.test_sqs_bridge import (
    BRIDGE,
    Queues,
    bridge_env,
    queue_depth,
    queues,
    send,
    sqs,
    take,
)
from tests.e2e.test_sqs_bridge import submit_body as sqs_submit_body
from tests.harness.moto import MotoServer
from tests.harness.postgres import PostgresServer
from tests.harness.wait import wait_until
from tests.support.coordinator_client import coordinator_client
from tests.support.grpc_errors import error_of
from tests.support.registry_client import ADMIN, registry_client
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import order_envelope
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf_cli.__main__ import main as tpf_main
from tpf_gateway.problems import REASON_HEADER

pytestmark = pytest.mark.e2e
__all__ = ["queues", "sqs", "suite"]

ANSWER_BOUND_S = 5.0
T = TypeVar("T")


async def timed(what: str, answer: Awaitable[T], took: dict[str, float]) -> T:
    """`answer`'s result, after checking it came within the bound; records how long it took."""
    started = time.monotonic()
    result = await answer
    took[what] = time.monotonic() - started
    assert took[what] < ANSWER_BOUND_S, f"{what} answered after {took[what]:.1f} s"
    return result


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def report(title: str, took: dict[str, float]) -> None:
    print(f"\n{title}:")
    for what, seconds in took.items():
        print(f"  {seconds:5.2f} s  {what}")


def cli_in_process(*argv: str) -> tuple[int, str]:
    """`tpf <argv>` in this process (its answer time, without an interpreter's start-up):
    exit code and stderr."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            tpf_main(list(argv))
        except SystemExit as exit_:
            return int(exit_.code or 0), stderr.getvalue()
    return 0, stderr.getvalue()


def assert_503(reply: Reply, reason: str, *, problem_json: bool) -> None:
    assert reply.status == 503, reply.text
    assert reply.headers[REASON_HEADER] == reason
    if problem_json:
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert reply.json()["reason"] == reason
    else:
        assert reply.headers["Content-Type"].startswith("text/plain")
        assert reply.text and "{" not in reply.text


@pytest.fixture
async def gateway(
    suite: Suite, tmp_path: Path, pytestconfig: pytest.Config
) -> AsyncIterator[Gateway]:
    async with running_gateway(suite, tmp_path, pytestconfig.rootpath) as running:
        yield running


@contextlib.asynccontextmanager
async def postgres_down(postgres_server: PostgresServer) -> AsyncIterator[None]:
    postgres_server.require_control()
    await asyncio.to_thread(postgres_server.kill)
    try:
        yield
    finally:
        await asyncio.to_thread(postgres_server.restart)


async def test_while_postgres_is_down_every_api_answers_database_unavailable_within_5_s(
    suite: Suite, gateway: Gateway, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    execution_id = (
        await gateway.post(f"{CP_BASE}/executions", json_body=submit_body(key="before"))
    ).json()["executionId"]
    submit = epb.SubmitExecutionRequest(
        tenant_id=suite.tenant,
        pipeline_id=PIPELINE_ID,
        input_shape=execution_pb2.INPUT_SHAPE_UNI,
        input_payload=order_envelope(),
        idempotency_key="during",
    )
    get = epb.GetExecutionRequest(tenant_id=suite.tenant, execution_id=execution_id)
    took: dict[str, float] = {}
    async with (
        coordinator_client(suite.coordinator.target) as coordinator,
        registry_client(suite.registry.target) as registry,
        postgres_down(postgres_server),
    ):
        for what, call in (
            ("gRPC SubmitExecution", lambda: coordinator.executions.SubmitExecution(submit)),
            ("gRPC GetExecution", lambda: coordinator.executions.GetExecution(get)),
            (
                "gRPC ListReleases (registry)",
                lambda: registry.releases.ListReleases(
                    rpb.ListReleasesRequest(tenant_id=suite.tenant, pipeline_id=PIPELINE_ID)
                ),
            ),
        ):
            error = await timed(what, refused(call()), took)
            assert (error.code(), error_of(error).reason) == (
                grpc.StatusCode.UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
            ), what

        rest: list[tuple[str, Callable[[], Awaitable[Reply]], bool]] = [
            (
                "REST POST /tpf submit",
                lambda: gateway.post(f"{CP_BASE}/executions", json_body=submit_body(key="x")),
                False,
            ),
            (
                "REST GET /tpf status",
                lambda: gateway.get(f"{CP_BASE}/executions/{execution_id}"),
                False,
            ),
            (
                "REST GET /tpf admin releases",
                lambda: gateway.get(f"{PIPE}/releases", headers=ADM),
                False,
            ),
            (
                "REST GET /v1 executions",
                lambda: gateway.get(f"/v1/tenants/{suite.tenant}/executions"),
                True,
            ),
        ]
        for what, request, problem_json in rest:
            reply = await timed(what, request(), took)
            assert_503(reply, "DATABASE_UNAVAILABLE", problem_json=problem_json)

        cli = ("status", execution_id, "--coordinator", suite.coordinator.target)
        cli_args = (*cli, "--token", ADMIN, "--tenant", suite.tenant)
        code, stderr = await timed(
            "CLI tpf status (in process)", asyncio.to_thread(cli_in_process, *cli_args), took
        )
        assert code == 1
        assert stderr.startswith("error: UNAVAILABLE DATABASE_UNAVAILABLE: ")
        assert stderr.count("\n") == 1
        # The real command, as a user runs it: one line, exit 1, no traceback.
        started = time.monotonic()
        result = await asyncio.to_thread(
            Tpf(target=suite.coordinator.target, tenant=suite.tenant, cwd=tmp_path), *cli
        )
        took["CLI tpf status (process, with interpreter start-up)"] = time.monotonic() - started
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: UNAVAILABLE DATABASE_UNAVAILABLE: ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    report("answers while Postgres is down", took)

    async def status_again() -> bool:
        reply = await gateway.get(f"{CP_BASE}/executions/{execution_id}")
        return reply.status == 200

    await wait_until(status_again, timeout_s=60, what="answers again after Postgres restarted")


@pytest.mark.parametrize("service", ["coordinator", "registry"])
async def test_while_a_service_is_down_the_gateway_names_it_within_5_s(
    suite: Suite, gateway: Gateway, service: str
) -> None:
    reason = f"{service.upper()}_UNAVAILABLE"
    down = suite.coordinator if service == "coordinator" else suite.registry
    await asyncio.to_thread(down.kill)
    took: dict[str, float] = {}
    requests: list[tuple[str, Callable[[], Awaitable[Reply]], bool]] = (
        [
            ("REST GET /tpf status", lambda: gateway.get(f"{CP_BASE}/executions/e-1"), False),
            (
                "REST POST /tpf submit",
                lambda: gateway.post(f"{CP_BASE}/executions", json_body=submit_body()),
                False,
            ),
            (
                "REST GET /v1 executions",
                lambda: gateway.get(f"/v1/tenants/{suite.tenant}/executions"),
                True,
            ),
        ]
        if service == "coordinator"
        else [
            (
                "REST GET /tpf admin releases",
                lambda: gateway.get(f"{PIPE}/releases", headers=ADM),
                False,
            ),
            # The coordinator needs the registry to admit a submission, and says so.
            (
                "REST POST /tpf submit",
                lambda: gateway.post(f"{CP_BASE}/executions", json_body=submit_body()),
                False,
            ),
            (
                "REST GET /v1 releases",
                lambda: gateway.get(
                    f"/v1/tenants/{suite.tenant}/pipelines/{PIPELINE_ID}/releases", headers=ADM
                ),
                True,
            ),
        ]
    )
    for what, request, problem_json in requests:
        reply = await timed(what, request(), took)
        assert_503(reply, reason, problem_json=problem_json)
        assert "127.0.0.1" not in reply.text and down.target.split(":")[-1] not in reply.text
    # The CLI names the address it was given (the user's own), in one line.
    command = ("status", "e-1") if service == "coordinator" else ("releases", "list")
    code, stderr = await timed(
        f"CLI tpf {' '.join(command)} (in process)",
        asyncio.to_thread(
            cli_in_process,
            *command,
            f"--{service}",
            down.target,
            "--token",
            ADMIN,
            "--tenant",
            suite.tenant,
            "--pipeline",
            PIPELINE_ID,
        ),
        took,
    )
    assert code == 1 and stderr.startswith(f"error: cannot reach the {service} at ")
    assert stderr.count("\n") == 1
    report(f"answers while the {service} is down", took)
    await asyncio.to_thread(down.restart)


async def test_the_sqs_bridge_keeps_a_message_through_a_database_outage(
    suite: Suite,
    moto_server: MotoServer,
    queues: Queues,
    sqs: Any,
    start_service: Any,
    postgres_server: PostgresServer,
) -> None:
    """It names the real cause (DATABASE_UNAVAILABLE, not a deadline), and an outage never
    dead-letters a message, even past the receive limit."""
    bridge = start_service(BRIDGE, bridge_env(suite, moto_server, queues, TPF_SQS_MAX_RECEIVES="2"))
    async with postgres_down(postgres_server):
        message_id = await send(
            sqs, queues.submit, sqs_submit_body(suite, key="k", reply_to=queues.replies)
        )

        def refusals() -> list[str]:
            return [
                line
                for line in bridge.log_text().splitlines()
                if message_id in line and "retried in" in line
            ]

        await wait_until(lambda: len(refusals()) >= 3, timeout_s=60, what="three receives")
        assert all("DATABASE_UNAVAILABLE" in line for line in refusals()), refusals()
        assert await queue_depth(sqs, queues.dead_letters) == 0
    [reply] = await take(sqs, queues.replies, 1, timeout_s=60)
    assert (reply["type"], reply["messageId"]) == ("submitted", message_id)
    assert await queue_depth(sqs, queues.dead_letters) == 0
