"""AIP-158 keyset paging for every List RPC: the page size, the token in, the token out.

A page token is opaque to clients: base64url of compact JSON holding a keyset cursor and a
fingerprint of the filters it was issued for, then `.` and a truncated HMAC-SHA256 over that
text. A token that was cut, edited or made up, that holds a cursor of another shape, or that was
issued for other filters is `INVALID_ARGUMENT PAGE_TOKEN_INVALID`, never an error inside the
servicer. Tokens carry no authority (tenant and role are checked again on every page); the MAC
makes tampering visible. Replicas must share the key (`TPF_PAGE_TOKEN_KEY`) for a token from one
to be accepted by another; without it they share the built-in key, so a token still cannot be
corrupted unnoticed but could be forged by someone who read this code — harmless, since a forged
cursor only chooses where a listing the caller may read anyway starts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tpf_errors import InvalidArgument

T = TypeVar("T")
PageCursor = dict[str, str | int]
# A cursor's keys and the type of each value; a token whose cursor differs is refused.
CursorSchema = Mapping[str, type[int] | type[str]]

KEY_ENV = "TPF_PAGE_TOKEN_KEY"
_DEFAULT_KEY = b"tpf-page-token-v1"
_MAC_BYTES = 12
_MAX_TOKEN_CHARS = 2048


def _key() -> bytes:
    configured = os.environ.get(KEY_ENV, "")
    return configured.encode() if configured else _DEFAULT_KEY


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _mac(body: str) -> str:
    return _b64(hmac.new(_key(), body.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES])


def encode_page_token(cursor: PageCursor, filters_hash: str) -> str:
    """The next_page_token for a page ending at `cursor` under filters `filters_hash`."""
    body = _b64(json.dumps({"c": cursor, "f": filters_hash}, separators=(",", ":")).encode())
    return f"{body}.{_mac(body)}"


def decode_page_token(
    token: str, filters_hash: str, schema: CursorSchema | None = None
) -> PageCursor:
    """The cursor inside `token`; PAGE_TOKEN_INVALID if it is malformed, tampered with, issued
    for filters other than `filters_hash`, or (with `schema`) holds a cursor of another shape."""
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 1:
        raise page_token_invalid()
    body, mac = token.split(".")
    try:
        if not hmac.compare_digest(mac.encode("ascii"), _mac(body).encode("ascii")):
            raise page_token_invalid()
        payload: Any = json.loads(_unb64(body))
    except (ValueError, binascii.Error, UnicodeError):
        raise page_token_invalid() from None
    cursor = _cursor_of(payload)
    if cursor is None or payload.get("f") != filters_hash:
        raise page_token_invalid()
    if schema is not None and not _fits(cursor, schema):
        raise page_token_invalid()
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


def _fits(cursor: PageCursor, schema: CursorSchema) -> bool:
    return cursor.keys() == schema.keys() and all(
        type(cursor[key]) is kind for key, kind in schema.items()
    )


def page_token_invalid() -> InvalidArgument:
    return InvalidArgument(
        "PAGE_TOKEN_INVALID",
        "page_token is malformed or was issued for other filters; "
        "send the next_page_token of a request with the same filters, or none to start over.",
        field="page_token",
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    """The rows to answer and the token of the next page (empty on the last page)."""

    rows: Sequence[T]
    next_page_token: str


@dataclass(frozen=True)
class Keyset:
    """One List request's paging: where it starts and how many rows to fetch.

    The store is asked for `fetch` rows (one more than the page) after `cursor`; `page()` keeps
    `limit` of them and, when the extra row came back, issues a token ending at the last one kept.
    """

    cursor: PageCursor | None
    limit: int
    filters_hash: str

    @classmethod
    def of(cls, page_token: str, limit: int, filters_hash: str, schema: CursorSchema) -> Keyset:
        cursor = decode_page_token(page_token, filters_hash, schema) if page_token else None
        return cls(cursor=cursor, limit=limit, filters_hash=filters_hash)

    @property
    def fetch(self) -> int:
        return self.limit + 1

    def page(self, rows: Sequence[T], cursor_of: Callable[[T], PageCursor]) -> Page[T]:
        kept = rows[: self.limit]
        if len(rows) <= self.limit:
            return Page(kept, "")
        return Page(kept, encode_page_token(cursor_of(kept[-1]), self.filters_hash))
