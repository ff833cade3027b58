"""The production overlay, run as processes: its Deployments with their rendered environment and
replica counts, a rolling restart of the coordinators under load, and nothing lost.

`kubectl kustomize deploy/k8s/overlays/production` is run as a cluster would run it, by
tests.support.local_cluster: each Deployment becomes `replicas` processes of its console script
(after its `migrate` init containers) with its container's environment; secrets, ports,
volumes and Service addresses are mapped to the test's. The buckets the overlay names are made
in moto, and TPF_S3_ENDPOINT_URL points at it (the overlay uses AWS's). A remote gRPC worker
serves the work (the overlay's dispatchers host nothing).

The coordinators are restarted one by one as a rolling update does it (SIGTERM, the migrate init
container, start, wait until SERVING), a wave of orders submitted through the gateways along
each step while the dispatchers claim and commit. Every submission is retried with its
idempotency key until a gateway accepts it (none needed a retry in our runs: the gateway's
channel retries on another replica); afterwards every execution has SUCCEEDED and the history
shows each version and each step committed once. Some orders are padded over the inline limit,
so their payloads go through S3. Set TPF_PRODUCTION_EXECUTIONS for a bigger run (150 by
default).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import aiohttp
import psycopg
import pytest
from aiobotocore.session import get_session
from google.protobuf import json_format

from tests.harness.moto import MotoServer
from tests.harness.wait import wait_until
from tests.support.example_suite import TRANSITION, WORKER_SECRET, WorkerLauncher
from tests.support.fake_dispatcher import history_report
from tests.support.kustomize import DEPLOY, Document, needs_kubectl, render
from tests.support.local_cluster import HOST, LocalCluster
from tests.support.pipelines import CHAIN, ORDER_TYPE
from tests.support.registry_client import registry_client
from tpf.registry.v1 import release_pb2
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf_cli.releases import descriptor_for_upload
from tpf_worker.release import build_release

log = logging.getLogger(__name__)

# Ten processes and five migrate runs start before the load: minutes on a busy 2-core machine.
pytestmark = [pytest.mark.e2e, needs_kubectl, pytest.mark.timeout(900)]

EXECUTIONS: Final = int(os.environ.get("TPF_PRODUCTION_EXECUTIONS", "150"))
STEPS: Final = 3  # CHAIN
TENANT: Final = "production-demo"
SPEC: Final = "tests.support.pipelines:CHAIN"
PADDED_EVERY: Final = 25
PAD_BYTES: Final = 300 * 1024  # over the default inline limit (256 KiB)
SUCCEEDED_COUNT: Final = "SELECT count(*) FROM executions WHERE status = 'SUCCEEDED'"
# Submissions in flight at once.
CONCURRENCY: Final = 8
TIMEOUT_S: Final = 180
# In start order: a Deployment's clients start after it.
ORDER: Final = ["tpf-registry", "tpf-coordinator", "tpf-dispatcher", "tpf-gateway"]
# One token per caller, each a grant of the services' tokens.json (role, every tenant).
TOKENS: Final = {
    "coordinator": ("prod-coordinator-token", "admin"),
    "dispatcher": ("prod-dispatcher-token", "worker"),
    "gateway": ("prod-gateway-token", "admin"),
    "control-plane": ("prod-control-plane-token", "control-plane"),
    "admin": ("prod-admin-token", "admin"),
    "worker": ("prod-worker-token", "worker"),
}


def tokens_file(path: Path) -> Path:
    grants = [
        {"token": token, "subject": f"prod-{name}", "roles": [role], "tenants": ["*"]}
        for name, (token, role) in TOKENS.items()
    ]
    path.write_text(json.dumps(grants))
    return path


def order(n: int) -> dict[str, Any]:
    value: dict[str, Any] = {"orderId": f"order-{n}", "items": "x" * (n % 7 + 1)}
    if n % PADDED_EVERY == 0:
        value["padding"] = "p" * PAD_BYTES
    return {
        "pipelineId": CHAIN.pipeline_id,
        "inputShape": "UNI",
        "inputPayload": {
            "payloadTypeId": ORDER_TYPE,
            "payloadEncoding": TRANSITION,
            "payload": json.dumps(value, separators=(",", ":")),
        },
        "idempotencyKey": f"production-order-{n}",
    }


async def s3_object_count(moto: MotoServer, bucket: str) -> int:
    async with get_session().create_client("s3", **moto.client_kwargs) as s3:
        listed = await s3.list_objects_v2(Bucket=bucket)
    return int(listed.get("KeyCount", 0))


@pytest.fixture
def production() -> list[Document]:
    return render(DEPLOY / "overlays" / "production")


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[WorkerLauncher]]:
    launchers: list[WorkerLauncher] = []
    try:
        yield launchers
    finally:
        for launcher in launchers:
            launcher.stop_all()


async def test_a_rolling_restart_of_the_coordinators_under_load_loses_nothing(
    production: list[Document],
    database: str,
    moto_server: MotoServer,
    workers: list[WorkerLauncher],
    tmp_path: Path,
) -> None:
    secrets = {
        "tpf-database/url": database,
        "tpf-s3/access-key-id": moto_server.access_key_id,
        "tpf-s3/secret-access-key": moto_server.secret_access_key,
        "tpf-tokens/resume-token-secret": "production-test-resume-key",
        "tpf-tokens/page-token-key": "production-test-page-key",
        "tpf-worker-secret/shared-secret": WORKER_SECRET,
        **{f"tpf-tokens/{name}": token for name, (token, _) in TOKENS.items()},
    }
    # The auth secret's volume holds the grants.
    auth = tmp_path / "auth"
    auth.mkdir()
    tokens_file(auth / "tokens.json")
    cluster = LocalCluster(production, secrets, tmp_path / "pods", {"auth": auth})
    try:
        await run_the_load(cluster, database, moto_server, workers, tmp_path)
    finally:
        cluster.stop_all()


async def run_the_load(
    cluster: LocalCluster,
    database: str,
    moto_server: MotoServer,
    workers: list[WorkerLauncher],
    tmp_path: Path,
) -> None:
    assert {name: t.replicas for name, t in cluster.templates.items()} == {
        "tpf-coordinator": 3,
        "tpf-registry": 2,
        "tpf-dispatcher": 2,
        "tpf-gateway": 2,
    }
    # The overlay's buckets exist in moto.
    stores = {
        value
        for t in cluster.templates.values()
        for key, value in t.env.items()
        if key in ("TPF_PAYLOAD_STORE", "TPF_ARTIFACT_STORE")
    }
    buckets = {store.removeprefix("s3://").split("/")[0] for store in stores}
    assert len(stores) == 2 and all(store.startswith("s3://") for store in stores), stores
    async with get_session().create_client("s3", **moto_server.client_kwargs) as s3:
        for bucket in buckets:
            await s3.create_bucket(Bucket=bucket)
    local = {"TPF_S3_ENDPOINT_URL": moto_server.endpoint_url}

    for name in ORDER:
        if name == "tpf-dispatcher":
            await release_chain(cluster.target("tpf-registry"), tmp_path)
            launcher = WorkerLauncher(tmp_path / "worker", cluster.target("tpf-registry"), TENANT)
            workers.append(launcher)
            await asyncio.to_thread(
                launcher.start,
                "grpc",
                spec=SPEC,
                extra_env={"TPF_WORKER_REGISTRY_TOKEN": TOKENS["worker"][0]},
            )
        await cluster.start(name, local)
        log.info("%s: %d replicas serving", name, cluster.templates[name].replicas)

    gateways = [f"http://{HOST}:{port}" for port in cluster.ports["tpf-gateway"]]
    retries = 0
    accepted: dict[int, str] = {}

    async def submit(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal retries
        path = f"/tpf/control-plane/tenants/{TENANT}/executions"
        headers = {"Authorization": f"Bearer {TOKENS['control-plane'][0]}"}

        async def accepted_once() -> str:
            nonlocal retries
            base = gateways[(n + retries) % len(gateways)]
            async with session.post(base + path, json=order(n), headers=headers) as answer:
                if answer.status in (200, 201, 202):
                    body = await answer.json()
                    return str(body["executionId"])
                assert answer.status >= 500, (answer.status, await answer.text())
                retries += 1
                return ""

        accepted[n] = await wait_until(
            accepted_once, timeout_s=TIMEOUT_S, what=f"order {n} accepted"
        )

    async def submit_wave(session: aiohttp.ClientSession, orders: range) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(n: int) -> None:
            async with gate:
                await submit(session, n)

        await asyncio.gather(*map(one, orders))

    # One wave of orders before the restart and one along each coordinator's restart, so
    # submissions flow through every step of it; the dispatchers claim and commit throughout.
    coordinators = cluster.templates["tpf-coordinator"].replicas
    waves = [range(i, EXECUTIONS, coordinators + 1) for i in range(coordinators + 1)]
    async with aiohttp.ClientSession() as session:
        await submit_wave(session, waves[0])
        during: list[asyncio.Task[None]] = []
        for index in range(coordinators):
            during.append(asyncio.create_task(submit_wave(session, waves[index + 1])))
            log.info("restarting coordinator %d, %d orders accepted", index, len(accepted))
            await cluster.restart("tpf-coordinator", index)
        await asyncio.gather(*during)

    async def all_succeeded() -> bool:
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM executions WHERE status = 'SUCCEEDED'"
            )
            row = await cursor.fetchone()
        return bool(row and row[0] == EXECUTIONS)

    await wait_until(all_succeeded, timeout_s=TIMEOUT_S, what="every execution SUCCEEDED")

    report = await history_report(database, steps=STEPS)
    print(
        f"production overlay: {EXECUTIONS} executions, {retries} submissions retried, "
        f"events {dict(report.events)}"
    )
    assert len(set(accepted.values())) == EXECUTIONS
    assert report.statuses == {"SUCCEEDED": EXECUTIONS}
    assert not report.duplicate_versions, report.duplicate_versions
    assert not report.version_gaps, report.version_gaps
    assert not report.step_commit_anomalies, report.step_commit_anomalies
    assert not report.incomplete, report.incomplete
    # Padded payloads and the release's artifact went to the overlay's buckets.
    for bucket in buckets:
        assert await s3_object_count(moto_server, bucket) > 0, bucket


async def release_chain(registry_target: str, work_dir: Path) -> None:
    """Register and activate the CHAIN release, uploaded with the request as `tpf releases
    register --upload` sends it from an operator's machine (its copy lands in the S3 store)."""
    built = build_release(CHAIN, work_dir / "release")
    policy = json_format.ParseDict(built.policy, release_pb2.ReleasePolicy())
    descriptor_json, uploads = descriptor_for_upload(built.descriptor_path)
    async with registry_client(registry_target, token=TOKENS["admin"][0]) as client:
        await client.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=built.pipeline_id,
                release_descriptor_json=descriptor_json,
                uploaded_artifacts=[
                    rpb.UploadedArtifact(artifact_id=artifact_id, content=content)
                    for artifact_id, content in uploads.items()
                ],
                policy=policy,
            )
        )
        await client.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=built.pipeline_id,
                release_version=built.release_version,
            )
        )
