"""TPF's contract hash (TPF_WIRE §8.1), one function for the release build, the test kit and the
benchmarks: SHA-256 of the compact Gson-style JSON without version and hash."""

from __future__ import annotations

import hashlib
from typing import Any

from tpf_testkit.demo_release import tpf_contract

from tpf_worker.contract_hash import (
    catalog_fingerprint,
    contract_hash,
    gson_compact,
    sealed_contract,
)

BODY: dict[str, Any] = {
    "schemaVersion": 1,
    "pipelineId": "org.example.p",
    "platform": "COMPUTE",
    "module": None,
    "steps": [{"index": 0, "authoredName": "Café\u2028step", "note": None}],
}


def test_the_hash_is_the_sha256_of_gsons_compact_json() -> None:
    # What Gson writes: no spaces, null keys gone, raw non-ASCII, U+2028 escaped.
    compact = (
        '{"schemaVersion":1,"pipelineId":"org.example.p","platform":"COMPUTE",'
        '"steps":[{"index":0,"authoredName":"Café\\u2028step"}]}'
    )
    assert gson_compact(BODY) == compact
    assert contract_hash(BODY) == hashlib.sha256(compact.encode("utf-8")).hexdigest()


def test_a_sealed_contract_leads_with_identity_and_hash_and_checks_itself() -> None:
    sealed = sealed_contract(BODY)
    assert list(sealed) == [
        "schemaVersion",
        "pipelineId",
        "contractVersion",
        "contractHash",
        "platform",
        "steps",
    ]
    assert sealed["contractHash"] == contract_hash(BODY)
    assert sealed["contractVersion"] == "sha256:" + sealed["contractHash"]
    assert contract_hash(sealed) == sealed["contractHash"]
    assert sealed_contract(sealed) == sealed


def test_any_change_of_the_body_changes_the_hash() -> None:
    assert contract_hash({**BODY, "platform": "FUNCTION"}) != contract_hash(BODY)


def test_the_catalog_fingerprint_of_no_types_is_that_of_an_empty_object() -> None:
    assert catalog_fingerprint({}) == hashlib.sha256(b"{}").hexdigest()


def test_the_test_kits_demo_contract_is_sealed_by_the_same_function() -> None:
    for contract in (tpf_contract(), tpf_contract(salt="another-build")):
        assert contract_hash(contract) == contract["contractHash"]
        assert contract == sealed_contract(contract)
