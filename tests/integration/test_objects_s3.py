"""The S3 object store against moto_server: what one replica writes another reads, by URI, and
a store keeps one client for all its calls instead of making one per call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiobotocore.session import get_session

from tests.harness.moto import MotoServer
from tpf_objects import ObjectStoreUnavailable, S3Config, S3ObjectStore


class CountingS3Config(S3Config):
    """S3Config that counts the clients made through it."""

    made: list[int]

    def __init__(self, moto: MotoServer) -> None:
        super().__init__(endpoint_url=moto.endpoint_url, region=moto.region)
        object.__setattr__(self, "made", [])

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        self.made.append(1)
        async with super().client() as client:
            yield client


@pytest.fixture
async def bucket(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    # The stores take credentials from the standard AWS chain, as in a service process.
    for key, value in moto_server.client_env.items():
        monkeypatch.setenv(key, value)
    name = f"objects-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client("s3", **moto_server.client_kwargs) as s3:
        await s3.create_bucket(Bucket=name)
    return name


async def test_an_object_written_by_one_store_is_read_by_another(
    moto_server: MotoServer, bucket: str
) -> None:
    config = S3Config(endpoint_url=moto_server.endpoint_url, region=moto_server.region)
    writer = S3ObjectStore(bucket=bucket, prefix="/payloads/", s3=config)
    reader = S3ObjectStore(bucket=bucket, prefix="payloads", s3=config)
    try:
        data = b"x" * 300_000
        uri = await writer.put(data)
        assert uri.startswith(f"s3://{bucket}/payloads/sha256/")
        assert await writer.put(data) == uri  # content-addressed
        assert await reader.get(uri) == data
    finally:
        await writer.close()
        await reader.close()


async def test_a_store_makes_one_client_for_all_its_calls_and_a_new_one_after_close(
    moto_server: MotoServer, bucket: str
) -> None:
    config = CountingS3Config(moto_server)
    store = S3ObjectStore(bucket=bucket, prefix="payloads", s3=config)
    try:
        uris = await asyncio.gather(*(store.put(f"object {n}".encode()) for n in range(20)))
        assert [await store.get(uri) for uri in uris] == [f"object {n}".encode() for n in range(20)]
        assert len(config.made) == 1
        await store.close()
        assert await store.get(uris[0]) == b"object 0"
        assert len(config.made) == 2
    finally:
        await store.close()


async def test_a_missing_object_is_unavailable_and_names_its_uri(
    moto_server: MotoServer, bucket: str
) -> None:
    config = S3Config(endpoint_url=moto_server.endpoint_url, region=moto_server.region)
    store = S3ObjectStore(bucket=bucket, prefix="payloads", s3=config)
    missing = f"s3://{bucket}/payloads/sha256/{'0' * 64}"
    try:
        with pytest.raises(ObjectStoreUnavailable, match=missing):
            await store.get(missing)
    finally:
        await store.close()
