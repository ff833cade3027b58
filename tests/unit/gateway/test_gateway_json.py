"""TPF's JSON versus the proto3 JSON mapping (TPF_WIRE §1, §3-§6), and request binding."""

from __future__ import annotations

import json
from typing import TypeVar

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from tpf.common.v1 import execution_status_pb2, payload_pb2
from tpf.coordinator.v1 import dead_letter_service_pb2 as dpb
from tpf.coordinator.v1 import execution_pb2, interaction_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.registry.v1 import release_pb2
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf_gateway.binding import BindingError, HttpInput, bind_request
from tpf_gateway.routes import Route, build_route_table
from tpf_gateway.tpf_json import enum_prefix, message_to_json
from tpf_gateway.transcoder import response_json

LONG_MAX = 9223372036854775807
M = TypeVar("M", bound=Message)


def bound(route: Route, http: HttpInput, message_class: type[M]) -> M:
    request = bind_request(route, http)
    assert isinstance(request, message_class)
    return request


@pytest.fixture(scope="module")
def routes() -> dict[str, Route]:
    return {route.key: route for route in build_route_table()}


def route_of(routes: dict[str, Route], rpc: str, *, tpf: bool = True) -> Route:
    [route] = [r for r in routes.values() if r.method.name == rpc and r.is_tpf == tpf]
    return route


def test_status_object_is_tpf_execution_status_dto() -> None:
    view = execution_pb2.ExecutionStatusView(
        execution_id="e-1",
        status=execution_status_pb2.EXECUTION_STATUS_WAITING_EXTERNAL,
        step_index=2,
        version=2,
        next_due_at_epoch_ms=LONG_MAX,
        updated_at_epoch_ms=1766412345999,
    )
    assert message_to_json(view) == {
        "executionId": "e-1",
        "status": "WAITING_EXTERNAL",
        "stepIndex": 2,
        "attempt": 0,
        "version": 2,
        "nextDueAtEpochMs": LONG_MAX,
        "updatedAtEpochMs": 1766412345999,
        "errorCode": None,
        "errorMessage": None,
    }


def test_int64_is_a_json_number_not_a_string() -> None:
    text = json.dumps(message_to_json(execution_pb2.ExecutionStatusView(version=7)))
    assert '"version": 7' in text


def test_unset_message_field_is_null() -> None:
    response = epb.GetExecutionResultResponse(status=execution_pb2.ExecutionStatusView())
    assert message_to_json(response)["resultPayload"] is None


def test_result_payload_stays_an_envelope_whose_payload_is_a_json_string() -> None:
    envelope = payload_pb2.PayloadEnvelope(
        payload_type_id="java.util.Map",
        payload_encoding="application/tpf-transition+json",
        payload='{"items":{}}',
    )
    body = message_to_json(epb.GetExecutionResultResponse(result_payload=envelope))
    assert body["resultPayload"] == {
        "payloadTypeId": "java.util.Map",
        "payloadEncoding": "application/tpf-transition+json",
        "payload": '{"items":{}}',
    }


def test_pending_list_is_a_bare_array_with_plain_request_payload(
    routes: dict[str, Route],
) -> None:
    payload = struct_pb2.Value()
    payload.struct_value.update({"orderId": "o-1", "count": 3, "price": 27.5})
    response = ipb.ListPendingInteractionsResponse(
        interactions=[
            interaction_pb2.Interaction(
                interaction_id="i-1",
                status=interaction_pb2.INTERACTION_STATUS_DISPATCHED,
                request_payload=payload,
            )
        ],
        next_page_token="more",
    )
    body = response_json(route_of(routes, "ListPendingInteractions"), response)
    assert isinstance(body, list)
    [item] = body
    assert item["requestPayload"] == {"orderId": "o-1", "count": 3, "price": 27.5}
    assert json.dumps(item["requestPayload"]["count"]) == "3"
    assert item["status"] == "DISPATCHED"
    assert item["assignee"] is None and item["group"] is None


def test_release_routes_answer_the_bare_record(routes: dict[str, Route]) -> None:
    response = rpb.GetReleaseResponse(
        release=release_pb2.Release(
            release_version="sha256:ab", status=release_pb2.RELEASE_STATUS_ACTIVE
        )
    )
    body = response_json(route_of(routes, "GetRelease"), response)
    assert body["releaseVersion"] == "sha256:ab"
    assert body["status"] == "ACTIVE"
    assert body["contract"] is None


def test_enum_prefixes_are_derived_from_the_enum_name() -> None:
    assert enum_prefix(execution_status_pb2.ExecutionStatus.DESCRIPTOR) == "EXECUTION_STATUS_"
    assert enum_prefix(execution_pb2.InputShape.DESCRIPTOR) == "INPUT_SHAPE_"


def submit_input(body: object) -> HttpInput:
    return HttpInput(path_params={"tenantId": "t-1"}, query=(), body=json.dumps(body).encode())


