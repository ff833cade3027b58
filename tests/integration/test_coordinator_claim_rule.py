"""The claim SQL against the domain's Claim rule, on the real migrated schema (stateful).

The claim is the one transition computed in SQL (one statement claims a batch) rather than by
`domain.transitions.apply`. Hypothesis drives executions of every status, due times, filters,
batch sizes and clock moves against Postgres; after each claim the rows it took must be exactly
what the domain would claim: only executions `apply(state, Claim(...))` accepts, within the
filters, as many as the limit allows, the earliest due first, each row becoming what the domain's
transition says (version + 1, RUNNING, the lease, the error cleared) with its CLAIMED history row,
and every other row untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from psycopg.rows import dict_row

from tpf_coordinator.domain.model import ExecutionState, ExecutionStatus
from tpf_coordinator.domain.transitions import Claim, apply
from tpf_coordinator.store.protocol import ClaimFilter
from tpf_coordinator.store.records import ExecutionRecord
from tpf_coordinator.store.work_postgres import PostgresWorkStore
from tpf_errors import TpfError
from tpf_store import open_pool

TENANTS = ("t-a", "t-b")
PIPELINES = ("p-1", "p-2")
RELEASES = ("r-1", "r-2")
START_MS = 1_700_000_000_000


def any_or_some(values: tuple[str, ...]) -> st.SearchStrategy[set[str]]:
    """No filter (half the time), or a subset of `values` to claim from."""
    return st.one_of(st.just(set()), st.sets(st.sampled_from(values), min_size=1))


INSERT = """
INSERT INTO executions (
    tenant_id, execution_id, pipeline_id, contract_version, release_version, status, step_index,
    attempt, version, input_shape, result_shape, idempotency_key, input_fingerprint,
    next_due_at_ms, lease_owner, lease_expires_at_ms, error_code, error_message,
    created_at_ms, updated_at_ms)
VALUES (%(tenant_id)s, %(execution_id)s, %(pipeline_id)s, 'c', %(release_version)s, %(status)s,
        0, %(attempt)s, %(version)s, 'UNI', 'SINGLE', %(execution_id)s, 'f', %(next_due_at_ms)s,
        %(lease_owner)s, %(lease_expires_at_ms)s, %(error_code)s, %(error_message)s,
        %(now_ms)s, %(now_ms)s)
