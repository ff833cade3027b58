"""What the coordinator's use cases need from durable storage, and the types they exchange.

Use cases and servicers depend on these protocols only; the Postgres implementations
(store/*_postgres.py) are wired in by server.py. Rows read back are in store/records.py.

A use case that changes several rows in one transaction takes a connection from the store
(`connection()`), opens the transaction on it (`conn.transaction()`; nested, a savepoint) and
hands the connection to the store methods that take one. Every execution transition is written
through `Transactions.write`: conditional on the version it was computed from, with its history
row (and dead letter) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from tpf_coordinator.domain.event_feed import (
    EventCursor,
    FeedPosition,
    TenantSet,
    TerminalHistoryRow,
)
from tpf_coordinator.domain.model import ExecutionStatus, Transition
from tpf_coordinator.store.records import (
    DeadLetterRecord,
    ExecutionRecord,
    HistoryRecord,
    InteractionRecord,
    LockedInteraction,
    OpenDeadLetters,
    OverdueInteraction,
    StoredText,
    UnitProgress,
)
from tpf_envelope import Envelope

if TYPE_CHECKING:
    from tpf_coordinator.payloads import Payloads

# An open connection of the store, as `connection()` yields it. Use cases only open transactions
# on it and pass it back to the store's methods; each implementation's methods take its own
# connection type, hence Any.
Connection: TypeAlias = Any


class StaleVersion(Exception):
    """The row's version moved since the transition was computed; nothing was written."""


@dataclass(frozen=True, slots=True)
class TransitionWrite:
    """One transition of a batch (`WorkStore.write_many`), its texts already placed: inline, or
    in the object store by reference."""

    record: ExecutionRecord
    transition: Transition
    # The next step's input, when the transition replaces it (`payload_text` holds its text).
    payload: Envelope | None = None
    payload_text: StoredText | None = None
    # The execution's result, when the transition sets it.
    result_text: StoredText | None = None


# --- executions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewExecution:
    tenant_id: str
    execution_id: str
    pipeline_id: str
    contract_version: str
    release_version: str
    input_shape: str
    result_shape: str
    idempotency_key: str
    input_fingerprint: str
    payload: Envelope
    # How the row stores the payload text (inline, or a reference to the payload store).
    payload_text: StoredText
    now_ms: int
    actor: str
    # W3C traceparent of the submitting call: later steps' spans join its trace.
    trace_parent: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    record: ExecutionRecord
    created: bool


@dataclass(frozen=True, slots=True)
class ListFilter:
    pipeline_id: str = ""
    release_version: str = ""
    statuses: tuple[ExecutionStatus, ...] = ()
    created_after_ms: int | None = None
    created_before_ms: int | None = None
    idempotency_key: str = ""


