"""TPF's restaurant-approval flow driven purely over the REST gateway, as TPF's demo client
drives it, with the real dispatcher running the example pipeline behind it: approve, decline,
and the incident (FAILED, dead letter, a TPF redrive that fails again on the same decision, then
a redrive with the decision fixed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_gateway_routes import ADM, CP_BASE, Gateway, running_gateway
from tests.harness.services import StartService
from tests.harness.wait import wait_until
from tests.support.example_suite import (
    EXAMPLE_SPEC,
    ControlPlane,
    control_plane,
    dispatcher_env,
    release_pipeline,
    request_json,
)
from tpf_envelope import encode, to_json_dict

pytestmark = pytest.mark.e2e
__all__ = ["control_plane"]  # a fixture, used by name

ADMIN_BASE = "/tpf/admin/tenants/restaurant-demo"


@pytest.fixture
async def example_gateway(
    control_plane: ControlPlane,
    start_service: StartService,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> AsyncIterator[Gateway]:
    identity = await release_pipeline(control_plane, EXAMPLE_SPEC)
    start_service(
        "tpf_dispatcher",
        dispatcher_env(
            control_plane,
            dispatcher_id="gateway-example",
            pipeline_ids=[identity.pipeline_id],
            hosted=[EXAMPLE_SPEC],
        ),
    )
    async with running_gateway(control_plane, tmp_path, pytestconfig.rootpath) as gateway:
        yield gateway


def _plain_envelope(value: Any) -> dict[str, Any]:
    """A TPF envelope of plain JSON as TPF's demo client sends decisions: a java.util.Map of
    nested envelopes."""
    return dict(to_json_dict(encode(value)))


async def _submit(gateway: Gateway) -> str:
    body = request_json("submit")
    body["idempotencyKey"] = f"order-{uuid.uuid4()}"
    accepted = await gateway.post(f"{CP_BASE}/executions", json_body=body)
    assert accepted.status == 200, accepted.text
    execution_id: str = accepted.json()["executionId"]
    return execution_id


async def _status_when(gateway: Gateway, execution_id: str, wanted: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        status: dict[str, Any] = (await gateway.get(f"{CP_BASE}/executions/{execution_id}")).json()
        return status if status["status"] == wanted else None

    found: dict[str, Any] | None = await wait_until(
        reached, timeout_s=30, what=f"{execution_id} {wanted}"
    )
    assert found is not None
    return found


async def _pending(gateway: Gateway, execution_id: str) -> dict[str, Any]:
    async def listed() -> dict[str, Any] | None:
        pending = (await gateway.get(f"{CP_BASE}/interactions/pending")).json()
        return next((p for p in pending if p["executionId"] == execution_id), None)

    found: dict[str, Any] | None = await wait_until(
        listed, timeout_s=30, what=f"{execution_id} pending"
    )
    assert found is not None
    return found


async def _decide(gateway: Gateway, execution_id: str, decision: dict[str, Any]) -> None:
    interaction = await _pending(gateway, execution_id)
    assert interaction["stepIndex"] == 2
    assert interaction["transportType"] == "interaction-api"
    done = await gateway.post(
        f"{CP_BASE}/interactions/complete",
        json_body={
            "interactionId": interaction["interactionId"],
            "responsePayload": _plain_envelope(decision),
            "idempotencyKey": f"decision-{execution_id}",
            "actor": "restaurant",
        },
    )
    assert done.status == 200, done.text
    assert (done.json()["status"], done.json()["duplicate"]) == ("COMPLETED", False)


def _decided_at() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _result(gateway: Gateway, execution_id: str) -> dict[str, Any]:
    answer = (await gateway.get(f"{CP_BASE}/executions/{execution_id}/result")).json()
    assert answer["status"]["status"] == "SUCCEEDED"
    result: dict[str, Any] = json.loads(answer["resultPayload"]["payload"])
    return result


async def test_approve_and_decline_over_http(example_gateway: Gateway) -> None:
    gateway = example_gateway
    approved, declined = await _submit(gateway), await _submit(gateway)
    order_id = str(uuid.uuid4())
    await _decide(
        gateway,
        approved,
        {"accepted": {"orderId": order_id, "decidedAt": _decided_at(), "note": "See you"}},
    )
    await _decide(
        gateway,
        declined,
        {
            "declined": {
                "orderId": order_id,
                "decidedAt": _decided_at(),
                "note": "Need more prep time",
                "declineReason": "Kitchen is overloaded tonight",
            }
        },
    )
    status = await _status_when(gateway, approved, "SUCCEEDED")
    assert status["stepIndex"] == 3
    result = await _result(gateway, approved)
    assert (result["outcome"], result["restaurantStatus"]) == ("APPROVED", "ACCEPTED")
    assert result["orderId"] == order_id and result["summary"] == "See you"
    await _status_when(gateway, declined, "SUCCEEDED")
    result = await _result(gateway, declined)
    assert result["outcome"] == "DECLINED"
    assert result["summary"] == "Need more prep time (Kitchen is overloaded tonight)"


async def test_incident_dead_letter_and_redrive_over_http(example_gateway: Gateway) -> None:
    gateway = example_gateway
    execution_id = await _submit(gateway)
    note = "This completion is intentionally invalid for the incident demo."
    await _decide(
        gateway,
        execution_id,
        {"accepted": {"orderId": "not-a-uuid", "decidedAt": _decided_at(), "note": note}},
    )
    failed = await _status_when(gateway, execution_id, "FAILED")
    assert failed["stepIndex"] == 3 and failed["attempt"] == 0
    assert failed["errorCode"] and "Failed converting await payload" in failed["errorMessage"]
    letters = await gateway.get("/v1/tenants/restaurant-demo/dead-letters", headers=ADM)
    assert [d["executionId"] for d in letters.json()["deadLetters"]] == [execution_id]

    # TPF's incident demo redrive: the same stored decision is replayed, so it fails again, at
    # a strictly greater version.
    redrive = f"{ADMIN_BASE}/executions/{execution_id}/redrive"
    replayed = await gateway.post(
        redrive,
        headers=ADM,
        json_body={
            "allowFailed": True,
            "expectedVersion": failed["version"],
            "reason": "self-host incident demo re-drive",
        },
    )
    assert replayed.status == 200, replayed.text
    assert replayed.json()["status"] == "QUEUED"

    async def failed_again() -> dict[str, Any] | None:
        status: dict[str, Any] = (await gateway.get(f"{CP_BASE}/executions/{execution_id}")).json()
        return (
            status
            if status["status"] == "FAILED" and status["version"] > failed["version"]
            else None
        )

    again = await wait_until(failed_again, timeout_s=30, what="failed again after the replay")
    assert again is not None

    # Fix the decision and redrive: the final step runs on the corrected input.
    fixed = await gateway.post(
        redrive,
        headers=ADM,
        json_body={
            "allowFailed": True,
            "expectedVersion": again["version"],
            "reason": "corrected orderId",
            "replacementInput": _plain_envelope(
                {"accepted": {"orderId": str(uuid.uuid4()), "decidedAt": _decided_at()}}
            ),
        },
    )
    assert fixed.status == 200, fixed.text
    await _status_when(gateway, execution_id, "SUCCEEDED")
    result = await _result(gateway, execution_id)
    assert result["outcome"] == "APPROVED"
    assert result["summary"] == "Restaurant approved the order."
