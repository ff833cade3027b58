"""A rendered Kubernetes overlay run as local processes: each Deployment as `replicas`
processes of its console script, with the environment its container would get.

What a cluster provides, this provides locally: secrets from a mapping, a free port per replica
for TPF_GRPC_PORT / TPF_GATEWAY_PORT, loopback instead of 0.0.0.0, a directory per volume (or a
shared one for secret volumes), and for each Service name one gRPC target naming every replica
of its Deployment (`ipv4:a,b,c`, what a headless Service gives). Init containers (the `migrate`
commands) run before their pod's container.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp

from tests.harness.ports import free_port
from tests.harness.processes import ChildProcess
from tests.harness.services import ServiceProcess, minimal_environment
from tests.harness.wait import wait_until
from tests.support.kustomize import Document

HOST: Final = "127.0.0.1"
ROOT: Final = Path(__file__).resolve().parents[2]
NAME_LABEL: Final = "app.kubernetes.io/name"
# Console script -> the module `python -m` runs for it.
MODULES: Final = {
    "tpf-registry": "tpf_registry",
    "tpf-coordinator": "tpf_coordinator",
    "tpf-dispatcher": "tpf_dispatcher",
    "tpf-gateway": "tpf_gateway",
    "tpf-sqs-bridge": "tpf_sqs_bridge",
}
PORT_VARIABLES: Final = ("TPF_GRPC_PORT", "TPF_GATEWAY_PORT")
HOST_VARIABLES: Final = ("TPF_GRPC_HOST", "TPF_GATEWAY_HOST")
# A service imports for seconds; a busy machine starting ten of them needs more.
READY_TIMEOUT_S: Final = 120
INIT_TIMEOUT_S: Final = 180


@dataclass
class Template:
    """A rendered Deployment: replicas, the argv of its init containers and its container, and
    its container's environment as the kubelet would give it (secrets from `secrets`)."""

    name: str
    replicas: int
    init_commands: list[list[str]]
    command: list[str]
    env: dict[str, str]
    mounts: dict[str, str] = field(default_factory=dict)  # mount path -> volume name


def container_env(
    container: Document, config_maps: Mapping[str, Mapping[str, str]], secrets: Mapping[str, str]
) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
            continue
        ref = variable["valueFrom"]["secretKeyRef"]
        key = f"{ref['name']}/{ref['key']}"
        if key in secrets:
            env[variable["name"]] = secrets[key]
        else:
            assert ref.get("optional", False), f"the test has no secret {key}"
    return env


def templates(docs: list[Document], secrets: Mapping[str, str]) -> dict[str, Template]:
    config_maps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    found = {}
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        found[doc["metadata"]["name"]] = Template(
            name=doc["metadata"]["name"],
            replicas=doc["spec"]["replicas"],
            init_commands=[
                [*c.get("command", []), *c["args"]] for c in pod.get("initContainers", [])
            ],
            command=[*container.get("command", []), *container["args"]],
            env=container_env(container, config_maps, secrets),
            mounts={m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])},
        )
    return found


