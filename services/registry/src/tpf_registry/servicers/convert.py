"""Conversions between registry domain values and tpf.registry.v1 messages."""

from __future__ import annotations

from typing import Any

from google.protobuf import duration_pb2, struct_pb2

from tpf.registry.v1 import activation_pb2, contract_pb2, release_pb2, worker_pb2
from tpf_errors import InvalidArgument
from tpf_registry.domain.contract import PipelineContract
from tpf_registry.domain.descriptor import ReleaseDescriptor
from tpf_registry.domain.release import (
    Activation,
    DispatchMode,
    Release,
    ReleasePolicy,
    ReleaseStatus,
    RetryPolicy,
)
from tpf_registry.domain.worker import Worker, WorkerState

RELEASE_STATUS_TO_PROTO = {
    ReleaseStatus.REGISTERED: release_pb2.RELEASE_STATUS_REGISTERED,
    ReleaseStatus.ACTIVE: release_pb2.RELEASE_STATUS_ACTIVE,
}
WORKER_STATE_TO_PROTO = {
    WorkerState.HEALTHY: worker_pb2.WORKER_STATE_HEALTHY,
    WorkerState.STALE: worker_pb2.WORKER_STATE_STALE,
    WorkerState.DRAINING: worker_pb2.WORKER_STATE_DRAINING,
    WorkerState.UNAVAILABLE: worker_pb2.WORKER_STATE_UNAVAILABLE,
}
DISPATCH_MODE_TO_PROTO = {
    DispatchMode.STEP: release_pb2.DISPATCH_MODE_STEP,
    DispatchMode.SEGMENT: release_pb2.DISPATCH_MODE_SEGMENT,
}


def descriptor_to_proto(descriptor: ReleaseDescriptor) -> release_pb2.ReleaseDescriptor:
    return release_pb2.ReleaseDescriptor(
        schema_version=descriptor.schema_version,
        pipeline_id=descriptor.pipeline_id,
        contract_version=descriptor.contract_version,
        release_version=descriptor.release_version,
        artifacts=[
            release_pb2.ReleaseArtifact(
                artifact_id=a.artifact_id,
                kind=a.kind.value,
                uri=a.uri,
                digest=a.digest,
                step_ids=list(a.step_ids),
                capabilities=list(a.capabilities),
            )
            for a in descriptor.artifacts
        ],
    )


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def _structs(values: tuple[dict[str, Any], ...]) -> list[struct_pb2.Struct]:
    return [_struct(value) for value in values]


def contract_to_proto(contract: PipelineContract) -> contract_pb2.PipelineContract:
    return contract_pb2.PipelineContract(
        schema_version=contract.schema_version,
        pipeline_id=contract.pipeline_id,
        contract_version=contract.contract_version,
        contract_hash=contract.contract_hash,
        platform=contract.platform,
        transport=contract.transport,
        module=contract.module,
        plugin_host=contract.plugin_host,
        runtime_layout=contract.runtime_layout,
        steps=[
            contract_pb2.ContractStep(
                index=s.index,
                authored_name=s.authored_name,
                kind=s.kind,
                cardinality=s.cardinality,
                input_type_id=s.input_type_id,
                output_type_id=s.output_type_id,
                runtime_class=s.runtime_class,
                client_class=s.client_class,
                await_transport=s.await_transport,
                deferred_completion=(
                    _struct(s.deferred_completion) if s.deferred_completion is not None else None
                ),
            )
            for s in contract.steps
        ],
        capabilities=contract_pb2.ContractCapabilities(
            local_transition_execution=contract.local_transition_execution,
            transition_worker_protocols=list(contract.transition_worker_protocols),
        ),
        canonical_types=_struct(contract.canonical_types),
        canonical_catalog_fingerprint=contract.canonical_catalog_fingerprint,
        composition=contract_pb2.ContractComposition(
            root_definition_id=contract.composition_root_definition_id,
            definitions=_structs(contract.composition_definitions),
        ),
        imported_definitions=_structs(contract.imported_definitions),
        capability_imports=_structs(contract.capability_imports),
        resumable_source_continuations=_structs(contract.resumable_source_continuations),
    )


def _duration(ms: int | None) -> duration_pb2.Duration | None:
    if ms is None:
        return None
    value = duration_pb2.Duration()
    value.FromMilliseconds(ms)
    return value


def retry_to_proto(policy: RetryPolicy) -> release_pb2.RetryPolicy:
    message = release_pb2.RetryPolicy(
        initial_delay=_duration(policy.initial_delay_ms),
        max_delay=_duration(policy.max_delay_ms),
    )
    if policy.max_retries is not None:
        message.max_retries = policy.max_retries
    if policy.multiplier is not None:
        message.multiplier = policy.multiplier
    if policy.jitter is not None:
        message.jitter = policy.jitter
    return message


def policy_to_proto(policy: ReleasePolicy) -> release_pb2.ReleasePolicy:
    return release_pb2.ReleasePolicy(
        default_retry=retry_to_proto(policy.default_retry),
        step_retry={name: retry_to_proto(p) for name, p in policy.step_retry},
        dispatch_mode=DISPATCH_MODE_TO_PROTO[policy.dispatch_mode],
    )


