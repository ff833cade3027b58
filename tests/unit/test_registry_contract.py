"""Contract parsing follows TPF's strict rules (TPF_WIRE §8.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.release_artifacts import tpf_contract
from tpf_errors import InvalidArgument
from tpf_registry.domain.contract import PipelineContract, parse_contract


def parse(doc: Any) -> PipelineContract:
    return parse_contract(json.dumps(doc).encode(), artifact_id="a")


def test_tpf_contract_parses_and_round_trips_through_the_record_shape() -> None:
    contract = parse(tpf_contract())
    assert [s.authored_name for s in contract.steps][2] == "Await Restaurant Decision"
    assert contract.steps[2].is_await
    record = contract.to_record_json()
    assert list(record)[-8:] == [
        "steps",
        "capabilities",
        "canonicalTypes",
        "canonicalCatalogFingerprint",
        "composition",
        "importedDefinitions",
        "capabilityImports",
        "resumableSourceContinuations",
    ]
    assert PipelineContract.from_record_json(record) == contract


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda c: c.update(extra=1), 'Unrecognized field "extra"'),
        (lambda c: c.update(schemaVersion=4), "Unsupported pipeline contract schemaVersion 4"),
        (lambda c: c.pop("contractHash"), "contractHash is required"),
        (lambda c: c.pop("pipelineId"), "pipelineId is required"),
        (lambda c: c["steps"][0].pop("authoredName"), "authoredName is required"),
        (lambda c: c["steps"][1].update(retry=3), 'Unrecognized field "retry"'),
        (lambda c: c["capabilities"].update(x=True), 'Unrecognized field "x"'),
        (
            lambda c: c.update(composition={"rootDefinitionId": "r", "definitions": []}),
            "composition requires schemaVersion 3",
        ),
        (lambda c: c.update(pluginHost="yes"), "pluginHost must be a boolean"),
    ],
)
def test_bad_contracts_are_refused_as_contract_invalid(mutate: Any, fragment: str) -> None:
    doc = json.loads(json.dumps(tpf_contract()))
    mutate(doc)
    with pytest.raises(InvalidArgument) as caught:
        parse(doc)
    assert caught.value.reason == "CONTRACT_INVALID"
    assert fragment in caught.value.message
    assert caught.value.message.startswith("Invalid META-INF/pipeline/pipeline-contract.json JSON")


def test_undecodable_bytes_are_contract_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_contract(b"\xff\xfe", artifact_id="a")
    assert caught.value.reason == "CONTRACT_INVALID"


def test_schema_three_accepts_composition() -> None:
    doc = tpf_contract()
    doc["schemaVersion"] = 3
    doc["composition"] = {"rootDefinitionId": "root", "definitions": [{"id": "root"}]}
    contract = parse(doc)
    assert contract.composition_root_definition_id == "root"


def test_keys_of_newer_tpf_builds_are_kept_verbatim() -> None:
    doc = tpf_contract()
    doc["schemaVersion"] = 3
    doc["importedDefinitions"] = [{"qualifiedId": "blocks:payments", "version": "1.2.0"}]
    doc["capabilityImports"] = [{"provider": "stripe", "operations": [{"id": "charge"}]}]
    doc["steps"][1]["deferredCompletion"] = {"timeout": "PT5M", "transportType": "webhook"}
    contract = parse(doc)
    assert contract.imported_definitions[0]["qualifiedId"] == "blocks:payments"
    assert contract.steps[1].deferred_completion == {"timeout": "PT5M", "transportType": "webhook"}
    record = contract.to_record_json()
    assert record["capabilityImports"] == doc["capabilityImports"]
    assert PipelineContract.from_record_json(record) == contract
