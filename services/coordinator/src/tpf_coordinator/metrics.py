"""The coordinator's metrics: what it committed, how claims go, and gauges of its backlog.

Counters move only after the transaction that made the change committed, so they equal what
the database holds. Labels are statuses, events, reasons and outcomes: closed sets.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tpf_coordinator.domain.model import (
    ExecutionStatus,
    HistoryEvent,
    TerminalReason,
    Transition,
)
from tpf_coordinator.store.records import BacklogSnapshot

# What a dispatcher's reported step attempt turned into, by the transition it caused.
_STEP_OUTCOMES = {
    HistoryEvent.STEP_COMPLETED: "completed",
    HistoryEvent.SUCCEEDED: "completed",
    HistoryEvent.AWAIT_REQUESTED: "awaiting",
    HistoryEvent.RETRY_SCHEDULED: "retrying",
    HistoryEvent.FAILED: "failed",
}
_CLAIM_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
NON_TERMINAL_STATUSES = tuple(s for s in ExecutionStatus if not s.is_terminal)


class CoordinatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # Without a registry (unit tests, tools) the metrics count into one nobody serves.
        registry = registry if registry is not None else CollectorRegistry()
        self.submitted = Counter(
            "tpf_executions_submitted",
            "Executions created by a submission (duplicates of an idempotency key excluded).",
            registry=registry,
        )
        self.finished = Counter(
            "tpf_executions_finished",
            "Executions that reached a terminal status, by that status.",
            ["status"],
            registry=registry,
        )
        self.transitions = Counter(
            "tpf_execution_transitions",
            "Committed state transitions, by history event (CLAIMED included).",
            ["event"],
            registry=registry,
        )
        self.step_attempts = Counter(
            "tpf_step_attempts",
            "Step attempts reported by dispatchers and accepted, by what they led to "
            "(completed, awaiting, retrying, failed).",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "tpf_dead_letters",
            "Dead letters written, by terminal reason.",
            ["reason"],
            registry=registry,
        )
        self.lease_expiries = Counter(
            "tpf_lease_expiries",
            "Abandoned claims the sweeper recovered: requeued, or failed by the poison-pill guard.",
            ["outcome"],
            registry=registry,
        )
        self.fencing_rejections = Counter(
            "tpf_fencing_rejections",
            "Completions or lease renewals refused because the fencing token was stale.",
            ["operation"],
            registry=registry,
        )
        self.claim_duration = Histogram(
            "tpf_claim_duration_seconds",
            "Time of one claim transaction (select, lease and build the work items), "
            "long-poll waiting excluded.",
            buckets=_CLAIM_BUCKETS,
            registry=registry,
        )
        self.claim_batch_size = Histogram(
            "tpf_claim_batch_size",
            "Executions handed out by one claim that found work.",
            buckets=_CLAIM_BATCH_BUCKETS,
            registry=registry,
        )
        self.executions = Gauge(
            "tpf_executions",
            "Non-terminal executions by status (refreshed every TPF_METRICS_REFRESH_S).",
            ["status"],
            registry=registry,
        )
        self.runnable = Gauge(
            "tpf_runnable_executions",
            "Executions due to run and not claimed yet: QUEUED, or WAIT_RETRY past its backoff.",
            registry=registry,
        )
        self.oldest_runnable_age = Gauge(
            "tpf_oldest_runnable_age_seconds",
            "How long the longest-waiting runnable execution has been due (0 when none).",
            registry=registry,
        )
        self.waiting_interactions = Gauge(
            "tpf_waiting_interactions",
            "Interactions waiting for an answer.",
            registry=registry,
        )
        self.open_dead_letters = Gauge(
            "tpf_open_dead_letters",
            "Dead letters not redriven yet.",
            registry=registry,
        )
        for status in ExecutionStatus:
            if status.is_terminal:
                self.finished.labels(status.value)
        for status in NON_TERMINAL_STATUSES:
            self.executions.labels(status.value)

    def committed(self, transitions: Iterable[Transition], *, reported: bool = False) -> None:
        """Count transitions whose transaction committed. `reported`: they record step
        attempts a dispatcher reported (CompleteWork)."""
        for transition in transitions:
            self.transitions.labels(transition.event.value).inc()
            after = transition.after.status
            if after.is_terminal and not transition.before.status.is_terminal:
                self.finished.labels(after.value).inc()
            if transition.dead_letter_reason is not None:
                self.dead_letters.labels(transition.dead_letter_reason.value).inc()
            if transition.event is HistoryEvent.LEASE_EXPIRED:
                self.lease_expiries.labels("requeued").inc()
            elif transition.dead_letter_reason is TerminalReason.LEASE_EXPIRED_REPEATEDLY:
                self.lease_expiries.labels("failed").inc()
            if reported:
                self.step_attempts.labels(_STEP_OUTCOMES[transition.event]).inc()

    def execution_submitted(self) -> None:
        """A submission created an execution (its transaction committed)."""
        self.submitted.inc()
        self.transitions.labels(HistoryEvent.SUBMITTED.value).inc()

    def claimed(self, count: int, elapsed_s: float) -> None:
        """One claim transaction committed, handing out `count` executions."""
        self.claim_duration.observe(elapsed_s)
        if count:
            self.claim_batch_size.observe(count)
            self.transitions.labels(HistoryEvent.CLAIMED.value).inc(count)

    def backlog(self, snapshot: BacklogSnapshot) -> None:
        for status in NON_TERMINAL_STATUSES:
            self.executions.labels(status.value).set(snapshot.by_status.get(status.value, 0))
        self.runnable.set(snapshot.runnable)
        self.oldest_runnable_age.set(snapshot.oldest_runnable_age_s)
        self.waiting_interactions.set(snapshot.waiting_interactions)
        self.open_dead_letters.set(snapshot.open_dead_letters)
