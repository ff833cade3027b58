"""What a decoded payload is in Python: plain values, plus two wrappers for what is not plain.

`Value` is the decoded form of any envelope: `None`, `bool`, `int`, `float`, `Decimal`, `str`,
`list` (List and Set), `dict` (Map), an `ApplicationValue` (a typed application object we keep as
its JSON) or an `InputSnapshot` (TPF's step-0 wrapper). `Decoded` pairs it with the type id and
the envelope it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TypeAlias

from tpf_envelope._envelope import Envelope
from tpf_envelope._json_text import JsonValue
from tpf_envelope._type_ids import is_builtin_type_id, is_java_binary_name


class InputShape(StrEnum):
    """How a submission's input is read (TPF_WIRE §3.1)."""

    UNI = "UNI"
    """One item."""
    MULTI = "MULTI"
    """A List or Set payload, each element one item; `null` means zero items."""
    RAW = "RAW"
    """One item, passed as is without conversion to the first step's input type."""


@dataclass(frozen=True, slots=True)
class ApplicationValue:
    """An instance of an application class, kept as the JSON TPF wrote for it.

    We cannot load Java classes, so the object stays JSON (numbers as `Decimal`/`int`, exactly as
    written). `json_value` is usually an object; enums are strings. It is never `None`: a null
    payload has the type id `null`.
    """

    type_id: str
    json_value: JsonValue

    def __post_init__(self) -> None:
        if not is_java_binary_name(self.type_id) or is_builtin_type_id(self.type_id):
            raise ValueError(
                f"ApplicationValue type id {self.type_id!r} must name an application class, "
                "not a built-in payload type"
            )
        if self.json_value is None:
            raise ValueError("ApplicationValue json_value must not be None; use None itself")


@dataclass(frozen=True, slots=True)
class InputSnapshot:
    """TPF's `ExecutionInputSnapshot`: the submission's shape with its decoded input.

    UNI and RAW hold the one input in `payload` and no `items`; MULTI holds the inputs in `items`
    and `payload` is None (TPF_WIRE §2, §9.1).
    """

    shape: InputShape
    payload: Value = None
    items: tuple[Value, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", InputShape(self.shape))
        object.__setattr__(self, "items", tuple(self.items))
        if self.shape is InputShape.MULTI and self.payload is not None:
            raise ValueError("a MULTI input snapshot keeps its inputs in items; payload is None")
        if self.shape is not InputShape.MULTI and self.items:
            raise ValueError(f"a {self.shape} input snapshot keeps its input in payload, not items")


Value: TypeAlias = (
    bool
    | int
    | float
    | Decimal
    | str
    | list["Value"]
    | dict[str, "Value"]
    | ApplicationValue
    | InputSnapshot
    | None
)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded envelope: its type id, its Python value, and the envelope itself.

    `envelope` is kept so callers can store or forward the payload exactly as it arrived (nested
    type ids such as `java.lang.Integer` or `java.time.Instant` do not survive in `value`).
    """

    type_id: str
    value: Value
    envelope: Envelope
