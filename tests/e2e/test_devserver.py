"""`make dev`'s launcher as a user runs it: up, the example through the CLI and the REST
gateway, Ctrl-C, nothing left behind; a second start reuses the data."""

from __future__ import annotations

import json
import signal
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from tests.harness.wait import wait_until_sync
from tests.support.dev_suite import METERED, DevSuite, descendants, dev_suite
from tpf_devserver.reflect import list_services
from tpf_devserver.settings import DEMO_TOKEN

pytestmark = pytest.mark.e2e

REQUESTS = Path(str(resources.files("restaurant_approval") / "requests"))
ORDER_TYPE = "org.pipelineframework.restaurantapproval.common.dto.PlaceRestaurantOrderRequestDto"
TENANT = "restaurant-demo"


def _stop_and_check_nothing_is_left(suite: DevSuite) -> None:
    children = descendants(suite.process.pid)
    assert len(children) >= 8, "postgres, 5 services, the example worker, moto"
    suite.process.send_signal(signal.SIGINT)
    assert suite.process.wait(timeout=90) == 0, suite.banner
    wait_until_sync(
        lambda: not [c for c in children if c.is_running() and c.status() != "zombie"],
        timeout_s=30,
        what="no process left behind",
    )


def _wait_for_status(suite: DevSuite, execution_id: str, wanted: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status: dict[str, Any] = suite.cli_json("status", execution_id)
        return status if wanted in json.dumps(status.get("execution", status)) else None

    found = wait_until_sync(reached, timeout_s=60, what=f"{execution_id} {wanted}")
    assert found is not None
    return found


def _gateway_status(suite: DevSuite, execution_id: str, wanted: str) -> dict[str, Any]:
    path = f"/tpf/control-plane/tenants/{TENANT}/executions/{execution_id}"

    def reached() -> dict[str, Any] | None:
        status: dict[str, Any] = suite.http("GET", path)
        return status if status["status"] == wanted else None

    found = wait_until_sync(reached, timeout_s=60, what=f"{execution_id} {wanted}")
    assert found is not None
    return found


def _pending_interaction(suite: DevSuite, execution_id: str) -> str:
    def find() -> str | None:
        pending = suite.http("GET", f"/tpf/control-plane/tenants/{TENANT}/interactions/pending")
        ids: list[str] = [p["interactionId"] for p in pending if p["executionId"] == execution_id]
        return ids[0] if ids else None

    interaction = wait_until_sync(find, timeout_s=60, what=f"{execution_id} at the await")
    assert interaction is not None
    return interaction


def test_make_dev_runs_the_example_through_cli_and_gateway_then_stops_cleanly(
    embedded_data_dir: Path, tmp_path: Path
) -> None:
    with dev_suite(embedded_data_dir, tmp_path / "dev.out") as suite:
        banner = suite.banner
        assert DEMO_TOKEN in banner and "gateway" in banner and "dispatcher" in banner
        # Every service's metrics URL, and each one serves Prometheus text.
        for name in METERED:
            url = f"http://127.0.0.1:{suite.ports[f'{name}_METRICS']}/metrics"
            assert url in banner, name
            with urllib.request.urlopen(url, timeout=10) as response:
                assert b"tpf_" in response.read(), name
        assert {"tpf.coordinator.v1.ExecutionService", "tpf.coordinator.v1.WorkService"} <= set(
            list_services(f"127.0.0.1:{suite.ports['COORDINATOR']}")
        )
        assert "ACTIVE" in suite.cli("releases", "active")
        workers = suite.cli("workers", "list")
        assert "local" in workers and "grpc" in workers and "HEALTHY" in workers

        # Approve, through the CLI, as the banner's walkthrough does.
        submitted = suite.cli_json(
            "submit",
            "--input-file",
            str(REQUESTS / "order.json"),
            "--type",
            ORDER_TYPE,
            "--key",
            "order-approve",
        )
        approved_id = submitted["executionId"]
        interaction = _pending_interaction(suite, approved_id)
        suite.cli(
            "interactions",
            "complete",
            "--interaction-id",
            interaction,
            "--response-file",
            str(REQUESTS / "approve.json"),
        )
        _wait_for_status(suite, approved_id, "SUCCEEDED")
        result = json.loads(suite.cli("result", approved_id))
        assert result["outcome"] == "APPROVED" and result["summary"] == "See you at eight."

        # The incident over TPF's REST API: accepted, then FAILED and dead-lettered at step 3.
        body = json.loads((REQUESTS / "submit.json").read_text())
        body["idempotencyKey"] = "order-incident"
        accepted = suite.http(
            "POST",
            f"/tpf/control-plane/tenants/{TENANT}/executions",
            json.dumps(body).encode(),
        )
        incident_id = accepted["executionId"]
        interaction = _pending_interaction(suite, incident_id)
        suite.cli(
            "interactions",
            "complete",
            "--interaction-id",
            interaction,
            "--response-file",
            str(REQUESTS / "incident.json"),
        )
        status = _gateway_status(suite, incident_id, "FAILED")
        assert status["stepIndex"] == 3 and status["errorCode"]
        assert incident_id in suite.cli("dlq", "list")
        # Fix the decision and redrive: the final step runs on the corrected input.
        suite.cli(
            "dlq",
            "redrive",
            incident_id,
            "--allow-failed",
            "--replace-input-file",
            str(REQUESTS / "approve.json"),
            "--reason",
            "corrected orderId",
        )
        _wait_for_status(suite, incident_id, "SUCCEEDED")

        # The SQS bridge on the local SQS: a submit message gets its reply.
        sqs = botocore.session.get_session().create_client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{suite.ports['SQS']}",
            region_name="us-east-1",
            aws_access_key_id="dev",
            aws_secret_access_key="dev",
        )
        queue = {
            name: sqs.get_queue_url(QueueName=name)["QueueUrl"]
            for name in ("orders-submit", "orders-replies")
        }
        body["idempotencyKey"] = "order-sqs"
        body["tenantId"] = TENANT
        sqs.send_message(QueueUrl=queue["orders-submit"], MessageBody=json.dumps(body))
        reply = sqs.receive_message(QueueUrl=queue["orders-replies"], WaitTimeSeconds=20)
        [message] = reply["Messages"]
        assert json.loads(message["Body"])["type"] == "submitted", message

        _stop_and_check_nothing_is_left(suite)

    # A second start finds the release registered and active, and the executions still there.
    with dev_suite(embedded_data_dir, tmp_path / "dev2.out") as again:
        assert "SUCCEEDED" in json.dumps(again.cli_json("status", approved_id))
        _stop_and_check_nothing_is_left(again)
