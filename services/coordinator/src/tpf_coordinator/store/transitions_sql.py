"""Writing one transition: the conditional row update, its history row, its dead letter.

Every write to `executions` goes through `write_transition`: the UPDATE matches only if the row
still holds the version the transition was computed from (the fencing token), bumps it, and the
history row (unique per execution and version) is inserted in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection

from tpf_coordinator.domain.model import ExecutionState, Transition
from tpf_coordinator.store.protocol import StaleVersion, TransitionWrite
from tpf_coordinator.store.records import ExecutionRecord, StoredText

if TYPE_CHECKING:
    from tpf_coordinator.payloads import Payloads
from tpf_envelope import Envelope

APPLY_TRANSITION = """
UPDATE executions SET
    status = %(status)s,
    step_index = %(step_index)s,
    attempt = %(attempt)s,
    version = %(version)s,
    next_due_at_ms = %(next_due_at_ms)s,
    lease_owner = %(lease_owner)s,
    lease_expires_at_ms = %(lease_expires_at_ms)s,
    consecutive_lease_expiries = %(consecutive_lease_expiries)s,
    error_code = %(error_code)s,
    error_message = %(error_message)s,
    terminal_reason = %(terminal_reason)s,
    await_unit_id = %(await_unit_id)s,
    updated_at_ms = %(updated_at_ms)s,
    payload_type_id = CASE WHEN %(set_payload)s THEN %(payload_type_id)s ELSE payload_type_id END,
    payload_encoding = CASE WHEN %(set_payload)s THEN %(payload_encoding)s
                            ELSE payload_encoding END,
    payload = CASE WHEN %(set_payload)s THEN %(payload)s ELSE payload END,
    payload_ref = CASE WHEN %(set_payload)s THEN %(payload_ref)s ELSE payload_ref END,
    result = CASE WHEN %(set_result)s THEN %(result)s ELSE result END,
    result_ref = CASE WHEN %(set_result)s THEN %(result_ref)s ELSE result_ref END,
    release_version = COALESCE(%(release_version)s, release_version),
    contract_version = COALESCE(%(contract_version)s, contract_version)
WHERE tenant_id = %(tenant_id)s AND execution_id = %(execution_id)s
  AND version = %(expected_version)s
RETURNING version
"""

INSERT_HISTORY = """
INSERT INTO execution_history (
    tenant_id, execution_id, version, event, from_status, to_status, step_index, attempt, actor,
    reason, error_code, error_message, retryable, release_version, occurred_at_ms)
VALUES (%(tenant_id)s, %(execution_id)s, %(version)s, %(event)s, %(from_status)s,
        %(to_status)s, %(step_index)s, %(attempt)s, %(actor)s, %(reason)s, %(error_code)s,
        %(error_message)s, %(retryable)s, %(release_version)s, %(occurred_at_ms)s)
"""

INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (
    tenant_id, execution_id, execution_version, pipeline_id, contract_version, release_version,
    step_index, attempt, transition_key, terminal_reason, error_code, error_message, retryable,
    created_at_ms)
VALUES (%(tenant_id)s, %(execution_id)s, %(execution_version)s, %(pipeline_id)s,
        %(contract_version)s, %(release_version)s, %(step_index)s, %(attempt)s,
        %(transition_key)s, %(terminal_reason)s, %(error_code)s, %(error_message)s,
        %(retryable)s, %(created_at_ms)s)
"""

