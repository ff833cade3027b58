"""Put the example release in place on a running registry: register, activate (both idempotent).

`make dev` runs this on every start, so a second run on the same data finds the release already
registered and active and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import json_format

from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import release_service_pb2_grpc

_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ReleaseToActivate:
    tenant_id: str
    pipeline_id: str
    release_version: str
    descriptor_path: str
    # `tpf.registry.v1.ReleasePolicy` in protobuf JSON (what `tpf release build` writes).
    policy_json: str = ""


def register_and_activate(target: str, token: str, release: ReleaseToActivate) -> bool:
    """Register the release from its descriptor and make it active; True if activation changed."""
    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(target) as channel:
        releases = release_service_pb2_grpc.ReleaseServiceStub(channel)
        request = rpb.RegisterReleaseRequest(
            tenant_id=release.tenant_id,
            pipeline_id=release.pipeline_id,
            release_descriptor_path=release.descriptor_path,
        )
        if release.policy_json:
            json_format.Parse(release.policy_json, request.policy)
        releases.RegisterRelease(
            request,
            metadata=metadata,
            timeout=_TIMEOUT_S,
        )
        try:
            active = releases.GetActiveRelease(
                rpb.GetActiveReleaseRequest(
                    tenant_id=release.tenant_id, pipeline_id=release.pipeline_id
                ),
                metadata=metadata,
                timeout=_TIMEOUT_S,
            )
            if active.release.release_version == release.release_version:
                return False
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=release.tenant_id,
                pipeline_id=release.pipeline_id,
                release_version=release.release_version,
                reason="make dev: the example release",
            ),
            metadata=metadata,
            timeout=_TIMEOUT_S,
        )
        return True
