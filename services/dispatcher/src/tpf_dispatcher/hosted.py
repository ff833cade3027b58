"""Python pipelines run inside the dispatcher (`TPF_LOCAL_PIPELINES`), serving the workers
registered with protocol `local` whose identity is theirs (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tpf_worker import WorkerIdentity, WorkerRuntime
from tpf_worker.protocol.capability import Capability
from tpf_worker.release import identity_of, load_pipeline
from tpf_worker.transports.local import LocalWorkerClient


@dataclass(frozen=True, slots=True)
class HostedPipeline:
    """One loaded pipeline and the in-process client that runs its commands."""

    spec: str
    identity: WorkerIdentity
    capability: Capability
    client: LocalWorkerClient


class HostedPipelines:
    """The loaded pipelines. A hosted pipeline serves every release of its own contract: what
    matches is the pipeline id and contract version, plus the artifact digest where both the
    release and the build name one; the release-version label does not matter."""

    def __init__(self, hosted: Sequence[HostedPipeline]) -> None:
        self._hosted = tuple(hosted)

    def find(
        self, pipeline_id: str, contract_version: str, artifact_digest: str = ""
    ) -> HostedPipeline | None:
        for hosted in self._hosted:
            identity = hosted.identity
            if (identity.pipeline_id, identity.contract_version) != (
                pipeline_id,
                contract_version,
            ):
                continue
            digests_named = bool(artifact_digest and identity.artifact_digest)
            if digests_named and artifact_digest != identity.artifact_digest:
                continue
            return hosted
        return None

    def __iter__(self) -> Iterator[HostedPipeline]:
        return iter(self._hosted)

    def __len__(self) -> int:
        return len(self._hosted)


def load_hosted_pipelines(specs: Sequence[str]) -> HostedPipelines:
    """Import each `package.module:ATTRIBUTE` and wrap it in a runtime with its own identity.

    Raises whatever `load_pipeline` raises for a bad spec: the process must not start with a
    pipeline missing.
    """
    hosted = []
    for spec in specs:
        pipeline = load_pipeline(spec)
        identity = identity_of(pipeline)
        runtime = WorkerRuntime(pipeline, identity)
        capability = runtime.capability("local")
        client = LocalWorkerClient(runtime.execute, capability)
        hosted.append(HostedPipeline(spec, identity, capability, client))
    return HostedPipelines(hosted)
