"""Events the execution state machine accepts (DESIGN §3); `transitions.apply` decides on them.

Each event carries the time it happens at (`now_ms`) and anything random it needs, so deciding a
transition reads no clock and no global random source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tpf_coordinator.domain.model import StepFailure
from tpf_coordinator.domain.retry import RetrySettings

DEFAULT_RETRY_SETTINGS = RetrySettings()
DEFAULT_MAX_CONSECUTIVE_LEASE_EXPIRIES = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A dispatcher takes a QUEUED or WAIT_RETRY execution once it is due (`next_due_at_ms`)."""

    owner: str
    lease_ms: int
    now_ms: int

    def __post_init__(self) -> None:
        if not self.owner:
            raise ValueError("a claim needs an owner")
        _require_positive_lease(self.lease_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCompleted:
    """A step (or segment) finished and more steps remain.

    With `keep_claim` the claimant goes on with the next step itself (the "continue" fast path):
    the execution stays RUNNING with a renewed lease, still one versioned commit per step.
    """

    next_step_index: int
    now_ms: int
    keep_claim: bool = False
    # The renewed lease when `keep_claim`; ignored otherwise.
    lease_ms: int = 0

    def __post_init__(self) -> None:
        if self.keep_claim:
            _require_positive_lease(self.lease_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineCompleted:
    now_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AwaitRequested:
    """The running segment reached an await step; the await unit is created with this commit."""

    await_step_index: int
    unit_id: str
    now_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFailed:
    failure: StepFailure
    now_ms: int
    # `random` returns 0 <= r < 1; it is used only when the retry settings ask for jitter.
    random: Callable[[], float] = field(compare=False)
    retry: RetrySettings = DEFAULT_RETRY_SETTINGS


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseExpired:
    """The sweeper found the claimant's lease past; not a retry (attempt unchanged, as TPF)."""

    now_ms: int
    # Poison-pill guard (ours): this many expiries in a row at one step fail the execution.
    max_consecutive: int = DEFAULT_MAX_CONSECUTIVE_LEASE_EXPIRIES

    def __post_init__(self) -> None:
        if self.max_consecutive < 1:
            raise ValueError(f"max_consecutive must be at least 1, got {self.max_consecutive}")


@dataclass(frozen=True, slots=True, kw_only=True)
class InteractionCompleted:
    next_step_index: int
    now_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AwaitTimedOut:
    interaction_id: str
    now_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Redrive:
    """An operator sends a failed execution round again, at the same step, attempt + 1."""

    now_ms: int
    allow_failed: bool = False
    expected_version: int | None = None
    reason: str = ""
    # Only for messages: TPF names the execution in its redrive errors.
    execution_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    now_ms: int
    reason: str = ""


Event = (
    Claim
    | StepCompleted
    | PipelineCompleted
    | AwaitRequested
    | StepFailed
    | LeaseExpired
    | InteractionCompleted
    | AwaitTimedOut
    | Redrive
    | Cancel
)


def _require_positive_lease(lease_ms: int) -> None:
    if lease_ms <= 0:
        raise ValueError(f"a lease must last at least 1 ms, got {lease_ms}")
