"""Payloads.stored_ahead: a commit's large payloads offloaded before its rows are locked."""

from __future__ import annotations

import pytest

from tpf_coordinator.payloads import Payloads
from tpf_coordinator.store.records import StoredText
from tpf_errors import Unavailable
from tpf_objects import ObjectStoreUnavailable


class RecordingStore:
    """An in-memory ObjectStore that records its puts and refuses the contents in `refuse`."""

    def __init__(self, refuse: set[bytes] | None = None) -> None:
        self.puts: list[bytes] = []
        self.refuse = refuse or set()

    async def put(self, data: bytes) -> str:
        self.puts.append(data)
        if data in self.refuse:
            raise ObjectStoreUnavailable("refused")
        return f"mem://{len(data)}/{data[:8].decode()}"

    async def get(self, uri: str) -> bytes:
        raise AssertionError("not read in these tests")

    async def close(self) -> None:
        """Nothing to release."""


async def test_large_texts_are_stored_once_ahead_and_small_ones_stay_inline() -> None:
    store = RecordingStore()
    payloads = Payloads(store, threshold_bytes=10)
    large, other, small = "a" * 20, "b" * 30, "tiny"
    ahead = await payloads.stored_ahead([large, small, other, large])
    assert sorted(store.puts) == [large.encode(), other.encode()]
    assert await ahead.store_text(large) == StoredText(None, "mem://20/aaaaaaaa")
    assert await ahead.store_text(small) == StoredText(small, None)
    assert len(store.puts) == 2  # answered from what was stored ahead


async def test_a_text_the_store_refuses_is_left_out_and_fails_alone_at_commit() -> None:
    refused = "r" * 20
    store = RecordingStore(refuse={refused.encode()})
    ahead = await Payloads(store, threshold_bytes=10).stored_ahead([refused, "k" * 20])
    assert await ahead.store_text("k" * 20) == StoredText(None, "mem://20/kkkkkkkk")
    with pytest.raises(Unavailable) as raised:
        await ahead.store_text(refused)
    assert raised.value.reason == "ARTIFACT_STORE_UNAVAILABLE"
    assert store.puts.count(refused.encode()) == 2  # tried ahead, and again at commit
