"""The suite under mTLS, as real processes, with certificates made in the test.

Registry, coordinator, dispatcher and gateway each serve TLS, require client certificates from
the test CA, and call each other (and a gRPC worker that also requires one) over mTLS; an
execution submitted over HTTPS runs to the end, and the gateway refuses plain HTTP and clients
without a certificate of the CA. A registry process refuses plain text, a client without a
certificate and a certificate from another CA, and serves a rotated certificate to new
connections without a restart; the `tpf` CLI reaches it with its --tls-* flags. An unusable key
stops a service at startup with one line, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.test_gateway_routes import CP_BASE
from tests.harness.ports import free_port
from tests.harness.processes import ChildProcess
from tests.harness.services import ServiceProcess, StartService, minimal_environment
from tests.harness.wait import wait_until, wait_until_sync
from tests.support import pipelines
from tests.support.certificates import CertificateAuthority, Issued, served_serial
from tests.support.example_suite import WorkerProcess
from tests.support.registry_client import ADMIN, auth_env, registry_client
from tests.support.restaurant import envelope
from tpf.registry.v1 import release_pb2
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wspb
from tpf_cli.__main__ import main as tpf_main
from tpf_config import ClientTls, ServerTls
from tpf_rpc.tls import ClientCertificates, ServerCertificates
from tpf_worker import WorkerRuntime
from tpf_worker.release import build_release, identity_of
from tpf_worker.transports.grpc import GrpcWorkerServer
from tpf_worker.transports.rest import RestWorkerClient

pytestmark = pytest.mark.e2e

TENANT = "tls-demo"
WORKER_SECRET = "tls-e2e-worker-secret"
GATEWAY_CP_TOKEN = "gateway-cp-token"  # a control-plane grant of tests.support.registry_client


@dataclass
class Pki:
    """The suite's CA and the certificate of each party, plus a CA nobody trusts."""

    directory: Path
    ca: CertificateAuthority
    operator: Issued
    foreign: Issued

    @classmethod
    def create(cls, directory: Path) -> Pki:
        ca = CertificateAuthority(directory / "ca")
        foreign_ca = CertificateAuthority(directory / "foreign", name="foreign-ca")
        return cls(directory, ca, ca.issue("operator"), foreign_ca.issue("intruder"))

    def service_env(self, name: str) -> dict[str, str]:
        """A service's TPF_TLS_*: its certificate on its listener (client certificates from
        our CA required) and on its channels, which trust our CA."""
        issued = self.ca.issue(name)
        return {
            "TPF_TLS_CERT_FILE": str(issued.cert_file),
            "TPF_TLS_KEY_FILE": str(issued.key_file),
            "TPF_TLS_CLIENT_CA_FILE": str(self.ca.ca_file),
            "TPF_TLS_CA_FILE": str(self.ca.ca_file),
            "TPF_TLS_CLIENT_CERT_FILE": str(issued.cert_file),
            "TPF_TLS_CLIENT_KEY_FILE": str(issued.key_file),
        }

    def client(self, issued: Issued | None = None) -> ClientCertificates:
        """Channels that trust our CA and present `issued` (the operator's by default)."""
        chosen = issued or self.operator
        return ClientCertificates(ClientTls(self.ca.ca_file, chosen.cert_file, chosen.key_file))

    def credentials(self) -> grpc.ChannelCredentials:
        return self.client().grpc_credentials()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


@pytest.fixture
def tls_registry(
    pki: Pki, registry_env: dict[str, str], start_service: StartService, tmp_path: Path
) -> ServiceProcess:
    return start_service(
        "tpf_registry",
        # The releases this module builds live under tmp_path.
        {
            **registry_env,
            "TPF_REGISTRY_ARTIFACT_ROOTS": str(tmp_path),
            **pki.service_env("registry"),
        },
        credentials=pki.credentials(),
    )


