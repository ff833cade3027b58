"""The Kubernetes manifests parse and only set variables the services actually read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tpf_registry.settings import RegistrySettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _known_variables() -> set[str]:
    return {f"TPF_{name.upper()}" for name in RegistrySettings.model_fields}


def test_manifests_parse_and_kustomizations_name_existing_files() -> None:
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for resource in spec.get("resources", []):
            assert (kustomization.parent / resource).exists(), (kustomization, resource)
    assert any(d["kind"] == "Deployment" for d in _documents())


def test_registry_environment_is_read_by_the_registry() -> None:
    known = _known_variables()
    used: set[str] = set()
    for doc in _documents():
        if doc["kind"] != "Deployment" or doc["metadata"]["name"] != "tpf-registry":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            used |= {e["name"] for e in container.get("env", [])}
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    for generator in base["configMapGenerator"]:
        used |= {literal.split("=", 1)[0] for literal in generator["literals"]}
    assert used, "no variables found"
    assert used - known == set()