# `write_transitions`: a batch of transitions in one statement. Each row is updated only if it
# still holds its expected version; a history row is inserted for each row updated; each is
# notified as `write_transition` does. The caller compares `updated` with the batch size.
WRITE_TRANSITIONS = """
WITH v AS (
    -- One JSON array of objects rather than an array per column: json.dumps is one C call,
    -- where psycopg dumps array parameters element by element in Python.
    SELECT * FROM jsonb_to_recordset(%(writes)s::jsonb) AS v(
        tenant_id text, execution_id text, expected_version bigint, status text,
        step_index int, attempt int, version bigint, next_due_at_ms bigint, lease_owner text,
        lease_expires_at_ms bigint, consecutive_lease_expiries int, error_code text,
        error_message text, terminal_reason text, await_unit_id text, updated_at_ms bigint,
        set_payload boolean, payload_type_id text, payload_encoding text, payload text,
        payload_ref text, set_result boolean, result text, result_ref text, event text,
        from_status text, actor text, reason text, failure_code text, failure_message text,
        retryable boolean)
),
updated AS (
    UPDATE executions e SET
        status = v.status,
        step_index = v.step_index,
        attempt = v.attempt,
        version = v.version,
        next_due_at_ms = v.next_due_at_ms,
        lease_owner = v.lease_owner,
        lease_expires_at_ms = v.lease_expires_at_ms,
        consecutive_lease_expiries = v.consecutive_lease_expiries,
        error_code = v.error_code,
        error_message = v.error_message,
        terminal_reason = v.terminal_reason,
        await_unit_id = v.await_unit_id,
        updated_at_ms = v.updated_at_ms,
        payload_type_id = CASE WHEN v.set_payload THEN v.payload_type_id
                               ELSE e.payload_type_id END,
        payload_encoding = CASE WHEN v.set_payload THEN v.payload_encoding
                                ELSE e.payload_encoding END,
        payload = CASE WHEN v.set_payload THEN v.payload ELSE e.payload END,
        payload_ref = CASE WHEN v.set_payload THEN v.payload_ref ELSE e.payload_ref END,
        result = CASE WHEN v.set_result THEN v.result ELSE e.result END,
        result_ref = CASE WHEN v.set_result THEN v.result_ref ELSE e.result_ref END
    FROM v
    WHERE e.tenant_id = v.tenant_id AND e.execution_id = v.execution_id
      AND e.version = v.expected_version
    RETURNING e.tenant_id, e.execution_id, e.release_version
),
history AS (
    INSERT INTO execution_history (
        tenant_id, execution_id, version, event, from_status, to_status, step_index, attempt,
        actor, reason, error_code, error_message, retryable, release_version, occurred_at_ms)
    SELECT v.tenant_id, v.execution_id, v.version, v.event, v.from_status, v.status,
           v.step_index, v.attempt, v.actor, v.reason, v.failure_code, v.failure_message,
           v.retryable, updated.release_version, v.updated_at_ms
    FROM v JOIN updated USING (tenant_id, execution_id)
),
notified AS (
    SELECT pg_notify('tpf_execution', updated.tenant_id || '/' || updated.execution_id)
    FROM updated
)
SELECT (SELECT count(*) FROM updated) AS updated,
       (SELECT count(*) FROM notified) AS notified,
       (SELECT count(*) FROM (SELECT pg_notify('tpf_work', '') WHERE %(notify_work)s) w) AS work,
       (SELECT count(*) FROM (SELECT pg_notify('tpf_terminal', '') WHERE %(notify_terminal)s) t)
           AS terminal
"""

NOTIFY_WORK = "SELECT pg_notify('tpf_work', '')"
NOTIFY_EXECUTION = "SELECT pg_notify('tpf_execution', %s)"
# The same plus a wake-up of terminal-event readers, in one round trip.
NOTIFY_TERMINAL_EXECUTION = "SELECT pg_notify('tpf_execution', %s), pg_notify('tpf_terminal', '')"


@dataclass(frozen=True, slots=True)
class RowIdentity:
    """What a transition needs to know about the row besides its state."""

    tenant_id: str
    execution_id: str
    pipeline_id: str
    contract_version: str
    release_version: str


def identity_of(record: ExecutionRecord) -> RowIdentity:
    return RowIdentity(
        record.tenant_id,
        record.execution_id,
        record.pipeline_id,
        record.contract_version,
        record.release_version,
    )


def state_params(after: ExecutionState) -> dict[str, Any]:
    """The `executions` columns a transition sets from the state it leads to."""
    return {
        "status": after.status.value,
        "step_index": after.step_index,
        "attempt": after.attempt,
        "version": after.version,
        "next_due_at_ms": after.next_due_at_ms,
        "lease_owner": after.lease_owner,
        "lease_expires_at_ms": after.lease_expires_at_ms,
        "consecutive_lease_expiries": after.consecutive_lease_expiries,
        "error_code": after.error_code,
        "error_message": after.error_message,
        "terminal_reason": after.terminal_reason,
        "await_unit_id": after.await_unit_id,
        "updated_at_ms": after.updated_at_ms,
    }


def history_params(row: RowIdentity, transition: Transition) -> dict[str, Any]:
    failure = transition.failure
    after = transition.after
    return {
        "tenant_id": row.tenant_id,
        "execution_id": row.execution_id,
        "version": after.version,
        "event": transition.event.value,
        "from_status": transition.before.status.value,
        "to_status": after.status.value,
        "step_index": after.step_index,
        "attempt": after.attempt,
        "actor": transition.actor,
        "reason": transition.reason,
        "error_code": failure.error_code if failure else None,
        "error_message": failure.error_message if failure else None,
        "retryable": failure.retryable if failure else None,
        "release_version": row.release_version,
        "occurred_at_ms": after.updated_at_ms,
    }


