"""deploy/k8s/components/observability: its alerts and dashboard read only metrics the services
export, the alerts the operations guide promises exist, and the component turns /metrics on for
every suite service it renders with."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tests.support.metrics import (
    alert_expressions,
    dashboard_expressions,
    exposed_names,
    metric_names_in,
)
from tpf_coordinator.metrics import CoordinatorMetrics
from tpf_dispatcher.dispatcher import Counters, DispatcherState, Snapshot
from tpf_dispatcher.engine_metrics import EngineCollector
from tpf_dispatcher.metrics import DispatcherMetrics
from tpf_gateway.http_metrics import HttpMetrics
from tpf_registry.domain.worker import LifecycleWindows
from tpf_registry.metrics import RegistryMetrics
from tpf_rpc.metrics import GrpcServerMetrics
from tpf_sqs_bridge.metrics import BridgeMetrics
from tpf_telemetry.metrics import PoolStatsCollector

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "deploy" / "k8s" / "components" / "observability"
DEPLOY = ROOT / "deploy" / "k8s"
SUITE = ("tpf-registry", "tpf-coordinator", "tpf-dispatcher", "tpf-gateway", "tpf-sqs-bridge")
METRICS_PORT = 9464
KUBECTL = shutil.which("kubectl")


def _families() -> dict[str, str]:
    """Every metric family the services can export (name: type), built from the same classes
    they build."""
    registry = CollectorRegistry()
    GrpcServerMetrics(registry)
    CoordinatorMetrics(registry)
    DispatcherMetrics(registry)
    snapshot = Snapshot("d", DispatcherState.RUNNING, 0, 1, Counters())
    registry.register(EngineCollector(lambda: snapshot))
    registry.register(RegistryMetrics(LifecycleWindows(), lambda: 0))
    BridgeMetrics(registry)
    HttpMetrics(registry)
    registry.register(PoolStatsCollector("pool", dict))
    return {family.name: family.type for family in registry.collect()}


def _exported() -> set[str]:
    return exposed_names(_families())


def test_alerts_read_only_exported_metrics() -> None:
    exported = _exported()
    for alert, expression in alert_expressions().items():
        named = metric_names_in([expression])
        assert named, f"{alert} reads no tpf_ metric"
        assert named <= exported, f"{alert} reads {sorted(named - exported)}, which no one exports"


def test_dashboard_reads_only_exported_metrics() -> None:
    exported = _exported()
    expressions = dashboard_expressions()
    assert expressions
    for expression in expressions:
        named = metric_names_in([expression])
        assert named, f"a panel reads no tpf_ metric: {expression}"
        assert named <= exported, f"{sorted(named - exported)} are not exported: {expression}"


def test_the_alerts_the_operations_guide_describes_exist() -> None:
    alerts = set(alert_expressions())
    assert alerts == {
        "TpfDeadLettersGrowing",
        "TpfOldestRunnableTooOld",
        "TpfLeaseExpirySpike",
        "TpfNoHealthyWorker",
        "TpfCoordinatorErrorRate",
    }
    guide = (ROOT / "docs" / "operations.md").read_text()
    for alert in alerts:
        assert alert in guide, f"docs/operations.md does not describe {alert}"


def test_every_exported_metric_is_documented() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    documented = {
        f"{name}_total" if kind == "counter" else name for name, kind in _families().items()
    }
    missing = sorted(name for name in documented if f"`{name}`" not in guide)
    assert not missing, f"docs/operations.md, Metrics, does not list {missing}"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_component_serves_metrics_on_every_suite_service(tmp_path: Path) -> None:
    # Kustomize refuses absolute paths: reach the tree relatively from tmp_path.
    def relative(path: Path) -> str:
        return os.path.relpath(path, tmp_path)

    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "tpf-dev",
        "resources": [relative(DEPLOY / "overlays" / "dev")],
        "components": [relative(DEPLOY / "components" / "sqs-bridge"), relative(COMPONENT)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if isinstance(d, dict)]
    by_kind: dict[str, dict[str, Any]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

    monitor = by_kind["ServiceMonitor"]["tpf-suite"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["endpoints"]
    for name in SUITE:
        (container,) = by_kind["Deployment"][name]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TPF_METRICS_PORT"] == str(METRICS_PORT), name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[endpoint["port"]] == METRICS_PORT, name
        service = by_kind["Service"][name]
        assert selector.items() <= service["metadata"]["labels"].items(), name
        service_ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert service_ports[endpoint["port"]]["targetPort"] == endpoint["port"], name
    # Only the suite: the dev Postgres and the example worker are not scraped.
    scraped = {
        name
        for name, service in by_kind["Service"].items()
        if selector.items() <= (service["metadata"].get("labels") or {}).items()
    }
    assert scraped == set(SUITE)
    dashboard = by_kind["ConfigMap"]["tpf-grafana-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["tpf-suite.json"])["uid"] == "tpf-suite"
    assert "PrometheusRule" in by_kind