class Transactions(Protocol):
    """Connections to run a transaction on, and the one way an execution transition is written."""

    def connection(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for the caller's transaction(s); given back when the block ends."""

    async def write(
        self,
        conn: Connection,
        record: ExecutionRecord,
        transition: Transition,
        *,
        payload: Envelope | None = None,
        set_payload: bool = False,
        result: str | None = None,
        release_version: str | None = None,
        contract_version: str | None = None,
        payloads: Payloads | None = None,
    ) -> None:
        """Apply `transition` to the record's row if it still has `transition.before.version`
        (else raise StaleVersion, writing nothing), with its history row and, for a transition
        that fails the execution, its dead letter.

        `set_payload` replaces the stored input by `payload`; `result` (encoded) is the
        execution's result; `release_version` / `contract_version` re-pin it (a redrive onto
        another release). With `payloads`, a large payload or result goes to the object store
        and the row keeps its reference.
        """


class ExecutionStore(Transactions, Protocol):
    """Executions: submission, reads, listing, history, and row locks for single transitions."""

    async def submit(self, new: NewExecution) -> SubmitOutcome:
        """Insert a QUEUED execution with its SUBMITTED history row, or return the execution
        that already has the idempotency key (`created=False`)."""

    async def submit_many(self, news: Sequence[NewExecution]) -> list[SubmitOutcome]:
        """`submit` of each, written together (one statement); outcomes in the order given. Of
        two submissions with the same key, the first given creates the execution and the
        second is its duplicate."""

    async def find_by_key(
        self, tenant_id: str, pipeline_id: str, idempotency_key: str
    ) -> ExecutionRecord | None:
        """The execution with this idempotency key, or None."""

    async def get(self, tenant_id: str, execution_id: str) -> ExecutionRecord | None:
        """One execution, or None."""

    async def list_executions(
        self,
        tenant_id: str,
        filters: ListFilter,
        *,
        before: tuple[int, str] | None,
        limit: int,
    ) -> list[ExecutionRecord]:
        """Newest first; `before` is the (created_at_ms, execution_id) of the last row seen."""

    async def history(
        self, tenant_id: str, execution_id: str, *, after_id: int, limit: int
    ) -> list[HistoryRecord]:
        """History rows with id greater than `after_id`, oldest first."""

    async def lock(
        self, conn: Connection, tenant_id: str, execution_id: str
    ) -> ExecutionRecord | None:
        """Read the execution under a row lock held until the caller's transaction ends."""

    async def cancel_awaits(
        self, conn: Connection, record: ExecutionRecord, *, now_ms: int
    ) -> None:
        """Close the execution's open await unit and interactions (it was cancelled)."""


# --- the dispatcher work protocol --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimFilter:
    tenant_ids: tuple[str, ...] = ()
    pipeline_ids: tuple[str, ...] = ()
    release_versions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewInteraction:
    interaction_id: str
    correlation_id: str
    idempotency_key: str
    causation_id: str
    item_index: int | None
    output_type: str
    request_payload: Any
    assignee: str | None
    group: str | None
    transport_type: str
    transport_metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewAwait:
    """An await to create; `interactions` in item order (one, for a one-to-one await)."""

    unit_id: str
    step_id: str
    step_index: int
    cardinality: str
    deadline_ms: int
    interactions: tuple[NewInteraction, ...]


class WorkStore(Transactions, Protocol):
    """Batch claims, row locks for group commits, await records."""

    async def claim(
        self,
        *,
        owner: str,
        limit: int,
        lease_ms: int,
        now_ms: int,
        filters: ClaimFilter,
        before_commit: Callable[[list[ExecutionRecord]], Awaitable[None]] | None = None,
    ) -> list[ExecutionRecord]:
        """Claim up to `limit` runnable, due executions (RUNNING under `owner`'s lease, version
        bumped, a CLAIMED history row each); `before_commit(records)` runs in the claim's
        transaction, and if it raises, the claim is rolled back."""

    async def lock_many(
        self, conn: Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], ExecutionRecord]:
        """Lock the (tenant, execution) rows that exist, in an order that cannot deadlock."""

    async def insert_await(
        self, conn: Connection, record: ExecutionRecord, new: NewAwait, *, now_ms: int
    ) -> None:
        """Create (or re-create, after a redrive) the await unit and its interactions."""

    async def write_many(self, conn: Connection, writes: Sequence[TransitionWrite]) -> None:
        """Apply each transition as `write` does, in one statement: every row must still hold
        its `transition.before.version` (the caller locked them), else StaleVersion is raised
        and the caller's transaction must roll back."""


# --- interactions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingFilter:
    """Exact-match filters (already trimmed); empty means no filter."""

    step_id: str = ""
    assignee: str = ""
    group: str = ""


# Keyset cursor of the pending list: the (deadline, created, id) of the last row of a page.
PendingCursor = tuple[int, int, str]


class InteractionStore(Protocol):
    """Await interactions: the pending list, completion lookups and writes. Connections come from
    the ExecutionStore (a completion also writes the execution's transition)."""

    async def list_pending(
        self,
        tenant_id: str,
        filters: PendingFilter,
        *,
        after: PendingCursor | None,
        limit: int,
        expired_before_ms: int,
    ) -> list[InteractionRecord]:
        """Pending interactions in TPF's order; those whose deadline is at or before
        `expired_before_ms` (now - the record TTL) have expired and are left out."""

    async def find(
        self,
        conn: Connection,
        tenant_id: str,
        *,
        interaction_id: str = "",
        correlation_id: str = "",
    ) -> InteractionRecord | None:
        """By interaction id if given, else by correlation id; no lock."""

    async def lock(
        self, conn: Connection, tenant_id: str, interaction_id: str
    ) -> LockedInteraction | None:
        """The interaction and its await unit under row locks (lock the execution first)."""

    async def record_completion(
        self,
        conn: Connection,
        locked: LockedInteraction,
        *,
        response: Envelope,
        actor: str,
        idempotency_key: str,
        now_ms: int,
    ) -> UnitProgress:
        """Mark the interaction COMPLETED and count its item on the unit, each conditional on
        its locked version; the unit is COMPLETED with its last expected item."""

    async def item_responses(
        self, conn: Connection, tenant_id: str, item_interaction_ids: tuple[str, ...]
    ) -> list[Envelope]:
        """The stored answers of the given items, in item order."""


# --- dead letters ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Criteria combined with AND; empty / None means any."""

    pipeline_id: str = ""
    release_version: str = ""
    error_code: str = ""
    terminal_reasons: tuple[str, ...] = ()
    created_after_ms: int | None = None
    created_before_ms: int | None = None
    include_redriven: bool = False
    execution_id: str = ""


