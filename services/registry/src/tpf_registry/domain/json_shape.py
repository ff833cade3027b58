"""Strict readers for JSON objects, the way TPF's Jackson mappers read descriptors and contracts.

TPF rejects unknown keys and wrong types; these helpers do the same and name the offending key
in the error so the caller can say what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ShapeError(ValueError):
    """A JSON document does not have the expected shape; the message names the key."""


def expect_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{where} must be a JSON object")
    return value


def reject_unknown_keys(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ShapeError(f'Unrecognized field "{unknown[0]}" in {where}')


def optional_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ShapeError(f"{where}.{key} must be a string")
    return value


def required_str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = optional_str(obj, key, where)
    if value is None or not value.strip():
        raise ShapeError(f"{where}.{key} is required")
    return value


def optional_int(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    # bool is an int in Python but not in JSON schemas: refuse it explicitly.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"{where}.{key} must be an integer")
    return value


def optional_bool(obj: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ShapeError(f"{where}.{key} must be a boolean")
    return value


def optional_str_list(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ShapeError(f"{where}.{key} must be an array of strings")
    for item in value:
        if not isinstance(item, str):
            raise ShapeError(f"{where}.{key} must contain only strings")
    return tuple(value)
