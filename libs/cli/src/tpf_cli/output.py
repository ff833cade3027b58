"""What a command prints: protobuf JSON with --json, else aligned tables and `key: value` lines.

Commands return a `Report` (the response message and its human rendering); `render` picks one.
Human output shows times in UTC, enum values without their prefix, and contract versions cut to
12 hex digits in tables; --json shows every field as the proto JSON mapping writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from tpf.registry.v1 import activation_pb2, release_pb2, worker_pb2

_SHORT_HASH_DIGITS = 12


@dataclass(frozen=True, slots=True)
class Report:
    """A command's result: `message` is printed with --json, `text` otherwise."""

    message: Message
    text: str


def render(report: Report, *, as_json: bool) -> str:
    if as_json:
        return json_format.MessageToJson(report.message, preserving_proto_field_name=False)
    return report.text


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in pairs) + 1
    return "\n".join(f"{key + ':':<{width}} {value}".rstrip() for key, value in pairs)


def timestamp(epoch_ms: int) -> str:
    """UTC time to the second; `-` for 0 (never happened)."""
    if epoch_ms <= 0:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_version(version: str) -> str:
    """`sha256:<64 hex>` cut to its first 12 digits; other versions unchanged."""
    algorithm, _, digest = version.partition(":")
    if algorithm == "sha256" and len(digest) > _SHORT_HASH_DIGITS:
        return f"{algorithm}:{digest[:_SHORT_HASH_DIGITS]}"
    return version


def enum_label(enum: EnumDescriptor, value: int, prefix: str) -> str:
    """`RELEASE_STATUS_ACTIVE` → `ACTIVE`; a value this client does not know → its number."""
    known = enum.values_by_number.get(value)
    return known.name.removeprefix(prefix) if known is not None else str(value)


def release_status(release: release_pb2.Release) -> str:
    return enum_label(release_pb2.ReleaseStatus.DESCRIPTOR, release.status, "RELEASE_STATUS_")


def worker_state(worker: worker_pb2.Worker) -> str:
    return enum_label(worker_pb2.WorkerState.DESCRIPTOR, worker.state, "WORKER_STATE_")


def or_dash(text: str) -> str:
    return text or "-"


def release_table(releases: Sequence[release_pb2.Release]) -> str:
    if not releases:
        return "no releases"
    rows = [
        [
            release.release_version,
            release_status(release),
            short_version(release.contract_version),
            timestamp(release.created_at_epoch_ms),
        ]
        for release in releases
    ]
    return table(["VERSION", "STATUS", "CONTRACT", "CREATED"], rows)


def release_details(release: release_pb2.Release) -> str:
    artifacts = ", ".join(f"{a.artifact_id} ({a.kind})" for a in release.artifacts)
    steps = ", ".join(step.authored_name for step in release.contract.steps)
    return key_values(
        [
            ("release version", release.release_version),
            ("status", release_status(release)),
            ("tenant", release.tenant_id),
            ("pipeline", release.pipeline_id),
            ("contract version", release.contract_version),
            ("primary artifact", release.primary_artifact_id),
            ("artifact digest", release.primary_artifact_digest),
            ("stored at", or_dash(release.primary_artifact_uri)),
            ("size bytes", str(release.primary_artifact_size_bytes)),
            ("artifacts", or_dash(artifacts)),
            ("steps", or_dash(steps)),
            ("created", timestamp(release.created_at_epoch_ms)),
            ("updated", timestamp(release.updated_at_epoch_ms)),
            ("activated", timestamp(release.activated_at_epoch_ms)),
        ]
    )


def activation_table(activations: Sequence[activation_pb2.Activation]) -> str:
    if not activations:
        return "no activations"
    rows = [
        [
            str(activation.sequence),
            activation.release_version,
            or_dash(activation.previous_release_version),
            activation.activated_by,
            timestamp(activation.activated_at_epoch_ms),
            activation.reason,
        ]
        for activation in activations
    ]
    return table(["SEQ", "RELEASE", "PREVIOUS", "BY", "ACTIVATED", "REASON"], rows)


def worker_table(workers: Sequence[worker_pb2.Worker]) -> str:
    if not workers:
        return "no workers"
    rows = [
        [
            worker.worker_id,
            worker_state(worker),
            worker.protocol,
            worker.endpoint,
            worker.release_version,
            timestamp(worker.last_heartbeat_at_epoch_ms),
        ]
        for worker in workers
    ]
    return table(["WORKER", "STATE", "PROTOCOL", "ENDPOINT", "RELEASE", "LAST HEARTBEAT"], rows)


def worker_details(worker: worker_pb2.Worker) -> str:
    return key_values(
        [
            ("worker", worker.worker_id),
            ("state", worker_state(worker)),
            ("protocol", worker.protocol),
            ("endpoint", worker.endpoint),
            ("tenant", worker.tenant_id),
            ("pipeline", worker.pipeline_id),
            ("release version", worker.release_version),
            ("contract version", worker.contract_version),
            ("artifact", or_dash(worker.artifact_id)),
            ("artifact digest", or_dash(worker.artifact_digest)),
            ("registered", timestamp(worker.registered_at_epoch_ms)),
            ("last heartbeat", timestamp(worker.last_heartbeat_at_epoch_ms)),
            ("draining since", timestamp(worker.draining_since_epoch_ms)),
        ]
    )
