"""A TPF-format demo release: a jar holding `META-INF/pipeline/pipeline-contract.json` for the
restaurant-approval pipeline, and its `pipeline-release.json` descriptor.

The contract is written the way TPF's build writes it (TPF_WIRE §8.1: pretty-printed, every key,
`contractHash` over the compact JSON without version and hash), so the registry cannot tell it
from a TPF-built artifact.
"""

from __future__ import annotations

import copy
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpf_worker.contract_hash import catalog_fingerprint, sealed_contract

PIPELINE_ID = "org.pipelineframework.restaurantapproval"
ARTIFACT_ID = "restaurant-approval-monolith"
CONTRACT_PATH = "META-INF/pipeline/pipeline-contract.json"

_DTO = "org.pipelineframework.restaurantapproval.common.dto."
_SERVICE = "org.pipelineframework.restaurantapproval.service.pipeline."


def _step(index: int, name: str, service: str, kind: str, types: tuple[str, str]) -> dict[str, Any]:
    runtime = _SERVICE + (f"{service}AwaitClientStep" if kind == "await" else f"{service}Service")
    client = _SERVICE + (
        f"{service}AwaitClientStep" if kind == "await" else f"{service}RestClientStep"
    )
    step: dict[str, Any] = {
        "index": index,
        "authoredName": name,
        "kind": kind,
        "cardinality": "ONE_TO_ONE",
        "inputTypeId": _DTO + types[0],
        "outputTypeId": _DTO + types[1],
        "runtimeClass": runtime,
        "clientClass": client,
    }
    if kind == "await":
        step["awaitTransport"] = "interaction-api"
    return step


RESTAURANT_STEPS: list[dict[str, Any]] = [
    _step(
        0,
        "Validate Order Request",
        "ProcessValidateOrderRequest",
        "internal",
        ("PlaceRestaurantOrderRequestDto", "ValidatedRestaurantOrderRequestDto"),
    ),
    _step(
        1,
        "Create Pending Approval",
        "ProcessCreatePendingApproval",
        "internal",
        ("ValidatedRestaurantOrderRequestDto", "PendingRestaurantApprovalDto"),
    ),
    _step(
        2,
        "Await Restaurant Decision",
        "ProcessAwaitRestaurantDecision",
        "await",
        ("PendingRestaurantApprovalDto", "RestaurantDecisionDto"),
    ),
    _step(
        3,
        "Finalize Restaurant Decision",
        "ProcessFinalizeRestaurantDecision",
        "internal",
        ("RestaurantDecisionDto", "TerminalOrderStateDto"),
    ),
]


def tpf_contract(
    *,
    pipeline_id: str = PIPELINE_ID,
    salt: str = "",
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The contract with TPF's keys and key order; `salt` changes the hash (another build).

    `steps` replaces the restaurant pipeline's steps (for tests of other pipeline shapes).
    """
    body: dict[str, Any] = {
        "schemaVersion": 1,
        "pipelineId": pipeline_id,
        "platform": "COMPUTE",
        "transport": "REST",
        "pluginHost": False,
        "runtimeLayout": "MONOLITH",
        # A copy: callers edit the document they get (tests do), never the shared steps.
        "steps": copy.deepcopy(RESTAURANT_STEPS if steps is None else steps),
        "canonicalTypes": {},
        "canonicalCatalogFingerprint": catalog_fingerprint({}),
        "capabilities": {
            "localTransitionExecution": True,
            "transitionWorkerProtocols": ["local", "rest", "grpc", "sqs"],
        },
    }
    if salt:
        body["module"] = f"restaurant-approval-{salt}"
    return sealed_contract(body)


def sha256_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def write_jar(path: Path, contract: dict[str, Any] | bytes | None, *, filler: int = 0) -> Path:
    """A zip named like a jar holding the contract (bytes are written as given).

    `filler` adds that many incompressible bytes, for tests that need a large artifact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as jar:
        _add(jar, "META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")
        if contract is not None:
            data = contract if isinstance(contract, bytes) else json.dumps(contract, indent=2)
            _add(jar, CONTRACT_PATH, data.encode() if isinstance(data, str) else data)
        if filler:
            _add(jar, "filler.bin", hashlib.shake_256(b"filler").digest(filler), deflate=False)
    return path


def _add(jar: zipfile.ZipFile, name: str, data: bytes, *, deflate: bool = True) -> None:
    # A fixed timestamp makes the jar, and so its digest, the same on every build: re-running
    # `make dev` re-registers an identical release instead of a conflicting one.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    jar.writestr(info, data)


@dataclass(frozen=True)
class BuiltRelease:
    """A jar on disk plus the descriptor that names it."""

    jar_path: Path
    descriptor: dict[str, Any]
    descriptor_path: Path
    contract: dict[str, Any]

    @property
    def release_version(self) -> str:
        return str(self.descriptor["releaseVersion"])

    @property
    def contract_version(self) -> str:
        return str(self.descriptor["contractVersion"])

    @property
    def digest(self) -> str:
        return str(self.descriptor["artifacts"][0]["digest"])


def build_release(
    directory: Path,
    *,
    release_version: str | None = None,
    salt: str = "",
    uri: str | None = None,
    filler: int = 0,
) -> BuiltRelease:
    """Jar + descriptor (`pipeline-release.json`) in `directory`, ready for RegisterRelease.

    The release version defaults to the contract version, as TPF's demo does.
    """
    contract = tpf_contract(salt=salt)
    jar = write_jar(directory / f"restaurant-approval{salt}.jar", contract, filler=filler)
    descriptor = {
        "schemaVersion": 1,
        "pipelineId": PIPELINE_ID,
        "contractVersion": contract["contractVersion"],
        "releaseVersion": release_version or contract["contractVersion"],
        "artifacts": [
            {
                "artifactId": ARTIFACT_ID,
                "kind": "jar",
                "uri": uri or str(jar),
                "digest": sha256_digest(jar),
                "stepIds": [s["authoredName"] for s in RESTAURANT_STEPS],
                "capabilities": ["local-transition-execution", "rest-transition-worker"],
            }
        ],
    }
    descriptor_path = directory / f"pipeline-release{salt}.json"
    descriptor_path.write_text(json.dumps(descriptor, indent=2))
    return BuiltRelease(jar, descriptor, descriptor_path, contract)
