"""What every Postgres store that writes transitions shares: connections of the pool, and
`write`, which applies a transition through `transitions_sql.write_transition` (the
`Transactions` protocol)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection

from tpf_coordinator.domain.model import Transition
from tpf_coordinator.store.records import ExecutionRecord
from tpf_coordinator.store.transitions_sql import identity_of, write_transition
from tpf_envelope import Envelope
from tpf_store import Pool, single_statement

if TYPE_CHECKING:
    from tpf_coordinator.payloads import Payloads


class PostgresTransactions:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        return self._pool.connection()

    def single_statement(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """A connection in autocommit for one statement (`tpf_store.single_statement`)."""
        return single_statement(self._pool)

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
