"""Large payloads live in the object store; the execution row keeps a reference (DESIGN §5).

Below the threshold a payload stays inline in its row (one read, one write). Above it, the text
goes to a content-addressed object store first and the row stores only its URI, so rows stay
small and updates cheap; readers resolve the reference transparently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import replace

from tpf_coordinator.store.records import ExecutionRecord, StoredText, decode_result
from tpf_envelope import Envelope
from tpf_errors import Unavailable
from tpf_objects import ObjectStore, ObjectStoreUnavailable

DEFAULT_OFFLOAD_BYTES = 256 * 1024


def _unavailable(error: ObjectStoreUnavailable) -> Unavailable:
    return Unavailable(
        "ARTIFACT_STORE_UNAVAILABLE",
        f"The payload store cannot be reached right now ({error}); retry the call later",
    )


class Payloads:
    def __init__(
        self,
        store: ObjectStore,
        *,
        threshold_bytes: int = DEFAULT_OFFLOAD_BYTES,
        stored: Mapping[str, StoredText] | None = None,
    ) -> None:
        self._store = store
        self._threshold = threshold_bytes
        self._stored = stored or {}

    async def store_text(self, text: str) -> StoredText:
        data = text.encode()
        if len(data) <= self._threshold:
            return StoredText(text, None)
        stored = self._stored.get(text)
        if stored is not None:
            return stored
        try:
            return StoredText(None, await self._store.put(data))
        except ObjectStoreUnavailable as error:
            raise _unavailable(error) from error

    async def stored_ahead(self, texts: Iterable[str]) -> Payloads:
        """These payloads offloaded now, all at once; the returned Payloads answers them from
        what was stored. A commit calls this before it locks its rows, so no row lock waits on
        the object store (a lease renewal of a locked row would). Objects are named by their
        content, so one whose commit is then refused is merely unreferenced. One that cannot
        be stored now is left out: its commit tries again and fails alone, as before."""
        large = list(dict.fromkeys(t for t in texts if len(t.encode()) > self._threshold))
        answers = await asyncio.gather(
            *(self.store_text(text) for text in large), return_exceptions=True
        )
        stored = dict(self._stored)
        for text, answer in zip(large, answers, strict=True):
            if isinstance(answer, StoredText):
                stored[text] = answer
            elif not isinstance(answer, Unavailable):
                raise answer
        return Payloads(self._store, threshold_bytes=self._threshold, stored=stored)

    async def load_text(self, stored: StoredText) -> str:
        if stored.ref is None:
            return stored.inline or ""
        try:
            return (await self._store.get(stored.ref)).decode()
        except ObjectStoreUnavailable as error:
            raise _unavailable(error) from error

    async def close(self) -> None:
        await self._store.close()

    async def hydrate(self, record: ExecutionRecord) -> ExecutionRecord:
        """The record with its offloaded payload and result read back in."""
        payload = record.payload
        if payload is not None and record.payload_ref:
            text = await self.load_text(StoredText(None, record.payload_ref))
            payload = Envelope(payload.payload_type_id, payload.payload_encoding, text)
        result = record.result
        if record.result_ref:
            result = decode_result(await self.load_text(StoredText(None, record.result_ref)))
        if payload is record.payload and result is record.result:
            return record
        return replace(record, payload=payload, result=result)
