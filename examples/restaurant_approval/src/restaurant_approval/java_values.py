"""Java's readings of UUIDs, instants and JSON text, which the restaurant types depend on.

TPF's restaurant example parses with `UUID.fromString`, `Instant.parse` and Jackson, and prints
with `UUID.toString` and `Instant.toString`. Each accepts or writes forms Python's own parsers
do not (TPF_WIRE §11), so the rules are spelled out here.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final

_LONG_MAX: Final = 2**63 - 1
_NANOS: Final = 1_000_000_000
_MAX_OFFSET_S: Final = 18 * 3600
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_HEX_COMPONENT = re.compile(r"[+-]?[0-9A-Fa-f]+")
_CANONICAL_UUID = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
# DateTimeFormatter.ISO_INSTANT, parsed case-insensitively: seconds required, 0-9 fraction
# digits, `Z` or an offset `+HH:MM[:SS]`.
_INSTANT = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d{0,9}))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2})(?::(?P<os>\d{2}))?)"
)
_JAVA_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def java_uuid(text: str) -> str:
    """`UUID.fromString(text).toString()`: five dash-separated hex groups of any width.

    Java parses each group as a signed hex long and keeps its low bits, so `1-1-1-1-1` reads as
    `00000001-0001-0001-0001-000000000001`. Raises `ValueError` with Java's message.
    """
    if len(text) > 36:
        raise ValueError("UUID string too large")
    groups = text.split("-")
    if len(groups) != 5:
        raise ValueError(f"Invalid UUID string: {text}")
    widths = (32, 16, 16, 16, 48)
    values: list[int] = []
    for group, width in zip(groups, widths, strict=True):
        if not _HEX_COMPONENT.fullmatch(group):
            raise ValueError(f'Error at index 0 in: "{group}"')
        number = int(group, 16)
        if not -_LONG_MAX - 1 <= number <= _LONG_MAX:
            raise ValueError(f'For input string: "{group}" under radix 16')
        values.append(number & ((1 << width) - 1))
    most = (values[0] << 32) | (values[1] << 16) | values[2]
    least = (values[3] << 48) | values[4]
    return str(uuid.UUID(int=(most << 64) | least))


def jackson_uuid(text: str) -> str:
    """Jackson's `UUIDDeserializer`: the 36-character form, or 16 bytes in base64 (24 chars)."""
    if len(text) == 24:
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError:
            raw = b""
        if len(raw) == 16:
            return str(uuid.UUID(bytes=raw))
    if len(text) != 36 or not _CANONICAL_UUID.fullmatch(text):
        raise ValueError(f"UUID has to be represented by standard 36-char representation: {text}")
    return str(uuid.UUID(text))


@dataclass(frozen=True, slots=True, order=True)
class JavaInstant:
    """A `java.time.Instant`: seconds since the epoch plus nanoseconds (Python keeps micros)."""

    epoch_second: int
    nano: int

    @classmethod
    def parse(cls, text: str) -> JavaInstant:
        """`Instant.parse`; raises `ValueError` naming the text, as Java's exception does."""
        match = _INSTANT.fullmatch(text)
        if match is None:
            raise ValueError(f"Text '{text}' could not be parsed at index 0")
        hour, minute, second = (int(match[name]) for name in ("hour", "minute", "second"))
        extra_day = 0
        if hour == 24 and minute == 0 and second == 0 and not int(match["fraction"] or "0"):
            hour, extra_day = 0, 1
        elif hour == 23 and minute == 59 and second == 60:
            second = 59  # a leap second reads as the second before it
        try:
            day = date(int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError as error:
            raise ValueError(f"Text '{text}' could not be parsed: {error}") from None
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"Text '{text}' could not be parsed: time out of range")
        offset_s = 0
        if match["sign"]:
            offset_s = int(match["oh"]) * 3600 + int(match["om"]) * 60 + int(match["os"] or "0")
            if int(match["om"]) > 59 or int(match["os"] or "0") > 59 or offset_s > _MAX_OFFSET_S:
                raise ValueError(f"Text '{text}' could not be parsed: offset out of range")
            offset_s = -offset_s if match["sign"] == "-" else offset_s
        days = day.toordinal() - _EPOCH_ORDINAL + extra_day
        epoch_second = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s
        nano = int((match["fraction"] or "").ljust(9, "0"))
        return cls(epoch_second, nano)

    @classmethod
    def now(cls) -> JavaInstant:
        current = datetime.now(UTC)
        whole = current.replace(microsecond=0) - _EPOCH
        return cls(whole // timedelta(seconds=1), current.microsecond * 1000)

    def __str__(self) -> str:
        """`Instant.toString`: UTC, seconds always, fraction in groups of 3 digits, `Z`."""
        moment = _EPOCH + timedelta(seconds=self.epoch_second)
        text = (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        )
        if self.nano:
            digits = f"{self.nano:09d}"
            if self.nano % 1_000_000 == 0:
                digits = digits[:3]
            elif self.nano % 1000 == 0:
                digits = digits[:6]
            text += "." + digits
        return text + "Z"


def jackson_text(value: object) -> str | None:
    """Jackson `JsonNode.asText()` of a present field; None for JSON null.

    Numbers and booleans give their JSON text, containers the empty string.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal | float):
        return str(value)
    return ""


def java_trim(text: str) -> str:
    """`String.trim()`: strips every character up to U+0020, and nothing else."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def java_is_blank(text: str) -> bool:
    """`String.isBlank()` for the characters a trimmed decision field can still hold."""
    return not text.strip()


def java_big_decimal(value: object) -> Decimal | None:
    """Jackson's `BigDecimal` binding: a JSON number or numeric text; `""` and null read null."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("Cannot deserialize value of type `java.math.BigDecimal` from Boolean")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and _JAVA_DECIMAL.fullmatch(value):
        return Decimal(value)
    raise ValueError(
        f"Cannot deserialize value of type `java.math.BigDecimal` from {value!r}: "
        "not a valid representation"
    )
