"""configure_logging: route every logger to one stderr handler with the chosen format."""

import logging
import sys
from typing import TextIO

from tpf_telemetry._formatters import JsonLinesFormatter, TextFormatter

LOG_FORMATS = ("json", "text")


class _TpfHandler(logging.StreamHandler[TextIO]):
    """Marks the handler configure_logging installed, so a second call replaces it."""


def configure_logging(*, service: str, level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Send all logging to `stream` (stderr by default) as JSON lines or text.

    Idempotent: calling again replaces the handler installed earlier and leaves handlers
    installed by others (pytest's capture, for one) alone.
    """
    level_number = logging.getLevelNamesMapping().get(level.upper())
    if level_number is None:
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {LOG_FORMATS}")

    handler = _TpfHandler(stream if stream is not None else sys.stderr)
    formatter = JsonLinesFormatter if fmt == "json" else TextFormatter
    handler.setFormatter(formatter(service=service))

    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _TpfHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level_number)
