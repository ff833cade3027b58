"""Pipeline contracts (`META-INF/pipeline/pipeline-contract.json`), parsed as strictly as TPF.

TPF_WIRE §8.1: unknown keys rejected at every level, `schemaVersion` 1..3, `pipelineId`,
`contractVersion` and `contractHash` required, a non-empty composition only with schema 3. We add
one rule TPF's clients rely on anyway: every step has an `authoredName` (the demo copies it into
the descriptor's `stepIds`). Keys that TPF builds newer than the reference commit write
(`importedDefinitions`, `capabilityImports`, `resumableSourceContinuations`, and a step's
`deferredCompletion`) are accepted and kept verbatim, so such artifacts register unchanged; any
other unknown key is still refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tpf_errors import InvalidArgument
from tpf_registry.domain.json_shape import (
    ShapeError,
    expect_object,
    optional_bool,
    optional_int,
    optional_str,
    optional_str_list,
    reject_unknown_keys,
    required_str,
)

CONTRACT_PATH = "META-INF/pipeline/pipeline-contract.json"
_PREFIX = "Invalid META-INF/pipeline/pipeline-contract.json JSON: "

_TOP_KEYS = frozenset(
    {
        "schemaVersion",
        "pipelineId",
        "contractVersion",
        "contractHash",
        "platform",
        "transport",
        "module",
        "pluginHost",
        "runtimeLayout",
        "steps",
        "canonicalTypes",
        "canonicalCatalogFingerprint",
        "composition",
        "capabilities",
        # Written by TPF builds newer than the reference commit; kept verbatim.
        "importedDefinitions",
        "capabilityImports",
        "resumableSourceContinuations",
    }
)
_STEP_KEYS = frozenset(
    {
        "index",
        "authoredName",
        "kind",
        "cardinality",
        "inputTypeId",
        "outputTypeId",
        "runtimeClass",
        "clientClass",
        "awaitTransport",
        # Written by TPF builds newer than the reference commit; kept verbatim.
        "deferredCompletion",
    }
)
_CAPABILITY_KEYS = frozenset({"localTransitionExecution", "transitionWorkerProtocols"})
_COMPOSITION_KEYS = frozenset({"rootDefinitionId", "definitions"})


@dataclass(frozen=True, slots=True)
class ContractStep:
    index: int
    authored_name: str
    kind: str
    cardinality: str
    input_type_id: str
    output_type_id: str
    runtime_class: str
    client_class: str
    await_transport: str
    deferred_completion: dict[str, Any] | None = None

    @property
    def is_await(self) -> bool:
        return self.kind == "await"


@dataclass(frozen=True, slots=True)
class PipelineContract:
    """A parsed contract with TPF's defaults filled (TPF_WIRE §8.3)."""

    schema_version: int
    pipeline_id: str
    contract_version: str
    contract_hash: str
    platform: str
    transport: str
    module: str
    plugin_host: bool
    runtime_layout: str
    steps: tuple[ContractStep, ...]
    local_transition_execution: bool
    transition_worker_protocols: tuple[str, ...]
    canonical_types: dict[str, Any] = field(default_factory=dict)
    canonical_catalog_fingerprint: str = ""
    composition_root_definition_id: str = ""
    composition_definitions: tuple[dict[str, Any], ...] = ()
    imported_definitions: tuple[dict[str, Any], ...] = ()
    capability_imports: tuple[dict[str, Any], ...] = ()
    resumable_source_continuations: tuple[dict[str, Any], ...] = ()

    def to_record_json(self) -> dict[str, Any]:
        """The contract as TPF returns it inside a release record, in Java record order."""
        return {
            "schemaVersion": self.schema_version,
            "pipelineId": self.pipeline_id,
            "contractVersion": self.contract_version,
            "contractHash": self.contract_hash,
            "platform": self.platform,
            "transport": self.transport,
            "module": self.module,
            "pluginHost": self.plugin_host,
            "runtimeLayout": self.runtime_layout,
            "steps": [_step_record(s) for s in self.steps],
            "capabilities": {
                "localTransitionExecution": self.local_transition_execution,
                "transitionWorkerProtocols": list(self.transition_worker_protocols),
            },
            "canonicalTypes": self.canonical_types,
            "canonicalCatalogFingerprint": self.canonical_catalog_fingerprint,
            "composition": {
                "rootDefinitionId": self.composition_root_definition_id,
                "definitions": list(self.composition_definitions),
            },
            "importedDefinitions": list(self.imported_definitions),
            "capabilityImports": list(self.capability_imports),
            "resumableSourceContinuations": list(self.resumable_source_continuations),
        }

    @classmethod
    def from_record_json(cls, record: dict[str, Any]) -> PipelineContract:
        """Inverse of `to_record_json` (for rows read back from the store)."""
        return _parse(record)


def _step_record(step: ContractStep) -> dict[str, Any]:
    record: dict[str, Any] = {
        "index": step.index,
        "authoredName": step.authored_name,
        "kind": step.kind,
        "cardinality": step.cardinality,
        "inputTypeId": step.input_type_id,
        "outputTypeId": step.output_type_id,
        "runtimeClass": step.runtime_class,
        "clientClass": step.client_class,
        "awaitTransport": step.await_transport,
    }
    if step.deferred_completion is not None:
        record["deferredCompletion"] = step.deferred_completion
    return record


