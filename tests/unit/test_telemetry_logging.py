"""JSON-lines logging: the fields of each line, context fields, and idempotent setup."""

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tpf_telemetry import configure_logging, current_log_fields, log_context

LOGGER = "tpf.test.logging"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """configure_logging changes the process-wide root logger; undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_base_fields(stream: io.StringIO) -> None:
    configure_logging(service="registry", level="INFO", fmt="json", stream=stream)
    logging.getLogger(LOGGER).info("claimed %d executions", 3)
    (line,) = _lines(stream)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert line["level"] == "INFO"
    assert line["logger"] == LOGGER
    assert line["message"] == "claimed 3 executions"
    assert line["service"] == "registry"
    assert "trace_id" not in line and "exc" not in line


def test_level_filters_lower_records(stream: io.StringIO) -> None:
    configure_logging(service="s", level="warning", fmt="json", stream=stream)
    logging.getLogger(LOGGER).info("hidden")
    logging.getLogger(LOGGER).warning("shown")
    assert [line["message"] for line in _lines(stream)] == ["shown"]


def test_log_context_fields_appear_and_nest_and_are_removed_after(stream: io.StringIO) -> None:
    configure_logging(service="s", level="INFO", fmt="json", stream=stream)
    log = logging.getLogger(LOGGER)
    with log_context(tenant="t-a", execution_id="e-1"):
        with log_context(version=7, trace_id=None):
            log.info("inner")
            assert current_log_fields() == {"tenant": "t-a", "execution_id": "e-1", "version": 7}
        log.info("outer")
    log.info("after")
    inner, outer, after = _lines(stream)
    assert (inner["tenant"], inner["execution_id"], inner["version"]) == ("t-a", "e-1", 7)
    assert "version" not in outer and outer["tenant"] == "t-a"
    assert "tenant" not in after
    assert "trace_id" not in inner, "None values are skipped"


def test_extra_fields_override_the_context_but_not_the_base_fields(stream: io.StringIO) -> None:
    configure_logging(service="s", level="INFO", fmt="json", stream=stream)
    with log_context(tenant="from-context"):
        logging.getLogger(LOGGER).info(
            "m", extra={"tenant": "from-extra", "version": 2, "service": "spoofed"}
        )
    (line,) = _lines(stream)
    assert line["tenant"] == "from-extra"
    assert line["version"] == 2
    assert line["service"] == "s"


def test_exception_is_logged_with_its_traceback(stream: io.StringIO) -> None:
    configure_logging(service="s", level="INFO", fmt="json", stream=stream)
    try:
        raise ValueError("bad thing")
    except ValueError:
        logging.getLogger(LOGGER).exception("failed")
    (line,) = _lines(stream)
    assert line["message"] == "failed"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad thing" in line["exc"]


def test_trace_id_of_the_active_span_is_added(stream: io.StringIO) -> None:
    configure_logging(service="s", level="INFO", fmt="json", stream=stream)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger(LOGGER).info("in span")
    (line,) = _lines(stream)
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


def test_the_active_span_wins_over_a_log_context_trace_id(stream: io.StringIO) -> None:
    # A step span continuing an execution's trace inside a batch call logs its own trace.
    configure_logging(service="s", level="INFO", fmt="text", stream=stream)
    tracer = TracerProvider().get_tracer("test")
    with (
        log_context(trace_id="0" * 31 + "1"),
        tracer.start_as_current_span("step") as span,
    ):
        logging.getLogger(LOGGER).info("in step")
    context = span.get_span_context()
    assert f"trace_id={context.trace_id:032x} span_id={context.span_id:016x}" in stream.getvalue()


def test_non_json_extra_values_do_not_lose_the_line(stream: io.StringIO) -> None:
    configure_logging(service="s", level="INFO", fmt="json", stream=stream)
    logging.getLogger(LOGGER).info("m", extra={"path": object()})
    (line,) = _lines(stream)
    assert line["path"].startswith("<object object")


def test_configuring_twice_keeps_one_handler_and_uses_the_latest_settings(
    stream: io.StringIO,
) -> None:
    first = io.StringIO()
    configure_logging(service="one", level="INFO", fmt="json", stream=first)
    configure_logging(service="two", level="INFO", fmt="json", stream=stream)
    logging.getLogger(LOGGER).info("once")
    assert first.getvalue() == ""
    (line,) = _lines(stream)
    assert line["service"] == "two"


def test_handlers_installed_by_others_are_kept(stream: io.StringIO) -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    configure_logging(service="s", level="INFO", fmt="json", stream=stream)
    configure_logging(service="s", level="INFO", fmt="json", stream=stream)
    assert other in logging.getLogger().handlers


def test_text_format_is_one_readable_line_with_context(stream: io.StringIO) -> None:
    configure_logging(service="s", level="INFO", fmt="text", stream=stream)
    with log_context(tenant="t-a"):
        logging.getLogger(LOGGER).warning("slow claim")
    assert re.fullmatch(
        rf"\S+Z WARNING {re.escape(LOGGER)}: slow claim tenant=t-a\n", stream.getvalue()
    )


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "json"), ("INFO", "xml")])
def test_unknown_level_or_format_is_refused(level: str, fmt: str) -> None:
    with pytest.raises(ValueError):
        configure_logging(service="s", level=level, fmt=fmt)
