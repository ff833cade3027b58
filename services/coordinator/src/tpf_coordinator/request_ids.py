"""Request-id dedupe of mutating RPCs (CONVENTIONS §1.6, AIP-155).

The same request id with the same request returns the first response; with a different request
it is refused (ALREADY_EXISTS IDEMPOTENCY_KEY_REUSED). Responses are kept for `window_ms`
(24 h by default). The response is stored right after the call's own transaction commits: a
crash in between makes a retry run again, where the fencing tokens reject what was already
applied (stale items are reported, never applied twice).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message

from tpf_coordinator.store.protocol import RequestIdStore
from tpf_errors import AlreadyExists, InvalidArgument, field_invalid

ResponseT = TypeVar("ResponseT", bound=Message)

DEFAULT_WINDOW_MS = 24 * 3600 * 1000
MAX_REQUEST_ID_CHARS = 128


class RequestIds:
    def __init__(self, store: RequestIdStore, *, now_ms: Callable[[], int]) -> None:
        self._store = store
        self._now_ms = now_ms

    async def once(
        self,
        *,
        scope: str,
        request_id: str,
        request: Message,
        response_type: type[ResponseT],
        call: Callable[[], Awaitable[ResponseT]],
    ) -> ResponseT:
        if not checked_request_id(request_id):
            return await call()
        if len(request_id) > MAX_REQUEST_ID_CHARS:
            raise InvalidArgument(
                "FIELD_OUT_OF_RANGE",
                f"requestId is longer than {MAX_REQUEST_ID_CHARS} characters",
                field="requestId",
                max=MAX_REQUEST_ID_CHARS,
            )
        request_hash = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
        stored = await self._store.get(scope, request_id)
        if stored is not None:
            if stored[0] != request_hash:
                raise AlreadyExists(
                    "IDEMPOTENCY_KEY_REUSED",
                    f"requestId {request_id} was used for a different request; use a new id",
                    requestId=request_id,
                )
            return response_type.FromString(stored[1])
        response = await call()
        await self._store.put(
            scope, request_id, request_hash, response.SerializeToString(), now_ms=self._now_ms()
        )
        return response

    async def forget_old(self, window_ms: int = DEFAULT_WINDOW_MS) -> int:
        return await self._store.forget_older_than(self._now_ms() - window_ms)


def checked_request_id(value: str) -> str:
    """AIP-155: empty, or a UUID in its canonical 36-character form."""
    if not value:
        return value
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        parsed = None
    if parsed is None or len(value) != 36 or str(parsed) != value.lower():
        raise field_invalid(
            "requestId", "send a UUID4 such as 1b4e28ba-2fa1-41d2-883f-0016d3cca427"
        )
    return value
