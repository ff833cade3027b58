"""Log formatters: JSON lines for machines, key=value text for people at a terminal."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from tpf_telemetry._context import current_log_fields
from tpf_telemetry._tracing import active_span_id, active_trace_id

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _context_fields(record: logging.LogRecord) -> dict[str, Any]:
    """log_context fields, then the active span's trace_id and span_id, then `extra=`.

    The active span wins over log_context: a span that continues an execution's own trace
    inside a batch call (a claim, a completion) must log that trace, not the call's.
    """
    fields: dict[str, Any] = dict(current_log_fields())
    trace_id = active_trace_id()
    if trace_id is not None:
        fields["trace_id"] = trace_id
        fields["span_id"] = active_span_id()
    fields.update(
        (name, value)
        for name, value in vars(record).items()
        if name not in _RECORD_ATTRIBUTES and not name.startswith("_")
    )
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, service, context fields, exc."""

    def __init__(self, *, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self._service,
        }
        for name, value in _context_fields(record).items():
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a stray non-JSON value in `extra=` must not lose the log line.
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger: message key=value ...`, then the traceback, for local development."""

    def __init__(self, *, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{name}={value}" for name, value in _context_fields(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line
