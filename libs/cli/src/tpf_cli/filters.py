"""Filter options of list and bulk commands: statuses, terminal reasons and creation times.

Enum values are accepted in any case, with or without their prefix (`failed`, `FAILED`,
`EXECUTION_STATUS_FAILED`). Times are ISO-8601 (`2026-01-01`, `2026-01-01T12:00:00Z`); a time
without a zone is UTC.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import EnumDescriptor

from tpf.common.v1 import execution_status_pb2
from tpf.coordinator.v1 import dead_letter_pb2

_STATUS_PREFIX = "EXECUTION_STATUS_"
_REASON_PREFIX = "TERMINAL_REASON_"


def _enum_parser(enum: EnumDescriptor, prefix: str, what: str) -> Callable[[str], int]:
    names = [value.name.removeprefix(prefix) for value in enum.values if value.number != 0]

    def parse(text: str) -> int:
        name = text.strip().upper().removeprefix(prefix)
        if name not in names:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r} (one of {', '.join(names)})")
        return int(enum.values_by_name[prefix + name].number)

    parse.__name__ = what  # argparse names the type in its messages
    return parse


execution_status = _enum_parser(
    execution_status_pb2.ExecutionStatus.DESCRIPTOR, _STATUS_PREFIX, "status"
)
terminal_reason = _enum_parser(
    dead_letter_pb2.TerminalReason.DESCRIPTOR, _REASON_PREFIX, "terminal reason"
)


def iso_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 time: {text!r} (e.g. 2026-01-01T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """`--created-after` (inclusive) and `--created-before` (exclusive); None means unbounded."""

    after: datetime | None = None
    before: datetime | None = None

    def apply(self, after: timestamp_pb2.Timestamp, before: timestamp_pb2.Timestamp) -> None:
        """Set the request's timestamp fields (left unset when unbounded)."""
        if self.after is not None:
            after.FromDatetime(self.after)
        if self.before is not None:
            before.FromDatetime(self.before)


def add_created_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--created-after",
        type=iso_time,
        metavar="TIME",
        help="only those created at or after this ISO-8601 time (UTC without a zone)",
    )
    parser.add_argument(
        "--created-before",
        type=iso_time,
        metavar="TIME",
        help="only those created before this ISO-8601 time",
    )


def created_of(args: argparse.Namespace) -> TimeRange:
    return TimeRange(after=args.created_after, before=args.created_before)
