"""Every reason the code raises is a value of the ErrorReason enum (else clients get INTERNAL)."""

from __future__ import annotations

import re
from pathlib import Path

from tpf.common.v1 import error_reason_pb2

ROOT = Path(__file__).resolve().parents[2]
RAISED = re.compile(
    r"\b(?:InvalidArgument|NotFound|AlreadyExists|FailedPrecondition|Aborted|ResourceExhausted"
    r"|Unavailable|Unauthenticated|PermissionDenied)\(\s*\"([A-Z0-9_]+)\"",
)


def test_raised_reasons_exist_in_the_proto_enum() -> None:
    known = {
        name.removeprefix("ERROR_REASON_")
        for name in error_reason_pb2.ErrorReason.DESCRIPTOR.values_by_name
    }
    raised: dict[str, str] = {}
    for path in [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]:
        for reason in RAISED.findall(path.read_text()):
            raised.setdefault(reason, str(path.relative_to(ROOT)))
    assert len(raised) > 10, "the scan found the code's errors"
    unknown = {reason: where for reason, where in raised.items() if reason not in known}
    assert unknown == {}
