"""JSON-lines logging with per-task context fields, and OpenTelemetry tracing setup."""

from tpf_telemetry._context import LogFieldValue, current_log_fields, log_context
from tpf_telemetry._formatters import JsonLinesFormatter, TextFormatter
from tpf_telemetry._logging import LOG_FORMATS, configure_logging
from tpf_telemetry._propagation import (
    context_of_sqs_message,
    continue_trace,
    current_traceparent,
    sqs_attribute_names,
    sqs_message_attributes,
    traceparent_context,
)
from tpf_telemetry._tracing import (
    TRACES_EXPORTERS,
    TracingOptions,
    active_span_id,
    active_trace_id,
    configure_tracing,
    current_trace_id,
    parse_exporters,
    quiet_span,
    tracing_options,
)

__all__ = [
    "LOG_FORMATS",
    "TRACES_EXPORTERS",
    "JsonLinesFormatter",
    "LogFieldValue",
    "TextFormatter",
    "TracingOptions",
    "active_span_id",
    "active_trace_id",
    "configure_logging",
    "configure_tracing",
    "context_of_sqs_message",
    "continue_trace",
    "current_log_fields",
    "current_trace_id",
    "current_traceparent",
    "log_context",
    "parse_exporters",
    "quiet_span",
    "sqs_attribute_names",
    "sqs_message_attributes",
    "traceparent_context",
    "tracing_options",
]
