"""Every contract file names its Go and Java packages, following one scheme.

buf lint (PACKAGE_SAME_GO_PACKAGE, PACKAGE_SAME_JAVA_PACKAGE, ...) checks that the files of a
package agree; this checks that the options are there at all and follow the documented scheme
(docs/api.md), so generated Go and Java code gets stable, predictable packages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PROTO = Path(__file__).resolve().parents[2] / "proto"
GO_MODULE = "github.com/pipelineframework/tpf-coordinator/gen/go"
FILES = sorted(PROTO.rglob("*.proto"))


def option(text: str, name: str) -> str | None:
    found = re.search(rf'^option {name} = (?:"([^"]*)"|(\w+));$', text, re.M)
    return (found.group(1) or found.group(2)) if found else None


def test_there_are_contract_files() -> None:
    assert len(FILES) > 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PROTO)))
def test_file_names_go_and_java_packages(path: Path) -> None:
    text = path.read_text()
    package = re.search(r"^package ([\w.]+);$", text, re.M)
    assert package, "no package"
    parts = package.group(1).split(".")
    if parts[0] == "tpf":
        alias = parts[-2] + parts[-1]
        java = "org.pipelineframework.tpf." + ".".join(parts[1:])
    else:  # TPF's own worker service keeps TPF's package
        alias = "orchestratorgrpc"
        java = package.group(1)
    assert option(text, "go_package") == f"{GO_MODULE}/{'/'.join(parts)};{alias}"
    assert option(text, "java_package") == java
    assert option(text, "java_multiple_files") == "true"
