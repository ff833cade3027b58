"""The Kubernetes manifests hang together and only set variables the services actually read.

Checked on the YAML as written (always) and, when kubectl is installed, on what `kubectl
kustomize` renders from the base, the dev overlay and the dev overlay with every component.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from tests.support.kustomize import compose, needs_kubectl, render
from tpf_config import CommonSettings
from tpf_coordinator.settings import CoordinatorSettings
from tpf_dispatcher.settings import DispatcherSettings
from tpf_gateway.settings import GatewaySettings
from tpf_registry.settings import RegistrySettings
from tpf_rpc import paging
from tpf_sqs_bridge.settings import BridgeSettings
from tpf_worker.serve import parse_args

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "k8s"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
IMAGE = "tpf-suite"
EXAMPLE_WORKER = "tpf-example-worker"

# Deployment name -> the settings class its process reads. The example worker is configured by
# flags instead; its variables are the ones its flags name (see _worker_variables).
SETTINGS: dict[str, type[CommonSettings]] = {
    "tpf-registry": RegistrySettings,
    "tpf-coordinator": CoordinatorSettings,
    "tpf-dispatcher": DispatcherSettings,
    "tpf-gateway": GatewaySettings,
    "tpf-sqs-bridge": BridgeSettings,
}
# Variables read outside a settings class, by the services that read them (the page-token key
# is read by tpf_rpc.paging, under every List RPC).
READ_ELSEWHERE: dict[str, set[str]] = {
    "tpf-registry": {paging.KEY_ENV},
    "tpf-coordinator": {paging.KEY_ENV},
}
# Deployment name -> the console script its container runs.
SCRIPTS = {
    "tpf-registry": "tpf-registry",
    "tpf-coordinator": "tpf-coordinator",
    "tpf-dispatcher": "tpf-dispatcher",
    "tpf-gateway": "tpf-gateway",
    "tpf-sqs-bridge": "tpf-sqs-bridge",
    EXAMPLE_WORKER: "tpf-worker",
}


Document = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Reading the tree


def _load_all(text: str) -> list[Document]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _yaml_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.yaml"))


def _documents() -> list[Document]:
    docs: list[Document] = []
    for path in _yaml_files():
        docs += _load_all(path.read_text())
    return docs


def _kustomizations() -> list[tuple[Path, Document]]:
    found = []
    for path in _yaml_files():
        if path.name in KUSTOMIZATION_FILES:
            spec = yaml.safe_load(path.read_text())
            assert isinstance(spec, dict), path
            found.append((path, spec))
    return found


def _literal_pairs(literals: Iterable[str]) -> Iterator[tuple[str, str]]:
    for literal in literals:
        name, _, value = literal.partition("=")
        yield name, value


@dataclass
class Manifests:
    """Deployments (by name; patches of one name merged into its env) and config map data."""

    deployments: dict[str, list[Document]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, doc: Document) -> None:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind == "Deployment" and name:
            self.deployments.setdefault(name, []).append(doc)
        elif kind == "ConfigMap" and name:
            self.config_maps.setdefault(name, {}).update(doc.get("data") or {})


def _written() -> Manifests:
    """The tree as written: config maps are the union of every generator of a name (merges in
    overlays and components included), Deployments include strategic-merge patches."""
    manifests = Manifests()
    for doc in _documents():
        manifests.add(doc)
    for path, spec in _kustomizations():
        for generator in spec.get("configMapGenerator", []):
            data = manifests.config_maps.setdefault(generator["name"], {})
            data.update(_literal_pairs(generator.get("literals", [])))
            for env_file in generator.get("envs", []):
                lines = (path.parent / env_file).read_text().splitlines()
                data.update(_literal_pairs(x for x in lines if x and not x.startswith("#")))
        for patch in spec.get("patches", []):
            if "patch" in patch:
                for doc in _load_all(patch["patch"]):
                    manifests.add(doc)
    return manifests


def _containers(docs: list[Document]) -> Iterator[Document]:
    """Every container of the Deployment, init containers (migrations) included."""
    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        yield from pod.get("initContainers", [])
        yield from pod.get("containers", [])


def _pod_spec(docs: list[Document]) -> Document:
    """The pod spec of the full Deployment (the one with a selector, not a patch)."""
    full = [d for d in docs if "selector" in d.get("spec", {})]
    assert len(full) == 1, [d["metadata"]["name"] for d in docs]
    pod: Document = full[0]["spec"]["template"]["spec"]
    return pod


def _tpf_variables(docs: list[Document], config_maps: dict[str, dict[str, str]]) -> dict[str, str]:
    """Every TPF_* variable the Deployment sets: its env and the config maps it mounts."""
    variables: dict[str, str] = {}
    for container in _containers(docs):
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref is not None:
                assert ref["name"] in config_maps, f"no config map {ref['name']}"
                variables.update(config_maps[ref["name"]])
        for env in container.get("env", []):
            variables[env["name"]] = str(env.get("value", "<from a reference>"))
    return {k: v for k, v in variables.items() if k.startswith("TPF_")}


def _known(settings_cls: type[BaseSettings]) -> set[str]:
    prefix = settings_cls.model_config.get("env_prefix") or ""
    return {f"{prefix}{name}".upper() for name in settings_cls.model_fields}


def _worker_variables(docs: list[Document]) -> set[str]:
    """The variables `tpf-worker serve` reads: the ones its secret flags name."""
    names: set[str] = set()
    for container in _containers(docs):
        argv = [*container.get("command", []), *container.get("args", [])]
        if argv:
            args = parse_args(argv[1:])
            names |= {args.shared_secret_env, args.registry_token_env}
    return names


def _console_scripts() -> set[str]:
    scripts: set[str] = set()
    for pyproject in ROOT.glob("*/*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        scripts |= set(project.get("scripts", {}))
    return scripts


def _setting(name: str, variables: dict[str, str], settings_cls: type[BaseSettings]) -> float:
    """A numeric setting's value as the Deployment sets it, else the class default."""
    if name in variables:
        return float(variables[name])
    field_name = name.removeprefix("TPF_").lower()
    default = settings_cls.model_fields[field_name].default
    assert isinstance(default, int | float), name
    return float(default)