async def test_execution_runs_through_gateway_dispatcher_and_worker_under_mtls(
    pki: Pki,
    tls_registry: ServiceProcess,
    database: str,
    start_service: StartService,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> None:
    coordinator = start_service(
        "tpf_coordinator",
        {
            "TPF_DATABASE_URL": database,
            "TPF_DATA_DIR": str(tmp_path / "coordinator-data"),
            "TPF_REGISTRY_TARGET": tls_registry.target,
            "TPF_REGISTRY_TOKEN": ADMIN,
            "TPF_REGISTRY_CACHE_S": "0",
            **auth_env(),
            **pki.service_env("coordinator"),
        },
        credentials=pki.credentials(),
    )
    async with tls_worker(pki) as worker_endpoint:
        await release_chain(pki, tls_registry, tmp_path, grpc_worker=worker_endpoint)
        start_service(
            "tpf_dispatcher",
            {
                "TPF_COORDINATOR_TARGET": coordinator.target,
                "TPF_COORDINATOR_TOKEN": ADMIN,
                "TPF_REGISTRY_TARGET": tls_registry.target,
                "TPF_REGISTRY_TOKEN": ADMIN,
                "TPF_DISPATCHER_ID": "tls-dispatcher",
                "TPF_WORKER_SHARED_SECRET": WORKER_SECRET,
                "TPF_CLAIM_WAIT_MS": "500",
                **auth_env(),
                **pki.service_env("dispatcher"),
            },
            credentials=pki.credentials(),
        )
        async with https_gateway(
            pki, coordinator, tls_registry, tmp_path, pytestconfig.rootpath
        ) as (base_url, session):
            order = envelope(pipelines.ORDER_TYPE, {"orderId": "o-tls", "items": "2x soup"})
            submitted = await session.post(
                f"{base_url}{CP_BASE.replace('restaurant-demo', TENANT)}/executions",
                json={
                    "pipelineId": pipelines.CHAIN.pipeline_id,
                    "inputShape": "UNI",
                    "inputPayload": {
                        "payloadTypeId": order.payload_type_id,
                        "payloadEncoding": order.payload_encoding,
                        "payload": order.payload,
                    },
                    "idempotencyKey": str(uuid.uuid4()),
                },
                headers={"Authorization": f"Bearer {GATEWAY_CP_TOKEN}"},
            )
            assert submitted.status == 200, await submitted.text()
            execution_id = (await submitted.json())["executionId"]

            async def succeeded() -> bool:
                reply = await session.get(
                    f"{base_url}{CP_BASE.replace('restaurant-demo', TENANT)}"
                    f"/executions/{execution_id}",
                    headers={"Authorization": f"Bearer {GATEWAY_CP_TOKEN}"},
                )
                status: str = (await reply.json())["status"]
                assert status not in ("FAILED", "CANCELLED"), status
                return status == "SUCCEEDED"

            await wait_until(succeeded, timeout_s=30, what=f"{execution_id} SUCCEEDED")


async def test_registry_refuses_strangers_and_serves_a_rotated_certificate_without_a_restart(
    pki: Pki, registry_env: dict[str, str], start_service: StartService
) -> None:
    env = pki.service_env("registry")
    cert_file, key_file = Path(env["TPF_TLS_CERT_FILE"]), Path(env["TPF_TLS_KEY_FILE"])
    pki.ca.issue("registry-v1", serial=7001).install(cert_file, key_file)
    registry = start_service("tpf_registry", {**registry_env, **env}, credentials=pki.credentials())
    refusals = {
        "plain text": None,
        "no client certificate": grpc.ssl_channel_credentials(pki.ca.ca_file.read_bytes()),
        "another CA's certificate": pki.client(pki.foreign).grpc_credentials(),
    }
    for what, credentials in refusals.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health(registry.target, credentials)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, what

    assert await asyncio.to_thread(serial_of, registry, pki) == 7001
    pki.ca.issue("registry-v2", serial=7002).install(cert_file, key_file)
    assert await asyncio.to_thread(serial_of, registry, pki) == 7002
    assert await health(registry.target, pki.credentials()) == "SERVING"
    assert registry.is_running


def test_cli_reaches_an_mtls_registry_with_its_tls_flags(
    pki: Pki, tls_registry: ServiceProcess, tmp_path: Path
) -> None:
    def tpf(*tls_flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tpf_cli", "releases", "list", "--json", *tls_flags],
            env={
                **minimal_environment(),
                "TPF_REGISTRY_TARGET": tls_registry.target,
                "TPF_TOKEN": ADMIN,
                "TPF_TENANT": TENANT,
                "TPF_PIPELINE": pipelines.CHAIN.pipeline_id,
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = tpf(
        "--tls-ca",
        str(pki.ca.ca_file),
        "--tls-cert",
        str(pki.operator.cert_file),
        "--tls-key",
        str(pki.operator.key_file),
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {}  # no releases yet: an empty ListReleasesResponse
    without_certificate = tpf("--tls-ca", str(pki.ca.ca_file), "--timeout", "5")
    assert without_certificate.returncode == 1
    assert without_certificate.stderr.startswith(
        f"error: cannot reach the registry at {tls_registry.target}"
    )


def test_cli_names_the_tls_flag_whose_file_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(SystemExit) as exited:
        tpf_main(
            ["releases", "list", "--tenant", TENANT, "--pipeline", "p", "--tls-ca", str(missing)]
        )
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        f"error: --tls-ca ({missing}) cannot be read: No such file or directory\n"
    )


def test_cli_refuses_a_client_certificate_without_its_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        tpf_main(["releases", "list", "--tenant", TENANT, "--pipeline", "p", "--tls-cert", "c.pem"])
    assert exited.value.code == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err


async def test_worker_process_serves_https_and_registers_over_mtls(
    pki: Pki, tls_registry: ServiceProcess, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    await release_chain(pki, tls_registry, tmp_path)
    worker = WorkerProcess(
        ChildProcess(
            [
                sys.executable,
                "-m",
                "tpf_worker",
                "serve",
                "--pipeline",
                "tests.support.pipelines:CHAIN",
                "--transport",
                "rest",
                "--registry-target",
                tls_registry.target,
                "--tenant",
                TENANT,
                "--worker-id",
                "chain-rest-tls",
            ],
            log_path=tmp_path / "worker.log",
            env={
                **minimal_environment(),
                "TPF_WORKER_SHARED_SECRET": WORKER_SECRET,
                "TPF_WORKER_REGISTRY_TOKEN": ADMIN,
                **pki.service_env("rest-worker"),
            },
            cwd=pytestconfig.rootpath,
        ),
        "chain-rest-tls",
        "rest",
    )
    await asyncio.to_thread(worker.start)
    try:
        assert worker.endpoint.startswith("https://127.0.0.1:")
        # The worker prints its ready line, then registers.
        async with registry_client(tls_registry.target, tls=pki.client()) as registry:

            async def registered() -> list[tuple[str, str]]:
                listed = await registry.workers.ListWorkers(
                    wspb.ListWorkersRequest(
                        tenant_id=TENANT, pipeline_id=pipelines.CHAIN.pipeline_id
                    )
                )
                return [(w.worker_id, w.endpoint) for w in listed.workers]

            workers = await wait_until(registered, timeout_s=30, what="the worker registered")
        assert workers == [("chain-rest-tls", worker.endpoint)]
        client = RestWorkerClient(worker.endpoint, shared_secret=WORKER_SECRET, tls=pki.client())
        try:
            capability = await client.capabilities(timeout_s=10)
        finally:
            await client.close()
        assert capability.pipeline_id == pipelines.CHAIN.pipeline_id
    finally:
        worker.stop()


@pytest.mark.parametrize("module", ["tpf_registry", "tpf_gateway"])
def test_a_key_that_does_not_match_stops_the_service_with_one_line(
    pki: Pki, registry_env: dict[str, str], tmp_path: Path, module: str
) -> None:
    env = pki.service_env(module)
    env["TPF_TLS_KEY_FILE"] = str(pki.operator.key_file)
    process = ChildProcess(
        [sys.executable, "-m", module],
        log_path=tmp_path / f"{module}.log",
        env={
            **minimal_environment(),
            **registry_env,
            "TPF_GRPC_PORT": str(free_port()),
            "TPF_GATEWAY_PORT": str(free_port()),
            "TPF_AUTH_DISABLED": "true",
            "TPF_LOG_FORMAT": "text",
            **env,
        },
    )
    process.start()
    wait_until_sync(lambda: not process.is_running, timeout_s=60, what=f"{module} exits")
    assert process.terminate() == 2
    log = process.log_text()
    assert "Traceback" not in log
    assert (
        f"TPF_TLS_KEY_FILE ({pki.operator.key_file}) is not the key of the certificate in "
        f"TPF_TLS_CERT_FILE ({env['TPF_TLS_CERT_FILE']})"
    ) in log


# Helpers


async def health(target: str, credentials: grpc.ChannelCredentials | None) -> str:
    """The overall health of `target` through a fresh channel without retries."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    channel = (
        grpc.aio.insecure_channel(target, options=options)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials, options=options)
    )
    async with channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def serial_of(service: ServiceProcess, pki: Pki) -> int:
    return served_serial(service.port, pki.ca.ca_file, pki.operator)


@asynccontextmanager
async def tls_worker(pki: Pki) -> AsyncIterator[str]:
    """CHAIN served over gRPC by this process, TLS only, client certificates required."""
    issued = pki.ca.issue("chain-worker")
    runtime = WorkerRuntime(pipelines.CHAIN, identity_of(pipelines.CHAIN))
    server = GrpcWorkerServer(
        runtime.execute,
        runtime.capability("grpc"),
        shared_secret=WORKER_SECRET,
        tls=ServerCertificates(ServerTls(issued.cert_file, issued.key_file, pki.ca.ca_file)),
    )
    port = await server.start("127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def release_chain(
    pki: Pki, registry: ServiceProcess, tmp_path: Path, grpc_worker: str | None = None
) -> None:
    """CHAIN registered and active in TENANT; with `grpc_worker`, that endpoint registered as
    its gRPC worker."""
    built = build_release(pipelines.CHAIN, tmp_path / "chain-release")
    identity = built.identity
    async with registry_client(registry.target, tls=pki.client()) as client:
        await client.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=identity.pipeline_id,
                release_descriptor_path=str(built.descriptor_path),
                policy=release_pb2.ReleasePolicy(
                    default_retry=release_pb2.RetryPolicy(max_retries=0)
                ),
            )
        )
        await client.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=identity.pipeline_id,
                release_version=identity.release_version,
            )
        )
        if grpc_worker is None:
            return
        await client.workers.RegisterWorker(
            wspb.RegisterWorkerRequest(
                tenant_id=TENANT,
                pipeline_id=identity.pipeline_id,
                worker_id="chain-grpc-tls",
                contract_version=identity.contract_version,
                release_version=identity.release_version,
                protocol="grpc",
                endpoint=grpc_worker,
            )
        )


@asynccontextmanager
async def https_gateway(
    pki: Pki,
    coordinator: ServiceProcess,
    registry: ServiceProcess,
    tmp_path: Path,
    rootdir: Path,
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """`python -m tpf_gateway` serving HTTPS (client certificates required) in front of the
    services, and a session that trusts our CA and presents the operator's certificate."""
    port, health_port = free_port(), free_port()
    process = ChildProcess(
        [sys.executable, "-m", "tpf_gateway"],
        log_path=tmp_path / "tpf_gateway.log",
        env={
            **minimal_environment(),
            "TPF_GATEWAY_HOST": "127.0.0.1",
            "TPF_GATEWAY_PORT": str(port),
            "TPF_COORDINATOR_TARGET": coordinator.target,
            "TPF_REGISTRY_TARGET": registry.target,
            "TPF_CONTROL_PLANE_TOKEN": GATEWAY_CP_TOKEN,
            "TPF_ADMIN_ENABLED": "false",
            "TPF_GATEWAY_SERVICE_TOKEN": ADMIN,
            "TPF_GATEWAY_HEALTH_PORT": str(health_port),
            **pki.service_env("gateway"),
        },
        cwd=rootdir,
    )
    process.start()
    base_url = f"https://127.0.0.1:{port}"
    try:
        connector = aiohttp.TCPConnector(ssl=pki.client().ssl_context())
        async with aiohttp.ClientSession(connector=connector) as session:

            async def ready() -> bool:
                process.raise_if_exited("tpf_gateway")
                async with session.get(f"{base_url}/q/health/ready") as reply:
                    return reply.status == 200

            await wait_until(
                ready, timeout_s=30, what="gateway ready", ignore=(aiohttp.ClientError,)
            )
            await refuse_https_without_client_certificate(pki, base_url)
            await health_port_answers_probes_only(health_port)
            yield base_url, session
    finally:
        process.stop()


async def refuse_https_without_client_certificate(pki: Pki, base_url: str) -> None:
    """The gateway answers no request whose TLS handshake shows no certificate of our CA."""
    for client in (
        ClientCertificates(ClientTls(pki.ca.ca_file)),
        pki.client(pki.foreign),
    ):
        connector = aiohttp.TCPConnector(ssl=client.ssl_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"{base_url}/q/health/ready") as reply:
                    await reply.read()
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientError):
            async with plain.get(base_url.replace("https://", "http://") + "/q/health/ready"):
                pass


async def health_port_answers_probes_only(port: int) -> None:
    """TPF_GATEWAY_HEALTH_PORT: plain HTTP, health routes only (what a kubelet probe needs)."""
    async with aiohttp.ClientSession() as plain:
        async with plain.get(f"http://127.0.0.1:{port}/q/health/ready") as ready:
            assert ready.status == 200, await ready.text()
        async with plain.get(f"http://127.0.0.1:{port}/openapi.json") as other:
            assert other.status == 404
