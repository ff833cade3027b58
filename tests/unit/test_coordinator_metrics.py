"""What the coordinator's counters make of committed transitions, computed by the real
transition function: finished executions, dead letters by reason, lease expiries requeued or
failed by the poison-pill guard, step attempts by outcome."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from tpf_coordinator.domain.model import ExecutionState, ExecutionStatus, StepFailure, Transition
from tpf_coordinator.domain.transitions import (
    AwaitTimedOut,
    Cancel,
    LeaseExpired,
    StepCompleted,
    StepFailed,
    apply,
)
from tpf_coordinator.metrics import CoordinatorMetrics
from tpf_coordinator.store.records import BacklogSnapshot

NOW = 1_000_000


def _state(status: ExecutionStatus, **changes: int) -> ExecutionState:
    fields = {
        "status": status,
        "step_index": 0,
        "attempt": 0,
        "version": 3,
        "next_due_at_ms": NOW,
        "updated_at_ms": NOW,
        "lease_owner": "d1" if status is ExecutionStatus.RUNNING else "",
        "lease_expires_at_ms": NOW - 1 if status is ExecutionStatus.RUNNING else 0,
    }
    return ExecutionState(**{**fields, **changes})  # type: ignore[arg-type]


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def _metrics() -> tuple[CoordinatorMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return CoordinatorMetrics(registry), registry


def _failed(retryable: bool) -> Transition:
    failure = StepFailure("E", "boom", retryable)
    return apply(
        _state(ExecutionStatus.RUNNING),
        StepFailed(failure=failure, now_ms=NOW, random=lambda: 0.5),
        actor="d1",
    )


def test_reported_attempts_count_by_outcome_and_failures_dead_letter() -> None:
    metrics, registry = _metrics()
    completed = apply(
        _state(ExecutionStatus.RUNNING),
        StepCompleted(next_step_index=1, now_ms=NOW),
        actor="d1",
    )
    metrics.committed([completed, _failed(retryable=True), _failed(retryable=False)], reported=True)
    assert _value(registry, "tpf_step_attempts_total", outcome="completed") == 1
    assert _value(registry, "tpf_step_attempts_total", outcome="retrying") == 1
    assert _value(registry, "tpf_step_attempts_total", outcome="failed") == 1
    assert _value(registry, "tpf_executions_finished_total", status="FAILED") == 1
    assert _value(registry, "tpf_dead_letters_total", reason="non_retryable") == 1
    assert _value(registry, "tpf_execution_transitions_total", event="RETRY_SCHEDULED") == 1
    assert _value(registry, "tpf_lease_expiries_total", outcome="failed") == 0


def test_lease_expiries_requeue_until_the_poison_pill_guard_fails_the_execution() -> None:
    metrics, registry = _metrics()
    requeued = apply(
        _state(ExecutionStatus.RUNNING), LeaseExpired(now_ms=NOW, max_consecutive=3), actor="s"
    )
    guarded = apply(
        _state(ExecutionStatus.RUNNING, consecutive_lease_expiries=2),
        LeaseExpired(now_ms=NOW, max_consecutive=3),
        actor="sweeper",
    )
    metrics.committed([requeued, guarded])
    assert _value(registry, "tpf_lease_expiries_total", outcome="requeued") == 1
    assert _value(registry, "tpf_lease_expiries_total", outcome="failed") == 1
    assert _value(registry, "tpf_dead_letters_total", reason="lease_expired_repeatedly") == 1
    assert _value(registry, "tpf_executions_finished_total", status="FAILED") == 1
    # The sweeper's transitions are not step attempts a dispatcher reported.
    assert _value(registry, "tpf_step_attempts_total", outcome="failed") == 0


def test_cancel_and_await_timeout_finish_without_a_dead_letter() -> None:
    metrics, registry = _metrics()
    cancelled = apply(_state(ExecutionStatus.QUEUED), Cancel(now_ms=NOW), actor="ops")
    timed_out = apply(
        _state(ExecutionStatus.WAITING_EXTERNAL),
        AwaitTimedOut(interaction_id="i", now_ms=NOW),
        actor="sweeper",
    )
    metrics.committed([cancelled, timed_out])
    assert _value(registry, "tpf_executions_finished_total", status="CANCELLED") == 1
    assert _value(registry, "tpf_executions_finished_total", status="FAILED") == 1
    assert _value(registry, "tpf_dead_letters_total") == 0
    assert _value(registry, "tpf_execution_transitions_total", event="AWAIT_TIMED_OUT") == 1


def test_claims_and_backlog() -> None:
    metrics, registry = _metrics()
    metrics.claimed(0, 0.002)
    metrics.claimed(7, 0.004)
    assert _value(registry, "tpf_claim_duration_seconds_count") == 2
    assert _value(registry, "tpf_claim_batch_size_count") == 1
    assert _value(registry, "tpf_claim_batch_size_sum") == 7
    assert _value(registry, "tpf_execution_transitions_total", event="CLAIMED") == 7
    metrics.backlog(BacklogSnapshot(5, 12.5, 2, 1, {"QUEUED": 4, "WAIT_RETRY": 1}))
    assert _value(registry, "tpf_runnable_executions") == 5
    assert _value(registry, "tpf_oldest_runnable_age_seconds") == 12.5
    assert _value(registry, "tpf_executions", status="QUEUED") == 4
    assert _value(registry, "tpf_executions", status="RUNNING") == 0
