"""Content-addressed object storage: a local directory or S3, behind one small protocol."""

from tpf_objects.s3 import S3Config, S3Location, SharedS3Client
from tpf_objects.store import (
    LocalObjectStore,
    ObjectStore,
    ObjectStoreUnavailable,
    S3ObjectStore,
    object_store_for,
)

__all__ = [
    "LocalObjectStore",
    "ObjectStore",
    "ObjectStoreUnavailable",
    "S3Config",
    "S3Location",
    "S3ObjectStore",
    "SharedS3Client",
    "object_store_for",
]
