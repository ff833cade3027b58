"""What a command prints: protobuf JSON with --json, else aligned tables and `key: value` lines.

Commands return a `Report` (the response message and its human rendering); `render` picks one.
Human output shows times in UTC, enum values without their prefix, and contract versions cut to
12 hex digits in tables; --json shows every field as the proto JSON mapping writes it. A command
that printed as it went (`status --watch`) returns a report without a message, and only its exit
code counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

from tpf.common.v1 import error_reason_pb2, execution_status_pb2
from tpf.coordinator.v1 import (
    dead_letter_pb2,
    dead_letter_service_pb2,
    execution_pb2,
    interaction_pb2,
)
from tpf.registry.v1 import activation_pb2, release_pb2, worker_pb2

_SHORT_HASH_DIGITS = 12
# datetime cannot show times after the year 9999; the coordinator uses Long.MAX_VALUE as "never".
_LAST_SHOWABLE_EPOCH_MS = 253_402_300_799_999


@dataclass(frozen=True, slots=True)
class Report:
    """A command's result: `message` is printed with --json, `text` otherwise; nothing is printed
    when `message` is None (the command printed as it went). `exit_code` is the process's."""

    message: Message | None
    text: str
    exit_code: int = 0


def render(report: Report, *, as_json: bool) -> str | None:
    """What to print for `report`, or None when the command already printed everything."""
    if report.message is None:
        return None
    if as_json:
        return json_format.MessageToJson(report.message, preserving_proto_field_name=False)
    return report.text


def json_line(message: Message) -> str:
    """`message` as proto JSON on one line (for output that streams, one message per line)."""
    return json_format.MessageToJson(message, preserving_proto_field_name=False, indent=None)


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
    """UTC time to the second; `-` for 0 (never happened), `never` beyond the year 9999."""
    if epoch_ms <= 0:
        return "-"
    if epoch_ms > _LAST_SHOWABLE_EPOCH_MS:
        return "never"
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


# --- coordinator: executions, history, interactions, dead letters -------------------------------


def execution_status(status: int) -> str:
    """`EXECUTION_STATUS_FAILED` → `FAILED`; UNSPECIFIED (no status, e.g. before submit) → `-`."""
    if status == execution_status_pb2.EXECUTION_STATUS_UNSPECIFIED:
        return "-"
    return enum_label(execution_status_pb2.ExecutionStatus.DESCRIPTOR, status, "EXECUTION_STATUS_")


def history_event(event: int) -> str:
    return enum_label(execution_pb2.HistoryEvent.DESCRIPTOR, event, "HISTORY_EVENT_")


def interaction_status(status: int) -> str:
    return enum_label(interaction_pb2.InteractionStatus.DESCRIPTOR, status, "INTERACTION_STATUS_")


def input_shape(shape: int) -> str:
    return enum_label(execution_pb2.InputShape.DESCRIPTOR, shape, "INPUT_SHAPE_")


def result_shape(shape: int) -> str:
    return enum_label(execution_pb2.ResultShape.DESCRIPTOR, shape, "RESULT_SHAPE_")


def terminal_reason(reason: int) -> str:
    return enum_label(dead_letter_pb2.TerminalReason.DESCRIPTOR, reason, "TERMINAL_REASON_")


def error_reason(reason: int) -> str:
    return enum_label(error_reason_pb2.ErrorReason.DESCRIPTOR, reason, "ERROR_REASON_")


def execution_error(execution: execution_pb2.Execution | execution_pb2.ExecutionStatusView) -> str:
    """`<code>: <message>`, or `-` without an error."""
    if not execution.HasField("error_code") and not execution.HasField("error_message"):
        return "-"
    return ": ".join(part for part in (execution.error_code, execution.error_message) if part)


def execution_details(execution: execution_pb2.Execution) -> str:
    identity = execution.identity
    return key_values(
        [
            ("execution", execution.execution_id),
            ("status", execution_status(execution.status)),
            ("step", str(execution.step_index)),
            ("attempt", str(execution.attempt)),
            ("version", str(execution.version)),
            ("error", execution_error(execution)),
            ("terminal reason", or_dash(execution.terminal_reason)),
            ("tenant", identity.tenant_id),
            ("pipeline", identity.pipeline_id),
            ("release version", identity.release_version),
            ("contract version", identity.contract_version),
            ("idempotency key", or_dash(execution.idempotency_key)),
            ("input shape", input_shape(execution.input_shape)),
            ("result shape", result_shape(execution.result_shape)),
            ("await unit", or_dash(execution.await_unit_id)),
            ("lease owner", or_dash(execution.lease_owner)),
            ("lease expires", timestamp(execution.lease_expires_at_epoch_ms)),
            ("next due", timestamp(execution.next_due_at_epoch_ms)),
            ("created", timestamp(execution.created_at_epoch_ms)),
            ("updated", timestamp(execution.updated_at_epoch_ms)),
        ]
    )


