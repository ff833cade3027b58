"""Page tokens: opaque, integrity-checked, bound to their filters and to their cursor's shape;
the keyset tail shared by every List RPC."""

from __future__ import annotations

import base64
import json

import pytest

from tpf_errors import InvalidArgument
from tpf_rpc.paging import KEY_ENV, Keyset, decode_page_token, encode_page_token
from tpf_rpc.validation import filters_hash

SCOPE = filters_hash(tenant="t", status="RUNNING")


def refused(token: str, scope: str = SCOPE, schema: dict[str, type] | None = None) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_page_token(token, scope, schema)
    assert raised.value.reason == "PAGE_TOKEN_INVALID"
    assert raised.value.metadata == {"field": "page_token"}


def test_a_token_round_trips_its_cursor_and_is_url_safe() -> None:
    cursor: dict[str, str | int] = {"createdAt": 1_700_000_000_000, "executionId": "e-9"}
    token = encode_page_token(cursor, SCOPE)
    assert not set(token) & set("=+/")
    assert decode_page_token(token, SCOPE, {"createdAt": int, "executionId": str}) == cursor


def test_a_token_for_other_filters_is_refused() -> None:
    refused(encode_page_token({"id": "e-1"}, SCOPE), filters_hash(status="FAILED"))


@pytest.mark.parametrize(
    "schema",
    [{"id": int}, {"id": str, "more": int}, {"other": str}],
)
def test_a_cursor_of_another_shape_is_refused(schema: dict[str, type]) -> None:
    refused(encode_page_token({"id": "e-1"}, SCOPE), schema=schema)


def test_any_edit_to_a_token_is_refused() -> None:
    token = encode_page_token({"after": 41}, SCOPE)
    body, mac = token.split(".")
    for index in range(len(body)):
        changed = "A" if body[index] != "A" else "B"
        refused(f"{body[:index]}{changed}{body[index + 1 :]}.{mac}")
    refused(f"{body}.{mac[:-1]}")
    refused(body)


def test_a_token_written_by_hand_without_the_key_is_refused() -> None:
    payload = json.dumps({"c": {"after": 1}, "f": SCOPE}).encode()
    refused(base64.urlsafe_b64encode(payload).decode().rstrip("="))
    refused(base64.urlsafe_b64encode(payload).decode().rstrip("=") + ".AAAAAAAAAAAAAAAA")


def test_replicas_with_another_key_refuse_each_others_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, "key-one")
    token = encode_page_token({"after": 1}, SCOPE)
    assert decode_page_token(token, SCOPE) == {"after": 1}
    monkeypatch.setenv(KEY_ENV, "key-two")
    refused(token)


@pytest.mark.parametrize(
    "token", ["", ".", "..", "a.b.c", "!!!.???", "x" * 5000, "\u00e9.\u00e9", "e30.e30"]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    refused(token)


def test_keyset_fetches_one_more_and_issues_a_token_only_when_there_is_more() -> None:
    keyset = Keyset.of("", 2, SCOPE, {"after": int})
    assert (keyset.cursor, keyset.fetch) == (None, 3)
    last = keyset.page([10, 11], lambda n: {"after": n})
    assert (list(last.rows), last.next_page_token) == ([10, 11], "")
    more = keyset.page([10, 11, 12], lambda n: {"after": n})
    assert list(more.rows) == [10, 11]
    following = Keyset.of(more.next_page_token, 2, SCOPE, {"after": int})
    assert following.cursor == {"after": 11}
