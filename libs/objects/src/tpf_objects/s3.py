"""S3 access through aiobotocore, shared by artifact fetching and the S3 artifact store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