def localized(
    template: Template,
    *,
    port: int,
    volumes: Mapping[str, Path],
    targets: Mapping[str, str],
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The template's env for one local replica: its port, loopback, volumes as directories,
    Service addresses as the replicas' target."""
    env = dict(template.env)
    for name in PORT_VARIABLES:
        if name in env:
            env[name] = str(port)
    for name in HOST_VARIABLES:
        if name in env:
            env[name] = HOST
    for key, value in env.items():
        if value in targets:
            env[key] = targets[value]
        for mount_path, volume in template.mounts.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                env[key] = str(volumes[volume]) + value[len(mount_path) :]
    return {**env, **extra}


def replicas_target(ports: list[int]) -> str:
    return "ipv4:" + ",".join(f"{HOST}:{port}" for port in ports)


async def run_to_end(command: list[str], module: str, env: Mapping[str, str]) -> None:
    """An init container: the console script run as `python -m <module> <args>`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *command[1:],
        env={**minimal_environment(), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), INIT_TIMEOUT_S)
    assert process.returncode == 0, output.decode(errors="replace")


@dataclass
class Replica:
    """One local pod: its process and what it needs to be restarted as a new pod."""

    template: Template
    env: dict[str, str]
    process: ServiceProcess | ChildProcess


class LocalCluster:
    """The rendered Deployments as processes, started in ORDER."""

    def __init__(
        self,
        docs: list[Document],
        secrets: Mapping[str, str],
        root: Path,
        secret_volumes: Mapping[str, Path],
    ) -> None:
        self.templates = templates(docs, secrets)
        self.root = root
        # Volumes of secrets (the same files in every pod), by volume name.
        self.secret_volumes = secret_volumes
        self.ports = {
            name: [free_port(HOST) for _ in range(t.replicas)] for name, t in self.templates.items()
        }
        self.services = {
            f"{d['metadata']['name']}:{port['port']}": d["spec"]["selector"][
                "app.kubernetes.io/name"
            ]
            for d in docs
            if d["kind"] == "Service"
            for port in d["spec"]["ports"]
        }
        self.replicas: dict[str, list[Replica]] = {}
        # Every process started, stopped by stop_all() whatever happens.
        self.processes: list[ServiceProcess | ChildProcess] = []

    def target(self, deployment: str) -> str:
        return replicas_target(self.ports[deployment])

    def env_for(self, name: str, index: int, extra: Mapping[str, str]) -> dict[str, str]:
        template = self.templates[name]
        volumes = dict(self.secret_volumes)
        for volume in set(template.mounts.values()) - set(volumes):
            volumes[volume] = self.root / f"{name}-{index}" / volume
            volumes[volume].mkdir(parents=True, exist_ok=True)
        targets = {address: self.target(dep) for address, dep in self.services.items()}
        return localized(
            template, port=self.ports[name][index], volumes=volumes, targets=targets, extra=extra
        )

    async def start(self, name: str, extra: Mapping[str, str]) -> None:
        """Start every replica of Deployment `name` at once, as a scale-up would; each runs its
        init containers first, and counts once it serves."""
        template = self.templates[name]

        async def pod(index: int) -> Replica:
            env = self.env_for(name, index, extra)
            await self.run_init_containers(template, env)
            port = self.ports[name][index]
            process: ServiceProcess | ChildProcess
            if name == "tpf-gateway":
                process = await start_gateway(
                    env, self.root / f"{name}-{index}.log", port, self.processes
                )
            else:
                process = ServiceProcess(
                    MODULES[name],
                    port=port,
                    env={**minimal_environment(), **env},
                    log_path=self.root / f"{name}-{index}.log",
                    cwd=ROOT,
                    ready_timeout_s=READY_TIMEOUT_S,
                )
                self.processes.append(process)
                await asyncio.to_thread(process.start)
            return Replica(template, env, process)

        self.replicas[name] = list(await asyncio.gather(*map(pod, range(template.replicas))))

    async def run_init_containers(self, template: Template, env: Mapping[str, str]) -> None:
        for command in template.init_commands:
            await run_to_end(command, MODULES[template.name], env)

    async def restart(self, name: str, index: int) -> None:
        """One step of a rolling update: stop the pod gracefully, run the new pod's init
        containers, start it and wait until it serves."""
        replica = self.replicas[name][index]
        process = replica.process
        assert isinstance(process, ServiceProcess)
        exit_code = await asyncio.to_thread(process.terminate, 30.0)
        assert exit_code == 0, process.log_text()[-3000:]
        await self.run_init_containers(replica.template, replica.env)
        await asyncio.to_thread(process.start)

    def stop_all(self) -> None:
        """Clients first, then what they call (SIGTERM, SIGKILL after the grace)."""
        for process in reversed(self.processes):
            process.stop()


async def start_gateway(
    env: Mapping[str, str], log: Path, port: int, started: list[ServiceProcess | ChildProcess]
) -> ChildProcess:
    process = ChildProcess(
        [sys.executable, "-m", "tpf_gateway"],
        log_path=log,
        env={**minimal_environment(), **env},
        cwd=ROOT,
    )
    started.append(process)
    process.start()

    async def ready() -> bool:
        process.raise_if_exited("tpf_gateway")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{HOST}:{port}/q/health/ready") as answer,
        ):
            return answer.status == 200

    await wait_until(
        ready, timeout_s=READY_TIMEOUT_S, what="gateway ready", ignore=(aiohttp.ClientError,)
    )
    return process
