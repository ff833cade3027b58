"""tpf.registry.v1.ReleaseService."""

from __future__ import annotations

from typing import Any

import grpc

from tpf.registry.v1 import release_service_pb2 as pb
from tpf.registry.v1 import release_service_pb2_grpc
from tpf_errors import InvalidArgument, ResourceExhausted
from tpf_registry.releases import RegistrationRequest, ReleaseRegistry
from tpf_registry.servicers.access import ADMIN_ROLES, READ_ROLES, authorize
from tpf_registry.servicers.convert import activation_to_proto, policy_from_proto, release_to_proto
from tpf_rpc.paging import Keyset
from tpf_rpc.validation import (
    filters_hash,
    page_size,
    required,
)

MAX_UPLOAD_BYTES = 64 << 20
MAX_REASON_CHARS = 512


Context = grpc.aio.ServicerContext[Any, Any]


class ReleaseServicer(release_service_pb2_grpc.ReleaseServiceServicer):
    def __init__(self, registry: ReleaseRegistry) -> None:
        self._registry = registry

    async def RegisterRelease(
        self, request: pb.RegisterReleaseRequest, context: Context
    ) -> pb.RegisterReleaseResponse:
        principal, tenant = authorize(request.tenant_id, ADMIN_ROLES)
        pipeline = required(request.pipeline_id, "pipelineId")
        uploads: dict[str, bytes] = {}
        total = 0
        for upload in request.uploaded_artifacts:
            name = required(upload.artifact_id, "uploadedArtifacts.artifactId")
            if name in uploads:
                raise InvalidArgument(
                    "FIELD_INVALID",
                    f"Uploaded artifact {name} is sent twice",
                    field="uploadedArtifacts.artifactId",
                    value=name,
                )
            uploads[name] = upload.content
            total += len(upload.content)
        if total > MAX_UPLOAD_BYTES:
            raise ResourceExhausted(
                "PAYLOAD_TOO_LARGE",
                "Uploaded artifacts exceed 64 MiB; put them on S3 or a shared path instead",
                limitBytes=MAX_UPLOAD_BYTES,
                sizeBytes=total,
            )
        outcome = await self._registry.register(
            RegistrationRequest(
                tenant_id=tenant,
                pipeline_id=pipeline,
                descriptor_path=request.release_descriptor_path,
                descriptor_json=request.release_descriptor_json,
                uploads=uploads,
                policy=policy_from_proto(request.policy),
            ),
            actor=principal.subject,
        )
        return pb.RegisterReleaseResponse(
            release=release_to_proto(outcome.release), duplicate=not outcome.created
        )

    async def ActivateRelease(
        self, request: pb.ActivateReleaseRequest, context: Context
    ) -> pb.ActivateReleaseResponse:
        principal, tenant = authorize(request.tenant_id, ADMIN_ROLES)
        pipeline = required(request.pipeline_id, "pipelineId")
        version = required(request.release_version, "releaseVersion")
        if len(request.reason) > MAX_REASON_CHARS:
            raise InvalidArgument(
                "FIELD_OUT_OF_RANGE",
                f"reason is longer than {MAX_REASON_CHARS} characters",
                field="reason",
                max=MAX_REASON_CHARS,
            )
        release, activation = await self._registry.activate(
            tenant, pipeline, version, actor=principal.subject, reason=request.reason.strip()
        )
        response = pb.ActivateReleaseResponse(release=release_to_proto(release))
        if activation is not None:
            response.activation.CopyFrom(activation_to_proto(activation))
        return response

    async def GetRelease(
        self, request: pb.GetReleaseRequest, context: Context
    ) -> pb.GetReleaseResponse:
        _, tenant = authorize(request.tenant_id, READ_ROLES)
        release = await self._registry.get(
            tenant,
            required(request.pipeline_id, "pipelineId"),
            required(request.release_version, "releaseVersion"),
        )
        return pb.GetReleaseResponse(release=release_to_proto(release))

    async def ListReleases(
        self, request: pb.ListReleasesRequest, context: Context
    ) -> pb.ListReleasesResponse:
        _, tenant = authorize(request.tenant_id, READ_ROLES)
        pipeline = required(request.pipeline_id, "pipelineId")
        limit = page_size(request.page_size)
        scope = filters_hash(tenant=tenant, pipeline=pipeline)
        keyset = Keyset.of(request.page_token, limit, scope, {"seq": int})
        rows = await self._registry.list_releases(
            tenant,
            pipeline,
            after_seq=int(keyset.cursor["seq"]) if keyset.cursor else 0,
            limit=keyset.fetch,
        )
        page = keyset.page(rows, lambda row: {"seq": row[0]})
        return pb.ListReleasesResponse(
            releases=[release_to_proto(release) for _, release in page.rows],
            next_page_token=page.next_page_token,
        )

    async def GetActiveRelease(
        self, request: pb.GetActiveReleaseRequest, context: Context
    ) -> pb.GetActiveReleaseResponse:
        _, tenant = authorize(request.tenant_id, READ_ROLES)
        release = await self._registry.get_active(
            tenant, required(request.pipeline_id, "pipelineId")
        )
        return pb.GetActiveReleaseResponse(release=release_to_proto(release))

    async def ListActivations(
        self, request: pb.ListActivationsRequest, context: Context
    ) -> pb.ListActivationsResponse:
        _, tenant = authorize(request.tenant_id, READ_ROLES)
        pipeline = required(request.pipeline_id, "pipelineId")
        limit = page_size(request.page_size)
        scope = filters_hash(tenant=tenant, pipeline=pipeline)
        keyset = Keyset.of(request.page_token, limit, scope, {"seq": int})
        rows = await self._registry.list_activations(
            tenant,
            pipeline,
            before_sequence=int(keyset.cursor["seq"]) if keyset.cursor else None,
            limit=keyset.fetch,
        )
        page = keyset.page(rows, lambda a: {"seq": a.sequence})
        return pb.ListActivationsResponse(
            activations=[activation_to_proto(a) for a in page.rows],
            next_page_token=page.next_page_token,
        )
