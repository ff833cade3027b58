"""Large payloads live in the object store; the execution row keeps a reference (DESIGN §5).

Below the threshold a payload stays inline in its row (one read, one write). Above it, the text
goes to a content-addressed object store first and the row stores only its URI, so rows stay
small and updates cheap; readers resolve the reference transparently.
"""

from __future__ import annotations

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
    def __init__(self, store: ObjectStore, *, threshold_bytes: int = DEFAULT_OFFLOAD_BYTES) -> None:
        self._store = store
        self._threshold = threshold_bytes

    async def store_text(self, text: str) -> StoredText:
        data = text.encode()
        if len(data) <= self._threshold:
            return StoredText(text, None)
        try:
            return StoredText(None, await self._store.put(data))
        except ObjectStoreUnavailable as error:
            raise _unavailable(error) from error

    async def load_text(self, stored: StoredText) -> str:
        if stored.ref is None:
            return stored.inline or ""
        try:
            return (await self._store.get(stored.ref)).decode()
        except ObjectStoreUnavailable as error:
            raise _unavailable(error) from error

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
