"""JSON-lines logging with per-task context fields, and OpenTelemetry tracing setup."""

from tpf_telemetry._context import LogFieldValue, current_log_fields, log_context
from tpf_telemetry._formatters import JsonLinesFormatter, TextFormatter
from tpf_telemetry._logging import LOG_FORMATS, configure_logging
from tpf_telemetry._tracing import (
    TRACES_EXPORTERS,
    active_trace_id,
    configure_tracing,
    current_trace_id,
)

__all__ = [
    "LOG_FORMATS",
    "TRACES_EXPORTERS",
    "JsonLinesFormatter",
    "LogFieldValue",
    "TextFormatter",
    "active_trace_id",
    "configure_logging",
    "configure_tracing",
    "current_log_fields",
    "current_trace_id",
    "log_context",
]
