"""Three coordinators and two registries on one Postgres, payloads and artifacts on S3 (moto),
with one coordinator and one registry killed with SIGKILL mid-run.

Every client reaches the replicas through one gRPC target naming all of them
(`ipv4:127.0.0.1:<a>,127.0.0.1:<b>,...`, as a headless Kubernetes Service does through
`dns:///`), over which its channel spreads the calls: the coordinators call the registries so,
the two dispatchers (hosting the padded pipeline in-process) call the coordinators and the
registries so, and so does the test's submitter. The release is registered through one registry
and activated through the other, which re-reads the artifact copy from S3.

Before the load, one order far over the inline limit walks across the replicas: submitted
through the first coordinator, each step claimed through another and committed through a third,
its result read back through each. Then half of `TPF_REPLICA_KILL_EXECUTIONS` orders (one in
ten padded over the inline limit, so its input, step outputs and result go to S3) are
submitted; once half of their step commits are done, the first coordinator and the first
registry are killed and stay dead, and the other half is submitted through the same channel.
Afterwards every submitted execution exists and SUCCEEDED with the result its order gives,
`execution_history` shows every version once and every step committed once, every padded
payload was offloaded to S3, and both dispatchers carried on.

500 executions by default, about a minute on a 2-core machine (most of it starting seven
Python services); the issue's figure is `TPF_REPLICA_KILL_EXECUTIONS=1000` (add `--timeout=0`
on a busy machine, past pytest's 300 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest
from aiobotocore.session import get_session

from tests.harness.moto import MotoServer
from tests.harness.services import ServiceProcess, StartService
from tests.harness.wait import wait_until
from tests.support import padded_pipelines
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.fake_dispatcher import history_report, submit_all
from tests.support.registry_client import ADMIN, auth_env, registry_client
from tests.support.restaurant import envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.dispatcher.v1 import dispatcher_service_pb2 as dspb
from tpf.dispatcher.v1 import dispatcher_service_pb2_grpc
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wspb
from tpf_rpc.channel import client_channel
from tpf_worker import WorkerIdentity
from tpf_worker.release import build_release

pytestmark = pytest.mark.e2e

EXECUTIONS: Final = int(os.environ.get("TPF_REPLICA_KILL_EXECUTIONS", "500"))
STEPS: Final = padded_pipelines.STEPS
TENANT: Final = "replica-demo"
PIPELINE_ID: Final = padded_pipelines.PADDED.pipeline_id
# The coordinators' inline limit; padded orders are well over it, the others well under.
OFFLOAD_BYTES: Final = 1024
PADDED_EVERY: Final = 10
PAD_BYTES: Final = 3000
# The order that walks across the replicas is over the default inline limit (256 KiB) too.
WALKER_PAD_BYTES: Final = 300 * 1024
# The kill falls when this share of the first half's step commits is done: a running workload.
KILL_AT: Final = 0.5
TIMEOUT_S: Final = 120


def replica_target(processes: Sequence[ServiceProcess]) -> str:
    """One gRPC target naming every replica: the channel spreads calls over those that answer."""
    return "ipv4:" + ",".join(p.target for p in processes)


async def create_bucket(moto: MotoServer) -> str:
    bucket = f"replicas-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client("s3", **moto.client_kwargs) as s3:
        await s3.create_bucket(Bucket=bucket)
    return bucket


async def release_through_two_registries(
    registries: Sequence[ServiceProcess], work_dir: Path
) -> tuple[WorkerIdentity, str]:
    """Register the padded release through the first registry, activate it and register its
    `local` worker record through the second (activation re-verifies the S3 copy)."""
    built = build_release(padded_pipelines.PADDED, work_dir / "release")
    async with registry_client(registries[0].target) as first:
        registered = await first.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                release_descriptor_path=str(built.descriptor_path),
            )
        )
    identity = built.identity
    async with registry_client(registries[1].target) as second:
        await second.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version=built.release_version
            )
        )
        await second.workers.RegisterWorker(
            wspb.RegisterWorkerRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                worker_id="padded-local",
                contract_version=identity.contract_version,
                release_version=identity.release_version,
                protocol="local",
                artifact_id=identity.artifact_id,
                artifact_digest=identity.artifact_digest,
            )
        )
    return identity, registered.release.primary_artifact_uri


async def start_all(
    start_service: StartService, module: str, envs: Sequence[dict[str, str]]
) -> list[ServiceProcess]:
    """Start the processes one after the other (each start waits for SERVING): started
    together on a busy 2-core machine, they can each take longer than the readiness timeout."""
    return [await asyncio.to_thread(start_service, module, env) for env in envs]


def coordinator_env(
    common: dict[str, str], registries: Sequence[ServiceProcess], bucket: str, n: int, root: Path
) -> dict[str, str]:
    return {
        **common,
        # A data dir of its own: nothing the replicas share may live on a local disk.
        "TPF_DATA_DIR": str(root / f"coordinator-{n}"),
        "TPF_REGISTRY_TARGET": replica_target(registries),
        "TPF_REGISTRY_TOKEN": ADMIN,
        # Registry answers are reused for a second only, so the registry kill is felt at once.
        "TPF_REGISTRY_CACHE_S": "1",
        "TPF_SWEEP_INTERVAL_MS": "100",
        "TPF_PAYLOAD_STORE": f"s3://{bucket}/payloads",
        "TPF_PAYLOAD_OFFLOAD_BYTES": str(OFFLOAD_BYTES),
    }


def dispatcher_env(
    coordinators: Sequence[ServiceProcess], registries: Sequence[ServiceProcess], n: int
) -> dict[str, str]:
    return {
        **auth_env(),
        "TPF_LOG_LEVEL": "INFO",
        "TPF_COORDINATOR_TARGET": replica_target(coordinators),
        "TPF_COORDINATOR_TOKEN": ADMIN,
        "TPF_REGISTRY_TARGET": replica_target(registries),
        "TPF_REGISTRY_TOKEN": ADMIN,
        "TPF_DISPATCHER_ID": f"replica-d{n}",
        "TPF_PIPELINE_IDS": PIPELINE_ID,
        "TPF_LOCAL_PIPELINES": padded_pipelines.SPEC,
        "TPF_CLAIM_WAIT_MS": "500",
        # Room for a busy 2-core machine, where every call runs several times slower: a lease
        # runs out only when its dispatcher really stopped renewing it.
        "TPF_LEASE_MS": "15000",
        "TPF_RPC_TIMEOUT_S": "30",
        "TPF_WORKER_CACHE_S": "1",
        # Declarations lapse after 3 s: a dispatcher that could not reach the surviving
        # registry would soon leave nothing to admit submissions (NO_WORKER_AVAILABLE).
        "TPF_LOCAL_WORKER_HEARTBEAT_S": "1",
    }


async def serve_walker(registry: ServiceProcess, identity: WorkerIdentity, *, on: bool) -> None:
    """Declare (or withdraw) the test itself as host of the padded pipeline, so the walker is
    admitted before any dispatcher runs, and no dispatcher takes its work."""
    async with registry_client(registry.target) as client:
        await client.workers.ServeLocalWorkers(
            wspb.ServeLocalWorkersRequest(
                host_id="walker",
                pipelines=[
                    wspb.HostedPipeline(
                        pipeline_id=identity.pipeline_id,
                        contract_version=identity.contract_version,
                        artifact_digest=identity.artifact_digest,
                    )
                ],
                ttl_ms=600_000,
                withdraw=not on,
            )
        )


# -- one order across the replicas ------------------------------------------------------------


@asynccontextmanager
async def clients(processes: Sequence[ServiceProcess]) -> AsyncIterator[list[CoordinatorClient]]:
    async with (
        coordinator_client(processes[0].target) as a,
        coordinator_client(processes[1].target) as b,
        coordinator_client(processes[2].target) as c,
    ):
        yield [a, b, c]


def order_envelope(value: dict[str, Any]) -> Any:
    return envelope(padded_pipelines.ORDER_TYPE, value)


async def walk_across_replicas(coordinators: Sequence[ServiceProcess]) -> str:
    """Submit a large order through coordinator 0; claim step n through coordinator n+1 and
    commit it through n+2 (mod 3); every hop reads what another replica wrote to S3."""
    order = padded_pipelines.order(-1, WALKER_PAD_BYTES)
    async with clients(coordinators) as replicas:
        submitted = await replicas[0].executions.SubmitExecution(
            epb.SubmitExecutionRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                input_shape=execution_pb2.INPUT_SHAPE_UNI,
                input_payload=order_envelope(order),
                idempotency_key="walker",
            )
        )
        expected = order
        marks = ["first", "second", "third"]
        for step in range(STEPS):
            item = await claim_walker(replicas[(step + 1) % 3], submitted.execution_id)
            assert item.step_index == step
            assert step_value(item) == expected
            expected = {**expected, "marks": marks[: step + 1]}
            output = envelope(padded_pipelines.MARKED_TYPE, expected)
            outcome = wpb.WorkOutcome(
                execution_id=item.execution_id,
                tenant_id=TENANT,
                fencing_token=item.fencing_token,
                worker_id="walker",
            )
            if step + 1 < STEPS:
                outcome.step_completed.next_step_index = step + 1
                outcome.step_completed.output_payloads.append(output)
            else:
                outcome.pipeline_completed.output_payloads.append(output)
            answer = await replicas[(step + 2) % 3].work.CompleteWork(
                wpb.CompleteWorkRequest(dispatcher_id="walker", outcomes=[outcome])
            )
            assert answer.results[0].accepted, answer
        assert expected == padded_pipelines.result_of(order)
        for replica in replicas:
            result = await replica.executions.GetExecutionResult(
                epb.GetExecutionResultRequest(tenant_id=TENANT, execution_id=submitted.execution_id)
            )
            assert result.status.status == st.EXECUTION_STATUS_SUCCEEDED
            assert json.loads(result.result_payload.payload) == expected
    return submitted.execution_id


def step_value(item: wpb.WorkItem) -> Any:
    """The value a step gets: step 0's input arrives wrapped in the input snapshot."""
    value = json.loads(item.input_payload.payload)
    if item.step_index == 0:
        return json.loads(value["payload"]["payload"])
    return value


