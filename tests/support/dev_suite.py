"""`make dev`'s launcher (`python -m tpf_devserver`) run as a user runs it, on free ports.

Shared by the devserver tests and the crash campaign (tests/chaos): start it, find its children
(the embedded Postgres, every service, moto), check that each serves, read its output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import psutil
import psycopg

from tests.harness.ports import free_port
from tests.harness.wait import wait_until_sync
from tpf_devserver.settings import DEMO_TOKEN
from tpf_devserver.supervisor import grpc_listening, http_ok, is_serving

TENANT: Final = "restaurant-demo"
PIPELINE_ID: Final = "org.pipelineframework.restaurantapproval"
# The services `make dev` serves /metrics for (TPF_<NAME>_METRICS_PORT).
METERED: Final = ("REGISTRY", "COORDINATOR", "DISPATCHER", "GATEWAY", "SQS_BRIDGE")
# Each child of the launcher, by the name its supervisor logs, and how to recognise it: the
# module of `python -m <module>`, or the postmaster's command name.
CHILD_MODULES: Final = {
    "registry": "tpf_registry",
    "coordinator": "tpf_coordinator",
    "dispatcher": "tpf_dispatcher",
    "worker": "tpf_worker",
    "gateway": "tpf_gateway",
    "sqs": "moto.server",
    "sqs-bridge": "tpf_sqs_bridge",
}
POSTGRES: Final = "postgres"
_BANNER_DONE = "Ctrl-C stops everything"
_START_TIMEOUT_S = 180.0


class DevSuite:
    def __init__(
        self,
        ports: dict[str, int],
        output: Path,
        process: subprocess.Popen[bytes],
        data_dir: Path,
    ) -> None:
        self.ports = ports
        self.output = output
        self.process = process
        self.data_dir = data_dir

    @property
    def banner(self) -> str:
        """Everything the launcher printed so far (banner and supervisor log lines)."""
        return self.output.read_text(errors="replace")

    @property
    def database_url(self) -> str:
        found = re.search(r"^\s*postgres\s+(postgresql://\S+)", self.banner, re.MULTILINE)
        assert found is not None, self.banner
        return found.group(1)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TPF_DATA_DIR": str(self.data_dir),
            "TPF_REGISTRY_TARGET": f"127.0.0.1:{self.ports['REGISTRY']}",
            "TPF_COORDINATOR_TARGET": f"127.0.0.1:{self.ports['COORDINATOR']}",
            "TPF_TOKEN": DEMO_TOKEN,
            "TPF_TENANT": TENANT,
            "TPF_PIPELINE": PIPELINE_ID,
        }

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name.upper().replace('-', '_')]}"

    def children(self) -> dict[str, psutil.Process]:
        """The launcher's live children by name (`postgres`, `registry`, ..., `sqs-bridge`)."""
        found: dict[str, psutil.Process] = {}
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return found
        for child in children:
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
                command = child.cmdline()
                name = child.name()
            except psutil.NoSuchProcess:
                continue
            if name == POSTGRES:
                found[POSTGRES] = child
                continue
            module = command[command.index("-m") + 1] if "-m" in command else ""
            for service, wanted in CHILD_MODULES.items():
                if module == wanted:
                    found[service] = child
        return found

    def serves(self, name: str) -> bool:
        """Whether child `name` answers as clients use it (SQL, gRPC health, HTTP, gRPC)."""
        if name == POSTGRES:
            try:
                with psycopg.connect(self.database_url, connect_timeout=2) as conn:
                    return conn.execute("SELECT 1").fetchone() == (1,)
            except psycopg.OperationalError:
                return False
        if name == "gateway":
            return http_ok(f"http://{self.target(name)}/q/health/ready")()
        if name == "sqs":
            return http_ok(f"http://{self.target(name)}/moto-api/")()
        if name == "worker":
            return grpc_listening(self.target(name))()
        return is_serving(self.target(name))

    def wait_until_replaced(
        self, name: str, old_pid: int, lines_before: int, timeout_s: float
    ) -> float:
        """Until another process than `old_pid` serves as child `name`, then until the
        supervisor logged it serving again (its `lines_before`-th such line was the last).
        Returns when (time.monotonic()) the new process was first seen serving."""

        def replaced() -> bool:
            replacement = self.children().get(name)
            return replacement is not None and replacement.pid != old_pid and self.serves(name)

        wait_until_sync(replaced, timeout_s=timeout_s, what=f"{name} serving again")
        serving_at = time.monotonic()
        wait_until_sync(
            lambda: self.serving_again_lines(name) > lines_before,
            timeout_s=10,
            what=f"the supervisor's line about {name}",
        )
        return serving_at

    def serving_again_lines(self, name: str) -> int:
        """How often the supervisor logged `name` serving again after it exited."""
        return self.banner.count(f" {name} is serving again")

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "tpf_cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json"))

    def http(self, method: str, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports['GATEWAY']}{path}",
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {DEMO_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def interrupt(self, timeout_s: float = 90.0) -> int:
        """Ctrl-C, as in the terminal; the launcher's exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout_s)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return children


@contextmanager
def dev_suite(
    data_dir: Path, output: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[DevSuite]:
    """The launcher on free ports with its data in `data_dir`, up once its banner is printed;
    killed (its whole process group) on the way out if it still runs."""
    names: tuple[str, ...] = ("REGISTRY", "COORDINATOR", "DISPATCHER", "WORKER", "GATEWAY")
    names += ("SQS", "SQS_BRIDGE", *(f"{name}_METRICS" for name in METERED))
    ports = {name: free_port() for name in names}
    env = {**os.environ, "TPF_DATA_DIR": str(data_dir), **(extra_env or {})}
    env.update({f"TPF_{name}_PORT": str(port) for name, port in ports.items()})
    env.pop("TPF_DATABASE_URL", None)
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tpf_devserver"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    suite = DevSuite(ports, output, process, data_dir)
    try:
        wait_until_sync(
            lambda: _BANNER_DONE in suite.banner or process.poll() is not None,
            timeout_s=_START_TIMEOUT_S,
            what="the dev suite's banner",
        )
        assert process.poll() is None, suite.banner
        yield suite
    finally:
        if process.poll() is None:
            # The children run in sessions of their own: SIGINT lets the launcher stop them.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                left = descendants(process.pid)
                process.kill()
                process.wait()
                for child in left:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()