def _object_list(obj: Any, key: str, where: str) -> tuple[dict[str, Any], ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ShapeError(f"{where}.{key} must be an array")
    return tuple(dict(expect_object(item, f"{where}.{key}[{i}]")) for i, item in enumerate(value))


def parse_contract(text: bytes, *, artifact_id: str) -> PipelineContract:
    """Parse contract bytes; raises InvalidArgument CONTRACT_INVALID naming the problem."""
    try:
        raw = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _invalid(f"not valid JSON ({error})", artifact_id) from error
    try:
        return _parse(raw)
    except ShapeError as error:
        raise _invalid(str(error), artifact_id) from error


def _invalid(detail: str, artifact_id: str) -> InvalidArgument:
    return InvalidArgument(
        "CONTRACT_INVALID", _PREFIX + detail, artifactId=artifact_id, detail=detail
    )


def _parse(raw: Any) -> PipelineContract:
    top = expect_object(raw, "contract")
    reject_unknown_keys(top, _TOP_KEYS, "contract")
    schema_version = optional_int(top, "schemaVersion", "contract")
    if schema_version is None or not 1 <= schema_version <= 3:
        raise ShapeError(f"Unsupported pipeline contract schemaVersion {schema_version}")
    steps_raw = top.get("steps")
    if steps_raw is None:
        steps_raw = []
    if not isinstance(steps_raw, list):
        raise ShapeError("contract.steps must be an array")
    steps = tuple(_parse_step(item, i) for i, item in enumerate(steps_raw))
    capabilities = expect_object(top.get("capabilities") or {}, "contract.capabilities")
    reject_unknown_keys(capabilities, _CAPABILITY_KEYS, "contract.capabilities")
    canonical_types = top.get("canonicalTypes")
    if canonical_types is None:
        canonical_types = {}
    canonical_types = dict(expect_object(canonical_types, "contract.canonicalTypes"))
    composition = expect_object(top.get("composition") or {}, "contract.composition")
    reject_unknown_keys(composition, _COMPOSITION_KEYS, "contract.composition")
    definitions_raw = composition.get("definitions") or []
    if not isinstance(definitions_raw, list):
        raise ShapeError("contract.composition.definitions must be an array")
    definitions = tuple(
        dict(expect_object(d, f"contract.composition.definitions[{i}]"))
        for i, d in enumerate(definitions_raw)
    )
    root = optional_str(composition, "rootDefinitionId", "contract.composition") or ""
    if (root or definitions) and schema_version < 3:
        raise ShapeError("composition requires schemaVersion 3")
    return PipelineContract(
        schema_version=schema_version,
        pipeline_id=required_str(top, "pipelineId", "contract"),
        contract_version=required_str(top, "contractVersion", "contract"),
        contract_hash=required_str(top, "contractHash", "contract"),
        platform=optional_str(top, "platform", "contract") or "",
        transport=optional_str(top, "transport", "contract") or "",
        module=optional_str(top, "module", "contract") or "",
        plugin_host=bool(optional_bool(top, "pluginHost", "contract")),
        runtime_layout=optional_str(top, "runtimeLayout", "contract") or "",
        steps=steps,
        local_transition_execution=bool(
            optional_bool(capabilities, "localTransitionExecution", "contract.capabilities")
        ),
        transition_worker_protocols=optional_str_list(
            capabilities, "transitionWorkerProtocols", "contract.capabilities"
        ),
        canonical_types=canonical_types,
        canonical_catalog_fingerprint=(
            optional_str(top, "canonicalCatalogFingerprint", "contract") or ""
        ),
        composition_root_definition_id=root,
        composition_definitions=definitions,
        imported_definitions=_object_list(top, "importedDefinitions", "contract"),
        capability_imports=_object_list(top, "capabilityImports", "contract"),
        resumable_source_continuations=_object_list(
            top, "resumableSourceContinuations", "contract"
        ),
    )


def _parse_step(value: Any, position: int) -> ContractStep:
    where = f"contract.steps[{position}]"
    obj = expect_object(value, where)
    reject_unknown_keys(obj, _STEP_KEYS, where)
    index = optional_int(obj, "index", where)
    if index is None:
        index = position
    if index != position:
        raise ShapeError(f"{where}.index is {index}, expected {position}")
    return ContractStep(
        index=index,
        authored_name=required_str(obj, "authoredName", where),
        kind=optional_str(obj, "kind", where) or "internal",
        cardinality=optional_str(obj, "cardinality", where) or "ONE_TO_ONE",
        input_type_id=optional_str(obj, "inputTypeId", where) or "",
        output_type_id=optional_str(obj, "outputTypeId", where) or "",
        runtime_class=optional_str(obj, "runtimeClass", where) or "",
        client_class=optional_str(obj, "clientClass", where) or "",
        await_transport=optional_str(obj, "awaitTransport", where) or "",
        deferred_completion=(
            dict(expect_object(obj["deferredCompletion"], f"{where}.deferredCompletion"))
            if obj.get("deferredCompletion") is not None
            else None
        ),
    )