# Keyset cursors: (created_at_ms, id) of the last dead letter listed, newest first; and
# (first_created_at_ms, first_id) of the last execution selected, oldest first.
DeadLetterCursor = tuple[int, int]


class DeadLetterStore(Protocol):
    """Dead letters: listing, the open ones a bulk redrive selects, marking them redriven.
    They are written with the failing transition (`Transactions.write`)."""

    async def list_dead_letters(
        self,
        tenant_id: str,
        filters: DeadLetterFilter,
        *,
        before: DeadLetterCursor | None,
        limit: int,
    ) -> list[DeadLetterRecord]:
        """Newest first; `before` is the cursor of the last dead letter of the previous page."""

    async def count_open_executions(self, tenant_id: str, filters: DeadLetterFilter) -> int:
        """How many executions have open (not redriven) dead letters matching the filters."""

    async def open_executions(
        self,
        tenant_id: str,
        filters: DeadLetterFilter,
        *,
        after: DeadLetterCursor | None,
        limit: int,
    ) -> list[OpenDeadLetters]:
        """Executions with open dead letters, oldest dead letter first, after `after`."""

    async def mark_redriven(
        self,
        conn: Connection,
        *,
        tenant_id: str,
        execution_id: str,
        before_version: int,
        now_ms: int,
        by: str,
        reason: str,
    ) -> int:
        """Stamp the execution's open dead letters up to `before_version` as redriven; the
        number stamped."""


# --- the sweeper -------------------------------------------------------------------------------


class SweeperStore(Transactions, Protocol):
    """What one sweeper pass reads and writes, inside the pass's transaction."""

    async def try_lead(self, conn: Connection) -> bool:
        """Whether this transaction is the one sweeping (one at a time across replicas)."""

    async def expired_leases(
        self, conn: Connection, *, now_ms: int, limit: int
    ) -> list[ExecutionRecord]:
        """RUNNING executions whose row lease has passed, locked (others' locked rows skipped)."""

    async def overdue_interactions(
        self, conn: Connection, *, now_ms: int, limit: int
    ) -> list[OverdueInteraction]:
        """Pending interactions past their deadline, locked (others' locked rows skipped)."""

    async def time_out_interaction(
        self, conn: Connection, overdue: OverdueInteraction, *, now_ms: int
    ) -> ExecutionRecord | None:
        """Mark the interaction and its unit TIMED_OUT; the execution still waiting on it,
        locked, or None."""

    async def expire_interactions(
        self, conn: Connection, *, expired_before_ms: int, now_ms: int, limit: int
    ) -> int:
        """Mark up to `limit` ended interactions whose deadline is at or before
        `expired_before_ms` (now - the record TTL) EXPIRED; how many."""


# --- request ids, the terminal-event feed, release drift ---------------------------------------


class RequestIdStore(Protocol):
    """Responses of mutating RPCs by request id (AIP-155)."""

    async def get(self, scope: str, request_id: str) -> tuple[str, bytes] | None:
        """The (request hash, response) stored for the id, or None."""

    async def put(
        self, scope: str, request_id: str, request_hash: str, response: bytes, *, now_ms: int
    ) -> None:
        """Store the response; the first one stored for an id stays."""

    async def forget_older_than(self, cutoff_ms: int) -> int:
        """Delete responses stored before `cutoff_ms`; how many."""


@dataclass(frozen=True, slots=True)
class TerminalRows:
    """One read of the terminal-event feed."""

    rows: list[TerminalHistoryRow]
    # xact_id of the oldest transaction still running when the rows were read.
    horizon_xact_id: int


class EventFeedStore(Protocol):
    """Terminal history rows in feed order, and consumers' durable cursors."""

    async def read(self, after: FeedPosition, tenants: TenantSet, *, limit: int) -> TerminalRows:
        """Terminal rows after `after` and below the horizon, in position order."""

    async def open_cursor(
        self, consumer_id: str, tenants: TenantSet, *, now_ms: int, actor: str
    ) -> tuple[EventCursor, bool]:
        """The cursor, created at the horizon when absent; and whether it was created."""

    async def advance_cursor(
        self,
        consumer_id: str,
        tenants: TenantSet,
        position: FeedPosition,
        *,
        now_ms: int,
        actor: str,
    ) -> tuple[EventCursor, bool]:
        """The cursor after moving it to `position` if that is forward; and whether it moved."""


class PinnedExecutionCounts(Protocol):
    async def count_non_terminal(
        self, tenant_id: str, pipeline_id: str
    ) -> dict[str, dict[ExecutionStatus, int]]:
        """Release version → non-terminal status → executions pinned to it in that status."""
