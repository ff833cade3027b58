"""Read the embedded pipeline contract out of a zip or jar artifact."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tpf_registry.domain.contract import CONTRACT_PATH


def read_embedded_contract(path: Path) -> bytes | None:
    """The bytes of `META-INF/pipeline/pipeline-contract.json`, or None.

    A file that is not a zip counts as having no contract, as in TPF.
    """
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                return archive.read(CONTRACT_PATH)
            except KeyError:
                return None
    except zipfile.BadZipFile:
        return None
