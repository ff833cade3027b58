"""Edge checks servicers apply to requests: required strings, AIP-158 page size, the filters
fingerprint a page token is bound to (tokens themselves: tpf_rpc.paging)."""

import hashlib
import json

from tpf_errors import InvalidArgument, field_required

FilterValue = str | int | bool | None

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def required(value: str, field: str) -> str:
    """`value` stripped; INVALID_ARGUMENT (FIELD_REQUIRED) if blank."""
    stripped = value.strip()
    if not stripped:
        raise field_required(field)
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


def filters_hash(**filters: FilterValue) -> str:
    """A short, order-independent fingerprint of a List request's filters."""
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"))
    # 64 bits tell "same filters" apart well enough; this guards against mistakes, not attacks.
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