async def write_transition(
    conn: AsyncConnection[Any],
    row: RowIdentity,
    transition: Transition,
    *,
    payload: Envelope | None = None,
    set_payload: bool = False,
    result: str | None = None,
    release_version: str | None = None,
    payloads: Payloads | None = None,
    contract_version: str | None = None,
) -> None:
    """Apply `transition` to the row, conditional on its `before.version`; raise StaleVersion.

    `release_version` and `contract_version` re-pin the execution (a redrive onto a release).

    With `payloads`, a large payload or result goes to the object store and the row keeps its
    reference.
    """
    after = transition.after
    payload_text = StoredText(payload.payload if payload else None, None)
    result_text = StoredText(result, None)
    if payloads is not None:
        if payload is not None and set_payload:
            payload_text = await payloads.store_text(payload.payload)
        if result is not None:
            result_text = await payloads.store_text(result)
    cursor = await conn.execute(
        APPLY_TRANSITION,
        {
            **state_params(after),
            "set_payload": set_payload,
            "payload_type_id": payload.payload_type_id if payload else None,
            "payload_encoding": payload.payload_encoding if payload else None,
            "payload": payload_text.inline,
            "payload_ref": payload_text.ref,
            "set_result": result is not None,
            "result": result_text.inline,
            "result_ref": result_text.ref,
            "release_version": release_version,
            "contract_version": contract_version,
            "tenant_id": row.tenant_id,
            "execution_id": row.execution_id,
            "expected_version": transition.before.version,
        },
    )
    if await cursor.fetchone() is None:
        raise StaleVersion(row.execution_id)
    effective = row if release_version is None else _with_release(row, release_version)
    await conn.execute(INSERT_HISTORY, history_params(effective, transition))
    if transition.dead_letter_reason is not None:
        await conn.execute(INSERT_DEAD_LETTER, dead_letter_params(effective, transition))
    if after.status.is_runnable:
        await conn.execute(NOTIFY_WORK)
    notify = NOTIFY_TERMINAL_EXECUTION if after.status.is_terminal else NOTIFY_EXECUTION
    await conn.execute(notify, (f"{row.tenant_id}/{row.execution_id}",))


def dead_letter_params(row: RowIdentity, transition: Transition) -> dict[str, Any]:
    after = transition.after
    failure = transition.failure
    assert transition.dead_letter_reason is not None
    return {
        "tenant_id": row.tenant_id,
        "execution_id": row.execution_id,
        "execution_version": after.version,
        "pipeline_id": row.pipeline_id,
        "contract_version": row.contract_version,
        "release_version": row.release_version,
        "step_index": after.step_index,
        "attempt": after.attempt,
        "transition_key": f"{row.execution_id}:{after.step_index}:{after.attempt}",
        "terminal_reason": transition.dead_letter_reason.value,
        "error_code": after.error_code or (failure.error_code if failure else ""),
        "error_message": after.error_message or (failure.error_message if failure else ""),
        "retryable": failure.retryable if failure else False,
        "created_at_ms": after.updated_at_ms,
    }


async def write_transitions(conn: AsyncConnection[Any], writes: Sequence[TransitionWrite]) -> None:
    """`write_transition` for a batch, in one statement (plus one per dead letter); raise
    StaleVersion if any row no longer holds its expected version (the caller rolls back)."""
    if not writes:
        return
    rows: list[dict[str, Any]] = []
    notify_work = notify_terminal = False
    for write in writes:
        record, transition = write.record, write.transition
        before, after, failure = transition.before, transition.after, transition.failure
        payload, payload_text, result_text = write.payload, write.payload_text, write.result_text
        notify_work = notify_work or after.status.is_runnable
        notify_terminal = notify_terminal or after.status.is_terminal
        rows.append(
            {
                "tenant_id": record.tenant_id,
                "execution_id": record.execution_id,
                "expected_version": before.version,
                **state_params(after),
                "set_payload": payload_text is not None,
                "payload_type_id": payload.payload_type_id if payload else None,
                "payload_encoding": payload.payload_encoding if payload else None,
                "payload": payload_text.inline if payload_text else None,
                "payload_ref": payload_text.ref if payload_text else None,
                "set_result": result_text is not None,
                "result": result_text.inline if result_text else None,
                "result_ref": result_text.ref if result_text else None,
                "event": transition.event.value,
                "from_status": before.status.value,
                "actor": transition.actor,
                "reason": transition.reason,
                "failure_code": failure.error_code if failure else None,
                "failure_message": failure.error_message if failure else None,
                "retryable": failure.retryable if failure else None,
            }
        )
    cursor = await conn.execute(
        WRITE_TRANSITIONS,
        {
            "writes": json.dumps(rows, ensure_ascii=False, separators=(",", ":")),
            "notify_work": notify_work,
            "notify_terminal": notify_terminal,
        },
    )
    counts = await cursor.fetchone()
    if counts is None or counts[0] != len(writes):
        raise StaleVersion(f"{len(writes) - (counts[0] if counts else 0)} of {len(writes)} rows")
    for write in writes:
        if write.transition.dead_letter_reason is not None:
            await conn.execute(
                INSERT_DEAD_LETTER, dead_letter_params(identity_of(write.record), write.transition)
            )


def _with_release(row: RowIdentity, release_version: str) -> RowIdentity:
    return RowIdentity(
        row.tenant_id, row.execution_id, row.pipeline_id, row.contract_version, release_version
    )
