"""Group commit of submissions: concurrent `submit` calls share one statement.

Each submission used to be its own statement and commit. Under load many arrive together (one
`SubmitExecutions` call, or many `SubmitExecution` calls in flight), and a commit costs the
same for one row as for a hundred. So submissions are queued, and a writer takes whatever is
queued as one `submit_many` statement. Nothing waits on a timer: a submission arriving on a
quiet system is written at once; while `max_writers` statements are in flight, arrivals queue
and go together in the next one ("natural batching").

A statement that fails for a reason other than the database being out of reach is retried one
submission at a time, so that one bad row cannot refuse the others it happened to travel with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from tpf_coordinator.store.protocol import NewExecution, SubmitOutcome
from tpf_errors import TpfError
from tpf_rpc.batching import NaturalBatcher

log = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_WRITERS = 2


class SubmitWriter(Protocol):
    async def submit_many(self, news: Sequence[NewExecution]) -> list[SubmitOutcome]: ...


class SubmitBatcher:
    def __init__(
        self, store: SubmitWriter, *, max_batch: int = MAX_BATCH, max_writers: int = MAX_WRITERS
    ) -> None:
        self._store = store
        self._batches: NaturalBatcher[NewExecution, SubmitOutcome] = NaturalBatcher(
            self._write, max_batch=max_batch, max_in_flight=max_writers
        )

    async def submit(self, new: NewExecution) -> SubmitOutcome:
        return await self._batches.submit(new)

    async def _write(self, news: list[NewExecution]) -> Sequence[SubmitOutcome | BaseException]:
        try:
            return await self._store.submit_many(news)
        except Exception as error:
            if len(news) == 1 or _is_unavailable(error):
                raise
            log.warning(
                "a statement of %d submissions failed (%s); writing them one by one",
                len(news),
                error,
            )
        outcomes: list[SubmitOutcome | BaseException] = []
        for new in news:
            try:
                outcomes.extend(await self._store.submit_many([new]))
            except Exception as error:
                outcomes.append(error)
        return outcomes


def _is_unavailable(error: Exception) -> bool:
    return isinstance(error, TpfError) and error.reason == "DATABASE_UNAVAILABLE"
