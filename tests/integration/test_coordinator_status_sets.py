"""The execution status set is declared once (domain/model.py ExecutionStatus); the proto enum
(tpf.common.v1.ExecutionStatus) and the SQL CHECK on `executions.status` in the migrated schema
must list the same names, or a status written by one layer is refused or misread by another."""

from __future__ import annotations

import re

import psycopg

from tpf.common.v1 import execution_status_pb2
from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.store import status_sql

PROTO_PREFIX = "EXECUTION_STATUS_"


def test_the_proto_enum_lists_the_domain_statuses() -> None:
    names = {
        value.name.removeprefix(PROTO_PREFIX)
        for value in execution_status_pb2.ExecutionStatus.DESCRIPTOR.values
        if value.number != 0  # EXECUTION_STATUS_UNSPECIFIED, never written
    }
    assert names == {status.value for status in ExecutionStatus}


async def test_the_migrated_check_constraint_lists_the_domain_statuses(database: str) -> None:
    async with await psycopg.AsyncConnection.connect(database) as conn:
        rows = await (
            await conn.execute(
                """
                SELECT pg_get_constraintdef(c.oid)
                FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
                WHERE t.relname = 'executions' AND c.contype = 'c'
                  AND pg_get_constraintdef(c.oid) LIKE '%%(status %%'
                """
            )
        ).fetchall()
    [(definition,)] = rows
    assert set(re.findall(r"'([A-Z_]+)'::text", definition)) == {s.value for s in ExecutionStatus}


# Partial index → the status list (store/status_sql.py) its queries spell out. The planner uses
# such an index only when the query's literal list proves the index predicate.
PARTIAL_INDEXES = {
    "executions_runnable": status_sql.RUNNABLE,
    "executions_running_leases": status_sql.RUNNING,
    "executions_pinned_non_terminal": status_sql.NON_TERMINAL,
    "execution_history_terminal_feed": status_sql.TERMINAL,
    "interactions_pending": status_sql.PENDING_INTERACTIONS,
    "interactions_expirable": status_sql.EXPIRABLE_INTERACTIONS,
}


async def test_the_status_lists_of_the_queries_are_the_partial_index_predicates(
    database: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(database) as conn:
        rows = await (
            await conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)",
                (list(PARTIAL_INDEXES),),
            )
        ).fetchall()
    predicates = {
        name: re.findall(r"'([A-Z_]+)'::text", definition.partition(" WHERE ")[2])
        for name, definition in rows
    }
    assert predicates == {
        name: re.findall(r"'([A-Z_]+)'", listed) for name, listed in PARTIAL_INDEXES.items()
    }
