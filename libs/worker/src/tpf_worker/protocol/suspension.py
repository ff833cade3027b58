"""The await suspension a WAITING_EXTERNAL result carries (§9.2): its records' key sets.

Their values are free-form beyond the container shapes (the interaction's request and response
payloads are plain JSON of the application), so only the key sets are TPF's contract here.
"""

from collections.abc import Mapping
from typing import Any, Final

from tpf_worker.protocol.malformed import MalformedEnvelope
from tpf_worker.protocol.strict_json import json_object, ordered, reject_unknown

_SUSPENSION_KEYS: Final = ("tenantId", "executionId", "unitId", "stepIndex", "unit", "interactions")
_UNIT_KEYS: Final = (
    "tenantId",
    "unitId",
    "executionId",
    "stepId",
    "stepIndex",
    "cardinality",
    "version",
    "status",
    "primaryInteractionId",
    "expectedItemCount",
    "completedItemCount",
    "completedItemKeys",
    "dispatchComplete",
    "createdAtEpochMs",
    "updatedAtEpochMs",
    "ttlEpochS",
)
_INTERACTION_KEYS: Final = (
    "tenantId",
    "executionId",
    "stepId",
    "stepIndex",
    "outputType",
    "interactionId",
    "correlationId",
    "causationId",
    "idempotencyKey",
    "version",
    "status",
    "requestPayload",
    "responsePayload",
    "unitId",
    "itemIndex",
    "actor",
    "assignee",
    "group",
    "transportType",
    "transportMetadata",
    "deadlineEpochMs",
    "createdAtEpochMs",
    "updatedAtEpochMs",
    "ttlEpochS",
    "transportOutputType",
)


def check_suspension(suspension: Mapping[str, Any]) -> None:
    """Strict keys in the suspension and its unit and interaction records."""
    what = "result.awaitSuspension"
    reject_unknown(suspension, _SUSPENSION_KEYS, what)
    unit = suspension.get("unit")
    if unit is not None:
        reject_unknown(json_object(unit, f"{what}.unit"), _UNIT_KEYS, f"{what}.unit")
    interactions = suspension.get("interactions")
    if interactions is None:
        return
    if not isinstance(interactions, list | tuple):
        raise MalformedEnvelope(f"{what}.interactions must be an array")
    for position, interaction in enumerate(interactions):
        where = f"{what}.interactions[{position}]"
        reject_unknown(json_object(interaction, where), _INTERACTION_KEYS, where)


def ordered_suspension(suspension: Mapping[str, Any]) -> dict[str, Any]:
    """The suspension in TPF's field order (keys already checked); absent keys stay absent."""
    in_order = ordered(suspension, _SUSPENSION_KEYS)
    if isinstance(in_order.get("unit"), Mapping):
        in_order["unit"] = ordered(in_order["unit"], _UNIT_KEYS)
    if isinstance(in_order.get("interactions"), list | tuple):
        in_order["interactions"] = [
            ordered(interaction, _INTERACTION_KEYS) for interaction in in_order["interactions"]
        ]
    return in_order
