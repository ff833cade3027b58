"""DevSettings: what `make dev` can be told through TPF_* variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# TPF's self-host demo uses this one value for the control-plane and admin tokens.
DEMO_TOKEN = "restaurant-control-plane-admin-token"


class DevSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TPF_")

    data_dir: Path = Path(".tpf")
    # An existing Postgres instead of the embedded one (the embedded one lives in data_dir).
    database_url: str | None = Field(default=None, repr=False)
    dev_token: str = Field(default=DEMO_TOKEN, repr=False)
    dev_host: str = "127.0.0.1"
    registry_port: int = 50052
    coordinator_port: int = 50051
    dispatcher_port: int = 50053
    # The remote example worker (gRPC, TPF's TransitionWorkerService) and the REST gateway.
    worker_port: int = 50061
    gateway_port: int = 8080
    # The dispatcher runs the example's steps itself (a `local` worker, preferred); false leaves
    # every step to the remote gRPC worker, so the dispatcher calls it over the network.
    dev_local_worker: bool = True
    # A local SQS (moto_server) and the SQS bridge on it; false leaves both out.
    dev_sqs: bool = True
    sqs_port: int = 50070
    sqs_bridge_port: int = 50055
    # Shared secret of the example worker's HMAC signatures (TPF_WIRE §9.4); dev only.
    worker_shared_secret: str = Field(default="dev-worker-shared-secret", repr=False)
    dev_tenant: str = "restaurant-demo"
    # Each service's Prometheus /metrics port (TPF_METRICS_PORT of that service); 0: none.
    registry_metrics_port: int = Field(default=9101, ge=0, le=65535)
    coordinator_metrics_port: int = Field(default=9102, ge=0, le=65535)
    dispatcher_metrics_port: int = Field(default=9103, ge=0, le=65535)
    gateway_metrics_port: int = Field(default=9104, ge=0, le=65535)
    sqs_bridge_metrics_port: int = Field(default=9105, ge=0, le=65535)
    log_level: str = "INFO"