def _out_of_range(field: str, value: object, rule: str) -> InvalidArgument:
    return InvalidArgument("FIELD_OUT_OF_RANGE", f"{field} {rule}", field=field, value=str(value))


def _duration_ms(message: release_pb2.RetryPolicy, name: str, field: str) -> int | None:
    if not message.HasField(name):  # type: ignore[arg-type]  # names are literal fields below
        return None
    value: duration_pb2.Duration = getattr(message, name)
    ms = value.ToMilliseconds()
    if ms < 0:
        raise _out_of_range(field, ms, "must not be negative")
    return int(ms)


def retry_from_proto(message: release_pb2.RetryPolicy, where: str) -> RetryPolicy:
    max_retries = message.max_retries if message.HasField("max_retries") else None
    if max_retries is not None and not 0 <= max_retries <= 1000:
        raise _out_of_range(f"{where}.maxRetries", max_retries, "must be between 0 and 1000")
    multiplier = message.multiplier if message.HasField("multiplier") else None
    if multiplier is not None and not 1.0 <= multiplier <= 100.0:
        raise _out_of_range(f"{where}.multiplier", multiplier, "must be between 1 and 100")
    jitter = message.jitter if message.HasField("jitter") else None
    if jitter is not None and not 0.0 <= jitter <= 1.0:
        raise _out_of_range(f"{where}.jitter", jitter, "must be between 0 and 1")
    return RetryPolicy(
        max_retries=max_retries,
        initial_delay_ms=_duration_ms(message, "initial_delay", f"{where}.initialDelay"),
        multiplier=multiplier,
        max_delay_ms=_duration_ms(message, "max_delay", f"{where}.maxDelay"),
        jitter=jitter,
    )


def policy_from_proto(message: release_pb2.ReleasePolicy) -> ReleasePolicy:
    mode = {
        release_pb2.DISPATCH_MODE_UNSPECIFIED: DispatchMode.STEP,
        release_pb2.DISPATCH_MODE_STEP: DispatchMode.STEP,
        release_pb2.DISPATCH_MODE_SEGMENT: DispatchMode.SEGMENT,
    }.get(message.dispatch_mode)
    if mode is None:
        raise InvalidArgument(
            "FIELD_INVALID",
            f"policy.dispatchMode {message.dispatch_mode} is not a known dispatch mode",
            field="policy.dispatchMode",
        )
    return ReleasePolicy(
        default_retry=retry_from_proto(message.default_retry, "policy.defaultRetry"),
        step_retry=tuple(
            sorted(
                (name, retry_from_proto(value, f"policy.stepRetry[{name}]"))
                for name, value in message.step_retry.items()
            )
        ),
        dispatch_mode=mode,
    )


def release_to_proto(release: Release) -> release_pb2.Release:
    message = release_pb2.Release(
        tenant_id=release.tenant_id,
        pipeline_id=release.pipeline_id,
        contract_version=release.contract_version,
        release_version=release.release_version,
        status=RELEASE_STATUS_TO_PROTO[release.status],
        descriptor=descriptor_to_proto(release.descriptor),
        primary_artifact_id=release.primary_artifact_id,
        primary_artifact_digest=release.primary_artifact_digest,
        primary_artifact_uri=release.primary_artifact_uri,
        primary_artifact_size_bytes=release.primary_artifact_size_bytes,
        primary_artifact_checksum=release.primary_artifact_checksum,
        created_at_epoch_ms=release.created_at_epoch_ms,
        updated_at_epoch_ms=release.updated_at_epoch_ms,
        activated_at_epoch_ms=release.activated_at_epoch_ms,
        policy=policy_to_proto(release.policy),
        artifacts=[
            release_pb2.StoredArtifact(
                artifact_id=a.artifact_id,
                kind=a.kind,
                digest=a.digest,
                stored_uri=a.stored_uri,
                size_bytes=a.size_bytes,
                has_contract=a.has_contract,
            )
            for a in release.artifacts
        ],
    )
    if release.contract is not None:
        message.contract.CopyFrom(contract_to_proto(release.contract))
    return message


def activation_to_proto(activation: Activation) -> activation_pb2.Activation:
    return activation_pb2.Activation(
        tenant_id=activation.tenant_id,
        pipeline_id=activation.pipeline_id,
        release_version=activation.release_version,
        previous_release_version=activation.previous_release_version,
        activated_by=activation.activated_by,
        reason=activation.reason,
        activated_at_epoch_ms=activation.activated_at_epoch_ms,
        sequence=activation.sequence,
    )


def worker_to_proto(worker: Worker, state: WorkerState) -> worker_pb2.Worker:
    return worker_pb2.Worker(
        tenant_id=worker.tenant_id,
        pipeline_id=worker.pipeline_id,
        contract_version=worker.contract_version,
        release_version=worker.release_version,
        worker_id=worker.worker_id,
        protocol=worker.protocol.value,
        endpoint=worker.endpoint,
        artifact_id=worker.artifact_id,
        artifact_digest=worker.artifact_digest,
        state=WORKER_STATE_TO_PROTO[state],
        registered_at_epoch_ms=worker.registered_at_epoch_ms,
        last_heartbeat_at_epoch_ms=worker.last_heartbeat_at_epoch_ms,
        draining_since_epoch_ms=worker.draining_since_epoch_ms,
    )
