"""Execution use cases: submit (admission, pinning, idempotency), read, list, history, cancel."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.domain.transitions import Cancel, apply
from tpf_coordinator.execution_ids import new_execution_id
from tpf_coordinator.metrics import CoordinatorMetrics
from tpf_coordinator.payloads import Payloads
from tpf_coordinator.release_catalog import ReleaseCatalog, ReleaseInfo
from tpf_coordinator.store.protocol import ExecutionStore, ListFilter, NewExecution
from tpf_coordinator.store.records import ExecutionRecord, HistoryRecord
from tpf_coordinator.submit_batcher import SubmitBatcher
from tpf_envelope import (
    LIST,
    NULL,
    TRANSITION_ENCODING,
    Decoded,
    Envelope,
    check_submission_input,
    input_snapshot,
    payload_size_bytes,
    to_json_dict,
)
from tpf_errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    TpfError,
    Unavailable,
)
from tpf_telemetry import current_traceparent

log = logging.getLogger(__name__)

POLICY_OPTIONAL = "OPTIONAL_CLIENT_KEY"
POLICY_REQUIRED = "CLIENT_KEY_REQUIRED"
POLICY_SERVER_ONLY = "SERVER_KEY_ONLY"


@dataclass(frozen=True, slots=True)
class Submission:
    tenant_id: str
    pipeline_id: str
    input_shape: str
    payload: Envelope
    idempotency_key: str
    output_streaming: bool


@dataclass(frozen=True, slots=True)
class Submitted:
    record: ExecutionRecord
    duplicate: bool
    submitted_at_ms: int


def execution_not_found(execution_id: str) -> NotFound:
    return NotFound(
        "EXECUTION_NOT_FOUND",
        f"Execution {execution_id} does not exist for this tenant",
        executionId=execution_id,
    )


def input_fingerprint(shape: str, payload: Envelope) -> str:
    material = json.dumps(
        [shape, payload.payload_type_id, payload.payload_encoding, payload.payload],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def expected_input_type(sent_type_id: str, contract_type_id: str) -> str | None:
    """The type a concrete submitted payload must have, or None to accept what was sent.

    TPF contracts name the step's *domain* type (`...domain.PlaceRestaurantOrderRequest`) while
    clients send the transport *DTO* (`...common.dto.PlaceRestaurantOrderRequestDto`); both are
    the step's input. So a sent type whose simple name matches the contract's, ignoring a `Dto`
    suffix, is accepted as is; any other concrete type is checked against the contract's (and
    refused). A contract without an input type checks nothing, as TPF.
    """
    if not contract_type_id:
        return None

    def simple(type_id: str) -> str:
        return type_id.rsplit(".", 1)[-1].removesuffix("Dto")

    return None if simple(sent_type_id) == simple(contract_type_id) else contract_type_id


def derived_key(tenant_id: str, payload: Envelope) -> str:
    """TPF's server key: base64url-nopad(sha256(tenant + ":" + input JSON))."""
    digest = hashlib.sha256(f"{tenant_id}:{payload.payload}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Executions:
    def __init__(
        self,
        *,
        store: ExecutionStore,
        catalog: ReleaseCatalog,
        now_ms: Callable[[], int],
        idempotency_policy: str,
        allowed_prefixes: tuple[str, ...],
        max_payload_bytes: int,
        payloads: Payloads,
        new_id: Callable[[], str] = new_execution_id,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._now_ms = now_ms
        self._policy = idempotency_policy
        self._allowed_prefixes = allowed_prefixes
        self._max_payload_bytes = max_payload_bytes
        self._new_id = new_id
        self._payloads = payloads
        self._metrics = metrics if metrics is not None else CoordinatorMetrics()
        self._submits = SubmitBatcher(store)

    def _idempotency_key(self, submission: Submission) -> str:
        key = submission.idempotency_key.strip()
        if self._policy == POLICY_SERVER_ONLY:
            return derived_key(submission.tenant_id, submission.payload)
        if key:
            if len(key) > 512:
                raise InvalidArgument(
                    "FIELD_OUT_OF_RANGE",
                    "idempotencyKey is longer than 512 characters",
                    field="idempotencyKey",
                    max=512,
                )
            return key
        if self._policy == POLICY_REQUIRED:
            raise FailedPrecondition(
                "IDEMPOTENCY_KEY_REQUIRED",
                "Idempotency-Key header is required.",
                policy=self._policy,
            )
        return derived_key(submission.tenant_id, submission.payload)

    async def _admit(self, submission: Submission) -> tuple[ReleaseInfo, Decoded]:
        """The active release a new submission is pinned to, and its decoded input; raises
        when the release, its workers or the input refuse it."""
        release = await self._catalog.active(submission.tenant_id, submission.pipeline_id)
        first = release.step(0)
        if first is None:
            raise FailedPrecondition(
                "NO_ACTIVE_RELEASE",
                f"Active release {release.release_version} has no steps in its contract",
                pipelineId=submission.pipeline_id,
            )
        decoded = check_submission_input(
            submission.payload,
            input_shape=submission.input_shape,
            first_step_input_type_id=expected_input_type(
                submission.payload.payload_type_id, first.input_type_id
            ),
            allowed_prefixes=self._allowed_prefixes,
            max_size_bytes=self._max_payload_bytes,
        )
        shortage = await self._catalog.worker_shortage(
            submission.tenant_id, submission.pipeline_id, release
        )
        if shortage is not None:
            raise Unavailable(
                "NO_WORKER_AVAILABLE",
                f"No worker available for active release: {shortage}",
                releaseVersion=release.release_version,
                detail=shortage,
            )
        return release, decoded

    async def submit(self, submission: Submission, *, actor: str) -> Submitted:
        size = payload_size_bytes(submission.payload)
        if size > self._max_payload_bytes:
            raise ResourceExhausted(
                "PAYLOAD_TOO_LARGE",
                f"The input payload is {size} bytes; the limit is {self._max_payload_bytes}",
                limitBytes=self._max_payload_bytes,
                sizeBytes=size,
            )
        if submission.output_streaming:
            raise InvalidArgument(
                "FIELD_INVALID",
                "Async queue mode does not support streaming pipeline outputs yet.",
                field="outputStreaming",
            )
        key = self._idempotency_key(submission)
        fingerprint = input_fingerprint(submission.input_shape, submission.payload)
        now_ms = self._now_ms()
        try:
            release, decoded = await self._admit(submission)
        except TpfError as refusal:
            # A repeat passes whatever the admission checks now say, so a retried submit gets
            # its execution even if the active release or the workers changed meanwhile. (On
            # the way in, the insert recognises a repeat by its key: no read before it.) Not
            # when the database is down: the lookup would only wait as long again to fail.
            if refusal.reason == "DATABASE_UNAVAILABLE":
                raise
            existing = await self._store.find_by_key(
                submission.tenant_id, submission.pipeline_id, key
            )
            if existing is not None:
                return self._duplicate(existing, fingerprint, key, now_ms)
            raise
        snapshot = input_snapshot(submission.input_shape, decoded)
        stored = await self._payloads.store_text(snapshot.payload)
        outcome = await self._submits.submit(
            NewExecution(
                tenant_id=submission.tenant_id,
                execution_id=self._new_id(),
                pipeline_id=submission.pipeline_id,
                contract_version=release.contract_version,
                release_version=release.release_version,
                input_shape=submission.input_shape,
                result_shape=release.result_shape,
                idempotency_key=key,
                input_fingerprint=fingerprint,
                payload=snapshot,
                payload_text=stored,
                now_ms=now_ms,
                actor=actor,
                trace_parent=current_traceparent(),
            )
        )
        if not outcome.created:
            return self._duplicate(outcome.record, fingerprint, key, now_ms)
        self._metrics.execution_submitted()
        log.info(
            "execution submitted",
            extra={
                "tenant": submission.tenant_id,
                "execution_id": outcome.record.execution_id,
                "version": 0,
            },
        )
        return Submitted(outcome.record, duplicate=False, submitted_at_ms=now_ms)

    @staticmethod
    def _duplicate(record: ExecutionRecord, fingerprint: str, key: str, now_ms: int) -> Submitted:
        if record.input_fingerprint != fingerprint:
            raise AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                f"Idempotency key {key} was used for execution {record.execution_id} with a "
                "different input; use a new key for a new execution",
                idempotencyKey=key,
                executionId=record.execution_id,
            )
        return Submitted(record, duplicate=True, submitted_at_ms=now_ms)

    async def get(self, tenant_id: str, execution_id: str) -> ExecutionRecord:
        record = await self._store.get(tenant_id, execution_id)
        if record is None:
            raise execution_not_found(execution_id)
        return record

    async def result(self, tenant_id: str, execution_id: str) -> tuple[ExecutionRecord, Envelope]:
        record = await self.get(tenant_id, execution_id)
        if record.state.status is not ExecutionStatus.SUCCEEDED:
            raise FailedPrecondition(
                "RESULT_NOT_READY",
                f"Execution {execution_id} is {record.state.status.value}; its result exists "
                "once it has SUCCEEDED",
                status=record.state.status.value,
                executionId=execution_id,
            )
        return record, result_envelope(await self._payloads.hydrate(record))

    async def list_executions(
        self, tenant_id: str, filters: ListFilter, *, before: tuple[int, str] | None, limit: int
    ) -> list[ExecutionRecord]:
        return await self._store.list_executions(tenant_id, filters, before=before, limit=limit)

    async def history(
        self, tenant_id: str, execution_id: str, *, after_id: int, limit: int
    ) -> list[HistoryRecord]:
        await self.get(tenant_id, execution_id)
        return await self._store.history(tenant_id, execution_id, after_id=after_id, limit=limit)

    async def cancel(
        self,
        tenant_id: str,
        execution_id: str,
        *,
        reason: str,
        actor: str,
        expected_version: int | None = None,
    ) -> tuple[ExecutionRecord, ExecutionStatus, bool]:
        """Cancel a non-terminal execution; a repeat on a CANCELLED one is a duplicate.

        With `expected_version`, only while the execution still has that version (ABORTED
        VERSION_CONFLICT otherwise). A duplicate is answered as one whatever the version, so a
        client retrying its own successful cancel is not told it conflicted with itself.
        """
        async with self._store.connection() as conn, conn.transaction():
            record = await self._store.lock(conn, tenant_id, execution_id)
            if record is None:
                raise execution_not_found(execution_id)
            previous = record.state.status
            if previous is ExecutionStatus.CANCELLED:
                return record, previous, True
            if expected_version is not None and expected_version != record.state.version:
                raise Aborted(
                    "VERSION_CONFLICT",
                    f"Execution {execution_id} is at version {record.state.version}, not the"
                    f" expected {expected_version}; read it again before cancelling",
                    executionId=execution_id,
                    expectedVersion=expected_version,
                    actualVersion=record.state.version,
                )
            transition = apply(
                record.state, Cancel(now_ms=self._now_ms(), reason=reason), actor=actor
            )
            await self._store.write(conn, record, transition)
            await self._store.cancel_awaits(conn, record, now_ms=transition.after.updated_at_ms)
        self._metrics.committed([transition])
        cancelled = await self.get(tenant_id, execution_id)
        return cancelled, previous, False


def result_envelope(record: ExecutionRecord) -> Envelope:
    """TPF's result: SINGLE → the one terminal item; MATERIALIZED_MULTI → a java.util.List."""
    items = record.result or ()
    if record.result_shape == "SINGLE" and len(items) == 1:
        return items[0]
    if record.result_shape == "SINGLE" and not items:
        return Envelope(NULL, TRANSITION_ENCODING, "null")
    nested = [to_json_dict(e) for e in items]
    text = json.dumps({"items": nested}, separators=(",", ":"), ensure_ascii=False)
    return Envelope(LIST, TRANSITION_ENCODING, text)
