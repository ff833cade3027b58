"""TPF's contract hash (TPF_WIRE §8.1), the one implementation the release build, the test kit
and the benchmarks share.

`contractHash` is the SHA-256 of the contract's compact JSON as Gson writes it (null-valued keys
omitted, non-ASCII raw except U+2028/U+2029), without `contractVersion` and `contractHash`;
`contractVersion` is `sha256:<contractHash>`. A sealed contract starts with `schemaVersion`,
`pipelineId`, `contractVersion`, `contractHash`, the other keys following in their order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

# The keys the hash is about, not over.
_HASH_KEYS: Final = ("contractVersion", "contractHash")


def without_nulls(value: Any) -> Any:
    """Gson with default settings omits null-valued keys (§8.1)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def gson_compact(value: Any) -> str:
    """Gson's compact JSON with HTML escaping off: raw non-ASCII, except U+2028/U+2029."""
    text = json.dumps(without_nulls(value), separators=(",", ":"), ensure_ascii=False)
    return gson_escapes(text)


def gson_escapes(text: str) -> str:
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def contract_hash(contract: Mapping[str, Any]) -> str:
    """The contract's hash; a sealed contract's own `contractVersion` and `contractHash` are
    left out, so `contract_hash(c) == c["contractHash"]` checks a sealed one."""
    body = {key: value for key, value in contract.items() if key not in _HASH_KEYS}
    return hashlib.sha256(gson_compact(body).encode("utf-8")).hexdigest()


def catalog_fingerprint(canonical_types: Mapping[str, Any]) -> str:
    """`canonicalCatalogFingerprint`: the SHA-256 of the compact canonical-types catalog."""
    return hashlib.sha256(gson_compact(dict(canonical_types)).encode("utf-8")).hexdigest()


def sealed_contract(body: Mapping[str, Any]) -> dict[str, Any]:
    """The contract as TPF's build writes it: `body` without nulls, with its hash and version,
    keys in TPF's order."""
    clean: dict[str, Any] = without_nulls(
        {key: value for key, value in body.items() if key not in _HASH_KEYS}
    )
    digest = contract_hash(clean)
    head = {
        "schemaVersion": clean["schemaVersion"],
        "pipelineId": clean["pipelineId"],
        "contractVersion": f"sha256:{digest}",
        "contractHash": digest,
    }
    return {**head, **{key: value for key, value in clean.items() if key not in head}}