async def claim_walker(replica: CoordinatorClient, execution_id: str) -> wpb.WorkItem:
    claim = wpb.ClaimWorkRequest(dispatcher_id="walker", max_items=1)
    claim.wait.FromMilliseconds(2000)
    [item] = (await replica.work.ClaimWork(claim)).work_items
    assert item.execution_id == execution_id
    return item


# -- the load and the kill --------------------------------------------------------------------

_COMMITS = "SELECT count(*) FROM execution_history WHERE event IN ('STEP_COMPLETED', 'SUCCEEDED')"
_SUCCEEDED = "SELECT count(*) FROM executions WHERE status = 'SUCCEEDED'"
_ROWS = "SELECT execution_id, idempotency_key, status, result_ref FROM executions"


async def scalar(database: str, query: str) -> int:
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        row = await (await conn.execute(query)).fetchone()
    return int(row[0]) if row else 0


def submission(n: int, order: dict[str, Any]) -> epb.SubmitExecutionRequest:
    return epb.SubmitExecutionRequest(
        tenant_id=TENANT,
        pipeline_id=PIPELINE_ID,
        input_shape=execution_pb2.INPUT_SHAPE_UNI,
        input_payload=order_envelope(order),
        idempotency_key=f"replica-order-{n}",
    )


async def results_through(
    replicas: Sequence[CoordinatorClient], execution_ids: Sequence[str], concurrency: int = 16
) -> dict[str, Any]:
    """Every execution's result, read through the replicas in turn."""
    results: dict[str, Any] = {}
    pending = iter(enumerate(execution_ids))

    async def reader() -> None:
        for n, execution_id in pending:
            answer = await replicas[n % len(replicas)].executions.GetExecutionResult(
                epb.GetExecutionResultRequest(tenant_id=TENANT, execution_id=execution_id)
            )
            assert answer.status.status == st.EXECUTION_STATUS_SUCCEEDED, execution_id
            results[execution_id] = json.loads(answer.result_payload.payload)

    await asyncio.gather(*(reader() for _ in range(concurrency)))
    return results


