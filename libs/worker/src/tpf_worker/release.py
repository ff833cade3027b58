"""Build a pipeline's release: a TPF-format jar with its contract, and the release descriptor.

The jar is a zip named `<artifactId>-<version>.jar` holding `META-INF/MANIFEST.MF` and
`META-INF/pipeline/pipeline-contract.json`, written the way TPF's build writes the contract
(TPF_WIRE §8.1): every key, pretty-printed, `contractHash` = SHA-256 of the compact Gson-style
JSON of the contract without version and hash, `contractVersion` = `sha256:<contractHash>`
(`tpf_worker.contract_hash`). Entries carry a fixed timestamp and order, so the same pipeline
always gives the same bytes and digest: rebuilding and re-registering is a no-op, not a version
conflict.

Next to the jar go `pipeline-release.json` (the descriptor RegisterRelease reads, §8.2) and
`release-policy.json` (the release's retry and dispatch policy, `tpf.registry.v1.ReleasePolicy`
in proto JSON, for RegisterRelease's `policy` field).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from google.protobuf import duration_pb2, json_format

from tpf.registry.v1 import release_pb2
from tpf_worker.contract_hash import (
    catalog_fingerprint,
    gson_escapes,
    sealed_contract,
    without_nulls,
)
from tpf_worker.pipeline import Pipeline, RetryPolicy, StepDefinition
from tpf_worker.runtime import WorkerIdentity

CONTRACT_PATH: Final = "META-INF/pipeline/pipeline-contract.json"
MANIFEST_PATH: Final = "META-INF/MANIFEST.MF"
DESCRIPTOR_NAME: Final = "pipeline-release.json"
POLICY_NAME: Final = "release-policy.json"

# Zip entries need a date; the earliest a zip can hold keeps every build byte-identical.
_FIXED_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)
_ARTIFACT_CAPABILITIES: Final = {
    "local": "local-transition-execution",
    "rest": "rest-transition-worker",
    "grpc": "grpc-transition-worker",
    "sqs": "sqs-transition-worker",
}
_DISPATCH_MODES: Final = {
    "step": release_pb2.DISPATCH_MODE_STEP,
    "segment": release_pb2.DISPATCH_MODE_SEGMENT,
}


class PipelineLoadError(ValueError):
    """`load_pipeline` could not find a `Pipeline` at the given spec; the message says why."""


@dataclass(frozen=True)
class BuiltRelease:
    """A built release on disk, ready for RegisterRelease."""

    jar_path: Path
    descriptor_path: Path
    policy_path: Path
    contract: dict[str, Any]
    descriptor: dict[str, Any]
    policy: dict[str, Any]
    identity: WorkerIdentity

    @property
    def pipeline_id(self) -> str:
        return self.identity.pipeline_id

    @property
    def contract_version(self) -> str:
        return self.identity.contract_version

    @property
    def release_version(self) -> str:
        return self.identity.release_version

    @property
    def artifact_id(self) -> str:
        return self.identity.artifact_id

    @property
    def digest(self) -> str:
        return self.identity.artifact_digest


def build_release(
    pipeline: Pipeline,
    out_dir: Path,
    *,
    release_version: str | None = None,
    artifact_id: str | None = None,
) -> BuiltRelease:
    """Write the jar, descriptor and policy into `out_dir` (created if missing).

    The release version defaults to the jar's digest (`sha256:<hex>`), so it names exactly this
    artifact: a rebuild of the same pipeline is the same release, a changed contract or SDK
    output is a new one. (TPF's demo uses the contract version; pass it explicitly to do the
    same.) The artifact id defaults to the pipeline's. Files of an earlier build with the same
    names are replaced.
    """
    contract = contract_of(pipeline)
    jar_bytes = jar_of(contract)
    identity = _identity(pipeline, contract, jar_bytes, release_version, artifact_id)
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    jar_path = out_dir / f"{_file_safe(identity.artifact_id)}-{_file_safe(_short(identity))}.jar"
    jar_path.write_bytes(jar_bytes)
    descriptor = descriptor_of(pipeline, identity, jar_path)
    descriptor_path = out_dir / DESCRIPTOR_NAME
    descriptor_path.write_text(json.dumps(descriptor, indent=2) + "\n", encoding="utf-8")
    policy = policy_of(pipeline)
    policy_path = out_dir / POLICY_NAME
    policy_path.write_text(json.dumps(policy, indent=2) + "\n", encoding="utf-8")
    return BuiltRelease(
        jar_path=jar_path,
        descriptor_path=descriptor_path,
        policy_path=policy_path,
        contract=contract,
        descriptor=descriptor,
        policy=policy,
        identity=identity,
    )


def identity_of(
    pipeline: Pipeline, *, release_version: str | None = None, artifact_id: str | None = None
) -> WorkerIdentity:
    """The identity `build_release` would give the same pipeline, without writing files."""
    contract = contract_of(pipeline)
    return _identity(pipeline, contract, jar_of(contract), release_version, artifact_id)


def load_pipeline(spec: str) -> Pipeline:
    """The `Pipeline` named by `package.module:ATTRIBUTE`."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise PipelineLoadError(f"pipeline spec {spec!r} must look like package.module:ATTRIBUTE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise PipelineLoadError(f"cannot import {module_name!r}: {error}") from error
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise PipelineLoadError(f"{module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(value, Pipeline):
        raise PipelineLoadError(f"{spec} is a {type(value).__name__}, not a tpf_worker.Pipeline")
    return value


def contract_of(pipeline: Pipeline) -> dict[str, Any]:
    """The contract TPF's build would write for `pipeline`, keys in TPF's order (§8.1)."""
    canonical_types: dict[str, Any] = {}
    body: dict[str, Any] = {
        "schemaVersion": 1,
        "pipelineId": pipeline.pipeline_id,
        "platform": pipeline.platform,
        "transport": pipeline.transport,
        "module": pipeline.module,
        "pluginHost": pipeline.plugin_host,
        "runtimeLayout": pipeline.runtime_layout,
        "steps": [_step_descriptor(step) for step in pipeline.steps],
        "canonicalTypes": canonical_types,
        "canonicalCatalogFingerprint": catalog_fingerprint(canonical_types),
        "capabilities": {
            "localTransitionExecution": pipeline.local_transition_execution,
            "transitionWorkerProtocols": list(pipeline.worker_protocols),
        },
    }
    return sealed_contract(body)


def jar_of(contract: dict[str, Any]) -> bytes:
    """The jar's bytes: manifest and pretty-printed contract, fixed order and timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as jar:
        for name, data in (
            (MANIFEST_PATH, b"Manifest-Version: 1.0\nCreated-By: tpf_worker\n"),
            (CONTRACT_PATH, _gson_pretty(contract).encode("utf-8")),
        ):
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            jar.writestr(info, data)
    return buffer.getvalue()


def descriptor_of(pipeline: Pipeline, identity: WorkerIdentity, jar_path: Path) -> dict[str, Any]:
    """The release descriptor (§8.2): exactly the keys TPF's strict parser accepts."""
    return {
        "schemaVersion": 1,
        "pipelineId": identity.pipeline_id,
        "contractVersion": identity.contract_version,
        "releaseVersion": identity.release_version,
        "artifacts": [
            {
                "artifactId": identity.artifact_id,
                "kind": "jar",
                "uri": str(jar_path),
                "digest": identity.artifact_digest,
                "stepIds": [step.name for step in pipeline.steps],
                "capabilities": [_ARTIFACT_CAPABILITIES[p] for p in pipeline.worker_protocols],
            }
        ],
    }


def policy_of(pipeline: Pipeline) -> dict[str, Any]:
    """The release policy as proto JSON of `tpf.registry.v1.ReleasePolicy`."""
    policy = release_pb2.ReleasePolicy(dispatch_mode=_DISPATCH_MODES[pipeline.dispatch_mode])
    if pipeline.default_retry is not None:
        policy.default_retry.CopyFrom(_retry_message(pipeline.default_retry))
    for step in pipeline.steps:
        if step.retry is not None:
            policy.step_retry[step.name].CopyFrom(_retry_message(step.retry))
    return json_format.MessageToDict(policy)


def _identity(
    pipeline: Pipeline,
    contract: dict[str, Any],
    jar_bytes: bytes,
    release_version: str | None,
    artifact_id: str | None,
) -> WorkerIdentity:
    contract_version = str(contract["contractVersion"])
    digest = "sha256:" + hashlib.sha256(jar_bytes).hexdigest()
    return WorkerIdentity(
        pipeline_id=pipeline.pipeline_id,
        contract_version=contract_version,
        release_version=(release_version or "").strip() or digest,
        artifact_id=(artifact_id or "").strip() or pipeline.artifact_id,
        artifact_digest=digest,
    )


def _step_descriptor(step: StepDefinition) -> dict[str, Any]:
    return {
        "index": step.index,
        "authoredName": step.name,
        "kind": step.kind,
        "cardinality": step.cardinality,
        "inputTypeId": step.input_type,
        "outputTypeId": step.output_type,
        "runtimeClass": step.runtime_class,
        "clientClass": step.client_class,
        "awaitTransport": step.awaiting.transport_type if step.awaiting else None,
    }


def _retry_message(retry: RetryPolicy) -> release_pb2.RetryPolicy:
    message = release_pb2.RetryPolicy()
    if retry.max_retries is not None:
        message.max_retries = retry.max_retries
    if retry.initial_delay is not None:
        message.initial_delay.CopyFrom(_duration(retry.initial_delay))
    if retry.multiplier is not None:
        message.multiplier = retry.multiplier
    if retry.max_delay is not None:
        message.max_delay.CopyFrom(_duration(retry.max_delay))
    if retry.jitter is not None:
        message.jitter = retry.jitter
    return message


def _duration(delta: timedelta) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(delta)
    return duration


def _gson_pretty(value: Any) -> str:
    return gson_escapes(json.dumps(without_nulls(value), indent=2, ensure_ascii=False))


def _short(identity: WorkerIdentity) -> str:
    """The release version as a file-name part: a `sha256:` version by its first 12 digits."""
    version = identity.release_version
    return version.removeprefix("sha256:")[:12] if version.startswith("sha256:") else version


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)