# ---------------------------------------------------------------------------------------------
# Checks shared by the written and the rendered manifests


def _check_variables(manifests: Manifests) -> None:
    assert manifests.deployments, "no Deployment found"
    for name, docs in manifests.deployments.items():
        used = _tpf_variables(docs, manifests.config_maps)
        if name == EXAMPLE_WORKER:
            known = _worker_variables(docs)
        elif name in SETTINGS:
            known = _known(SETTINGS[name]) | READ_ELSEWHERE.get(name, set())
        else:
            # Third-party images (the dev Postgres) get no TPF_* variables.
            known = set()
        unread = sorted(set(used) - known)
        assert not unread, f"{name} sets variables it does not read: {unread}"


def _check_commands(manifests: Manifests) -> None:
    scripts = _console_scripts()
    for name, docs in manifests.deployments.items():
        for container in _containers(docs):
            image = container.get("image")
            if image is None:  # a patch
                continue
            if not str(image).split(":")[0].endswith(IMAGE):
                assert name not in SCRIPTS, f"{name} must run the {IMAGE} image"
                continue
            argv = [*container.get("command", []), *container.get("args", [])]
            assert argv, f"{name}: name the console script (the image's CMD is the registry's)"
            assert argv[0] in scripts, f"{name} runs {argv[0]}, not a console script"
            assert argv[0] == SCRIPTS.get(name), f"{name} runs {argv[0]}"


