"""The execution state machine: every row of DESIGN §3, every refusal, and a stateful model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tpf_coordinator.domain.model import (
    NEVER_DUE_MS,
    ExecutionState,
    ExecutionStatus,
    HistoryEvent,
    StepFailure,
    TerminalReason,
    Transition,
)
from tpf_coordinator.domain.retry import RetrySettings
from tpf_coordinator.domain.transitions import (
    AwaitRequested,
    AwaitTimedOut,
    Cancel,
    Claim,
    Event,
    InteractionCompleted,
    LeaseExpired,
    PipelineCompleted,
    Redrive,
    StepCompleted,
    StepFailed,
    apply,
    new_execution_state,
)
from tpf_errors import Aborted, FailedPrecondition, TpfError

S = ExecutionStatus
NOW = 1_766_412_345_000
LEASE_MS = 30_000
RETRYABLE = StepFailure("TransitionWorkerFailureException", "boom: timeout", retryable=True)
NON_RETRYABLE = StepFailure("NonRetryableException", "bad order", retryable=False)
PERMANENT = StepFailure(
    "PAYLOAD_UNDECODABLE", "cannot decode input", retryable=True, permanent_input_error=True
)


def no_jitter() -> float:
    return 0.0


def at(status: ExecutionStatus, **overrides: Any) -> ExecutionState:
    """A plausible row in `status`, at step 2, version 7, last changed a minute ago."""
    base = ExecutionState(
        status=status,
        step_index=2,
        attempt=0,
        version=7,
        next_due_at_ms=NOW - 60_000,
        updated_at_ms=NOW - 60_000,
    )
    if status is S.RUNNING:
        base = replace(base, lease_owner="dispatcher-1", lease_expires_at_ms=NOW + 5_000)
    elif status is S.WAITING_EXTERNAL:
        base = replace(base, next_due_at_ms=NEVER_DUE_MS, await_unit_id="unit-1")
    elif status is S.WAIT_RETRY:
        base = replace(
            base, attempt=1, next_due_at_ms=NOW, error_code="E", error_message="earlier failure"
        )
    elif status in (S.FAILED, S.DLQ):
        base = replace(
            base,
            attempt=3,
            error_code="TransitionWorkerFailureException",
            error_message="x: y",
            terminal_reason="retry_exhausted",
            consecutive_lease_expiries=1,
        )
    return replace(base, **overrides)


def accepted(before: ExecutionState, **changes: Any) -> ExecutionState:
    """`before` after an accepted transition at NOW with `changes`."""
    return replace(before, version=before.version + 1, updated_at_ms=NOW, **changes)


NO_LEASE: dict[str, Any] = {"lease_owner": "", "lease_expires_at_ms": 0}
NO_ERROR: dict[str, Any] = {"error_code": None, "error_message": None}

# (row, before, event, after, history event, dead-letter reason) — DESIGN §3, in table order.
ROWS: list[tuple[str, ExecutionState, Event, ExecutionState, HistoryEvent, TerminalReason | None]]
ROWS = [
    (
        "queued-claim",
        at(S.QUEUED),
        Claim(owner="d-9", lease_ms=LEASE_MS, now_ms=NOW),
        accepted(
            at(S.QUEUED), status=S.RUNNING, lease_owner="d-9", lease_expires_at_ms=NOW + LEASE_MS
        ),
        HistoryEvent.CLAIMED,
        None,
    ),
    (
        "due-retry-claim-keeps-attempt-and-clears-error",
        at(S.WAIT_RETRY),
        Claim(owner="d-9", lease_ms=LEASE_MS, now_ms=NOW),
        accepted(
            at(S.WAIT_RETRY),
            status=S.RUNNING,
            lease_owner="d-9",
            lease_expires_at_ms=NOW + LEASE_MS,
            **NO_ERROR,
        ),
        HistoryEvent.CLAIMED,
        None,
    ),
    (
        "step-completed-queues-next-step",
        at(S.RUNNING, error_code="E", error_message="m", consecutive_lease_expiries=2),
        StepCompleted(next_step_index=3, now_ms=NOW),
        accepted(
            at(S.RUNNING),
            status=S.QUEUED,
            step_index=3,
            next_due_at_ms=NOW,
            consecutive_lease_expiries=0,
            **NO_LEASE,
            **NO_ERROR,
        ),
        HistoryEvent.STEP_COMPLETED,
        None,
    ),
    (
        "step-completed-continue-fast-path",
        at(S.RUNNING, error_code="E", error_message="m", consecutive_lease_expiries=2),
        StepCompleted(next_step_index=3, now_ms=NOW, keep_claim=True, lease_ms=LEASE_MS),
        accepted(
            at(S.RUNNING),
            step_index=3,
            lease_expires_at_ms=NOW + LEASE_MS,
            consecutive_lease_expiries=0,
            **NO_ERROR,
        ),
        HistoryEvent.STEP_COMPLETED,
        None,
    ),
    (
        "pipeline-completed",
        at(S.RUNNING, error_code="E", error_message="m"),
        PipelineCompleted(now_ms=NOW),
        accepted(at(S.RUNNING), status=S.SUCCEEDED, next_due_at_ms=NOW, **NO_LEASE, **NO_ERROR),
        HistoryEvent.SUCCEEDED,
        None,
    ),
    (
        "await-requested",
        at(S.RUNNING, error_code="E", error_message="m"),
        AwaitRequested(await_step_index=3, unit_id="unit-7", now_ms=NOW),
        accepted(
            at(S.RUNNING),
            status=S.WAITING_EXTERNAL,
            step_index=3,
            next_due_at_ms=NEVER_DUE_MS,
            await_unit_id="unit-7",
            **NO_LEASE,
            **NO_ERROR,
        ),
        HistoryEvent.AWAIT_REQUESTED,
        None,
    ),
    (
        "retryable-failure-schedules-retry",
        at(S.RUNNING, attempt=1),
        StepFailed(failure=RETRYABLE, now_ms=NOW, random=no_jitter),
        accepted(
            at(S.RUNNING),
            status=S.WAIT_RETRY,
            attempt=2,
            next_due_at_ms=NOW + 20_000,  # 10 s x 2^(2-1)
            error_code=RETRYABLE.error_code,
            error_message=RETRYABLE.error_message,
            **NO_LEASE,
        ),
        HistoryEvent.RETRY_SCHEDULED,
        None,
    ),
    (
        "retries-exhausted",
        at(S.RUNNING, attempt=3),
        StepFailed(failure=RETRYABLE, now_ms=NOW, random=no_jitter),
        accepted(
            at(S.RUNNING, attempt=3),
            status=S.FAILED,
            next_due_at_ms=NOW,
            error_code=RETRYABLE.error_code,
            error_message=RETRYABLE.error_message,
            terminal_reason="retry_exhausted",
            **NO_LEASE,
        ),
        HistoryEvent.FAILED,
        TerminalReason.RETRY_EXHAUSTED,
    ),
    (
        "non-retryable-failure",
        at(S.RUNNING),
        StepFailed(failure=NON_RETRYABLE, now_ms=NOW, random=no_jitter),
        accepted(
            at(S.RUNNING),
            status=S.FAILED,
            next_due_at_ms=NOW,
            error_code="NonRetryableException",
            error_message="bad order",
            terminal_reason="non_retryable",
            **NO_LEASE,
        ),
        HistoryEvent.FAILED,
        TerminalReason.NON_RETRYABLE,
    ),
    (
        "permanent-input-error-fails-at-once",
        at(S.RUNNING),
        StepFailed(failure=PERMANENT, now_ms=NOW, random=no_jitter),
        accepted(
            at(S.RUNNING),
            status=S.FAILED,
            next_due_at_ms=NOW,
            error_code="PAYLOAD_UNDECODABLE",
            error_message="cannot decode input",
            terminal_reason="non_retryable",
            **NO_LEASE,
        ),
        HistoryEvent.FAILED,
        TerminalReason.NON_RETRYABLE,
    ),
    (
        "lease-expired-requeues-without-retry",
        at(S.RUNNING, lease_expires_at_ms=NOW, attempt=1, consecutive_lease_expiries=1),
        LeaseExpired(now_ms=NOW),
        accepted(
            at(S.RUNNING, attempt=1),
            status=S.QUEUED,
            next_due_at_ms=NOW,
            consecutive_lease_expiries=2,
            **NO_LEASE,
        ),
        HistoryEvent.LEASE_EXPIRED,
        None,
    ),
    (
        "lease-expired-repeatedly-fails",
        at(S.RUNNING, lease_expires_at_ms=NOW - 1, consecutive_lease_expiries=2),
        LeaseExpired(now_ms=NOW),
        accepted(
            at(S.RUNNING),
            status=S.FAILED,
            next_due_at_ms=NOW,
            error_code="LEASE_EXPIRED_REPEATEDLY",
            error_message="Lease expired 3 times in a row at step 2; last owner dispatcher-1",
            terminal_reason="lease_expired_repeatedly",
            consecutive_lease_expiries=3,
            **NO_LEASE,
        ),
        HistoryEvent.FAILED,
        TerminalReason.LEASE_EXPIRED_REPEATEDLY,
    ),
    (
        "interaction-completed",
        at(S.WAITING_EXTERNAL),
        InteractionCompleted(next_step_index=3, now_ms=NOW),
        accepted(at(S.WAITING_EXTERNAL), status=S.QUEUED, step_index=3, next_due_at_ms=NOW),
        HistoryEvent.INTERACTION_COMPLETED,
        None,
    ),
    (
        "await-timed-out-without-dead-letter",
        at(S.WAITING_EXTERNAL),
        AwaitTimedOut(interaction_id="i-42", now_ms=NOW),
        accepted(
            at(S.WAITING_EXTERNAL),
            status=S.FAILED,
            next_due_at_ms=NOW,
            error_code="AWAIT_TIMEOUT",
            error_message="Await interaction timed out: i-42",
            terminal_reason="await_timeout",
        ),
        HistoryEvent.AWAIT_TIMED_OUT,
        None,
    ),
    (
        "redrive-failed-with-allow-failed",
        at(S.FAILED),
        Redrive(now_ms=NOW, allow_failed=True, expected_version=7, reason="fixed"),
        accepted(
            at(S.FAILED),
            status=S.QUEUED,
            attempt=4,
            next_due_at_ms=NOW,
            terminal_reason="",
            consecutive_lease_expiries=0,
            **NO_ERROR,
        ),
        HistoryEvent.REDRIVEN,
        None,
    ),
    (
        "redrive-dlq",
        at(S.DLQ),
        Redrive(now_ms=NOW),
        accepted(
            at(S.DLQ),
            status=S.QUEUED,
            attempt=4,
            next_due_at_ms=NOW,
            terminal_reason="",
            consecutive_lease_expiries=0,
            **NO_ERROR,
        ),
        HistoryEvent.REDRIVEN,
        None,
    ),
    *[
        (
            f"cancel-{status.value.lower()}",
            at(status),
            Cancel(now_ms=NOW, reason="no longer needed"),
            accepted(at(status), status=S.CANCELLED, next_due_at_ms=NOW, **NO_LEASE),
            HistoryEvent.CANCELLED,
            None,
        )
        for status in S
        if not status.is_terminal
    ],
]


@pytest.mark.parametrize(
    ("before", "event", "after", "history", "dead_letter"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_design_table_row(
    before: ExecutionState,
    event: Event,
    after: ExecutionState,
    history: HistoryEvent,
    dead_letter: TerminalReason | None,
) -> None:
    transition = apply(before, event, actor="someone")

    assert transition.after == after
    assert transition.before == before
    assert transition.event is history
    assert transition.dead_letter_reason is dead_letter
    assert transition.actor == "someone"


def test_submit_row_is_queued_at_step_zero_attempt_zero_version_zero() -> None:
    assert new_execution_state(NOW) == ExecutionState(
        status=S.QUEUED,
        step_index=0,
        attempt=0,
        version=0,
        next_due_at_ms=NOW,
        updated_at_ms=NOW,
    )


def test_failure_transitions_record_the_failure_and_reasons_record_the_callers_reason() -> None:
    failed = apply(
        at(S.RUNNING), StepFailed(failure=PERMANENT, now_ms=NOW, random=no_jitter), actor="d"
    )
    assert failed.failure == replace(PERMANENT, retryable=False)

    expired = apply(at(S.RUNNING, lease_expires_at_ms=NOW), LeaseExpired(now_ms=NOW), actor="s")
    assert expired.failure is not None
    assert expired.failure.error_code == "LEASE_EXPIRED"

    cancelled = apply(at(S.QUEUED), Cancel(now_ms=NOW, reason="operator"), actor="p")
    assert (cancelled.reason, cancelled.failure) == ("operator", None)


def test_long_error_messages_are_cut_to_512_characters() -> None:
    failure = StepFailure("E", "x" * 600, retryable=True)
    transition = apply(
        at(S.RUNNING), StepFailed(failure=failure, now_ms=NOW, random=no_jitter), actor="d"
    )
    assert transition.after.error_message == "x" * 512
    assert transition.failure is not None
    assert transition.failure.error_message == "x" * 512


def test_retry_delay_uses_the_step_policy_and_the_injected_random() -> None:
    retry = RetrySettings(initial_delay_ms=1_000, multiplier=3.0, jitter=0.5)
    event = StepFailed(failure=RETRYABLE, now_ms=NOW, random=lambda: 0.5, retry=retry)
    transition = apply(at(S.RUNNING, attempt=1), event, actor="d")
    # next attempt 2: 1000 x 3 = 3000, minus 0.5 x 0.5 of it.
    assert transition.after.next_due_at_ms == NOW + 2_250


ALL_EVENTS: list[Event] = [
    Claim(owner="d", lease_ms=LEASE_MS, now_ms=NOW),
    StepCompleted(next_step_index=9, now_ms=NOW),
    StepCompleted(next_step_index=9, now_ms=NOW, keep_claim=True, lease_ms=LEASE_MS),
    PipelineCompleted(now_ms=NOW),
    AwaitRequested(await_step_index=9, unit_id="u", now_ms=NOW),
    StepFailed(failure=RETRYABLE, now_ms=NOW, random=no_jitter),
    LeaseExpired(now_ms=NOW + 10**9),
    InteractionCompleted(next_step_index=9, now_ms=NOW),
    AwaitTimedOut(interaction_id="i", now_ms=NOW),
    Cancel(now_ms=NOW),
]


@pytest.mark.parametrize("status", [s for s in S if s.is_terminal])
@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda event: type(event).__name__)
def test_terminal_states_absorb_every_event_but_redrive(
    status: ExecutionStatus, event: Event
) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        apply(at(status), event, actor="d")
    assert raised.value.reason == "INVALID_TRANSITION"
    assert raised.value.metadata == {"status": status.value, "operation": type(event).__name__}


@pytest.mark.parametrize(
    ("before", "event"),
    [
        pytest.param(
            at(S.WAIT_RETRY, next_due_at_ms=NOW + 1),
            Claim(owner="d", lease_ms=LEASE_MS, now_ms=NOW),
            id="claim-retry-not-due",
        ),
        pytest.param(
            at(S.RUNNING), Claim(owner="d", lease_ms=LEASE_MS, now_ms=NOW), id="claim-running"
        ),
        pytest.param(
            at(S.WAITING_EXTERNAL),
            Claim(owner="d", lease_ms=LEASE_MS, now_ms=NOW),
            id="claim-waiting",
        ),
        pytest.param(
            at(S.QUEUED), StepCompleted(next_step_index=3, now_ms=NOW), id="complete-queued"
        ),
        pytest.param(
            at(S.RUNNING), StepCompleted(next_step_index=2, now_ms=NOW), id="complete-same-step"
        ),
        pytest.param(at(S.WAIT_RETRY), PipelineCompleted(now_ms=NOW), id="pipeline-not-running"),
        pytest.param(
            at(S.RUNNING),
            AwaitRequested(await_step_index=1, unit_id="u", now_ms=NOW),
            id="await-behind-step",
        ),
        pytest.param(
            at(S.QUEUED),
            StepFailed(failure=RETRYABLE, now_ms=NOW, random=no_jitter),
            id="fail-queued",
        ),
        pytest.param(
            at(S.RUNNING, lease_expires_at_ms=NOW + 1), LeaseExpired(now_ms=NOW), id="lease-held"
        ),
        pytest.param(at(S.QUEUED), LeaseExpired(now_ms=NOW), id="lease-not-running"),
        pytest.param(
            at(S.RUNNING),
            InteractionCompleted(next_step_index=3, now_ms=NOW),
            id="interaction-running",
        ),
        pytest.param(
            at(S.WAITING_EXTERNAL),
            InteractionCompleted(next_step_index=2, now_ms=NOW),
            id="interaction-same-step",
        ),
        pytest.param(
            at(S.QUEUED), AwaitTimedOut(interaction_id="i", now_ms=NOW), id="timeout-queued"
        ),
    ],
)
def test_refused_events_raise_invalid_transition(before: ExecutionState, event: Event) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        apply(before, event, actor="d")
    assert raised.value.reason == "INVALID_TRANSITION"
    assert raised.value.metadata["status"] == before.status.value


@pytest.mark.parametrize("status", [s for s in S if s not in (S.DLQ,)])
def test_redrive_needs_dlq_or_failed_with_allow_failed(status: ExecutionStatus) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        apply(at(status), Redrive(now_ms=NOW), actor="admin")
    assert raised.value.reason == "INVALID_TRANSITION"
    assert raised.value.message == f"Execution cannot be re-driven from status {status.value}"


def test_redrive_message_names_the_execution_as_tpf_does() -> None:
    with pytest.raises(FailedPrecondition) as raised:
        apply(at(S.SUCCEEDED), Redrive(now_ms=NOW, execution_id="e-1"), actor="admin")
    assert raised.value.message == "Execution e-1 cannot be re-driven from status SUCCEEDED"


def test_redrive_with_a_stale_expected_version_is_aborted() -> None:
    event = Redrive(now_ms=NOW, allow_failed=True, expected_version=6, execution_id="e-1")
    with pytest.raises(Aborted) as raised:
        apply(at(S.FAILED), event, actor="admin")
    assert raised.value.reason == "VERSION_CONFLICT"
    assert (
        raised.value.message
        == "Execution e-1 version mismatch: expected 6 but current version is 7"
    )
    assert raised.value.metadata == {"expectedVersion": "6", "currentVersion": "7"}


def test_events_refuse_nonsense_parameters() -> None:
    with pytest.raises(ValueError):
        Claim(owner="", lease_ms=LEASE_MS, now_ms=NOW)
    with pytest.raises(ValueError):
        Claim(owner="d", lease_ms=0, now_ms=NOW)
    with pytest.raises(ValueError):
        StepCompleted(next_step_index=3, now_ms=NOW, keep_claim=True)
    with pytest.raises(ValueError):
        LeaseExpired(now_ms=NOW, max_consecutive=0)


# --- stateful model ------------------------------------------------------------------------------


def is_allowed(state: ExecutionState, event: Event) -> bool:
    """DESIGN §3 restated independently of `apply`: may `event` happen to `state`?"""
    if isinstance(event, Redrive):
        version_ok = event.expected_version in (None, state.version)
        return version_ok and (
            state.status is S.DLQ or (state.status is S.FAILED and event.allow_failed)
        )
    if state.status in (S.SUCCEEDED, S.FAILED, S.DLQ, S.CANCELLED):
        return False
    running = state.status is S.RUNNING
    waiting = state.status is S.WAITING_EXTERNAL
    if isinstance(event, Claim):
        return state.status is S.QUEUED or (
            state.status is S.WAIT_RETRY and state.next_due_at_ms <= event.now_ms
        )
    if isinstance(event, StepCompleted):
        return running and event.next_step_index > state.step_index
    if isinstance(event, PipelineCompleted | StepFailed):
        return running
    if isinstance(event, AwaitRequested):
        return running and event.await_step_index >= state.step_index
    if isinstance(event, LeaseExpired):
        return running and state.lease_expires_at_ms <= event.now_ms
    if isinstance(event, InteractionCompleted):
        return waiting and event.next_step_index > state.step_index
    if isinstance(event, AwaitTimedOut):
        return waiting
    return isinstance(event, Cancel)


OWNERS = st.sampled_from(["dispatcher-1", "dispatcher-2"])
_STEPS = st.integers(min_value=0, max_value=6)
# Any event, with parameters that are sometimes valid and sometimes not; `now_ms` is set on use.
EVENTS: st.SearchStrategy[Event] = st.one_of(
    st.builds(Claim, owner=OWNERS, lease_ms=st.just(LEASE_MS), now_ms=st.just(0)),
    st.builds(StepCompleted, next_step_index=_STEPS, now_ms=st.just(0)),
    st.builds(PipelineCompleted, now_ms=st.just(0)),
    st.builds(AwaitRequested, await_step_index=_STEPS, unit_id=st.just("u"), now_ms=st.just(0)),
    st.builds(
        StepFailed,
        failure=st.sampled_from([RETRYABLE, NON_RETRYABLE, PERMANENT]),
        now_ms=st.just(0),
        random=st.just(no_jitter),
    ),
    st.builds(LeaseExpired, now_ms=st.just(0)),
    st.builds(InteractionCompleted, next_step_index=_STEPS, now_ms=st.just(0)),
    st.builds(AwaitTimedOut, interaction_id=st.just("i"), now_ms=st.just(0)),
    st.builds(
        Redrive,
        now_ms=st.just(0),
        allow_failed=st.booleans(),
        expected_version=st.none() | st.integers(min_value=0, max_value=40),
    ),
    st.builds(Cancel, now_ms=st.just(0)),
)


RuleFunction = TypeVar("RuleFunction", bound=Callable[..., None])


def status_is(*statuses: ExecutionStatus) -> Callable[[RuleFunction], RuleFunction]:
    return precondition(lambda machine: machine.state.status in statuses)


class ExecutionMachine(RuleBasedStateMachine):
    """One execution driven by random events, with the store's fencing modelled.

    Targeted rules (guarded by status so runs get somewhere) check what each accepted transition
    must produce; `any_event` throws arbitrary events at any state and checks acceptance against
    the independent `is_allowed`; invariants hold after every step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now_ms = NOW
        self.state = new_execution_state(NOW)
        self.start_version = 0
        self.transitions: list[Transition] = []
        self.seen: list[ExecutionState] = [self.state]
        self.last_error: TpfError | None = None

    @initialize(legacy_dlq=st.integers(min_value=0, max_value=4))
    def start(self, legacy_dlq: int) -> None:
        if legacy_dlq == 0:
            # A row imported from TPF in DLQ (we never write DLQ ourselves).
            self.state = at(S.DLQ, updated_at_ms=NOW)
            self.start_version = self.state.version
            self.seen = [self.state]

    def _store_commit(self, transition: Transition) -> bool:
        """The store's conditional write: only where the row still holds `before.version`."""
        if transition.before.version != self.state.version:
            return False
        self.transitions.append(transition)
        self.state = transition.after
        self.seen.append(transition.after)
        return True

    def _apply(self, event: Event, *, actor: str = "dispatcher-1") -> Transition | None:
        before = self.state
        expected = is_allowed(before, event)
        self.last_error = None
        try:
            transition = apply(before, event, actor=actor)
        except TpfError as error:
            self.last_error = error
            assert not expected, f"{event} refused from {before}: {error!r}"
            assert error.reason in ("INVALID_TRANSITION", "VERSION_CONFLICT")
            assert self.state is before
            return None
        assert expected, f"{event} accepted from {before}"
        assert transition.before == before
        assert transition.after.version == before.version + 1
        assert transition.after.updated_at_ms == event.now_ms
        assert transition.actor == actor
        assert self._store_commit(transition)
        return transition

    @rule(ms=st.integers(min_value=0, max_value=20_000))
    def time_passes(self, ms: int) -> None:
        self.now_ms += ms

    @rule(data=st.data())
    def any_event(self, data: st.DataObject) -> None:
        self._apply(replace(data.draw(EVENTS), now_ms=self.now_ms), actor="anyone")

    @status_is(S.QUEUED, S.WAIT_RETRY)
    @rule(owner=OWNERS, lease_ms=st.integers(min_value=1, max_value=10_000), wait=st.booleans())
    def claim(self, owner: str, lease_ms: int, wait: bool) -> None:
        s = self.state
        if wait:
            self.now_ms = max(self.now_ms, s.next_due_at_ms)
        t = self._apply(Claim(owner=owner, lease_ms=lease_ms, now_ms=self.now_ms), actor=owner)
        if t is not None:
            assert t.event is HistoryEvent.CLAIMED
            # Attempt and step are kept; the previous attempt's error is cleared.
            assert t.after == replace(
                s,
                status=S.RUNNING,
                lease_owner=owner,
                lease_expires_at_ms=self.now_ms + lease_ms,
                error_code=None,
                error_message=None,
                version=s.version + 1,
                updated_at_ms=self.now_ms,
            )

    @status_is(S.RUNNING)
    @rule(advance=st.integers(min_value=1, max_value=3), keep_claim=st.booleans())
    def complete_step(self, advance: int, keep_claim: bool) -> None:
        s = self.state
        event = StepCompleted(
            next_step_index=s.step_index + advance,
            now_ms=self.now_ms,
            keep_claim=keep_claim,
            lease_ms=LEASE_MS,
        )
        t = self._apply(event)
        assert t is not None
        assert t.event is HistoryEvent.STEP_COMPLETED
        assert t.after.status is (S.RUNNING if keep_claim else S.QUEUED)
        assert (t.after.step_index, t.after.attempt) == (s.step_index + advance, s.attempt)
        assert (t.after.error_code, t.after.consecutive_lease_expiries) == (None, 0)
        if keep_claim:
            assert t.after.lease_owner == s.lease_owner
            assert t.after.lease_expires_at_ms == self.now_ms + LEASE_MS

    @status_is(S.RUNNING)
    @rule()
    def complete_pipeline(self) -> None:
        t = self._apply(PipelineCompleted(now_ms=self.now_ms))
        assert t is not None
        assert (t.event, t.after.status, t.after.error_code) == (
            HistoryEvent.SUCCEEDED,
            S.SUCCEEDED,
            None,
        )

    @status_is(S.RUNNING)
    @rule(offset=st.integers(min_value=0, max_value=2))
    def request_await(self, offset: int) -> None:
        s = self.state
        unit_id = f"unit-{s.version}"
        event = AwaitRequested(
            await_step_index=s.step_index + offset, unit_id=unit_id, now_ms=self.now_ms
        )
        t = self._apply(event)
        assert t is not None
        assert (t.after.status, t.after.step_index) == (S.WAITING_EXTERNAL, s.step_index + offset)
        assert (t.after.await_unit_id, t.after.error_code) == (unit_id, None)

    @status_is(S.WAITING_EXTERNAL)
    @rule()
    def complete_interaction(self) -> None:
        s = self.state
        event = InteractionCompleted(next_step_index=s.step_index + 1, now_ms=self.now_ms)
        t = self._apply(event, actor="approver")
        assert t is not None
        assert t.after.status is S.QUEUED
        assert (t.after.step_index, t.after.next_due_at_ms) == (s.step_index + 1, self.now_ms)
        assert t.after.await_unit_id == s.await_unit_id

    @status_is(S.RUNNING)
    @rule(
        failure=st.sampled_from([RETRYABLE, RETRYABLE, NON_RETRYABLE, PERMANENT]),
        max_retries=st.integers(min_value=0, max_value=5),
    )
    def fail_step(self, failure: StepFailure, max_retries: int) -> None:
        s = self.state
        retry = RetrySettings(max_retries=max_retries, initial_delay_ms=1_000)
        event = StepFailed(failure=failure, now_ms=self.now_ms, random=no_jitter, retry=retry)
        t = self._apply(event)
        assert t is not None
        assert t.after.error_code == failure.error_code
        retryable = failure.retryable and not failure.permanent_input_error
        if retryable and s.attempt + 1 <= max_retries:
            assert (t.event, t.after.status) == (HistoryEvent.RETRY_SCHEDULED, S.WAIT_RETRY)
            assert t.after.attempt == s.attempt + 1
            assert t.after.next_due_at_ms == self.now_ms + 1_000 * 2**s.attempt
            assert t.dead_letter_reason is None
        else:
            assert (t.event, t.after.status) == (HistoryEvent.FAILED, S.FAILED)
            assert t.after.attempt == s.attempt
            reason = TerminalReason.RETRY_EXHAUSTED if retryable else TerminalReason.NON_RETRYABLE
            assert t.dead_letter_reason is reason
            assert t.after.terminal_reason == reason.value

    @status_is(S.RUNNING)
    @rule(
        overdue_ms=st.integers(min_value=-2_000, max_value=2_000),
        max_consecutive=st.integers(min_value=1, max_value=4),
    )
    def expire_lease(self, overdue_ms: int, max_consecutive: int) -> None:
        s = self.state
        self.now_ms = max(self.now_ms, s.lease_expires_at_ms + overdue_ms)
        event = LeaseExpired(now_ms=self.now_ms, max_consecutive=max_consecutive)
        t = self._apply(event, actor="sweeper")
        if t is None:
            return
        assert t.after.attempt == s.attempt
        assert t.after.consecutive_lease_expiries == s.consecutive_lease_expiries + 1
        if s.consecutive_lease_expiries + 1 >= max_consecutive:
            assert (t.event, t.after.status) == (HistoryEvent.FAILED, S.FAILED)
            assert t.after.error_code == "LEASE_EXPIRED_REPEATEDLY"
            assert t.dead_letter_reason is TerminalReason.LEASE_EXPIRED_REPEATEDLY
        else:
            assert (t.event, t.after.status) == (HistoryEvent.LEASE_EXPIRED, S.QUEUED)

    @status_is(S.WAITING_EXTERNAL)
    @rule()
    def time_out_await(self) -> None:
        t = self._apply(AwaitTimedOut(interaction_id="i-1", now_ms=self.now_ms), actor="sweeper")
        assert t is not None
        assert (t.after.status, t.after.error_code) == (S.FAILED, "AWAIT_TIMEOUT")
        assert t.dead_letter_reason is None

    @status_is(S.FAILED, S.DLQ)
    @rule(allow_failed=st.booleans(), version=st.sampled_from(["none", "current", "stale"]))
    def redrive(self, allow_failed: bool, version: str) -> None:
        s = self.state
        expected_version = {"none": None, "current": s.version, "stale": s.version - 1}[version]
        event = Redrive(
            now_ms=self.now_ms,
            allow_failed=allow_failed,
            expected_version=expected_version,
            reason="operator",
        )
        t = self._apply(event, actor="admin")
        if version == "stale":
            assert isinstance(self.last_error, Aborted)
            assert self.last_error.reason == "VERSION_CONFLICT"
        if t is None:
            return
        assert (t.event, t.after.status, t.reason) == (HistoryEvent.REDRIVEN, S.QUEUED, "operator")
        assert (t.after.step_index, t.after.attempt) == (s.step_index, s.attempt + 1)
        assert (t.after.error_code, t.after.terminal_reason) == (None, "")

    @rule(roll=st.integers(min_value=0, max_value=3))
    def cancel(self, roll: int) -> None:
        if roll:  # one in four, so runs live long enough to reach retries and redrives
            return
        t = self._apply(Cancel(now_ms=self.now_ms, reason="bye"), actor="user")
        if t is not None:
            assert (t.after.status, t.reason) == (S.CANCELLED, "bye")

    @precondition(lambda machine: any(old.version < machine.state.version for old in machine.seen))
    @rule(data=st.data())
    def stale_claimant_commits(self, data: st.DataObject) -> None:
        old = data.draw(st.sampled_from([o for o in self.seen if o.version < self.state.version]))
        event = replace(data.draw(EVENTS), now_ms=self.now_ms)
        current = self.state
        try:
            transition = apply(old, event, actor="late")
        except TpfError:
            return
        # Decided on an outdated copy: the transition says so, and the store refuses it.
        assert transition.before.version == old.version != current.version
        assert not self._store_commit(transition)
        assert self.state is current

    @invariant()
    def version_rises_by_one_per_accepted_transition(self) -> None:
        assert self.state.version == self.start_version + len(self.transitions)
        for number, transition in enumerate(self.transitions):
            assert transition.before.version == self.start_version + number
            assert transition.after.version == transition.before.version + 1
        for earlier, later in zip(self.transitions, self.transitions[1:], strict=False):
            assert later.before == earlier.after

    @invariant()
    def attempt_never_decreases(self) -> None:
        for transition in self.transitions:
            assert transition.after.attempt >= transition.before.attempt

    @invariant()
    def running_holds_a_lease_and_nothing_else_does(self) -> None:
        if self.state.status is S.RUNNING:
            assert self.state.lease_owner
            assert self.state.lease_expires_at_ms > 0
        else:
            assert (self.state.lease_owner, self.state.lease_expires_at_ms) == ("", 0)

    @invariant()
    def wait_retry_has_an_error(self) -> None:
        if self.state.status is S.WAIT_RETRY:
            assert self.state.error_code

    @invariant()
    def waiting_external_is_never_due(self) -> None:
        if self.state.status is S.WAITING_EXTERNAL:
            assert self.state.next_due_at_ms == NEVER_DUE_MS
            assert self.state.await_unit_id

    @invariant()
    def failed_rows_say_why_and_others_do_not(self) -> None:
        if self.state.status is S.FAILED:
            assert self.state.terminal_reason
            assert self.state.error_code
        elif self.state.status is not S.DLQ:
            assert self.state.terminal_reason == ""

    @invariant()
    def dead_letters_go_with_failed_transitions_only(self) -> None:
        for transition in self.transitions:
            assert (transition.dead_letter_reason is not None) == (
                transition.event is HistoryEvent.FAILED
            )
            assert transition.after.status is not S.DLQ


TestExecutionMachine = ExecutionMachine.TestCase
TestExecutionMachine.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
