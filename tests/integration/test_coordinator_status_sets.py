"""The execution status set is declared once (domain/model.py ExecutionStatus); the proto enum
(tpf.common.v1.ExecutionStatus) and the SQL CHECK on `executions.status` in the migrated schema
must list the same names, or a status written by one layer is refused or misread by another."""

from __future__ import annotations

import re

import psycopg

from tpf.common.v1 import execution_status_pb2
from tpf_coordinator.domain.model import ExecutionStatus

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
