"""The registry's artifact store: content-addressed copies of every fetched artifact.

Layout as TPF's (TPF_WIRE §8.2): local `<root>/artifacts/<hex><ext>` (a `file:` URI) or
`s3://<bucket>/<prefix>/sha256/<hex><ext>` with object metadata `sha256` and `size`. Content
addressing makes a store write idempotent: a crash between storing and committing the release row
leaves at most an unreferenced file, never a half-registered release.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from botocore.exceptions import BotoCoreError, ClientError

from tpf_errors import FailedPrecondition, Unavailable
from tpf_objects import S3Config, S3Location
from tpf_registry.artifacts.staging import StagedArtifact, copy_file_atomically


class ArtifactStore(Protocol):
    """Where the registry keeps its copies of release artifacts."""

    async def put(self, staged: StagedArtifact) -> str:
        """Store the staged file; return the URI of the stored copy."""

    async def verify(self, *, artifact_id: str, uri: str, size_bytes: int, sha256_hex: str) -> None:
        """Raise FailedPrecondition ARTIFACT_VERIFICATION_FAILED unless the copy is intact."""


def _verification_failed(artifact_id: str, uri: str, why: str) -> FailedPrecondition:
    return FailedPrecondition(
        "ARTIFACT_VERIFICATION_FAILED",
        f"Stored release artifact is missing or unreadable: {artifact_id} at {uri} ({why})",
        artifactId=artifact_id,
        uri=uri,
    )


class LocalArtifactStore:
    """Artifacts under `<root>/artifacts/` on the registry's filesystem."""

    def __init__(self, root: Path) -> None:
        self._dir = root.resolve() / "artifacts"

    async def put(self, staged: StagedArtifact) -> str:
        target = self._dir / f"{staged.sha256_hex}{staged.extension}"
        if not (target.is_file() and target.stat().st_size == staged.size_bytes):
            await asyncio.to_thread(copy_file_atomically, staged.path, target)
        return target.as_uri()

    async def verify(self, *, artifact_id: str, uri: str, size_bytes: int, sha256_hex: str) -> None:
        path = Path(unquote(urlparse(uri).path))
        await asyncio.to_thread(self._verify_file, artifact_id, uri, path, size_bytes, sha256_hex)

    @staticmethod
    def _verify_file(
        artifact_id: str, uri: str, path: Path, size_bytes: int, sha256_hex: str
    ) -> None:
        if not path.is_file():
            raise _verification_failed(artifact_id, uri, "file missing")
        if path.stat().st_size != size_bytes:
            raise _verification_failed(artifact_id, uri, "size changed")
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != sha256_hex:
            raise _verification_failed(artifact_id, uri, "checksum changed")


class S3ArtifactStore:
    """Artifacts in `s3://<bucket>/<prefix>/sha256/`."""

    def __init__(self, *, bucket: str, prefix: str, s3: S3Config) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._s3 = s3

    def _key(self, staged: StagedArtifact) -> str:
        name = f"sha256/{staged.sha256_hex}{staged.extension}"
        return f"{self._prefix}/{name}" if self._prefix else name

    async def put(self, staged: StagedArtifact) -> str:
        key = self._key(staged)
        try:
            async with self._s3.client() as client:
                with staged.path.open("rb") as body:
                    await client.put_object(
                        Bucket=self._bucket,
                        Key=key,
                        Body=body,
                        Metadata={"sha256": staged.sha256_hex, "size": str(staged.size_bytes)},
                    )
        except (BotoCoreError, ClientError, OSError) as error:
            raise Unavailable(
                "ARTIFACT_STORE_UNAVAILABLE",
                f"The S3 artifact store s3://{self._bucket} could not be written; retry later",
                bucket=self._bucket,
            ) from error
        return S3Location(self._bucket, key).uri

    async def verify(self, *, artifact_id: str, uri: str, size_bytes: int, sha256_hex: str) -> None:
        location = S3Location.parse(uri)
        try:
            async with self._s3.client() as client:
                head = await client.head_object(Bucket=location.bucket, Key=location.key)
        except ClientError as error:
            raise _verification_failed(artifact_id, uri, "object missing") from error
        except BotoCoreError as error:
            raise Unavailable(
                "ARTIFACT_STORE_UNAVAILABLE",
                f"The S3 artifact store could not be read to verify {uri}; retry later",
                uri=uri,
            ) from error
        if int(head.get("ContentLength", -1)) != size_bytes:
            raise _verification_failed(artifact_id, uri, "size changed")
        if head.get("Metadata", {}).get("sha256") != sha256_hex:
            raise _verification_failed(artifact_id, uri, "checksum changed")


def artifact_store_for(location: str, *, data_dir: Path, s3: S3Config) -> ArtifactStore:
    """`s3://bucket/prefix` → S3; a path or `file:` URI → local; empty → `<data_dir>/releases`."""
    if location.startswith("s3://"):
        parsed = urlparse(location)
        return S3ArtifactStore(bucket=parsed.netloc, prefix=parsed.path, s3=s3)
    if location.startswith("file:"):
        return LocalArtifactStore(Path(unquote(urlparse(location).path)))
    return LocalArtifactStore(Path(location) if location else data_dir / "releases")
