"""`tpf releases ...`: register, activate and read the releases of one tenant's pipeline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from google.protobuf import json_format

from tpf.registry.v1 import activation_pb2, release_pb2
from tpf.registry.v1 import release_service_pb2 as pb
from tpf_cli import output
from tpf_cli.connection import Registry, collect_pages
from tpf_cli.errors import CliError
from tpf_cli.output import Report

UPLOAD_SCHEME = "upload:"
# Kinds the registry records without fetching (release.proto, ReleaseArtifact.kind).
_REMOTE_KINDS = frozenset({"container-image", "lambda-image", "external-endpoint"})


async def register(
    registry: Registry, descriptor: Path, *, upload: bool, policy: Path | None = None
) -> Report:
    """Register from a descriptor the registry reads itself (so `descriptor` must be absolute),
    or (`upload`) one sent inline with its local artifacts; `policy` is a ReleasePolicy JSON."""
    request = pb.RegisterReleaseRequest(
        tenant_id=registry.tenant_id, pipeline_id=registry.pipeline_id
    )
    if policy is not None:
        try:
            json_format.Parse(await asyncio.to_thread(policy.read_text), request.policy)
        except (OSError, json_format.ParseError) as error:
            raise CliError(f"cannot use the policy file {policy}: {error}") from None
    if upload:
        descriptor_json, uploads = await asyncio.to_thread(descriptor_for_upload, descriptor)
        request.release_descriptor_json = descriptor_json
        request.uploaded_artifacts.extend(
            pb.UploadedArtifact(artifact_id=artifact_id, content=content)
            for artifact_id, content in uploads.items()
        )
    else:
        request.release_descriptor_path = str(descriptor)
    response = await registry.releases.RegisterRelease(request, timeout=registry.timeout_s)
    release = response.release
    heading = (
        f"release {release.release_version} was already registered with the same metadata"
        if response.duplicate
        else f"registered release {release.release_version}"
    )
    return Report(response, f"{heading}\n{output.release_details(release)}")


def descriptor_for_upload(descriptor: Path) -> tuple[str, dict[str, bytes]]:
    """The descriptor with each local artifact URI rewritten to `upload:<artifactId>`, and the
    bytes to send under each artifact id.

    Local means what the registry would read from its own disk: an absolute path, a `file:`
    URI, or a path relative to the descriptor's directory. `s3://` URIs and remote kinds
    (container images, endpoints) stay as they are: the registry fetches or records those itself.
    """
    try:
        document: Any = json.loads(descriptor.read_text(encoding="utf-8"))
    except OSError as error:
        raise CliError(f"cannot read descriptor {descriptor}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CliError(f"descriptor {descriptor} is not valid JSON: {error}") from None
    uploads: dict[str, bytes] = {}
    sources: dict[str, Path] = {}
    artifacts = document.get("artifacts") if isinstance(document, dict) else None
    # Anything malformed is sent unchanged: the registry's DESCRIPTOR_INVALID says precisely why.
    for artifact in artifacts if isinstance(artifacts, list) else []:
        if not isinstance(artifact, dict):
            continue
        artifact_id, kind, uri = (artifact.get(k) for k in ("artifactId", "kind", "uri"))
        if not (isinstance(artifact_id, str) and isinstance(uri, str)):
            continue
        if isinstance(kind, str) and kind.strip().lower() in _REMOTE_KINDS:
            continue
        path = _local_path(uri, base_dir=descriptor.parent)
        if path is None:
            continue
        if sources.setdefault(artifact_id, path) != path:
            raise CliError(
                f"artifact id {artifact_id} names two files: {sources[artifact_id]}, {path}"
            )
        if artifact_id not in uploads:
            uploads[artifact_id] = _read_artifact(artifact_id, path)
        artifact["uri"] = UPLOAD_SCHEME + artifact_id
    return json.dumps(document, indent=2), uploads


def _local_path(uri: str, *, base_dir: Path) -> Path | None:
    if uri.startswith(UPLOAD_SCHEME):
        return None
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path)) if parts.netloc in ("", "localhost") else None
    if "://" in uri:
        return None
    path = Path(uri)
    return path if path.is_absolute() else base_dir / path


def _read_artifact(artifact_id: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CliError(
            f"cannot read artifact {artifact_id} at {path}: {error.strerror or error}"
        ) from None


async def activate(registry: Registry, version: str, *, reason: str) -> Report:
    response = await registry.releases.ActivateRelease(
        pb.ActivateReleaseRequest(
            tenant_id=registry.tenant_id,
            pipeline_id=registry.pipeline_id,
            release_version=version,
            reason=reason,
        ),
        timeout=registry.timeout_s,
    )
    if response.HasField("activation"):
        activation = response.activation
        previous = activation.previous_release_version or "none"
        heading = (
            f"activated release {activation.release_version} "
            f"(previously {previous}; activation {activation.sequence})"
        )
    else:
        heading = f"release {response.release.release_version} was already active"
    return Report(response, f"{heading}\n{output.release_details(response.release)}")


async def list_releases(registry: Registry, *, page_size: int) -> Report:
    async def page(token: str) -> tuple[list[release_pb2.Release], str]:
        response = await registry.releases.ListReleases(
            pb.ListReleasesRequest(
                tenant_id=registry.tenant_id,
                pipeline_id=registry.pipeline_id,
                page_size=page_size,
                page_token=token,
            ),
            timeout=registry.timeout_s,
        )
        return list(response.releases), response.next_page_token

    releases = await collect_pages(page)
    return Report(pb.ListReleasesResponse(releases=releases), output.release_table(releases))


async def get(registry: Registry, version: str) -> Report:
    response = await registry.releases.GetRelease(
        pb.GetReleaseRequest(
            tenant_id=registry.tenant_id,
            pipeline_id=registry.pipeline_id,
            release_version=version,
        ),
        timeout=registry.timeout_s,
    )
    return Report(response, output.release_details(response.release))


async def active(registry: Registry) -> Report:
    response = await registry.releases.GetActiveRelease(
        pb.GetActiveReleaseRequest(tenant_id=registry.tenant_id, pipeline_id=registry.pipeline_id),
        timeout=registry.timeout_s,
    )
    return Report(response, output.release_details(response.release))


async def activations(registry: Registry, *, page_size: int) -> Report:
    async def page(token: str) -> tuple[list[activation_pb2.Activation], str]:
        response = await registry.releases.ListActivations(
            pb.ListActivationsRequest(
                tenant_id=registry.tenant_id,
                pipeline_id=registry.pipeline_id,
                page_size=page_size,
                page_token=token,
            ),
            timeout=registry.timeout_s,
        )
        return list(response.activations), response.next_page_token

    history = await collect_pages(page)
    return Report(pb.ListActivationsResponse(activations=history), output.activation_table(history))