async def completed_by(dispatchers: Sequence[ServiceProcess]) -> list[int]:
    """Each dispatcher's count of outcomes the coordinators accepted."""
    counts = []
    for dispatcher in dispatchers:
        async with client_channel(dispatcher.target, token=ADMIN) as channel:
            stub = dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)
            answer = await stub.GetDispatcherStatus(dspb.GetDispatcherStatusRequest())
        counts.append(answer.status.counters.completed)
    return counts


async def test_replicas_lose_nothing_when_a_coordinator_and_a_registry_are_killed(
    database: str, moto_server: MotoServer, start_service: StartService, tmp_path: Path
) -> None:
    started = time.monotonic()
    bucket = await create_bucket(moto_server)
    common = {
        "TPF_DATABASE_URL": database,
        "TPF_LOG_LEVEL": "INFO",
        "TPF_S3_ENDPOINT_URL": moto_server.endpoint_url,
        "TPF_S3_REGION": moto_server.region,
        **moto_server.client_env,
        **auth_env(),
    }
    registries = await start_all(
        start_service,
        "tpf_registry",
        [
            {
                **common,
                "TPF_DATA_DIR": str(tmp_path / f"registry-{n}"),
                "TPF_ARTIFACT_STORE": f"s3://{bucket}/artifacts",
                # The release's descriptor and artifact are built under the test's tmp dir.
                "TPF_REGISTRY_ARTIFACT_ROOTS": str(tmp_path),
            }
            for n in range(2)
        ],
    )
    phases = {"registries": time.monotonic() - started}
    identity, artifact_uri = await release_through_two_registries(registries, tmp_path)
    assert artifact_uri.startswith(f"s3://{bucket}/artifacts/")
    coordinators = await start_all(
        start_service,
        "tpf_coordinator",
        [coordinator_env(common, registries, bucket, n, tmp_path) for n in range(3)],
    )
    phases["coordinators"] = time.monotonic() - started
    await serve_walker(registries[1], identity, on=True)
    walker = await walk_across_replicas(coordinators)
    await serve_walker(registries[1], identity, on=False)
    phases["walker"] = time.monotonic() - started
    dispatchers = await start_all(
        start_service,
        "tpf_dispatcher",
        [dispatcher_env(coordinators, registries, n) for n in range(2)],
    )
    ready = time.monotonic()

    orders = [
        padded_pipelines.order(n, PAD_BYTES if n % PADDED_EVERY == 0 else 0)
        for n in range(EXECUTIONS)
    ]
    requests = [submission(n, order) for n, order in enumerate(orders)]
    half = EXECUTIONS // 2
    kill_at = int(half * STEPS * KILL_AT)
    victims = [coordinators[0], registries[0]]
    survivors = [coordinators[1], coordinators[2]]
    async with coordinator_client(replica_target(coordinators)) as spread:
        submitting = asyncio.create_task(submit_all(spread.executions, requests[:half]))

        async def commits_reached(count: int) -> bool:
            if submitting.done():
                submitting.result()  # a refused submission fails the test here
            return await scalar(database, _COMMITS) >= count

        await wait_until(
            lambda: commits_reached(kill_at), timeout_s=TIMEOUT_S, what=f"{kill_at} commits"
        )
        commits_at_kill = await scalar(database, _COMMITS)
        completed_at_kill = await completed_by(dispatchers)
        submitting_at_kill = not submitting.done()
        await asyncio.gather(*(asyncio.to_thread(victim.kill) for victim in victims))
        killed = time.monotonic()
        # The other half through the same channel, which was using the killed coordinator.
        submitted = [*await submitting, *await submit_all(spread.executions, requests[half:])]

        async def all_succeeded() -> bool:
            for process in [*survivors, registries[1], *dispatchers]:
                assert process.is_running, f"{process.module} on {process.target} died"
            return await scalar(database, _SUCCEEDED) == EXECUTIONS + 1

        await wait_until(all_succeeded, timeout_s=TIMEOUT_S, what="every execution SUCCEEDED")
    finished = time.monotonic()
    completed_at_end = await completed_by(dispatchers)

    ids = [s.execution_id for s in submitted]
    assert len(set(ids)) == EXECUTIONS
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        rows = await (await conn.execute(_ROWS)).fetchall()
    stored = {execution_id: (key, status, ref) for execution_id, key, status, ref in rows}
    # Nothing lost, nothing made twice: one row per submission (and the walker's).
    assert sorted(stored) == sorted([*ids, walker])
    assert {stored[i][0] for i in ids} == {f"replica-order-{n}" for n in range(EXECUTIONS)}
    report = await history_report(database, steps=STEPS)
    assert report.statuses == {"SUCCEEDED": EXECUTIONS + 1}, report
    assert report.exactly_once, report
    assert report.events["STEP_COMPLETED"] == (EXECUTIONS + 1) * (STEPS - 1)
    assert report.events["SUCCEEDED"] == EXECUTIONS + 1
    # Every padded result is on S3 and every other one inline, and each reads back whole
    # through the surviving replicas.
    padded = {ids[n] for n in range(EXECUTIONS) if orders[n]["pad"]} | {walker}
    offloaded = {i for i, (_, _, ref) in stored.items() if ref}
    assert offloaded == padded
    assert all(stored[i][2].startswith(f"s3://{bucket}/payloads/") for i in offloaded)
    async with clients(coordinators) as replicas:
        results = await results_through(replicas[1:], ids)
    for n, execution_id in enumerate(ids):
        assert results[execution_id] == padded_pipelines.result_of(orders[n]), execution_id
    assert not any(victim.is_running for victim in victims)
    # Both dispatchers carried on through the surviving replicas.
    assert all(end > at for at, end in zip(completed_at_kill, completed_at_end, strict=True))

    print(
        "replica kill:",
        {
            "executions": EXECUTIONS,
            "padded": len(padded),
            "commits_at_kill": commits_at_kill,
            "submitting_at_kill": submitting_at_kill,
            "startup_s": round(ready - started, 1),
            "phases_s": {name: round(at, 1) for name, at in phases.items()},
            "load_s": round(finished - ready, 1),
            "after_kill_s": round(finished - killed, 1),
            "completed_by_dispatcher": {"at_kill": completed_at_kill, "end": completed_at_end},
            "events": dict(report.events),
        },
    )
