"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS): long strings everywhere.

Generated from the schema alone, strings stay short; the 500s this suite once gave came from
long ones (ids echoed into gRPC trailers). So path parameters, query parameters and the
string members of JSON bodies are also sent, in some cases, as long strings: just over the
identifier limit, thousands of characters, past what a URL line may hold, and non-ASCII ones
that percent-encode long.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

# Just over the 256-character identifier limit; the 3,500 and 5,000; past aiohttp's
# 8,190-byte request line; then non-ASCII text.
_LONG_TEXTS = ("x" * 257, "e" * 3_500, "p" * 5_000, "l" * 9_000, "é😀" * 300)


def _lengthened(values: dict[str, Any], text: str) -> dict[str, Any]:
    return {key: text if isinstance(value, str) else value for key, value in values.items()}


def _sometimes_long(values: Any) -> Any:
    if not isinstance(values, dict) or not any(isinstance(v, str) for v in values.values()):
        return st.just(values)
    long_texts = st.sampled_from(_LONG_TEXTS).map(lambda text: _lengthened(values, text))
    return st.one_of(st.just(values), long_texts)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    return _sometimes_long(path_parameters)


@schemathesis.hook
def flatmap_query(context: Any, query: dict[str, Any]) -> Any:
    return _sometimes_long(query)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _sometimes_long(body)
