"""Builders for the field errors every servicer raises while validating requests."""

from tpf_errors._error import InvalidArgument


def field_required(field: str) -> InvalidArgument:
    """A required request field is missing or blank (reason FIELD_REQUIRED)."""
    return InvalidArgument("FIELD_REQUIRED", f"Set {field}; it is required.", field=field)


def field_invalid(field: str, detail: str) -> InvalidArgument:
    """A request field has a malformed value (reason FIELD_INVALID); `detail` says why."""
    return InvalidArgument("FIELD_INVALID", f"Fix {field}: {detail}.", field=field, detail=detail)


def field_too_long(field: str, max_chars: int, length: int) -> InvalidArgument:
    """A request field is longer than its limit (reason FIELD_INVALID, with `maxLength`)."""
    return InvalidArgument(
        "FIELD_INVALID",
        f"Shorten {field} to at most {max_chars} characters; it has {length}.",
        field=field,
        maxLength=max_chars,
        length=length,
    )
