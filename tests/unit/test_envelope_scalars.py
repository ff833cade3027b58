"""JDK scalar payloads decode to exact Python values and refuse what does not fit (TPF_WIRE §2)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tpf_envelope import (
    BIG_DECIMAL,
    BIG_INTEGER,
    BOOLEAN,
    BYTE,
    CHARACTER,
    DOUBLE,
    FLOAT,
    INSTANT,
    INTEGER,
    JDK_SCALAR_TYPE_IDS,
    LOCAL_DATE,
    LOCAL_DATE_TIME,
    LONG,
    OFFSET_DATE_TIME,
    PATH,
    SHORT,
    STRING,
    TRANSITION_ENCODING,
    UUID,
    ZONED_DATE_TIME,
    Envelope,
    Value,
    decode,
    encode,
)
from tpf_errors import InvalidArgument


def decoded(type_id: str, text: str) -> Value:
    return decode(Envelope(type_id, TRANSITION_ENCODING, text)).value


def refusal(type_id: str, text: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        decode(Envelope(type_id, TRANSITION_ENCODING, text))
    assert caught.value.reason == "PAYLOAD_UNDECODABLE"
    assert caught.value.metadata["payloadTypeId"] == type_id
    return caught.value


ACCEPTED = [
    (STRING, '"text"', "text"),
    (STRING, '"caf\\u00e9"', "café"),
    (BOOLEAN, "true", True),
    (BOOLEAN, "false", False),
    (LONG, "42", 42),
    (LONG, "-9223372036854775808", -(2**63)),
    (INTEGER, "2147483647", 2**31 - 1),
    (SHORT, "-32768", -32768),
    (BYTE, "127", 127),
    (BIG_INTEGER, "123456789012345678901234567890", 123456789012345678901234567890),
    (DOUBLE, "1.5", 1.5),
    (DOUBLE, "2", 2.0),
    (FLOAT, "0.25", 0.25),
    (BIG_DECIMAL, "27", Decimal("27")),
    (CHARACTER, '"x"', "x"),
    (UUID, '"8F3C1E2A-0B4D-4C5E-9F60-718293A4B5C6"', "8F3C1E2A-0B4D-4C5E-9F60-718293A4B5C6"),
    (PATH, '"/var/tmp/a b"', "/var/tmp/a b"),
    (INSTANT, '"2026-08-22T17:48:23.123456Z"', "2026-08-22T17:48:23.123456Z"),
    (INSTANT, '"2026-08-22t17:48:23z"', "2026-08-22t17:48:23z"),
    (INSTANT, '"2026-08-22T19:48:23+02:00"', "2026-08-22T19:48:23+02:00"),
    (INSTANT, "1766412345", Decimal("1766412345")),
    (OFFSET_DATE_TIME, '"2026-08-22T19:48+02:00"', "2026-08-22T19:48+02:00"),
    (OFFSET_DATE_TIME, "-1.5", Decimal("-1.5")),
    (
        ZONED_DATE_TIME,
        '"2026-08-22T19:48+02:00[Europe/Paris]"',
        "2026-08-22T19:48+02:00[Europe/Paris]",
    ),
    (ZONED_DATE_TIME, "1766412345.000000001", Decimal("1766412345.000000001")),
    (LOCAL_DATE_TIME, '"2026-08-22T17:48:23"', "2026-08-22T17:48:23"),
    (LOCAL_DATE_TIME, "[2026,8,22,17,48,23,123456000]", [2026, 8, 22, 17, 48, 23, 123456000]),
    (LOCAL_DATE, '"2024-02-29"', "2024-02-29"),
    (LOCAL_DATE, "[2026,8,22]", [2026, 8, 22]),
]


@pytest.mark.parametrize(("type_id", "text", "expected"), ACCEPTED)
def test_scalar_decodes_to_its_python_value(type_id: str, text: str, expected: Value) -> None:
    value = decoded(type_id, text)

    assert value == expected
    assert type(value) is type(expected)


def test_every_jdk_scalar_type_id_has_an_accepted_example() -> None:
    assert {type_id for type_id, _, _ in ACCEPTED} == JDK_SCALAR_TYPE_IDS


def test_boolean_is_not_an_integer_and_an_integer_is_not_a_boolean() -> None:
    assert decoded(BOOLEAN, "true") is True
    refusal(BOOLEAN, "1")
    refusal(LONG, "true")


def test_big_decimal_keeps_the_written_precision() -> None:
    value = decoded(BIG_DECIMAL, "27.50")

    assert isinstance(value, Decimal)
    assert str(value) == "27.50"
    assert encode(value).payload == "27.50"
    assert str(decoded(BIG_DECIMAL, "1766412345.123456789")) == "1766412345.123456789"
    assert str(decoded(BIG_DECIMAL, "1E+2")) == "1E+2"


def test_epoch_second_decimal_instant_keeps_nanoseconds() -> None:
    value = decoded(INSTANT, "1766412345.123456789")

    assert value == Decimal("1766412345.123456789")
    assert str(value) == "1766412345.123456789"


@pytest.mark.parametrize(
    ("type_id", "text", "fragment"),
    [
        (STRING, "42", "expected a JSON string, got a number"),
        (STRING, "null", "got null"),
        (LONG, "9223372036854775808", "outside the 64-bit range"),
        (LONG, "42.0", "expected a JSON integer, got the number 42.0"),
        (LONG, '"42"', "expected a JSON integer, got a string"),
        (INTEGER, "2147483648", "outside the 32-bit range"),
        (SHORT, "32768", "outside the 16-bit range"),
        (BYTE, "128", "outside the 8-bit range"),
        (DOUBLE, "1e400", "outside the range of a 64-bit double"),
        (DOUBLE, "NaN", "NaN is not a JSON number"),
        (FLOAT, "1e39", "outside the range of a 32-bit float"),
        (BIG_DECIMAL, '"27.50"', "expected a JSON number, got a string"),
        (CHARACTER, '"ab"', "exactly one UTF-16 character"),
        (CHARACTER, '"\U0001f600"', "exactly one UTF-16 character"),
        (UUID, '"not-a-uuid"', "expected a UUID"),
        (UUID, '"1-1-1-1-1"', "expected a UUID"),
        (INSTANT, '"2026-08-22T17:48:23"', "ISO-8601 instant"),
        (INSTANT, '"2026-02-30T00:00:00Z"', "day 30 does not exist in 2026-02"),
        (INSTANT, '"2026-08-22T24:00:00Z"', "time 24:00:00 does not exist"),
        (INSTANT, '"2026-08-22T17:48:23+19:00"', "offset +19:00 is out of range"),
        (INSTANT, "true", "got a boolean"),
        (INSTANT, "1e30", "outside java.time.Instant's range"),
        (LOCAL_DATE, '"2023-02-29"', "day 29 does not exist in 2023-02"),
        (LOCAL_DATE, "[2026,8]", "got an array of 2 numbers"),
        (LOCAL_DATE, "20260822", "got a number"),
        (LOCAL_DATE_TIME, '"2026-08-22T17:48:23Z"', "local date-time"),
        (LOCAL_DATE_TIME, "[2026,8,22,17,60]", "does not exist"),
        (ZONED_DATE_TIME, '"2026-08-22T19:48[Europe/Paris]"', "zoned date-time"),
        (STRING, '"a" "b"', "not valid JSON"),
        (STRING, "", "not valid JSON"),
    ],
)
def test_scalar_payload_that_does_not_fit_its_type_is_undecodable(
    type_id: str, text: str, fragment: str
) -> None:
    error = refusal(type_id, text)

    assert fragment in error.metadata["detail"]
    assert error.message == (
        f"Payload at $ does not decode as {type_id}: {error.metadata['detail']}."
    )
    assert error.metadata["path"] == "$"
