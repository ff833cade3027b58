"""`make dev` / `tpf-dev`: embedded Postgres + every service as its own process.

Data (Postgres cluster, artifact store, logs) lives under TPF_DATA_DIR (default `.tpf/`), so a
second run reuses it. A child that exits (crash, kill -9) is started again with backoff while the
rest keeps running (supervisor.py, restarts.py). Ctrl-C stops the services, then Postgres, and
leaves no process behind.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any

from tpf_devserver.bootstrap import ReleaseToActivate, register_and_activate
from tpf_devserver.local_sqs import REGION, bridge_env, create_queues
from tpf_devserver.metrics import metrics_env, metrics_lines
from tpf_devserver.settings import DevSettings
from tpf_devserver.supervisor import (
    ServiceFailed,
    ServiceSpec,
    Supervisor,
    grpc_listening,
    http_ok,
)
from tpf_store.embedded import EmbeddedPostgres, embedded_default_database
from tpf_telemetry import configure_logging
from tpf_worker.release import build_release, load_pipeline

log = logging.getLogger("tpf_devserver")

# A read-only sign-in for the operator console (role viewer, every tenant).
VIEWER_TOKEN = "restaurant-console-viewer-token"


def _token_file(settings: DevSettings, data_dir: Path) -> Path:
    path = data_dir / "dev-tokens.json"
    grants = [
        {
            "token": settings.dev_token,
            "subject": "dev-admin",
            "roles": ["admin", "control-plane", "worker"],
            "tenants": ["*"],
        },
        {"token": VIEWER_TOKEN, "subject": "dev-viewer", "roles": ["viewer"], "tenants": ["*"]},
    ]
    path.write_text(json.dumps(grants, indent=2))
    path.chmod(0o600)
    return path


EXAMPLE_PIPELINE = "restaurant_approval.pipeline:PIPELINE"
# The example's request bodies ship inside its package, so this works wherever it is installed.
EXAMPLE_REQUESTS = Path(str(resources.files("restaurant_approval") / "requests"))
ORDER_TYPE = "org.pipelineframework.restaurantapproval.common.dto.PlaceRestaurantOrderRequestDto"


# Ctrl-C stops the services in these waves: what clients call first, then the dispatcher (its
# in-flight work reports to a coordinator that still runs), then the rest; Postgres last.
STOP_WAVES = (
    ("sqs-bridge", "gateway", "sqs"),
    ("dispatcher",),
    ("worker", "coordinator", "registry"),
)


def _banner(settings: DevSettings, url: str, supervisor: Supervisor, release: Any) -> str:
    host = settings.dev_host
    rows = "\n".join(
        f"  {s.spec.name:<11} {s.spec.kind:<4} {s.spec.target:<21} log {s.log_path}"
        for s in supervisor.running
    )
    tenant = settings.dev_tenant
    requests = EXAMPLE_REQUESTS
    return f"""
TPF suite is up (embedded default). Ctrl-C stops everything.
A service (or Postgres) that exits is started again, with backoff; this terminal logs it.

{rows}
  postgres    {url}
  token       {settings.dev_token}   (admin, control-plane, worker; every tenant)
  viewer      {VIEWER_TOKEN}   (read-only; every tenant)
  release     {release.release_version} (active for tenant {tenant})
  artifact    {release.jar_path}
  descriptor  {release.descriptor_path}

Try it (copy-paste):
  export TPF_TOKEN={settings.dev_token} TPF_TENANT={tenant} TPF_PIPELINE={release.pipeline_id}
  export TPF_COORDINATOR_TARGET={host}:{settings.coordinator_port} \\
         TPF_REGISTRY_TARGET={host}:{settings.registry_port}
  .venv/bin/tpf releases active
  .venv/bin/tpf workers list
  .venv/bin/tpf submit --input-file {requests}/order.json --type {ORDER_TYPE} \\
         --key order-1                       # prints the execution id; then:
  ID=<the execution id>
  .venv/bin/tpf status $ID --watch          # stops at WAITING_EXTERNAL (the await)
  .venv/bin/tpf interactions list
  .venv/bin/tpf interactions complete --interaction-id <id from the list> \\
         --response-file {requests}/approve.json   # or decline.json, or incident.json
  .venv/bin/tpf status $ID --watch && .venv/bin/tpf result $ID
  .venv/bin/tpf dlq list                    # after incident.json: the dead letter

