"""Every kustomization renders and passes Kubernetes' own schemas (kubernetes-validate --strict).

Each Kustomization under deploy/k8s is rendered as it is, each Component through the overlay it
is meant for (COMPOSITES), with `kubectl kustomize`. kubernetes-validate ships the OpenAPI
schemas of every Kubernetes release, so this runs offline; strict mode refuses fields a schema
does not know (a misspelt or misplaced key, which the API server would drop or refuse).
Custom resources have no schema there: the kinds in CUSTOM_KINDS (cert-manager's; the
Prometheus operator's) are checked for their shape
only, and any other kind without a schema fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.support.kustomize import DEPLOY, Document, compose, kustomization_dirs, needs_kubectl
from tests.support.kustomize import render as render_directory

# The oldest release the manifests support (native gRPC probes, topology spread with
# matchLabelKeys, autoscaling/v2) and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "ClusterIssuer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
BRIDGE_QUEUES: Document = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "tpf-sqs-bridge-config"},
    "data": {"TPF_SQS_SUBMIT_QUEUE_URL": QUEUE},
}
# Overlays an operator writes: every component on the overlay it is meant for.
COMPOSITES: dict[str, dict[str, Any]] = {
    "production-with-every-component": {
        "namespace": "tpf",
        "resources": ["overlays/production"],
        # Components patch the Deployments there when they run: the bridge first.
        "components": [
            "components/sqs-bridge",
            "components/redis-leases",
            "components/mtls",
            "components/observability",
        ],
        "patches": [BRIDGE_QUEUES],
    },
    "dev-with-components": {
        "namespace": "tpf-dev",
        "resources": ["overlays/dev"],
        "components": ["components/sqs-bridge", "components/redis-leases"],
        "patches": [BRIDGE_QUEUES],
    },
}


def rendered(name: str, tmp_path: Path) -> list[Document]:
    """A kustomization directory under deploy/k8s, or a composite by name."""
    if name in COMPOSITES:
        return compose(tmp_path / name, **COMPOSITES[name])
    return render_directory(DEPLOY / name)


def schema_problems(doc: Document, version: str) -> list[str]:
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        if (doc.get("apiVersion"), doc.get("kind")) not in CUSTOM_KINDS:
            return [f"{where}: no schema for {doc.get('apiVersion')} in Kubernetes {version}"]
        if not doc.get("metadata", {}).get("name") or not isinstance(doc.get("spec"), dict):
            return [f"{where}: a custom resource needs metadata.name and a spec"]
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return [f"{where}: {path}: {error.message}"]
    return []


def test_every_component_is_rendered_through_a_composite() -> None:
    composed = {c for spec in COMPOSITES.values() for c in spec["components"]}
    assert set(kustomization_dirs("Component")) <= composed


@needs_kubectl
@pytest.mark.parametrize("name", [*kustomization_dirs("Kustomization"), *COMPOSITES])
def test_the_rendered_manifests_pass_the_kubernetes_schemas(name: str, tmp_path: Path) -> None:
    docs = rendered(name, tmp_path)
    assert docs
    problems = [
        f"Kubernetes {version}: {problem}"
        for version in KUBERNETES_VERSIONS
        for doc in docs
        for problem in schema_problems(doc, version)
    ]
    assert not problems, "\n".join(problems)


def test_strict_validation_refuses_an_unknown_field() -> None:
    # The check above means something: a misplaced key fails.
    probe = {"grpc": {"port": 50051}, "periodSecond": 5}
    deployment: Document = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "readinessProbe": probe}]},
            },
        },
    }
    (problem,) = schema_problems(deployment, KUBERNETES_VERSIONS[-1])
    assert "periodSecond" in problem


def test_an_unknown_kind_fails_and_a_custom_resource_needs_its_shape() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert schema_problems(unknown, KUBERNETES_VERSIONS[-1])
    certificate = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {}}
    assert schema_problems(certificate, KUBERNETES_VERSIONS[-1])
