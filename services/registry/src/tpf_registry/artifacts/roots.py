"""The directories the registry may read descriptors and artifact files from.

RegisterRelease names files on the registry's own disk (a descriptor path, `file:` or plain-path
artifact URIs). Without a limit, any admin token could make the registry read, hash and copy any
file it can open. Paths are resolved (symbolic links and `..` followed) before the check, so a
link inside a root that points outside it is refused too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tpf_errors import PermissionDenied

ROOTS_ENV = "TPF_REGISTRY_ARTIFACT_ROOTS"


def parse_roots(text: str) -> tuple[Path, ...]:
    """`TPF_REGISTRY_ARTIFACT_ROOTS`: absolute directories separated by `:` (like PATH)."""
    roots = []
    for part in text.split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part.strip())
        if not path.is_absolute():
            raise ValueError(f"{part.strip()!r} is not an absolute directory")
        roots.append(path)
    return tuple(roots)


class ReadableRoots:
    """Refuses, with PERMISSION_DENIED PATH_NOT_ALLOWED, a file outside every root."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self._roots = tuple(Path(os.path.realpath(root)) for root in roots)

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def check(self, path: Path, *, field: str) -> Path:
        """`path` resolved, if it lies under a root; the error names the field, not the roots."""
        resolved = Path(os.path.realpath(path))
        if any(resolved.is_relative_to(root) for root in self._roots):
            return resolved
        raise PermissionDenied(
            "PATH_NOT_ALLOWED",
            f"{field} names a file outside the directories this registry may read; put it under"
            f" one of them ({ROOTS_ENV}) or upload it with the request",
            field=field,
        )
