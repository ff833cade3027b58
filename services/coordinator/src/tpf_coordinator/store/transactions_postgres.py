"""What every Postgres store that writes transitions shares: connections of the pool, and
`write`, which applies a transition through `transitions_sql.write_transition` (the
`Transactions` protocol)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection

from tpf_coordinator.domain.model import Transition
from tpf_coordinator.store.records import ExecutionRecord
from tpf_coordinator.store.transitions_sql import RowIdentity, write_transition
from tpf_envelope import Envelope
from tpf_store import Pool

if TYPE_CHECKING:
    from tpf_coordinator.payloads import Payloads


def identity_of(record: ExecutionRecord) -> RowIdentity:
    return RowIdentity(
        record.tenant_id,
        record.execution_id,
        record.pipeline_id,
        record.contract_version,
        record.release_version,
    )


class PostgresTransactions:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        return self._pool.connection()

    @asynccontextmanager
    async def single_statement(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection for work that is one statement (or reads that need no common snapshot),
        in autocommit: no BEGIN and COMMIT (or ROLLBACK) round trips. The pool makes it
        transactional again when it is returned."""
        async with self._pool.connection() as conn:
            await conn.set_autocommit(True)
            yield conn

    @staticmethod
    async def write(
        conn: AsyncConnection[Any],
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
        await write_transition(
            conn,
            identity_of(record),
            transition,
            payload=payload,
            set_payload=set_payload,
            result=result,
            release_version=release_version,
            contract_version=contract_version,
            payloads=payloads,
        )