def _check_ports_and_probes(manifests: Manifests) -> None:
    for name, docs in manifests.deployments.items():
        if name not in SCRIPTS:
            continue
        pod = _pod_spec(docs)
        variables = _tpf_variables(docs, manifests.config_maps)
        (container,) = pod["containers"]
        # Every port the Deployment's documents declare (components add the health port).
        ports = {
            p["name"]: p["containerPort"] for c in _containers(docs) for p in c.get("ports", [])
        }
        ready, live = container["readinessProbe"], container["livenessProbe"]
        if name in SETTINGS and name != "tpf-gateway":
            # gRPC services serve grpc.health.v1 on TPF_GRPC_PORT: a native grpc probe.
            port = int(variables["TPF_GRPC_PORT"])
            assert ports["grpc"] == port, name
            # Under TLS (the mtls component) kubelet's plain-text gRPC probes use the
            # plain-text health port instead.
            probe_ports = {port, int(variables.get("TPF_HEALTH_PORT", port))}
            startup = [container["startupProbe"]] if "startupProbe" in container else []
            assert all(p["grpc"]["port"] in probe_ports for p in [ready, live, *startup]), name
            assert probe_ports <= set(ports.values()), name
        elif name == "tpf-gateway":
            assert ports["http"] == int(variables["TPF_GATEWAY_PORT"])
            probe_names = {"http"}
            if "TPF_GATEWAY_HEALTH_PORT" in variables:
                probe_names.add("health")
                assert ports["health"] == int(variables["TPF_GATEWAY_HEALTH_PORT"])
            assert {ready["httpGet"]["port"], live["httpGet"]["port"]} <= probe_names
            assert ready["httpGet"]["path"] == "/q/health/ready"
            assert live["httpGet"]["path"] == "/q/health/live"
        security = container["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert "resources" in container and "limits" in container["resources"], name


def _check_grace_periods(manifests: Manifests) -> None:
    for name, settings_cls in SETTINGS.items():
        if name not in manifests.deployments:
            continue
        docs = manifests.deployments[name]
        variables = _tpf_variables(docs, manifests.config_maps)
        needed = _setting("TPF_SHUTDOWN_GRACE_S", variables, settings_cls)
        if settings_cls is DispatcherSettings:
            # SIGTERM drains in-flight work first, then the server stops with its grace.
            needed += _setting("TPF_DRAIN_TIMEOUT_S", variables, settings_cls)
        grace = _pod_spec(docs)["terminationGracePeriodSeconds"]
        assert grace > needed, f"{name}: SIGKILL after {grace}s cuts a {needed}s shutdown short"


def _check_targets(manifests: Manifests, services: dict[str, set[int]]) -> None:
    """TPF_*_TARGET values and the worker's addresses name a Service and one of its ports."""
    for name, docs in manifests.deployments.items():
        addresses = [
            value
            for key, value in _tpf_variables(docs, manifests.config_maps).items()
            if key.endswith("_TARGET")
        ]
        if name == EXAMPLE_WORKER:
            for container in _containers(docs):
                args = parse_args([*container.get("command", []), *container["args"]][1:])
                addresses += [args.registry_target, args.advertise]
        for address in addresses:
            host, _, port = address.rpartition(":")
            assert int(port) in services.get(host, set()), f"{name}: no Service for {address}"


def _services(docs: Iterable[Document]) -> dict[str, set[int]]:
    return {
        d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]}
        for d in docs
        if d.get("kind") == "Service"
    }


def _check_all(manifests: Manifests, services: dict[str, set[int]]) -> None:
    _check_variables(manifests)
    _check_commands(manifests)
    _check_ports_and_probes(manifests)
    _check_grace_periods(manifests)
    _check_targets(manifests, services)


# ---------------------------------------------------------------------------------------------
# Tests on the tree as written


def test_kustomizations_name_existing_files() -> None:
    kustomizations = _kustomizations()
    assert {p.parent.relative_to(DEPLOY).as_posix() for p, _ in kustomizations} >= {
        "base",
        "overlays/dev",
        "overlays/production",
        "components/sqs-bridge",
        "components/redis-leases",
        "components/mtls",
    }
    for path, spec in kustomizations:
        referenced = [*spec.get("resources", []), *spec.get("components", [])]
        referenced += [p["path"] for p in spec.get("patches", []) if "path" in p]
        for generator in [*spec.get("configMapGenerator", []), *spec.get("secretGenerator", [])]:
            referenced += [f.partition("=")[2] or f for f in generator.get("files", [])]
            referenced += generator.get("envs", [])
        for relative in referenced:
            assert (path.parent / relative).exists(), (path, relative)


def test_every_deployment_is_consistent() -> None:
    _check_all(_written(), _services(_documents()))


def test_every_suite_deployment_is_known() -> None:
    deployments = _written().deployments
    assert set(SCRIPTS) <= set(deployments)
    for name, docs in deployments.items():
        images = {c.get("image") for c in _containers(docs)} - {None}
        assert name in SCRIPTS or IMAGE not in images, f"map {name} to its settings"


def test_dev_overlay_generates_every_secret_it_needs() -> None:
    dev = yaml.safe_load((DEPLOY / "overlays" / "dev" / "kustomization.yaml").read_text())
    generated: dict[str, set[str]] = {}
    for generator in dev["secretGenerator"]:
        keys = {name for name, _ in _literal_pairs(generator.get("literals", []))}
        # A `files` entry is `path` (key: the file's name) or `key=path`.
        keys |= {
            f.partition("=")[0] if "=" in f else Path(f).name for f in generator.get("files", [])
        }
        generated[generator["name"]] = keys
    in_dev = [d for d in _documents() if d.get("kind") == "Deployment" and "selector" in d["spec"]]
    in_dev = [d for d in in_dev if d["metadata"]["name"] != "tpf-sqs-bridge"]
    for container in _containers(in_dev):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None and not ref.get("optional", False):
                assert ref["key"] in generated.get(ref["name"], set()), ref
    for doc in in_dev:
        for volume in doc["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in generated, volume


def test_dev_tokens_grant_every_service_token() -> None:
    dev = yaml.safe_load((DEPLOY / "overlays" / "dev" / "kustomization.yaml").read_text())
    grants = json.loads((DEPLOY / "overlays" / "dev" / "tokens.json").read_text())
    granted = {g["token"] for g in grants}
    (tokens,) = [g for g in dev["secretGenerator"] if g["name"] == "tpf-tokens"]
    for key, value in _literal_pairs(tokens["literals"]):
        if key != "resume-token-secret":
            assert value in granted, f"tpf-tokens/{key} is not a grant of tokens.json"


def test_the_image_default_runs_a_console_script_and_the_dev_overlay_its_trial_target() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^CMD\s+(\[.*\])\s*$", dockerfile, re.MULTILINE)
    assert match is not None
    assert json.loads(match.group(1))[0] in _console_scripts()
    # The dev overlay's dispatcher and example worker import restaurant_approval: only the
    # Dockerfile's `trial` target installs it.
    dev = yaml.safe_load((DEPLOY / "overlays" / "dev" / "kustomization.yaml").read_text())
    assert {"name": IMAGE, "newTag": "trial"} in dev["images"]
    assert re.search(r"^FROM \S+ AS trial$", dockerfile, re.MULTILINE)
    assert "scripts/stage-image.sh /app/.venv --example" in dockerfile


# ---------------------------------------------------------------------------------------------
# Rendered with kubectl (make test installs it)

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
BRIDGE_QUEUES: Document = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "tpf-sqs-bridge-config"},
    "data": {"TPF_SQS_SUBMIT_QUEUE_URL": QUEUE},
}


