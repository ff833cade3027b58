"""Edge checks servicers apply to requests: required strings, AIP-158 page size, the filters
fingerprint a page token is bound to (tokens themselves: tpf_rpc.paging)."""

import hashlib
import json

from tpf_errors import InvalidArgument, field_required, field_too_long

FilterValue = str | int | bool | None

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Ids and names (tenants, pipelines, releases, workers, executions, ...). They are keys of
# indexed columns, whose entries Postgres caps near 2.7 kB, and they appear in messages.
MAX_IDENTIFIER_CHARS = 256
# Keys built from field values (idempotency and correlation keys, failure classes).
MAX_KEY_CHARS = 512


def required(value: str, field: str, *, max_chars: int = MAX_IDENTIFIER_CHARS) -> str:
    """`value` stripped; INVALID_ARGUMENT FIELD_REQUIRED if blank, FIELD_INVALID (naming the
    limit) if longer than `max_chars`."""
    stripped = value.strip()
    if not stripped:
        raise field_required(field)
    if len(stripped) > max_chars:
        raise field_too_long(field, max_chars, len(stripped))
    return stripped


def optional(value: str, field: str, *, max_chars: int = MAX_IDENTIFIER_CHARS) -> str:
    """`value` stripped, possibly empty; INVALID_ARGUMENT FIELD_INVALID (naming the limit) if
    longer than `max_chars`."""
    stripped = value.strip()
    if len(stripped) > max_chars:
        raise field_too_long(field, max_chars, len(stripped))
    return stripped


def page_size(value: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """AIP-158: 0 means `default`, oversize is coerced to `maximum`, negative is refused."""
    if value < 0:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE",
            f"Set page_size between 0 and {maximum} (0 means {default}); got {value}.",
            field="page_size",
            value=value,
            min=0,
            max=maximum,
        )
    if value == 0:
        return default
    return min(value, maximum)


def check_batch_size(size: int, field: str, *, maximum: int) -> None:
    """A repeated field carrying a batch (outcomes, leases, submissions): at least one item
    (INVALID_ARGUMENT FIELD_REQUIRED), at most `maximum` (FIELD_OUT_OF_RANGE)."""
    if size == 0:
        raise InvalidArgument("FIELD_REQUIRED", f"{field} must not be empty", field=field)
    if size > maximum:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE",
            f"{field} holds {size} items; send at most {maximum} per call",
            field=field,
            value=size,
            max=maximum,
        )


def filters_hash(**filters: FilterValue) -> str:
    """A short, order-independent fingerprint of a List request's filters."""
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"))
    # 64 bits tell "same filters" apart well enough; this guards against mistakes, not attacks.
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
