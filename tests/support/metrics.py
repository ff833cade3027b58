"""Scrape a service's /metrics and read it with prometheus_client's own text parser."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy/k8s/components/observability"
_TPF_NAME = re.compile(r"\btpf_[a-z0-9_]+\b")


@dataclass(frozen=True)
class Scrape:
    """One scrape: every family (by name and type) and every sample."""

    families: dict[str, str]
    samples: list[Sample]

    def value(self, sample_name: str, **labels: str) -> float:
        """The sum of the samples named `sample_name` whose labels include `labels` (0 when
        there are none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self, sample_name: str, label: str) -> set[str]:
        return {
            s.labels[label] for s in self.samples if s.name == sample_name and label in s.labels
        }

    def sample_names(self) -> set[str]:
        return {s.name for s in self.samples}


async def scrape(port: int, host: str = "127.0.0.1") -> Scrape:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{host}:{port}/metrics") as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        text = await response.text()
    return parse(text)


def parse(text: str) -> Scrape:
    families = list(text_string_to_metric_families(text))
    return Scrape(
        families={f.name: f.type for f in families},
        samples=[s for f in families for s in f.samples],
    )


def exposed_names(families: dict[str, str]) -> set[str]:
    """The sample names Prometheus stores for these families (counter → `_total`, histogram →
    `_bucket`, `_count`, `_sum`, ...), as PromQL names them."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    names: set[str] = set()
    for name, kind in families.items():
        names.update(f"{name}{suffix}" for suffix in suffixes.get(kind, ("",)))
    return names


def metric_names_in(expressions: Iterable[str]) -> set[str]:
    """The `tpf_*` metric names an expression reads (label names never start with `tpf_`)."""
    return {name for expression in expressions for name in _TPF_NAME.findall(expression)}


def alert_expressions() -> dict[str, str]:
    """The component's alerts: name → PromQL expression."""
    rule: dict[str, Any] = yaml.safe_load((OBSERVABILITY / "prometheus-rule.yaml").read_text())
    return {
        alert["alert"]: alert["expr"]
        for group in rule["spec"]["groups"]
        for alert in group["rules"]
    }


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the component's Grafana dashboard."""
    dashboard = json.loads((OBSERVABILITY / "dashboards" / "tpf-suite.json").read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
