"""`make dev` keeps its suite running: each child stopped (SIGTERM) logs no error on its way
out and is started again; each child killed (SIGKILL, Postgres included) serves again within
15 s, logged, while the others keep running; the suite then still runs an order end to end,
and Ctrl-C still stops everything."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Final

import botocore.session
import psutil
import pytest

from tests.harness.postgres import reachable_data_dir
from tests.harness.wait import wait_until_sync
from tests.support.dev_suite import PIPELINE_ID, POSTGRES, TENANT, DevSuite, descendants, dev_suite
from tpf_envelope import encode, to_json_dict

pytestmark = pytest.mark.e2e

REQUESTS: Final = Path(str(resources.files("restaurant_approval") / "requests"))
# What the issue asks of a killed child: serving again within this many seconds.
HEAL_S: Final = 15.0
SERVICES: Final = ("registry", "coordinator", "dispatcher", "worker", "gateway", "sqs-bridge")
CHILDREN: Final = (POSTGRES, *SERVICES, "sqs")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevSuite]:
    work = tmp_path_factory.mktemp("dev-supervision")
    with reachable_data_dir(work / "data") as data_dir, dev_suite(data_dir, work / "dev.out") as up:
        yield up


def _sqs(suite: DevSuite) -> Any:
    return botocore.session.get_session().create_client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{suite.ports['SQS']}",
        region_name="us-east-1",
        aws_access_key_id="dev",
        aws_secret_access_key="dev",
    )


def _order_through_the_suite(suite: DevSuite) -> None:
    """Submit over SQS (the bridge), complete the await over REST (the gateway), read the
    result with the CLI (the coordinator's gRPC API); the dispatcher runs the steps."""
    key = f"order-{uuid.uuid4().hex[:8]}"
    body = json.loads((REQUESTS / "submit.json").read_text())
    sqs = _sqs(suite)
    queue = {
        name: sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for name in ("orders-submit", "orders-replies")
    }
    sqs.send_message(
        QueueUrl=queue["orders-submit"],
        MessageBody=json.dumps({**body, "idempotencyKey": key, "tenantId": TENANT}),
    )

    def submitted_reply() -> str | None:
        reply = sqs.receive_message(QueueUrl=queue["orders-replies"], WaitTimeSeconds=5)
        for message in reply.get("Messages", []):
            sqs.delete_message(
                QueueUrl=queue["orders-replies"], ReceiptHandle=message["ReceiptHandle"]
            )
            answer = json.loads(message["Body"])
            if answer.get("type") == "submitted":
                return str(answer["executionId"])
        return None

    execution_id = wait_until_sync(submitted_reply, timeout_s=60, what=f"{key} submitted")
    assert execution_id is not None

    def pending() -> str | None:
        listed = suite.http("GET", f"/tpf/control-plane/tenants/{TENANT}/interactions/pending")
        ids = [p["interactionId"] for p in listed if p["executionId"] == execution_id]
        return str(ids[0]) if ids else None

    interaction = wait_until_sync(pending, timeout_s=60, what=f"{key} at the await")
    assert interaction is not None
    decision = json.loads((REQUESTS / "approve.json").read_text())
    completion = {"interactionId": interaction, "responsePayload": to_json_dict(encode(decision))}
    suite.http(
        "POST",
        f"/tpf/control-plane/tenants/{TENANT}/interactions/complete",
        json.dumps(completion).encode(),
    )
    wait_until_sync(
        lambda: suite.cli_json("status", execution_id)["execution"]["status"].endswith("SUCCEEDED"),
        timeout_s=60,
        what=f"{key} SUCCEEDED",
    )
    result = json.loads(suite.cli("result", execution_id))
    assert result["outcome"] == "APPROVED", result


def _stop_segment(log_path: Path, offset: int, name: str) -> str:
    """What `name` logged from byte `offset` (its SIGTERM) until the supervisor started it
    again: its shutdown, and nothing of the next run."""
    text = log_path.read_bytes()[offset:].decode(errors="replace")
    return text.split(f"--- tpf-dev: starting {name} (", 1)[0]


def _pids_except(suite: DevSuite, name: str) -> dict[str, int]:
    return {other: p.pid for other, p in suite.children().items() if other != name}


def test_each_service_stopped_with_sigterm_logs_no_error_and_is_started_again(
    suite: DevSuite,
) -> None:
    _order_through_the_suite(suite)
    # Edge first, so that no service is stopped while one it calls is away.
    for name in reversed(SERVICES):
        victim = suite.children()[name]
        others = _pids_except(suite, name)
        lines_before = suite.serving_again_lines(name)
        log_path = suite.log_dir / f"{name}.log"
        offset = log_path.stat().st_size

        victim.terminate()
        victim.wait(timeout=30)

        suite.wait_until_replaced(name, victim.pid, lines_before, timeout_s=60)
        assert f"{name} exited (exit code 0); restarting it" in suite.banner
        assert _pids_except(suite, name) == others, "the other children kept running"
        # Its shutdown, in its own log: no error, no traceback.
        shutdown = _stop_segment(log_path, offset, name)
        assert '"level": "ERROR"' not in shutdown, shutdown
        assert "Traceback" not in shutdown, shutdown
    _order_through_the_suite(suite)


def test_each_child_killed_with_sigkill_serves_again_within_15_s(suite: DevSuite) -> None:
    for name in CHILDREN:
        victim = suite.children()[name]
        others = _pids_except(suite, name)
        lines_before = suite.serving_again_lines(name)

        victim.kill()

        suite.wait_until_replaced(name, victim.pid, lines_before, timeout_s=HEAL_S)
        assert _pids_except(suite, name) == others, "the other children kept running"
        # Reaped: the killed process is gone, not left as a zombie of the launcher.
        assert not psutil.pid_exists(victim.pid) or victim.status() != psutil.STATUS_ZOMBIE
        assert f"{name} exited (signal SIGKILL); restarting it" in suite.banner

    # Every part was replaced once; the suite still runs an order end to end.
    _order_through_the_suite(suite)
    assert PIPELINE_ID in suite.cli("releases", "active")

    children = descendants(suite.process.pid)
    assert suite.interrupt() == 0, suite.banner
    wait_until_sync(
        lambda: not [c for c in children if c.is_running() and c.status() != "zombie"],
        timeout_s=30,
        what="no process left behind",
    )
