"""Accepting `java.time` payloads in every form TPF may write them, and keeping them as given.

TPF's codec mapper is a default Jackson mapper with the JavaTimeModule, so with
`WRITE_DATES_AS_TIMESTAMPS` on it writes `Instant`, `OffsetDateTime` and `ZonedDateTime` as
epoch-second decimals (`1766412345.123456789`) and `LocalDate`/`LocalDateTime` as arrays
(`[2026,8,22]`); other setups and clients write ISO-8601 strings (TPF_WIRE §2 leaves this open).
We accept each form and return it unchanged: epoch seconds as `Decimal`, arrays as `list[int]`,
ISO text as `str`. Nothing is converted, so no precision or offset is lost.
"""

import re
from decimal import Decimal

from tpf_envelope._json_text import JsonValue, json_kind

# java.time.Instant.MAX / MIN in epoch seconds.
_MAX_EPOCH_SECONDS = 31556889864403199
_MIN_EPOCH_SECONDS = -31557014167219200

_DATE = r"(?P<year>[+-]\d{4,9}|\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
_TIME = r"(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d{1,9})?)?"
_OFFSET = r"(?P<offset>[Zz]|[+-](?P<oh>\d{2})(?::?(?P<om>\d{2})(?::?(?P<os>\d{2}))?)?)"
_ZONE = r"(?:\[[^\[\]\s]+\])"

# Java's ISO formatters parse case-insensitively, so `t` and `z` are accepted too.
_LOCAL_DATE = re.compile(_DATE)
_LOCAL_DATE_TIME = re.compile(rf"{_DATE}[Tt]{_TIME}")
_OFFSET_DATE_TIME = re.compile(rf"{_DATE}[Tt]{_TIME}{_OFFSET}")
_ZONED_DATE_TIME = re.compile(rf"{_DATE}[Tt]{_TIME}{_OFFSET}{_ZONE}?")


class TimeValueError(ValueError):
    """The value is not a date/time in any accepted form; the message says what was expected."""


def instant(value: JsonValue) -> Decimal | str:
    """`java.time.Instant`: epoch seconds (number) or an ISO instant with `Z` or an offset."""
    return _epoch_or_text(
        value, _OFFSET_DATE_TIME, "an ISO-8601 instant such as 2026-08-22T17:48:23Z"
    )


def offset_date_time(value: JsonValue) -> Decimal | str:
    """`java.time.OffsetDateTime`: epoch seconds or ISO date-time with an offset."""
    return _epoch_or_text(
        value, _OFFSET_DATE_TIME, "an ISO-8601 date-time with offset such as 2026-08-22T19:48+02:00"
    )


def zoned_date_time(value: JsonValue) -> Decimal | str:
    """`java.time.ZonedDateTime`: epoch seconds or ISO date-time with offset and optional zone."""
    return _epoch_or_text(
        value,
        _ZONED_DATE_TIME,
        "an ISO-8601 zoned date-time such as 2026-08-22T19:48+02:00[Europe/Paris]",
    )


def local_date_time(value: JsonValue) -> list[int] | str:
    """`java.time.LocalDateTime`: `[y,m,d,h,min(,s(,nanos))]` or ISO text without offset."""
    expected = "an ISO-8601 local date-time such as 2026-08-22T17:48:23 or [2026,8,22,17,48,23]"
    if isinstance(value, list):
        fields = _int_fields(value, expected)
        if not 5 <= len(fields) <= 7:
            raise TimeValueError(f"expected {expected}, got an array of {len(fields)} numbers")
        year, month, day, hour, minute, *rest = fields
        _check_date(year, month, day)
        second = rest[0] if rest else 0
        nanos = rest[1] if len(rest) > 1 else 0
        _check_time(hour, minute, second)
        if not 0 <= nanos <= 999_999_999:
            raise TimeValueError(f"nanosecond {nanos} is out of range")
        return fields
    return _text(value, _LOCAL_DATE_TIME, expected)


def local_date(value: JsonValue) -> list[int] | str:
    """`java.time.LocalDate`: `[y,m,d]` or ISO text `2026-08-22`."""
    expected = "an ISO-8601 date such as 2026-08-22 or [2026,8,22]"
    if isinstance(value, list):
        fields = _int_fields(value, expected)
        if len(fields) != 3:
            raise TimeValueError(f"expected {expected}, got an array of {len(fields)} numbers")
        _check_date(*fields)
        return fields
    return _text(value, _LOCAL_DATE, expected)


def _epoch_or_text(value: JsonValue, pattern: re.Pattern[str], expected: str) -> Decimal | str:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        seconds = Decimal(value)
        if not _MIN_EPOCH_SECONDS <= seconds < _MAX_EPOCH_SECONDS + 1:
            raise TimeValueError(f"epoch second {value} is outside java.time.Instant's range")
        return value if isinstance(value, Decimal) else seconds
    return _text(value, pattern, f"epoch seconds or {expected}")


def _text(value: JsonValue, pattern: re.Pattern[str], expected: str) -> str:
    if not isinstance(value, str):
        raise TimeValueError(f"expected {expected}, got {json_kind(value)}")
    match = pattern.fullmatch(value)
    if match is None:
        raise TimeValueError(f"expected {expected}, got {value!r}")
    fields = match.groupdict()
    _check_date(int(fields["year"]), int(fields["month"]), int(fields["day"]))
    if fields.get("hour") is not None:
        _check_time(int(fields["hour"]), int(fields["minute"]), int(fields["second"] or 0))
    if fields.get("oh") is not None:
        offset_seconds = (
            int(fields["oh"]) * 3600 + int(fields["om"] or 0) * 60 + int(fields["os"] or 0)
        )
        if int(fields["om"] or 0) > 59 or int(fields["os"] or 0) > 59 or offset_seconds > 18 * 3600:
            raise TimeValueError(f"offset {fields['offset']} is out of range (at most 18:00)")
    return value


def _int_fields(value: list[JsonValue], expected: str) -> list[int]:
    fields: list[int] = []
    for item in value:
        if not isinstance(item, int) or isinstance(item, bool):
            raise TimeValueError(f"expected {expected}, got an array holding {json_kind(item)}")
        fields.append(item)
    return fields


def _check_date(year: int, month: int, day: int) -> None:
    if not -999_999_999 <= year <= 999_999_999:
        raise TimeValueError(f"year {year} is out of range")
    if not 1 <= month <= 12:
        raise TimeValueError(f"month {month} is out of range")
    if not 1 <= day <= _days_in_month(year, month):
        raise TimeValueError(f"day {day} does not exist in {year:04d}-{month:02d}")


def _check_time(hour: int, minute: int, second: int) -> None:
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59):
        raise TimeValueError(f"time {hour:02d}:{minute:02d}:{second:02d} does not exist")


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        is_leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if is_leap else 28
    return 30 if month in (4, 6, 9, 11) else 31
