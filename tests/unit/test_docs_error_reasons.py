"""docs/api.md lists every ErrorReason the contracts define, so the documented list stays whole."""

from __future__ import annotations

from pathlib import Path

from tpf.common.v1 import error_reason_pb2

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_error_reason_is_documented() -> None:
    text = DOCS.read_text()
    names = [
        name.removeprefix("ERROR_REASON_")
        for name in error_reason_pb2.ErrorReason.DESCRIPTOR.values_by_name
        if name != "ERROR_REASON_UNSPECIFIED"
    ]
    missing = [name for name in names if f"| `{name}` |" not in text]
    assert missing == []