The same over TPF's REST API (the gateway; TPF clients and scripts work unmodified):
  curl -s -H "Authorization: Bearer $TPF_TOKEN" -H 'Content-Type: application/json' \\
       -d @{requests}/submit.json http://{host}:{settings.gateway_port}/tpf/control-plane/tenants/{tenant}/executions
  curl -s -H "Authorization: Bearer $TPF_TOKEN" \\
       http://{host}:{settings.gateway_port}/tpf/control-plane/tenants/{tenant}/interactions/pending
  OpenAPI: http://{host}:{settings.gateway_port}/openapi.json

Operator console (sign in with the token above, or the viewer token, and tenant {tenant}):
  http://{host}:{settings.gateway_port}/console/
{metrics_lines(settings, [s.spec.name for s in supervisor.running])}"""


def _start_sqs_bridge(
    settings: DevSettings, supervisor: Supervisor, common: dict[str, str], coordinator: str
) -> str:
    """moto_server as the local SQS, the bridge's queues, the bridge; the banner's SQS lines."""
    endpoint = f"http://{settings.dev_host}:{settings.sqs_port}"
    supervisor.start(
        ServiceSpec(
            name="sqs",
            module="moto.server",
            port=settings.sqs_port,
            host=settings.dev_host,
            kind="http",
            args=["-H", settings.dev_host, "-p", str(settings.sqs_port)],
            env={},
            ready=http_ok(f"{endpoint}/moto-api/"),
            # moto keeps its queues in memory: a restarted one gets them again (empty).
            after_restart=lambda: create_queues(endpoint),
        )
    )
    queues = create_queues(endpoint)
    supervisor.start(
        ServiceSpec(
            name="sqs-bridge",
            module="tpf_sqs_bridge",
            port=settings.sqs_bridge_port,
            host=settings.dev_host,
            env={
                **common,
                **metrics_env(settings, "sqs-bridge"),
                **bridge_env(endpoint, queues),
                "TPF_COORDINATOR_TARGET": coordinator,
                "TPF_COORDINATOR_TOKEN": settings.dev_token,
                "TPF_EVENTS_TENANTS": settings.dev_tenant,
            },
        )
    )
    return f"""
SQS (local, moto; queues are empty on every start), with the bridge:
  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=dev AWS_SECRET_ACCESS_KEY=dev \\
         AWS_DEFAULT_REGION={REGION}
  submit queue {queues.submit}   replies {queues.replies}
  completions  {queues.complete}   events {queues.events}
  bridge DLQ   {queues.dead_letters}   (message shapes: docs/sqs-bridge.md)
