"""Dead letters and redrive: the rules around the state change (DESIGN §5, TPF_WIRE §6.3).

The state change of a redrive is `transitions.apply(state, Redrive(...))`; this module holds what
surrounds it: the operator's reason as TPF normalises it, the ids a dead letter shows, and TPF's
log line.
"""

from __future__ import annotations

from tpf_envelope.identifiers import name_uuid

# TPF trims the reason and cuts it to 80 characters; unset or blank means `operator`.
MAX_REDRIVE_REASON_CHARS = 80
DEFAULT_REDRIVE_REASON = "operator"
# A bulk redrive's reason is required and may be longer (it is ours, not TPF's).
MAX_BULK_REDRIVE_REASON_CHARS = 256
DEFAULT_BULK_MAX_EXECUTIONS = 100
MAX_BULK_EXECUTIONS = 10_000


def redrive_reason(text: str | None) -> str:
    """TPF's normalisation of a redrive reason."""
    trimmed = (text or "").strip()
    return trimmed[:MAX_REDRIVE_REASON_CHARS] if trimmed else DEFAULT_REDRIVE_REASON


def redrive_log_line(
    *, tenant_id: str, execution_id: str, previous_status: str, step_index: int, attempt: int
) -> str:
    """TPF's INFO line for an accepted redrive; `attempt` is the attempt after the redrive."""
    return (
        f"Re-drove execution tenant={tenant_id} executionId={execution_id} "
        f"previousStatus={previous_status} stepIndex={step_index} attempt={attempt}"
    )


def dead_letter_id(tenant_id: str, execution_id: str, execution_version: int) -> str:
    """A dead letter's public id: a UUID named by its natural key.

    A dead letter is unique per tenant, execution and the version of the FAILED transition that
    wrote it, so the id is stable across reads without a column of its own.
    """
    return name_uuid(f"dead-letter:{tenant_id}:{execution_id}:{execution_version}")


def execution_key(tenant_id: str, pipeline_id: str, idempotency_key: str) -> str:
    """The scope of an execution's idempotency key (DESIGN §6): tenant, pipeline, key."""
    return f"{tenant_id}:{pipeline_id}:{idempotency_key}"
