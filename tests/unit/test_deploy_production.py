"""The production overlay holds what a platform team asks of it, as rendered by kubectl.

Replica counts, rolling updates that keep every replica serving, PodDisruptionBudgets, HPAs
whose floor is the Deployment's count, a service account without an API token, migrations in
init containers, startup probes, topology spread, requests and limits, S3 instead of volumes,
and NetworkPolicies that open exactly the paths the suite uses.
"""

from __future__ import annotations

import itertools

import pytest

from tests.support.kustomize import DEPLOY, Document, needs_kubectl, render
from tests.support.network_policies import Pod, allowed, selects

pytestmark = needs_kubectl

NAMESPACE = "tpf"
NAME = "app.kubernetes.io/name"
SUITE = ["tpf-registry", "tpf-coordinator", "tpf-dispatcher", "tpf-gateway", "tpf-sqs-bridge"]
PORTS = {"tpf-registry": 50052, "tpf-coordinator": 50051, "tpf-dispatcher": 50053}
# (from, to): the calls the architecture makes between suite pods; nothing else is allowed.
PATHS = {
    ("tpf-gateway", "tpf-coordinator"),
    ("tpf-gateway", "tpf-registry"),
    ("tpf-dispatcher", "tpf-coordinator"),
    ("tpf-dispatcher", "tpf-registry"),
    ("tpf-coordinator", "tpf-registry"),
    ("tpf-sqs-bridge", "tpf-coordinator"),
}
WORKER = Pod({"app.kubernetes.io/component": "tpf-worker"}, "workers")
SOMEONE = Pod({"app": "other"}, "other")


@pytest.fixture(scope="module")
def docs() -> list[Document]:
    return render(DEPLOY / "overlays" / "production")


def of_kind(docs: list[Document], kind: str) -> dict[str, Document]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod(name: str) -> Pod:
    return Pod({NAME: name, "app.kubernetes.io/part-of": "tpf-suite"}, NAMESPACE)


def test_replicas_and_rolling_updates(docs: list[Document]) -> None:
    deployments = of_kind(docs, "Deployment")
    replicas = {name: d["spec"]["replicas"] for name, d in deployments.items()}
    assert replicas["tpf-coordinator"] == 3
    assert replicas["tpf-registry"] == 2
    assert replicas["tpf-dispatcher"] >= 2
    assert replicas["tpf-gateway"] == 2
    for name, deployment in deployments.items():
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate", name
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, name
    assert not of_kind(docs, "PersistentVolumeClaim")


def test_every_deployment_has_a_disruption_budget_and_the_stateless_ones_autoscale(
    docs: list[Document],
) -> None:
    deployments = of_kind(docs, "Deployment")
    budgets = list(of_kind(docs, "PodDisruptionBudget").values())
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (budget,) = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert budget["spec"]["maxUnavailable"] == 1, name
    autoscalers = of_kind(docs, "HorizontalPodAutoscaler")
    assert {a["spec"]["scaleTargetRef"]["name"] for a in autoscalers.values()} == {
        "tpf-dispatcher",
        "tpf-gateway",
    }
    for autoscaler in autoscalers.values():
        target = deployments[autoscaler["spec"]["scaleTargetRef"]["name"]]
        assert autoscaler["spec"]["minReplicas"] == target["spec"]["replicas"]
        assert autoscaler["spec"]["maxReplicas"] > autoscaler["spec"]["minReplicas"]


def test_pods_run_without_an_api_token_spread_out_with_startup_probes_and_limits(
    docs: list[Document],
) -> None:
    (account,) = of_kind(docs, "ServiceAccount").values()
    assert account["automountServiceAccountToken"] is False
    namespace = of_kind(docs, "Namespace")[NAMESPACE]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, deployment in of_kind(docs, "Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == account["metadata"]["name"], name
        assert spec["automountServiceAccountToken"] is False, name
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert all(selects(c["labelSelector"], labels) for c in spec["topologySpreadConstraints"])
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (name, container["name"])
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert "startupProbe" in spec["containers"][0], name
        assert all("sizeLimit" in v["emptyDir"] for v in spec["volumes"] if "emptyDir" in v)


def test_migrations_run_in_init_containers_and_stores_are_on_s3(docs: list[Document]) -> None:
    deployments = of_kind(docs, "Deployment")
    config = {name: d.get("data", {}) for name, d in of_kind(docs, "ConfigMap").items()}
    for name, store in (
        ("tpf-coordinator", "TPF_PAYLOAD_STORE"),
        ("tpf-registry", "TPF_ARTIFACT_STORE"),
    ):
        spec = deployments[name]["spec"]["template"]["spec"]
        (init,) = spec["initContainers"]
        assert init["args"] == [name, "migrate"]
        (container,) = spec["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TPF_MIGRATE_ON_START"] == "false"
        mounted = [config[s["configMapRef"]["name"]] for s in container["envFrom"]]
        (location,) = [m[store] for m in mounted if store in m]
        assert location.startswith("s3://"), name
    for name in ("tpf-dispatcher", "tpf-gateway"):
        assert "initContainers" not in deployments[name]["spec"]["template"]["spec"]


def test_network_policies_open_exactly_the_paths_the_suite_uses(docs: list[Document]) -> None:
    policies = list(of_kind(docs, "NetworkPolicy").values())
    for source, destination in itertools.permutations(SUITE, 2):
        if destination not in PORTS:
            continue
        expected = (source, destination) in PATHS
        got = allowed(policies, pod(source), pod(destination), PORTS[destination])
        assert got == expected, f"{source} -> {destination}"
    # Workers register with the registry, and the dispatcher calls them.
    assert allowed(policies, WORKER, pod("tpf-registry"), PORTS["tpf-registry"])
    assert allowed(policies, pod("tpf-dispatcher"), WORKER, 50061)
    assert not allowed(policies, pod("tpf-gateway"), WORKER, 50061)
    # Anything else reaches only the gateway's REST port (and metrics).
    assert allowed(policies, SOMEONE, pod("tpf-gateway"), 8080)
    assert not allowed(policies, SOMEONE, pod("tpf-coordinator"), PORTS["tpf-coordinator"])
    assert not allowed(policies, SOMEONE, pod("tpf-registry"), PORTS["tpf-registry"])
    # Datastores by port; DNS for every pod.
    postgres, redis = Pod({"app": "postgres"}, "db"), Pod({"app": "redis"}, "db")
    dns = Pod({"k8s-app": "kube-dns"}, "kube-system")
    for name in ("tpf-coordinator", "tpf-registry"):
        assert allowed(policies, pod(name), postgres, 5432), name
    assert allowed(policies, pod("tpf-coordinator"), redis, 6379)
    assert not allowed(policies, pod("tpf-gateway"), postgres, 5432)
    for name in SUITE:
        assert allowed(policies, pod(name), dns, 53), name
