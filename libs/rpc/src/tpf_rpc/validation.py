"""Edge checks servicers apply to requests: required strings, AIP-158 page size and tokens.

Page tokens are opaque to clients: base64url of compact JSON holding a keyset cursor and a
hash of the filters they were issued for. They carry no authority; tenant and role are
checked again on every page.
"""

import base64
import binascii
import hashlib
import json
from typing import Any

from tpf_errors import InvalidArgument, field_required

PageCursor = dict[str, str | int]
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


def encode_page_token(cursor: PageCursor, filters_hash: str) -> str:
    """The next_page_token for a page ending at `cursor` under filters `filters_hash`."""
    payload = json.dumps({"c": cursor, "f": filters_hash}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode("ascii")


def decode_page_token(token: str, filters_hash: str) -> PageCursor:
    """The cursor inside `token`; INVALID_ARGUMENT (PAGE_TOKEN_INVALID) if it is malformed or
    was issued for filters other than `filters_hash`."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise _page_token_invalid() from None
    cursor = _cursor_of(payload)
    if cursor is None or payload.get("f") != filters_hash:
        raise _page_token_invalid()
    return cursor


def _cursor_of(payload: Any) -> PageCursor | None:
    if not isinstance(payload, dict):
        return None
    cursor = payload.get("c")
    if not isinstance(cursor, dict):
        return None
    # bool is an int subclass, but no cursor column is boolean.
    if not all(
        isinstance(value, str | int) and not isinstance(value, bool) for value in cursor.values()
    ):
        return None
    return cursor


def _page_token_invalid() -> InvalidArgument:
    return InvalidArgument(
        "PAGE_TOKEN_INVALID",
        "page_token is malformed or was issued for other filters; "
        "send the next_page_token of a request with the same filters, or none to start over.",
        field="page_token",
    )