def execution_line(execution: execution_pb2.Execution) -> str:
    """One line per version, for `status --watch`."""
    line = (
        f"{timestamp(execution.updated_at_epoch_ms)}  version {execution.version}  "
        f"{execution_status(execution.status)}  step {execution.step_index}  "
        f"attempt {execution.attempt}"
    )
    error = execution_error(execution)
    return line if error == "-" else f"{line}  error {error}"


def execution_table(executions: Sequence[execution_pb2.Execution]) -> str:
    if not executions:
        return "no executions"
    rows = [
        [
            execution.execution_id,
            execution_status(execution.status),
            str(execution.step_index),
            str(execution.attempt),
            str(execution.version),
            execution.identity.pipeline_id,
            execution.identity.release_version,
            timestamp(execution.created_at_epoch_ms),
            timestamp(execution.updated_at_epoch_ms),
        ]
        for execution in executions
    ]
    return table(
        [
            "EXECUTION",
            "STATUS",
            "STEP",
            "ATTEMPT",
            "VERSION",
            "PIPELINE",
            "RELEASE",
            "CREATED",
            "UPDATED",
        ],
        rows,
    )


def _history_detail(entry: execution_pb2.HistoryEntry) -> str:
    parts = [entry.reason] if entry.reason else []
    if entry.HasField("failure") and (entry.failure.error_code or entry.failure.error_message):
        failure = entry.failure
        parts.append(": ".join(p for p in (failure.error_code, failure.error_message) if p))
    return "; ".join(parts)


def history_table(entries: Sequence[execution_pb2.HistoryEntry]) -> str:
    if not entries:
        return "no history"
    rows = [
        [
            str(entry.sequence),
            str(entry.version),
            history_event(entry.event),
            execution_status(entry.from_status),
            execution_status(entry.to_status),
            str(entry.step_index),
            str(entry.attempt),
            or_dash(entry.actor),
            timestamp(entry.occurred_at_epoch_ms),
            _history_detail(entry),
        ]
        for entry in entries
    ]
    return table(
        ["SEQ", "VERSION", "EVENT", "FROM", "TO", "STEP", "ATTEMPT", "ACTOR", "OCCURRED", "DETAIL"],
        rows,
    )


def interaction_table(interactions: Sequence[interaction_pb2.Interaction]) -> str:
    if not interactions:
        return "no pending interactions"
    rows = [
        [
            interaction.interaction_id,
            interaction.correlation_id,
            interaction.execution_id,
            interaction.step_id,
            interaction_status(interaction.status),
            or_dash(interaction.assignee),
            or_dash(interaction.group),
            timestamp(interaction.deadline_epoch_ms),
        ]
        for interaction in interactions
    ]
    return table(
        [
            "INTERACTION",
            "CORRELATION",
            "EXECUTION",
            "STEP",
            "STATUS",
            "ASSIGNEE",
            "GROUP",
            "DEADLINE",
        ],
        rows,
    )


def dead_letter_table(dead_letters: Sequence[dead_letter_pb2.DeadLetter]) -> str:
    if not dead_letters:
        return "no dead letters"
    rows = [
        [
            letter.execution_id,
            execution_status(letter.terminal_status),
            terminal_reason(letter.terminal_reason),
            str(letter.step_index),
            str(letter.attempt),
            str(letter.execution_version),
            or_dash(letter.error_code),
            timestamp(letter.created_at_epoch_ms),
            timestamp(letter.redriven_at_epoch_ms) if letter.redriven else "-",
        ]
        for letter in dead_letters
    ]
    return table(
        [
            "EXECUTION",
            "STATUS",
            "REASON",
            "STEP",
            "ATTEMPT",
            "VERSION",
            "ERROR",
            "CREATED",
            "REDRIVEN",
        ],
        rows,
    )


def bulk_redrive_summary(response: dead_letter_service_pb2.BulkRedriveResponse) -> str:
    count = len(response.execution_ids)
    if response.dry_run:
        heading = f"dry run: would redrive {count} of {response.matched_count} matched executions"
    else:
        heading = (
            f"redrove {response.redriven_count} of {response.matched_count} matched executions"
            f" ({len(response.failures)} not redriven)"
        )
    lines = [heading, *response.execution_ids]
    if response.failures:
        rows = [
            [failure.execution_id, error_reason(failure.reason), failure.message]
            for failure in response.failures
        ]
        lines += ["", table(["NOT REDRIVEN", "REASON", "MESSAGE"], rows)]
    return "\n".join(lines)
