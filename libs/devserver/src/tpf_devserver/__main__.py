"""`make dev` / `tpf-dev`: embedded Postgres + every service as its own process.

Data (Postgres cluster, artifact store, logs) lives under TPF_DATA_DIR (default `.tpf/`), so a
second run reuses it. Ctrl-C stops the services, then Postgres, and leaves no process behind.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tpf_devserver.demo_release import PIPELINE_ID, BuiltRelease, build_release
from tpf_devserver.settings import DevSettings
from tpf_devserver.supervisor import ServiceFailed, ServiceSpec, Supervisor
from tpf_store.embedded import EmbeddedPostgres, embedded_default_database
from tpf_telemetry import configure_logging

log = logging.getLogger("tpf_devserver")


def _token_file(settings: DevSettings, data_dir: Path) -> Path:
    path = data_dir / "dev-tokens.json"
    grants = [
        {
            "token": settings.dev_token,
            "subject": "dev-admin",
            "roles": ["admin", "control-plane", "worker"],
            "tenants": ["*"],
        }
    ]
    path.write_text(json.dumps(grants, indent=2))
    path.chmod(0o600)
    return path


def _banner(settings: DevSettings, url: str, supervisor: Supervisor, demo: BuiltRelease) -> str:
    registry = f"{settings.dev_host}:{settings.registry_port}"
    rows = "\n".join(
        f"  {s.spec.name:<10} grpc {s.spec.target:<21} log {s.log_path}" for s in supervisor.running
    )
    tenant = settings.dev_tenant
    return f"""
TPF suite is up (embedded default). Ctrl-C stops everything.

{rows}
  postgres   {url}
  token      {settings.dev_token}   (admin, control-plane, worker; every tenant)

Try it (copy-paste):
  export TPF_TOKEN={settings.dev_token} TPF_TENANT={tenant} TPF_PIPELINE={PIPELINE_ID}
  .venv/bin/python -m tpf_devserver.reflect {registry}          # grpcurl-style service list
  .venv/bin/tpf releases register --descriptor {demo.descriptor_path}
  .venv/bin/tpf releases activate {demo.release_version} --reason "first rollout"
  .venv/bin/tpf releases active
  .venv/bin/tpf workers register --worker-id restaurant-local-worker --protocol local \\
      --release {demo.release_version}
  .venv/bin/tpf workers list
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
                env={**common, "TPF_DATA_DIR": str(data_dir / "registry")},
            )
        )
        supervisor.start(
            ServiceSpec(
                name="coordinator",
                module="tpf_coordinator",
                port=settings.coordinator_port,
                host=settings.dev_host,
                env={
                    **common,
                    "TPF_DATA_DIR": str(data_dir / "coordinator"),
                    "TPF_REGISTRY_TARGET": f"{settings.dev_host}:{settings.registry_port}",
                    "TPF_REGISTRY_TOKEN": settings.dev_token,
                },
            )
        )
        demo = build_release(data_dir / "demo")
        print(_banner(settings, url, supervisor, demo), flush=True)
        while not stop.wait(0.5):
            exited = supervisor.first_exited()
            if exited is not None:
                log.error(
                    "%s exited with %s; stopping the suite (log %s)",
                    exited.spec.name,
                    exited.process.returncode,
                    exited.log_path,
                )
                exit_code = 1
                break
    except ServiceFailed as error:
        log.error("%s", error)
        exit_code = 1
    finally:
        print("\nstopping services...", file=sys.stderr, flush=True)
        supervisor.stop_all()
        if embedded is not None:
            embedded.stop()
        print("stopped.", file=sys.stderr, flush=True)
    raise SystemExit(exit_code)


if __name__ == "__main__":
    main()