"""


def main() -> None:
    settings = DevSettings()
    configure_logging(service="tpf-dev", level=settings.log_level, fmt="text")
    data_dir = settings.data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    embedded: EmbeddedPostgres | None = None
    supervisor = Supervisor(log_dir=data_dir / "logs")
    exit_code = 0
    try:
        if settings.database_url:
            url = settings.database_url
        else:
            embedded, url = embedded_default_database(data_dir)
            supervisor.keep_postgres(embedded)
        common = {
            "TPF_DATABASE_URL": url,
            "TPF_AUTH_TOKENS_FILE": str(_token_file(settings, data_dir)),
            "TPF_LOG_LEVEL": settings.log_level,
            "TPF_GRPC_HOST": settings.dev_host,
        }
        supervisor.start(
            ServiceSpec(
                name="registry",
                module="tpf_registry",
                port=settings.registry_port,
                host=settings.dev_host,
                env={
                    **common,
                    **metrics_env(settings, "registry"),
                    "TPF_DATA_DIR": str(data_dir / "registry"),
                    # The release make dev builds (.tpf/release) and the temp dir, where the
                    # README's TPF self-host flow writes its descriptor.
                    "TPF_REGISTRY_ARTIFACT_ROOTS": os.pathsep.join(
                        (str(data_dir), tempfile.gettempdir())
                    ),
                },
            )
        )
        registry_target = f"{settings.dev_host}:{settings.registry_port}"
        coordinator_target = f"{settings.dev_host}:{settings.coordinator_port}"
        supervisor.start(
            ServiceSpec(
                name="coordinator",
                module="tpf_coordinator",
                port=settings.coordinator_port,
                host=settings.dev_host,
                env={
                    **common,
                    **metrics_env(settings, "coordinator"),
                    "TPF_DATA_DIR": str(data_dir / "coordinator"),
                    "TPF_REGISTRY_TARGET": registry_target,
                    "TPF_REGISTRY_TOKEN": settings.dev_token,
                },
            )
        )
        release = build_release(load_pipeline(EXAMPLE_PIPELINE), data_dir / "release")
        register_and_activate(
            registry_target,
            settings.dev_token,
            ReleaseToActivate(
                tenant_id=settings.dev_tenant,
                pipeline_id=release.pipeline_id,
                release_version=release.release_version,
                descriptor_path=str(release.descriptor_path),
                policy_json=release.policy_path.read_text(),
            ),
        )
        worker_env = {**common, "TPF_WORKER_SHARED_SECRET": settings.worker_shared_secret}
        # Unless TPF_DEV_LOCAL_WORKER=false the dispatcher runs the example's steps itself.
        hosted = EXAMPLE_PIPELINE if settings.dev_local_worker else ""
        supervisor.start(
            ServiceSpec(
                name="dispatcher",
                module="tpf_dispatcher",
                port=settings.dispatcher_port,
                host=settings.dev_host,
                env={
                    **worker_env,
                    **metrics_env(settings, "dispatcher"),
                    "TPF_COORDINATOR_TARGET": coordinator_target,
                    "TPF_COORDINATOR_TOKEN": settings.dev_token,
                    "TPF_REGISTRY_TARGET": registry_target,
                    "TPF_REGISTRY_TOKEN": settings.dev_token,
                    "TPF_LOCAL_PIPELINES": hosted,
                    "TPF_LOCAL_WORKER_TENANTS": settings.dev_tenant if hosted else "",
                },
            )
        )
        worker_target = f"{settings.dev_host}:{settings.worker_port}"
        supervisor.start(
            ServiceSpec(
                name="worker",
                module="tpf_worker",
                port=settings.worker_port,
                host=settings.dev_host,
                kind="grpc-worker",
                args=[
                    "serve",
                    "--pipeline",
                    EXAMPLE_PIPELINE,
                    "--transport",
                    "grpc",
                    "--host",
                    settings.dev_host,
                    "--port",
                    str(settings.worker_port),
                    "--registry-target",
                    registry_target,
                    "--registry-token-env",
                    "TPF_REGISTRY_TOKEN",
                    "--tenant",
                    settings.dev_tenant,
                    "--worker-id",
                    "restaurant-grpc-worker",
                    "--advertise",
                    worker_target,
                ],
                env={**worker_env, "TPF_REGISTRY_TOKEN": settings.dev_token},
                ready=grpc_listening(worker_target),
            )
        )
        gateway = f"http://{settings.dev_host}:{settings.gateway_port}"
        supervisor.start(
            ServiceSpec(
                name="gateway",
                module="tpf_gateway",
                port=settings.gateway_port,
                host=settings.dev_host,
                kind="http",
                env={
                    **common,
                    **metrics_env(settings, "gateway"),
                    "TPF_GATEWAY_HOST": settings.dev_host,
                    "TPF_GATEWAY_PORT": str(settings.gateway_port),
                    "TPF_COORDINATOR_TARGET": coordinator_target,
                    "TPF_REGISTRY_TARGET": registry_target,
                    # TPF's self-host demo uses one value for both families (TPF_WIRE §1.1).
                    "TPF_CONTROL_PLANE_TOKEN": settings.dev_token,
                    "TPF_ADMIN_TOKEN": settings.dev_token,
                    "TPF_VIEWER_TOKEN": VIEWER_TOKEN,
                    "TPF_GATEWAY_SERVICE_TOKEN": settings.dev_token,
                },
                ready=http_ok(f"{gateway}/q/health/ready"),
            )
        )
        sqs_lines = ""
        if settings.dev_sqs and importlib.util.find_spec("moto") is None:
            log.warning("moto is not installed (run `make setup`): no local SQS, no SQS bridge")
        elif settings.dev_sqs:
            sqs_lines = _start_sqs_bridge(settings, supervisor, common, coordinator_target)
        print(_banner(settings, url, supervisor, release) + sqs_lines, flush=True)
        # The supervisor's keepers restart whatever exits; this thread only waits for Ctrl-C.
        while not stop.wait(0.5):
            pass
    except ServiceFailed as error:
        log.error("%s", error)
        exit_code = 1
    finally:
        print("\nstopping services...", file=sys.stderr, flush=True)
        supervisor.stop_all(waves=STOP_WAVES)
        if embedded is not None:
            embedded.stop()
        print("stopped.", file=sys.stderr, flush=True)
    raise SystemExit(exit_code)


if __name__ == "__main__":
    main()
