"""Fetch an artifact to a local staging file while hashing it.

Every source (local path, `file:` URI, `s3://` URI, uploaded bytes) is copied once into the
registry's staging directory; digest verification, contract reading and storing all work on that
copy, so what is verified is exactly what is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from botocore.exceptions import BotoCoreError, ClientError

from tpf_errors import FailedPrecondition, InvalidArgument, Unavailable
from tpf_objects import S3Config, S3Location
from tpf_registry.artifacts.roots import ReadableRoots

UPLOAD_SCHEME = "upload:"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class StagedArtifact:
    """A fetched artifact: its local copy, sha256 and size, and the source file name."""

    path: Path
    sha256_hex: str
    size_bytes: int
    source_name: str

    @property
    def extension(self) -> str:
        """TPF's stored-name rule: the source name from its last `.`, else `.artifact`."""
        suffix = PurePosixPath(self.source_name).suffix
        return suffix if suffix else ".artifact"


def _unreadable(artifact_id: str, uri: str, why: str) -> FailedPrecondition:
    return FailedPrecondition(
        "ARTIFACT_UNREADABLE",
        f"Release artifact {artifact_id} at {uri} cannot be read: {why}",
        artifactId=artifact_id,
        uri=uri,
    )


def local_path_of(uri: str, *, base_dir: Path | None) -> Path | None:
    """The filesystem path a plain path or `file:` URI names; None for other schemes."""
    if uri.startswith("file:"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parsed.path))
    if "://" in uri or uri.startswith(UPLOAD_SCHEME):
        return None
    path = Path(uri)
    if not path.is_absolute():
        # Relative artifact paths resolve against the descriptor's own directory (TPF uses the
        # process's working directory, which a remote client cannot know).
        if base_dir is None:
            return None
        path = base_dir / path
    return path


class ArtifactFetcher:
    """Copies artifacts from their URIs into `staging_dir`, hashing as it goes."""

    def __init__(self, *, staging_dir: Path, s3: S3Config, roots: ReadableRoots) -> None:
        self._staging_dir = staging_dir
        self._s3 = s3
        self._roots = roots

    def discard_leftovers(self) -> int:
        """Remove staging files of registrations a crash interrupted; returns how many."""
        if not self._staging_dir.is_dir():
            return 0
        leftovers = list(self._staging_dir.glob("stage-*"))
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def new_staging_file(self) -> Path:
        self._staging_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="stage-", dir=self._staging_dir)
        os.close(fd)
        return Path(name)

    async def fetch(
        self,
        *,
        artifact_id: str,
        uri: str,
        uploads: dict[str, bytes],
        base_dir: Path | None,
    ) -> StagedArtifact:
        if uri.startswith(UPLOAD_SCHEME):
            return await self._from_upload(artifact_id, uri, uploads)
        if uri.startswith("s3://"):
            return await self._from_s3(artifact_id, uri)
        path = local_path_of(uri, base_dir=base_dir)
        if path is None:
            raise InvalidArgument(
                "FIELD_INVALID",
                f"Release artifact {artifact_id} URI {uri} is not an absolute path, a file: URI, "
                "an s3:// URI or upload:<artifactId>",
                field="uri",
                value=uri,
            )
        return await asyncio.to_thread(
            self._from_file, artifact_id, uri, self._roots.check(path, field="uri")
        )

    def _from_file(self, artifact_id: str, uri: str, path: Path) -> StagedArtifact:
        if not path.is_file():
            raise _unreadable(artifact_id, uri, "not a readable regular file")
        target = self.new_staging_file()
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("rb") as source, target.open("wb") as sink:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
                    size += len(chunk)
        except OSError as error:
            target.unlink(missing_ok=True)
            raise _unreadable(artifact_id, uri, error.strerror or str(error)) from error
        return StagedArtifact(target, digest.hexdigest(), size, path.name)

    async def _from_upload(
        self, artifact_id: str, uri: str, uploads: dict[str, bytes]
    ) -> StagedArtifact:
        name = uri[len(UPLOAD_SCHEME) :]
        content = uploads.get(name)
        if content is None:
            raise _unreadable(artifact_id, uri, f"no uploaded artifact named {name!r}")
        target = self.new_staging_file()
        await asyncio.to_thread(target.write_bytes, content)
        return StagedArtifact(target, hashlib.sha256(content).hexdigest(), len(content), name)

    async def _from_s3(self, artifact_id: str, uri: str) -> StagedArtifact:
        try:
            location = S3Location.parse(uri)
        except ValueError:
            raise _unreadable(artifact_id, uri, "malformed s3 URI") from None
        target = self.new_staging_file()
        digest = hashlib.sha256()
        size = 0
        try:
            async with self._s3.client() as client:
                response = await client.get_object(Bucket=location.bucket, Key=location.key)
                async with response["Body"] as body:
                    with target.open("wb") as sink:
                        while chunk := await body.read(_CHUNK):
                            digest.update(chunk)
                            sink.write(chunk)
                            size += len(chunk)
        except ClientError as error:
            target.unlink(missing_ok=True)
            code = error.response.get("Error", {}).get("Code", "error")
            raise _unreadable(artifact_id, uri, f"S3 answered {code}") from error
        except (BotoCoreError, OSError) as error:
            target.unlink(missing_ok=True)
            raise Unavailable(
                "ARTIFACT_STORE_UNAVAILABLE",
                f"S3 could not be reached to fetch {uri}; retry later",
                uri=uri,
            ) from error
        return StagedArtifact(target, digest.hexdigest(), size, PurePosixPath(location.key).name)


def discard(staged: list[StagedArtifact]) -> None:
    for item in staged:
        item.path.unlink(missing_ok=True)


def copy_file_atomically(source: Path, target: Path) -> None:
    """Copy then rename, so a crash never leaves a partial file under the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
