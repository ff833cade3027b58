"""The TypeScript package (clients/typescript) for tests: dependencies installed with `npm ci`
and the code compiled with `tsc`, each redone only when its inputs changed, under a file lock
so concurrent sessions never install or build at once. Node.js and npm must be on PATH: a
missing toolchain fails the test (CI installs them with `make system-deps`), it never skips it.

Also builds the release of a pipeline declared in TypeScript: the worker prints its steps
(`describe`), and the Python SDK's release build writes the contract jar and descriptor for them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tpf_worker import Pipeline, StepContext
from tpf_worker.release import BuiltRelease, build_release

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "clients" / "typescript"
_NPM_INPUTS = ("package.json", "package-lock.json", ".npmrc")
_BUILD_INPUTS = ("tsconfig.json", "src", "examples")
_NPM_STAMP = "node_modules/.tpf-lock.sha256"
_BUILD_STAMP = "dist/.tpf-build.sha256"
_NPM_CI_TIMEOUT_S = 300
_TSC_TIMEOUT_S = 300
_CALL_TIMEOUT_S = 60
MIN_NODE_MAJOR = 20


def _digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _files(names: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for name in names:
        path = PACKAGE_DIR / name
        if path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file())
        else:
            found.append(path)
    return found


def _run(command: list[str], timeout_s: float) -> None:
    result = subprocess.run(
        command,
        cwd=PACKAGE_DIR,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"


def _refresh(stamp: Path, expected: str, command: list[str], timeout_s: float) -> None:
    if stamp.exists() and stamp.read_text().strip() == expected:
        return
    _run(command, timeout_s)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(expected + "\n")


@dataclass(frozen=True)
class TypeScriptPackage:
    """clients/typescript, installed and compiled; `node` runs its compiled scripts."""

    node: str

    def script(self, name: str) -> list[str]:
        """The command running `examples/<name>.ts` as compiled."""
        return [self.node, str(PACKAGE_DIR / "dist" / "examples" / f"{name}.js")]

    def run(self, name: str, *args: str, env: dict[str, str] | None = None) -> Any:
        """Runs a compiled example; its one stdout line as JSON, or (exit 1) its stderr error."""
        result = subprocess.run(
            [*self.script(name), *args],
            cwd=PACKAGE_DIR,
            env={**_base_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=_CALL_TIMEOUT_S,
            check=False,
        )
        if result.returncode == 0:
            [line] = result.stdout.splitlines()
            return json.loads(line)
        assert result.returncode == 1 and result.stdout == "", (result.stdout, result.stderr)
        [line] = result.stderr.splitlines()
        raise TypeScriptCallFailed(json.loads(line)["error"])


class TypeScriptCallFailed(Exception):
    """A TypeScript example exited 1; `error` is the JSON error it printed."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(json.dumps(error))
        self.error = error


def _base_env() -> dict[str, str]:
    return {key: os.environ[key] for key in ("PATH", "HOME", "TMPDIR", "LANG") if key in os.environ}


def _node_major(node: str) -> int:
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return int(version.strip().lstrip("v").split(".")[0])


def prepare_package() -> TypeScriptPackage:
    """`npm ci` and `tsc` in clients/typescript when their inputs changed since the last run."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node is not None and npm is not None, (
        "the TypeScript tests need `node` and `npm` on PATH (`make system-deps` installs them)"
    )
    major = _node_major(node)
    assert major >= MIN_NODE_MAJOR, f"the TypeScript client needs Node.js >= 20, found {major}"
    with (PACKAGE_DIR / ".tpf-prepare.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _refresh(
            PACKAGE_DIR / _NPM_STAMP,
            _digest(_files(_NPM_INPUTS)),
            [npm, "ci", "--no-audit", "--no-fund"],
            _NPM_CI_TIMEOUT_S,
        )
        _refresh(
            PACKAGE_DIR / _BUILD_STAMP,
            _digest(_files((*_NPM_INPUTS, *_BUILD_INPUTS))),
            [str(PACKAGE_DIR / "node_modules" / ".bin" / "tsc"), "-p", "."],
            _TSC_TIMEOUT_S,
        )
    return TypeScriptPackage(node=node)


def _unused_step(value: Any, ctx: StepContext) -> Any:
    raise AssertionError("a TypeScript pipeline's steps run in the TypeScript worker")


def pipeline_of(description: dict[str, Any]) -> Pipeline:
    """The Python declaration of a pipeline described by a TypeScript worker (`describe`): the
    same step names, services, types and await settings, so the same contract."""
    pipeline = Pipeline(description["pipelineId"])
    for step in description["steps"]:
        if step["kind"] == "await":
            settings = step["await"]
            pipeline.await_step(
                step["name"],
                service=step["service"],
                input_type=step["inputType"],
                output_type=step["outputType"],
                timeout=timedelta(milliseconds=settings["timeoutMs"]),
                idempotency_key_fields=tuple(settings["idempotencyKeyFields"]),
                transport_type=settings["transportType"],
                correlation_strategy=settings["correlationStrategy"],
            )
        else:
            pipeline.step(
                step["name"],
                service=step["service"],
                input_type=step["inputType"],
                output_type=step["outputType"],
            )(_unused_step)
    return pipeline


def build_typescript_release(
    package: TypeScriptPackage, worker: str, out_dir: Path
) -> BuiltRelease:
    """The release (jar, descriptor, policy) of the pipeline `examples/<worker>.ts` serves."""
    return build_release(pipeline_of(package.run(worker, "describe")), out_dir)
