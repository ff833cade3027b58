"""Blobs stored under their sha256: `put` is idempotent, and a URI names exactly one content.

Used for payloads too large to keep in a Postgres row (DESIGN §5): the row keeps the URI.
Writes are atomic (temporary name, fsync, rename locally; a single PUT on S3), so a reader never
sees a partial object, and a crash before the row commit leaves at most an unreferenced blob.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from botocore.exceptions import BotoCoreError, ClientError

from tpf_objects.s3 import S3Config, S3Location, SharedS3Client


class ObjectStoreUnavailable(Exception):
    """The store cannot be read or written right now; the message names the location."""


class ObjectStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store `data`; return its URI (the same bytes always give the same URI)."""

    async def get(self, uri: str) -> bytes:
        """The bytes stored under `uri`; ObjectStoreUnavailable if they cannot be read."""

    async def close(self) -> None:
        """Release connections; the store stays usable (it reconnects on the next call)."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalObjectStore:
    """Objects as files `<root>/sha256/<hex>` (one machine, or a shared volume)."""

    def __init__(self, root: Path) -> None:
        self._dir = root.absolute() / "sha256"

    async def put(self, data: bytes) -> str:
        return await asyncio.to_thread(self._put, data)

    def _put(self, data: bytes) -> str:
        target = self._dir / _digest(data)
        if not target.is_file():
            self._dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".incoming-", dir=self._dir)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                Path(name).replace(target)
            finally:
                Path(name).unlink(missing_ok=True)
        return target.as_uri()

    async def get(self, uri: str) -> bytes:
        path = Path(unquote(urlparse(uri).path))
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as error:
            raise ObjectStoreUnavailable(f"{uri} cannot be read: {error.strerror}") from error

    async def close(self) -> None:
        """Nothing to release."""


class S3ObjectStore:
    """Objects as `s3://<bucket>/<prefix>/sha256/<hex>`, through one client kept open.

    Any store on the same bucket reads what another wrote (replicas share it by URI).
    """

    def __init__(self, *, bucket: str, prefix: str, s3: S3Config) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._client = SharedS3Client(s3)

    async def put(self, data: bytes) -> str:
        name = f"sha256/{_digest(data)}"
        key = f"{self._prefix}/{name}" if self._prefix else name
        try:
            client = await self._client.get()
            await client.put_object(Bucket=self._bucket, Key=key, Body=data)
        except (BotoCoreError, ClientError) as error:
            raise ObjectStoreUnavailable(f"s3://{self._bucket} cannot be written") from error
        return S3Location(self._bucket, key).uri

    async def get(self, uri: str) -> bytes:
        location = S3Location.parse(uri)
        try:
            client = await self._client.get()
            response = await client.get_object(Bucket=location.bucket, Key=location.key)
            async with response["Body"] as body:
                data: bytes = await body.read()
                return data
        except (BotoCoreError, ClientError) as error:
            raise ObjectStoreUnavailable(f"{uri} cannot be read") from error

    async def close(self) -> None:
        await self._client.close()


def object_store_for(location: str, *, default_root: Path, s3: S3Config) -> ObjectStore:
    """`s3://bucket/prefix` → S3; a path or `file:` URI → local; empty → `default_root`."""
    if location.startswith("s3://"):
        parsed = urlparse(location)
        return S3ObjectStore(bucket=parsed.netloc, prefix=parsed.path, s3=s3)
    if location.startswith("file:"):
        return LocalObjectStore(Path(unquote(urlparse(location).path)))
    return LocalObjectStore(Path(location) if location else default_root)
