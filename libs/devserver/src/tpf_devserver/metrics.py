"""Each `make dev` service's Prometheus /metrics port, and the banner lines naming the URLs."""

from __future__ import annotations

from collections.abc import Sequence

from tpf_devserver.settings import DevSettings

# Service name (as the supervisor knows it) → its DevSettings port field.
_PORT_FIELDS = {
    "registry": "registry_metrics_port",
    "coordinator": "coordinator_metrics_port",
    "dispatcher": "dispatcher_metrics_port",
    "gateway": "gateway_metrics_port",
    "sqs-bridge": "sqs_bridge_metrics_port",
}


def metrics_port(settings: DevSettings, service: str) -> int:
    """The service's metrics port; 0 when its metrics are off."""
    port: int = getattr(settings, _PORT_FIELDS[service])
    return port


def metrics_env(settings: DevSettings, service: str) -> dict[str, str]:
    port = metrics_port(settings, service)
    if port == 0:
        return {}
    return {"TPF_METRICS_PORT": str(port), "TPF_METRICS_HOST": settings.dev_host}


def metrics_lines(settings: DevSettings, running: Sequence[str]) -> str:
    """'Metrics ...:' and one URL per running service that serves them, or ''."""
    served = [name for name in _PORT_FIELDS if name in running and metrics_port(settings, name)]
    if not served:
        return ""
    urls = "\n".join(
        f"  {name:<11} http://{settings.dev_host}:{metrics_port(settings, name)}/metrics"
        for name in served
    )
    return f"\nMetrics (Prometheus text; docs/operations.md, Metrics):\n{urls}\n"
