"""S3 access through aiobotocore, shared by artifact fetching and the S3 artifact store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from aiobotocore.session import get_session


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ValueError(f"not an s3://bucket/key URI: {uri}")
        return cls(bucket=parsed.netloc, key=parsed.path.lstrip("/"))

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class S3Config:
    """Where S3 is; credentials come from the standard AWS chain (env, profile, role)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        session = get_session()
        async with session.create_client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region
        ) as client:
            yield client


class SharedS3Client:
    """One S3 client for a process's life, made on first use and closed by `close()`.

    Making a client loads botocore's S3 service model: a quarter to half a second of CPU, paid on
    every call when each call makes its own. Stores on a hot path (offloaded payloads, read and
    written inside claims and commits) keep one; it is safe for concurrent calls on its loop.
    """

    def __init__(self, config: S3Config) -> None:
        self._config = config
        self._client: Any | None = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    self._client = await stack.enter_async_context(self._config.client())
                    self._stack = stack
        return self._client

    async def close(self) -> None:
        """Close the client; the next `get()` makes a new one."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()
