"""The `tpf` execution commands (submit, status, result, history, cancel, executions,
interactions, dlq), run as a real process against real registry and coordinator processes.

The tests move executions along as a worker would, with the helpers of the coordinator tests
(`claim`, `complete`, `step_done`, `park`), and read them back through the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_cli_registry import assert_fails, table_rows
from tests.e2e.test_coordinator_executions import claim, complete, step_done
from tests.e2e.test_coordinator_interactions import AWAIT_STEP, park
from tests.harness.ports import free_port
from tests.harness.services import minimal_environment
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.registry_client import ADMIN
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import ORDER_TYPE, envelope, order
from tpf.common.v1 import execution_status_pb2 as st
from tpf.common.v1 import payload_pb2
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf_envelope import ApplicationValue, Envelope, InputSnapshot, Value, decode, plain

pytestmark = pytest.mark.e2e

_CLI_TIMEOUT_S = 60
DTO = "org.pipelineframework.restaurantapproval.common.dto."


@dataclass(frozen=True)
class Tpf:
    """Runs `python -m tpf_cli` configured through the environment, as a user would."""

    target: str
    tenant: str
    cwd: Path

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = {
            **minimal_environment(),
            "TPF_COORDINATOR_TARGET": self.target,
            "TPF_TOKEN": ADMIN,
            "TPF_TENANT": self.tenant,
            "TPF_PIPELINE": PIPELINE_ID,
        }
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def __call__(self, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tpf_cli", *args],
            env=self.env(**env),
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=_CLI_TIMEOUT_S,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert result.stderr == ""
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def watch(self, execution_id: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tpf_cli", "status", execution_id, "--watch", *args],
            env=self.env(),
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def tpf(suite: Suite, tmp_path: Path) -> Tpf:
    return Tpf(target=suite.coordinator.target, tenant=suite.tenant, cwd=tmp_path)


def fields(text: str) -> dict[str, str]:
    """The `key: value` lines of a details block (headings and other lines skipped)."""
    pairs = (line.split(":", 1) for line in text.splitlines() if ": " in line)
    return {key.strip(): value.strip() for key, value in pairs}


def submitted_id(out: str) -> str:
    first, _, rest = out.partition("\n")
    assert first.startswith("submitted execution "), out
    return fields(rest)["execution"]


def submit_order(tpf: Tpf, *args: str, **overrides: Any) -> str:
    body = json.dumps(order(**overrides))
    return submitted_id(tpf.ok("submit", "--type", ORDER_TYPE, "--input", body, *args))


def decoded(payload: payload_pb2.PayloadEnvelope) -> Value:
    return decode(
        Envelope(payload.payload_type_id, payload.payload_encoding, payload.payload)
    ).value


def input_snapshot(item: Any) -> InputSnapshot:
    """The input snapshot a claimed step-0 work item carries."""
    snapshot = decoded(item.input_payload)
    assert isinstance(snapshot, InputSnapshot)
    return snapshot


async def fail_permanently(
    client: CoordinatorClient, suite: Suite, execution_ids: set[str]
) -> None:
    """Claim the queued executions and fail each with a permanent input error (FAILED, v2)."""
    items = await claim(client)
    assert {item.execution_id for item in items} == execution_ids
    results = await complete(
        client,
        *(
            wpb.WorkOutcome(
                execution_id=item.execution_id,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                failed=wpb.FailedOutcome(
                    failure_class="java.lang.IllegalArgumentException",
                    message="cannot decode input",
                    retryable=False,
                    permanent_input_error=True,
                ),
            )
            for item in items
        ),
    )
    assert all(r.accepted and r.status == st.EXECUTION_STATUS_FAILED for r in results)


async def test_submit_status_history_list_and_an_unfinished_result(
    tpf: Tpf, suite: Suite, tmp_path: Path
) -> None:
    body = order(requestId="00000000-0000-0000-0000-000000000001")
    typed = [
        "submit",
        "--type",
        ORDER_TYPE,
        "--input",
        json.dumps(body),
        "--key",
        "order-1",
    ]
    first = tpf.ok(*typed)
    eid = submitted_id(first)
    assert fields(first)["duplicate"] == "false"
    assert fields(first)["idempotency key"] == "order-1"
    again = tpf.json(*typed)
    assert again["executionId"] == eid and again["duplicate"] is True
    assert tpf.ok(*typed).startswith(f"execution {eid} already exists (duplicate submission)\n")
    reused = tpf("submit", "--type", ORDER_TYPE, "--input", json.dumps(order()), "--key", "order-1")
    assert_fails(reused, "ALREADY_EXISTS IDEMPOTENCY_KEY_REUSED: ")

    # Without --type the input goes as TPF's generic java.util.Map envelope; a ready envelope
    # file goes as it is.
    generic = submitted_id(tpf.ok("submit", "--input", json.dumps(order())))
    envelope_file = tmp_path / "order-envelope.json"
    envelope_file.write_text(
        json.dumps(
            {
                "payloadTypeId": ORDER_TYPE,
                "payloadEncoding": "application/tpf-transition+json",
                "payload": json.dumps(order(customerName="Eve")),
            }
        )
    )
    from_file = submitted_id(tpf.ok("submit", "--envelope-file", str(envelope_file)))

    status = fields(tpf.ok("status", eid))
    assert (status["execution"], status["status"], status["step"]) == (eid, "QUEUED", "0")
    assert (status["attempt"], status["version"], status["error"]) == ("0", "0", "-")
    assert status["idempotency key"] == "order-1"
    assert status["release version"] == suite.release.release_version
    got = tpf.json("status", eid)
    assert got["status"]["status"] == "EXECUTION_STATUS_QUEUED"

    header, *rows = table_rows(tpf.ok("history", eid))
    assert header[:5] == ["SEQ", "VERSION", "EVENT", "FROM", "TO"]
    assert [row[1:5] for row in rows] == [["0", "SUBMITTED", "-", "QUEUED"]]
    assert len(tpf.json("history", eid)["historyEntries"]) == 1

    header, *rows = table_rows(tpf.ok("executions", "list"))
    assert header[:5] == ["EXECUTION", "STATUS", "STEP", "ATTEMPT", "VERSION"]
    assert {row[0] for row in rows} == {eid, generic, from_file}
    assert {row[1] for row in rows} == {"QUEUED"}
    # One execution per page: the CLI follows next_page_token to the end.
    paged = tpf.json("executions", "list", "--page-size", "1", "--status", "queued")
    assert [e["executionId"] for e in paged["executions"]] == [from_file, generic, eid]
    assert tpf.ok("executions", "list", "--status", "FAILED", "SUCCEEDED") == "no executions\n"
    assert tpf.ok("executions", "list", "--pipeline", "other.pipeline") == "no executions\n"
    keyed = tpf.json("executions", "list", "--key", "order-1")["executions"]
    assert [e["executionId"] for e in keyed] == [eid]

    assert_fails(tpf("result", eid), "FAILED_PRECONDITION RESULT_NOT_READY: ")
    assert_fails(tpf("status", "no-such-execution"), "NOT_FOUND EXECUTION_NOT_FOUND: ")
    # An id far too long: one line naming the limit (it printed a traceback).
    too_long = tpf("status", "e" * 5_000)
    assert_fails(too_long, "INVALID_ARGUMENT FIELD_INVALID: Shorten executionId to at most 256 ")
    assert too_long.stderr.count("\n") == 1

    # What the worker receives is the input as the CLI encoded it.
    async with coordinator_client(suite.coordinator.target) as client:
        items = {item.execution_id: item for item in await claim(client)}
    assert set(items) == {eid, generic, from_file}
    snapshots = {execution_id: input_snapshot(item) for execution_id, item in items.items()}
    typed_input = snapshots[eid].payload
    assert isinstance(typed_input, ApplicationValue) and typed_input.type_id == ORDER_TYPE
    # Sent exactly as given: the DTO's JSON, "27.50" and all.
    assert plain(typed_input) == body
    generic_input: Any = plain(snapshots[generic].payload)
    assert isinstance(snapshots[generic].payload, dict) and generic_input["currency"] == "EUR"
    file_input: Any = plain(snapshots[from_file].payload)
    assert file_input["customerName"] == "Eve"


async def test_watch_follows_until_the_cli_cancels(tpf: Tpf) -> None:
    eid = submit_order(tpf)
    watcher = tpf.watch(eid)
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline().split()
        assert first[1:] == ["version", "0", "QUEUED", "step", "0", "attempt", "0"]
        cancelled = tpf.ok("cancel", eid, "--reason", "customer changed their mind")
        assert cancelled.startswith(f"cancelled execution {eid} (was QUEUED)\n")
        assert fields(cancelled)["status"] == "CANCELLED"
        rest, errors = watcher.communicate(timeout=_CLI_TIMEOUT_S)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 1, errors
    assert errors == ""
    assert [line.split()[1:4] for line in rest.splitlines()] == [["version", "1", "CANCELLED"]]

    again = tpf.ok("cancel", eid)
    assert again.startswith(f"execution {eid} was already cancelled\n")
    assert tpf.json("cancel", eid)["duplicate"] is True
    # Watching an execution that already ended prints its state once.
    ended = tpf("status", eid, "--watch", "--json")
    assert ended.returncode == 1 and ended.stderr == ""
    [line] = ended.stdout.splitlines()
    assert json.loads(line)["execution"]["status"] == "EXECUTION_STATUS_CANCELLED"
    last = table_rows(tpf.ok("history", eid))[-1]
    assert last[1:5] == ["1", "CANCELLED", "QUEUED", "CANCELLED"]
    assert last[-1] == "customer changed their mind"
    assert_fails(tpf("cancel", "no-such-execution"), "NOT_FOUND EXECUTION_NOT_FOUND: ")


async def test_result_of_a_succeeded_execution_and_a_successful_watch(
    tpf: Tpf, suite: Suite
) -> None:
    eid = submit_order(tpf)
    terminal = {"orderId": "o-1", "outcome": "APPROVED", "summary": "Enjoy", "total": 27.5}
    async with coordinator_client(suite.coordinator.target) as client:
        [item] = await claim(client)
        validated = envelope(DTO + "ValidatedRestaurantOrderRequestDto", {"ok": True})
        [moved] = await complete(client, step_done(item, 1, validated))
        assert moved.accepted
        [item] = await claim(client)
        [done] = await complete(
            client,
            wpb.WorkOutcome(
                execution_id=eid,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                pipeline_completed=wpb.PipelineCompletedOutcome(
                    output_payloads=[envelope(DTO + "TerminalOrderStateDto", terminal)]
                ),
            ),
        )
        assert done.accepted and done.status == st.EXECUTION_STATUS_SUCCEEDED

    assert json.loads(tpf.ok("result", eid)) == terminal
    raw = json.loads(tpf.ok("result", eid, "--envelope"))
    assert raw["payloadTypeId"] == DTO + "TerminalOrderStateDto"
    assert json.loads(raw["payload"]) == terminal
    answer = tpf.json("result", eid)
    assert answer["status"]["status"] == "EXECUTION_STATUS_SUCCEEDED"
    watched = tpf("status", eid, "--watch")
    assert watched.returncode == 0 and watched.stderr == ""
    [line] = watched.stdout.splitlines()
    assert line.split()[1:4] == ["version", str(done.version), "SUCCEEDED"]


async def test_interactions_list_and_complete_a_parked_execution(tpf: Tpf, suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        first = await park(client, suite, assignee="alice", order_id="o-1")
        second = await park(client, suite, group="kitchen", order_id="o-2")

    header, *rows = table_rows(tpf.ok("interactions", "list"))
    assert header == [
        "INTERACTION",
        "CORRELATION",
        "EXECUTION",
        "STEP",
        "STATUS",
        "ASSIGNEE",
        "GROUP",
        "DEADLINE",
    ]
    assert sorted(row[0] for row in rows) == sorted([first.interaction_id, second.interaction_id])
    assert {row[3] for row in rows} == {AWAIT_STEP}
    mine = tpf.json("interactions", "list", "--assignee", "alice")["interactions"]
    assert [i["interactionId"] for i in mine] == [first.interaction_id]
    assert mine[0]["requestPayload"]["orderId"] == "o-1"
    kitchen = tpf.json("interactions", "list", "--group", "kitchen", "--step-id", AWAIT_STEP)
    assert [i["interactionId"] for i in kitchen["interactions"]] == [second.interaction_id]
    assert tpf.ok("interactions", "list", "--step-id", "Other") == "no pending interactions\n"
    assert tpf.json("interactions", "list", "--page-size", "1")["interactions"]

    decision = {"accepted": {"orderId": "o-1", "decidedAt": "2026-08-22T17:48:23Z", "note": "ok"}}
    completed = tpf.ok(
        "interactions",
        "complete",
        "--interaction-id",
        first.interaction_id,
        "--response",
        json.dumps(decision),
        "--actor",
        "alice",
    )
    assert completed.startswith(f"completed interaction {first.interaction_id}\n")
    details = fields(completed)
    assert (details["execution"], details["status"]) == (first.execution_id, "COMPLETED")
    assert details["duplicate"] == "false"
    repeat = tpf.json(
        "interactions",
        "complete",
        "--interaction-id",
        first.interaction_id,
        "--response",
        json.dumps(decision),
    )
    assert repeat["duplicate"] is True
    status = fields(tpf.ok("status", first.execution_id))
    assert (status["status"], status["step"], status["version"]) == ("QUEUED", "3", "3")
    last = table_rows(tpf.ok("history", first.execution_id))[-1]
    assert (last[2], last[7]) == ("INTERACTION_COMPLETED", "alice")

    # By correlation id, with the decision sent as its application type.
    typed = tpf.json(
        "interactions",
        "complete",
        "--correlation-id",
        second.correlation_id,
        "--type",
        DTO + "RestaurantDecisionDto",
        "--response",
        json.dumps({"type": "declined", "declined": {"orderId": "o-2", "note": "busy"}}),
    )
    assert typed["interactionId"] == second.interaction_id and "duplicate" not in typed
    assert tpf.ok("interactions", "list") == "no pending interactions\n"

    # The answers as sent are the inputs of the step after the await.
    async with coordinator_client(suite.coordinator.target) as client:
        items = {item.execution_id: item for item in await claim(client)}
    answer = items[first.execution_id].input_payload
    assert answer.payload_type_id == "java.util.Map"
    assert plain(decoded(answer)) == decision
    typed_answer = items[second.execution_id].input_payload
    assert typed_answer.payload_type_id == DTO + "RestaurantDecisionDto"
    assert json.loads(typed_answer.payload)["declined"]["note"] == "busy"

    unknown = tpf("interactions", "complete", "--interaction-id", "nope", "--response", "{}")
    assert_fails(unknown, "NOT_FOUND INTERACTION_NOT_FOUND: ")


async def test_dead_letters_list_redrive_and_bulk_redrive(tpf: Tpf, suite: Suite) -> None:
    eids = [submit_order(tpf) for _ in range(3)]
    async with coordinator_client(suite.coordinator.target) as client:
        await fail_permanently(client, suite, set(eids))
    first, *others = eids

    header, *rows = table_rows(tpf.ok("dlq", "list"))
    assert header == [
        "EXECUTION",
        "STATUS",
        "REASON",
        "STEP",
        "ATTEMPT",
        "VERSION",
        "ERROR",
        "CREATED",
        "REDRIVEN",
    ]
    assert sorted(row[0] for row in rows) == sorted(eids)
    assert {tuple(row[1:7]) for row in rows} == {
        ("FAILED", "NON_RETRYABLE", "0", "0", "2", "NonRetryableException")
    }
    assert {row[-1] for row in rows} == {"-"}
    assert tpf.ok("dlq", "list", "--terminal-reason", "retry_exhausted") == "no dead letters\n"
    only = tpf.json("dlq", "list", "--execution", first, "--terminal-reason", "NON_RETRYABLE")
    assert [d["executionId"] for d in only["deadLetters"]] == [first]
    assert len(tpf.json("dlq", "list", "--page-size", "1")["deadLetters"]) == 3

    refused = tpf("dlq", "redrive", first)
    assert_fails(refused, "FAILED_PRECONDITION INVALID_TRANSITION: ")
    conflict = tpf("dlq", "redrive", first, "--allow-failed", "--expected-version", "1")
    assert_fails(conflict, "ABORTED VERSION_CONFLICT: ")
    redriven = tpf.ok(
        "dlq",
        "redrive",
        first,
        "--allow-failed",
        "--expected-version",
        "2",
        "--reason",
        "fixed the input decoder",
    )
    assert redriven.startswith(f"redrove execution {first}: FAILED → QUEUED\n")
    details = fields(redriven)
    assert (details["version"], details["attempt"], details["step"]) == ("3", "1", "0")
    status = fields(tpf.ok("status", first))
    assert (status["status"], status["attempt"], status["error"]) == ("QUEUED", "1", "-")
    last = table_rows(tpf.ok("history", first))[-1]
    assert (last[2], last[-1]) == ("REDRIVEN", "fixed the input decoder")
    open_letters = tpf.json("dlq", "list")["deadLetters"]
    assert sorted(d["executionId"] for d in open_letters) == sorted(others)
    audited = tpf.json("dlq", "list", "--include-redriven", "--execution", first)["deadLetters"]
    assert audited[0]["redriven"] is True

    # Bulk: a dry run changes nothing; the redrive goes one batch at a time with progress.
    dry = tpf("dlq", "bulk-redrive", "--dry-run")
    assert dry.returncode == 0 and dry.stderr == ""
    heading, *ids = dry.stdout.splitlines()
    assert heading == "dry run: would redrive 2 of 2 matched executions"
    assert sorted(ids) == sorted(others)
    no_reason = tpf("dlq", "bulk-redrive")
    assert no_reason.returncode == 2 and "--reason is required" in no_reason.stderr
    bulk = tpf("dlq", "bulk-redrive", "--reason", "decoder fixed", "--batch-size", "1")
    assert bulk.returncode == 0, bulk.stderr
    assert bulk.stderr.splitlines() == [
        "bulk redrive: 1/2 redriven, 0 not redriven (2 matched)",
        "bulk redrive: 2/2 redriven, 0 not redriven (2 matched)",
    ]
    heading, *ids = bulk.stdout.splitlines()
    assert heading == "redrove 2 of 2 matched executions (0 not redriven)"
    assert sorted(ids) == sorted(others)
    assert tpf.ok("dlq", "list") == "no dead letters\n"
    queued = tpf.json("executions", "list", "--status", "QUEUED")["executions"]
    assert sorted(e["executionId"] for e in queued) == sorted(eids)
    nothing = tpf("dlq", "bulk-redrive", "--reason", "again", "--json")
    assert nothing.returncode == 0
    assert nothing.stderr == "bulk redrive: 0/0 redriven, 0 not redriven (0 matched)\n"
    assert json.loads(nothing.stdout) == {}


def test_usage_errors_and_an_unreachable_coordinator(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    tpf = Tpf(target=target, tenant="restaurant-demo", cwd=tmp_path)
    unreachable = tpf("status", "some-execution")
    assert_fails(unreachable, f"cannot reach the coordinator at {target}")
    no_pipeline = tpf("submit", "--input", "{}", TPF_PIPELINE=None)
    assert no_pipeline.returncode == 2
    assert "missing --pipeline (or TPF_PIPELINE)" in no_pipeline.stderr
    no_input = tpf("submit")
    assert no_input.returncode == 2 and "one of the arguments --input" in no_input.stderr
    bad_json = tpf("submit", "--input", "{not json")
    assert_fails(bad_json, "input is not valid JSON: ")
    both = tpf("submit", "--type", ORDER_TYPE, "--envelope-file", "x.json")
    assert both.returncode == 2 and "--type cannot be used with --envelope-file" in both.stderr
    structured = tpf("submit", "--type", "java.util.Map", "--input", "{}")
    assert_fails(structured, "--type java.util.Map has a structured payload")
    missing_file = tpf("submit", "--input-file", str(tmp_path / "missing.json"))
    assert_fails(missing_file, "cannot read ")
    handle = tpf("interactions", "complete", "--response", "{}")
    assert handle.returncode == 2 and "one of the arguments --interaction-id" in handle.stderr
    # Only submit needs a pipeline.
    listing = tpf("executions", "list", TPF_PIPELINE=None)
    assert_fails(listing, f"cannot reach the coordinator at {target}")
