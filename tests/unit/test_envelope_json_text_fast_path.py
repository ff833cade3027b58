"""compact_json_text writes plain values with the C encoder: the text must be exactly what the
strict writer writes, and what the writer refuses must still be refused."""

from __future__ import annotations

import enum
from decimal import Decimal

import pytest

from tpf_envelope._json_text import JsonTextError, JsonValue, _write, compact_json_text


class Level(enum.IntEnum):
    LOW = 1


def written(value: object) -> str:
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


@pytest.mark.parametrize(
    "value",
    [
        {"n": 17, "tag": "bench-w1-123"},
        {"nested": {"list": [1, 2.5, True, False, None, "x"], "tuple": (1, "two")}},
        {"unicode": 'zürich — 東京 \u2028 \n " \\\\ \x00', "emoji": "🍕"},
        {"big": 10**40, "negative": -3, "float": 1e-7, "level": Level.LOW},
        [{"a": []}, {}, [[[]]]],
        "just a string",
        42,
        {"price": Decimal("27.50"), "items": [{"total": Decimal("1766412345.123456789")}]},
        [Decimal("0.10")],
    ],
)
def test_the_text_is_the_writers(value: JsonValue) -> None:
    assert compact_json_text(value) == written(value)


@pytest.mark.parametrize(
    "value",
    [
        {1: "int key"},
        {"nested": [{None: "null key"}]},
        {"nan": float("nan")},
        {"inf": [float("inf")]},
        {"decimal nan": Decimal("NaN")},
        {"set": {1, 2}},
        {"bytes": b"x"},
    ],
)
def test_what_the_writer_refuses_is_refused(value: JsonValue) -> None:
    with pytest.raises(JsonTextError):
        compact_json_text(value)