def _rendered(docs: list[Document]) -> Manifests:
    manifests = Manifests()
    for doc in docs:
        manifests.add(doc)
    return manifests


@needs_kubectl
@pytest.mark.parametrize("directory", ["base", "overlays/dev", "overlays/production"])
def test_rendered_manifests_are_consistent(directory: str) -> None:
    docs = render(DEPLOY / directory)
    _check_all(_rendered(docs), _services(docs))


@needs_kubectl
def test_components_render_on_the_dev_overlay(tmp_path: Path) -> None:
    docs = compose(
        tmp_path,
        namespace="tpf-dev",
        resources=["overlays/dev"],
        components=["components/sqs-bridge", "components/redis-leases"],
        # How the component's comment says to set the queues.
        patches=[BRIDGE_QUEUES],
    )
    manifests = _rendered(docs)
    _check_all(manifests, _services(docs))
    assert "tpf-sqs-bridge" in manifests.deployments
    coordinator = _tpf_variables(manifests.deployments["tpf-coordinator"], manifests.config_maps)
    assert "TPF_REDIS_URL" in coordinator
    bridge = _tpf_variables(manifests.deployments["tpf-sqs-bridge"], manifests.config_maps)
    assert bridge["TPF_SQS_SUBMIT_QUEUE_URL"] == QUEUE
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"tpf-dev"}


@needs_kubectl
def test_the_mtls_component_gives_every_service_its_certificate(tmp_path: Path) -> None:
    docs = compose(
        tmp_path,
        namespace="tpf",
        resources=["overlays/production"],
        # Components patch what is there when they run: the bridge first.
        components=["components/sqs-bridge", "components/mtls"],
        patches=[BRIDGE_QUEUES],
    )
    manifests = _rendered(docs)
    _check_all(manifests, _services(docs))
    certificates = {
        d["spec"]["secretName"]: d["spec"].get("dnsNames", [])
        for d in docs
        if d["kind"] == "Certificate"
    }
    for name, docs_of in manifests.deployments.items():
        variables = _tpf_variables(docs_of, manifests.config_maps)
        pod = _pod_spec(docs_of)
        (secret,) = [v["secret"]["secretName"] for v in pod["volumes"] if v["name"] == "tls"]
        # Its certificate names the Service its clients dial.
        assert name in certificates[secret], name
        (container,) = pod["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        files = {k: v for k, v in variables.items() if k.startswith("TPF_TLS_")}
        assert all(path.startswith(mounts["tls"] + "/") for path in files.values()), name
        expected = {
            "TPF_TLS_CERT_FILE",
            "TPF_TLS_KEY_FILE",
            "TPF_TLS_CA_FILE",
            "TPF_TLS_CLIENT_CERT_FILE",
            "TPF_TLS_CLIENT_KEY_FILE",
        }
        if name != "tpf-gateway":  # REST clients and kubelet have no client certificate
            expected.add("TPF_TLS_CLIENT_CA_FILE")
        assert set(files) == expected, name
        # kubelet's probes have no TLS: they use the plain-text health port.
        probes = [container[p] for p in ("readinessProbe", "livenessProbe", "startupProbe")]
        if name == "tpf-gateway":
            assert all(p["httpGet"]["port"] == "health" for p in probes)
        else:
            health = int(variables["TPF_HEALTH_PORT"])
            assert all(p["grpc"]["port"] == health for p in probes), name