def test_submit_body_binds_with_short_enum_names_and_path_tenant(
    routes: dict[str, Route],
) -> None:
    body = {
        "pipelineId": "p",
        "inputShape": "UNI",
        "inputPayload": {"payloadTypeId": "x", "payloadEncoding": "y", "payload": "1"},
        "idempotencyKey": None,
        "tenantId": "ignored",
        "somethingTpfIgnores": {"a": 1},
    }
    request = bind_request(route_of(routes, "SubmitExecution"), submit_input(body))
    assert isinstance(request, epb.SubmitExecutionRequest)
    assert request.tenant_id == "t-1"
    assert request.input_shape == execution_pb2.INPUT_SHAPE_UNI
    assert request.input_payload.payload == "1"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"pipelineId": 5}', "Invalid request"),
        (b'{"inputShape": "uni"}', "Invalid request"),
        (b'{"inputPayload": "x"}', "Invalid request"),
        (b'{"outputStreaming": "yes"}', "Invalid request"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a": NaN}', "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_or_mistyped_bodies_are_binding_errors(
    routes: dict[str, Route], raw: bytes, fragment: str
) -> None:
    http = HttpInput(path_params={"tenantId": "t"}, query=(), body=raw)
    with pytest.raises(BindingError, match=fragment):
        bind_request(route_of(routes, "SubmitExecution"), http)


def test_empty_body_is_a_request_with_path_fields_only(routes: dict[str, Route]) -> None:
    http = HttpInput(path_params={"tenantId": "t", "executionId": "e"}, query=(), body=b"")
    request = bound(route_of(routes, "RedriveExecution"), http, dpb.RedriveExecutionRequest)
    assert request.tenant_id == "t" and request.execution_id == "e"
    assert not request.HasField("expected_version")


def test_redrive_body_binds_tpf_fields(routes: dict[str, Route]) -> None:
    body = b'{"allowFailed": true, "expectedVersion": 5, "reason": "demo"}'
    http = HttpInput(path_params={"tenantId": "t", "executionId": "e"}, query=(), body=body)
    request = bound(route_of(routes, "RedriveExecution"), http, dpb.RedriveExecutionRequest)
    assert request.allow_failed and request.expected_version == 5 and request.reason == "demo"


def test_v1_routes_refuse_unknown_body_fields(routes: dict[str, Route]) -> None:
    http = HttpInput(
        path_params={"tenantId": "t", "executionId": "e"}, query=(), body=b'{"bogus": 1}'
    )
    with pytest.raises(BindingError):
        bind_request(route_of(routes, "CancelExecution", tpf=False), http)


def test_query_parameters_bind_by_json_or_proto_name(routes: dict[str, Route]) -> None:
    http = HttpInput(
        path_params={"tenantId": "t"},
        query=(("stepId", "S"), ("limit", "5"), ("page_size", "2"), ("unknown", "x")),
        body=b"",
    )
    request = bound(
        route_of(routes, "ListPendingInteractions"), http, ipb.ListPendingInteractionsRequest
    )
    assert (request.step_id, request.limit, request.page_size) == ("S", 5, 2)


def test_query_parameters_bind_repeated_enums_nested_fields_and_timestamps(
    routes: dict[str, Route],
) -> None:
    executions = route_of(routes, "ListExecutions", tpf=False)
    http = HttpInput(
        path_params={"tenantId": "t"},
        query=(
            ("statuses", "FAILED"),
            ("statuses", "EXECUTION_STATUS_DLQ"),
            ("createdAfter", "2026-01-01T00:00:00Z"),
        ),
        body=b"",
    )
    request = bound(executions, http, epb.ListExecutionsRequest)
    assert list(request.statuses) == [
        execution_status_pb2.EXECUTION_STATUS_FAILED,
        execution_status_pb2.EXECUTION_STATUS_DLQ,
    ]
    assert request.created_after.seconds > 0
    dead_letters = route_of(routes, "ListDeadLetters", tpf=False)
    http = HttpInput(
        path_params={"tenantId": "t"},
        query=(("filter.pipelineId", "p"), ("filter.includeRedriven", "true")),
        body=b"",
    )
    filtered = bound(dead_letters, http, dpb.ListDeadLettersRequest)
    assert filtered.filter.pipeline_id == "p" and filtered.filter.include_redriven


@pytest.mark.parametrize(
    "query",
    [
        (("limit", "ten"),),
        (("limit", "99999999999"),),
        (("pageSize", "1.5"),),
    ],
)
def test_bad_query_values_are_binding_errors(
    routes: dict[str, Route], query: tuple[tuple[str, str], ...]
) -> None:
    http = HttpInput(path_params={"tenantId": "t"}, query=query, body=b"")
    with pytest.raises(BindingError):
        bind_request(route_of(routes, "ListPendingInteractions"), http)


def test_v1_routes_refuse_unknown_query_parameters(routes: dict[str, Route]) -> None:
    http = HttpInput(path_params={"tenantId": "t"}, query=(("bogus", "1"),), body=b"")
    with pytest.raises(BindingError, match="Unknown query parameter bogus"):
        bind_request(route_of(routes, "ListExecutions", tpf=False), http)
    with pytest.raises(BindingError, match="true or false"):
        bind_request(
            route_of(routes, "ListDeadLetters", tpf=False),
            HttpInput(
                path_params={"tenantId": "t"}, query=(("filter.includeRedriven", "1"),), body=b""
            ),
        )


def test_sha256_release_versions_bind_as_one_path_value(routes: dict[str, Route]) -> None:
    version = "sha256:" + "a" * 64
    http = HttpInput(
        path_params={"tenantId": "t", "pipelineId": "p", "releaseVersion": version},
        query=(),
        body=b"",
    )
    request = bound(route_of(routes, "ActivateRelease"), http, rpb.ActivateReleaseRequest)
    assert request.release_version == version