"""


class ClaimAgainstTheDomain(RuleBasedStateMachine):
    """Rows in Postgres and the same rows in a model the domain's rules move."""

    database_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.pool = self.runner.run(open_pool(self.database_url, min_size=1, max_size=2))
        self.work = PostgresWorkStore(self.pool)
        self.conn = psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row)
        self.conn.execute("TRUNCATE executions, execution_history")
        self.now_ms = START_MS
        self.ids = itertools.count()
        # (tenant, execution) → (pipeline, release, domain state)
        self.model: dict[tuple[str, str], tuple[str, str, ExecutionState]] = {}
        self.owners = itertools.count()

    def teardown(self) -> None:
        self.conn.close()
        self.runner.run(self.pool.close())
        self.runner.close()

    @rule(
        rows=st.lists(
            st.tuples(
                st.sampled_from(TENANTS),
                st.sampled_from(PIPELINES),
                st.sampled_from(RELEASES),
                st.sampled_from(list(ExecutionStatus)),
                st.integers(-5_000, 5_000),
                st.booleans(),
            ),
            min_size=1,
            max_size=8,
        )
    )
    def add(self, rows: list[tuple[str, str, str, ExecutionStatus, int, bool]]) -> None:
        for tenant, pipeline, release, status, due_offset_ms, with_error in rows:
            self._insert(tenant, pipeline, release, status, due_offset_ms, with_error)

    def _insert(
        self,
        tenant: str,
        pipeline: str,
        release: str,
        status: ExecutionStatus,
        due_offset_ms: int,
        with_error: bool,
    ) -> None:
        execution_id = f"e-{next(self.ids):05d}"
        running = status is ExecutionStatus.RUNNING
        state = ExecutionState(
            status=status,
            step_index=0,
            attempt=1 if with_error else 0,
            version=3,
            next_due_at_ms=self.now_ms + due_offset_ms,
            updated_at_ms=self.now_ms,
            lease_owner="someone" if running else "",
            lease_expires_at_ms=self.now_ms + 1_000 if running else 0,
            error_code="Boom" if with_error else None,
            error_message="it broke" if with_error else None,
        )
        self.conn.execute(
            INSERT,
            {
                "tenant_id": tenant,
                "execution_id": execution_id,
                "pipeline_id": pipeline,
                "release_version": release,
                "status": status.value,
                "attempt": state.attempt,
                "version": state.version,
                "next_due_at_ms": state.next_due_at_ms,
                "lease_owner": state.lease_owner,
                "lease_expires_at_ms": state.lease_expires_at_ms,
                "error_code": state.error_code,
                "error_message": state.error_message,
                "now_ms": self.now_ms,
            },
        )
        self.model[(tenant, execution_id)] = (pipeline, release, state)

    @rule(elapsed_ms=st.integers(0, 4_000))
    def advance(self, elapsed_ms: int) -> None:
        self.now_ms += elapsed_ms

    @rule(
        limit=st.integers(1, 6),
        lease_ms=st.integers(1, 60_000),
        tenants=any_or_some(TENANTS),
        pipelines=any_or_some(PIPELINES),
        releases=any_or_some(RELEASES),
    )
    def claim(
        self,
        limit: int,
        lease_ms: int,
        tenants: set[str],
        pipelines: set[str],
        releases: set[str],
    ) -> None:
        owner = f"dispatcher-{next(self.owners)}"
        event = Claim(owner=owner, lease_ms=lease_ms, now_ms=self.now_ms)
        eligible: dict[tuple[str, str], Any] = {}
        for key, (pipeline, release, state) in self.model.items():
            if tenants and key[0] not in tenants:
                continue
            if pipelines and pipeline not in pipelines:
                continue
            if releases and release not in releases:
                continue
            with contextlib.suppress(TpfError):  # the domain refuses it: not eligible
                eligible[key] = apply(state, event, actor=owner)
        claimed = self.runner.run(
            self.work.claim(
                owner=owner,
                limit=limit,
                lease_ms=lease_ms,
                now_ms=self.now_ms,
                filters=ClaimFilter(
                    tenant_ids=tuple(sorted(tenants)),
                    pipeline_ids=tuple(sorted(pipelines)),
                    release_versions=tuple(sorted(releases)),
                ),
            )
        )
        keys = [(record.tenant_id, record.execution_id) for record in claimed]
        assert len(set(keys)) == len(keys)
        assert set(keys) <= eligible.keys(), "claimed what the domain refuses"
        assert len(keys) == min(limit, len(eligible)), "left claimable work behind"
        if keys:
            latest_claimed = max(eligible[k].before.next_due_at_ms for k in keys)
            for key, transition in eligible.items():
                if key not in keys:
                    assert transition.before.next_due_at_ms >= latest_claimed, "not earliest due"
        for record in claimed:
            key = (record.tenant_id, record.execution_id)
            expected = eligible[key].after
            assert _claim_columns(record.state) == _claim_columns(expected)
            pipeline, release, _ = self.model[key]
            self.model[key] = (pipeline, release, expected)
        history = self.conn.execute(
            "SELECT tenant_id, execution_id, version, event, from_status, to_status, actor"
            " FROM execution_history WHERE actor = %s",
            (owner,),
        ).fetchall()
        assert sorted((h["tenant_id"], h["execution_id"]) for h in history) == sorted(keys)
        for entry in history:
            before = eligible[(entry["tenant_id"], entry["execution_id"])].before
            assert (entry["event"], entry["from_status"], entry["to_status"]) == (
                "CLAIMED",
                before.status.value,
                "RUNNING",
            )
            assert entry["version"] == before.version + 1

    @rule(data=st.data())
    def retry_later(self, data: st.DataObject) -> None:
        """A running execution is put back to WAIT_RETRY, due some time from now."""
        running = sorted(
            key for key, (_, _, s) in self.model.items() if s.status is ExecutionStatus.RUNNING
        )
        if not running:
            return
        key = data.draw(st.sampled_from(running))
        due_ms = self.now_ms + data.draw(st.integers(0, 3_000))
        pipeline, release, state = self.model[key]
        after = replace(
            state,
            status=ExecutionStatus.WAIT_RETRY,
            version=state.version + 1,
            next_due_at_ms=due_ms,
            lease_owner="",
            lease_expires_at_ms=0,
            error_code="Retryable",
            error_message="try again",
        )
        self.conn.execute(
            "UPDATE executions SET status = 'WAIT_RETRY', version = version + 1,"
            " next_due_at_ms = %s, lease_owner = '', lease_expires_at_ms = 0,"
            " error_code = 'Retryable', error_message = 'try again'"
            " WHERE tenant_id = %s AND execution_id = %s",
            (due_ms, *key),
        )
        self.model[key] = (pipeline, release, after)

    @invariant()
    def rows_match_the_model(self) -> None:
        rows = self.conn.execute("SELECT * FROM executions").fetchall()
        found = {
            (row["tenant_id"], row["execution_id"]): _claim_columns(
                ExecutionRecord.from_row(row).state
            )
            for row in rows
        }
        assert found == {key: _claim_columns(s) for key, (_, _, s) in self.model.items()}


def _claim_columns(state: ExecutionState) -> tuple[Any, ...]:
    """What a claim may change (updated_at is the clock's, not a rule's)."""
    return (
        state.status,
        state.version,
        state.next_due_at_ms,
        state.lease_owner,
        state.lease_expires_at_ms,
        state.error_code,
        state.error_message,
        state.attempt,
        state.step_index,
    )


def test_the_claim_sql_claims_what_the_domain_allows(database: str) -> None:
    ClaimAgainstTheDomain.database_url = database
    run_state_machine_as_test(
        ClaimAgainstTheDomain,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
