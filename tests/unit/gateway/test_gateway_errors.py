"""gRPC errors → TPF's HTTP answers (TPF_WIRE §1.2, §3, §6), and the bearer-token guard (§1.1)."""

from __future__ import annotations

import json

import grpc
import pytest

from tpf_gateway.adaptations import problem_of, recovery_for
from tpf_gateway.auth import TokenGuard
from tpf_gateway.problems import (
    CODE_TO_HTTP,
    REASON_HEADER,
    Problem,
    ProblemError,
    render,
)
from tpf_gateway.routes import Family, Route, build_route_table
from tpf_gateway.upstream import UpstreamError


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return list(build_route_table())


def route_of(routes: list[Route], rpc: str, *, tpf: bool = True) -> Route:
    [route] = [r for r in routes if r.method.name == rpc and r.is_tpf == tpf]
    return route


def error(
    code: grpc.StatusCode, reason: str, message: str = "svc says", **metadata: str
) -> UpstreamError:
    return UpstreamError(code, message, reason=reason, domain="tpf.coordinator", metadata=metadata)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    ],
)
def test_grpc_codes_map_to_the_documented_http_statuses(code: grpc.StatusCode, status: int) -> None:
    assert CODE_TO_HTTP[code] == status


def test_no_active_release_is_409_with_the_service_message(routes: list[Route]) -> None:
    text = "No active release is registered for the requested pipeline"
    problem = problem_of(
        route_of(routes, "SubmitExecution"),
        error(grpc.StatusCode.FAILED_PRECONDITION, "NO_ACTIVE_RELEASE", text),
    )
    assert (problem.status, problem.message, problem.reason) == (409, text, "NO_ACTIVE_RELEASE")


@pytest.mark.parametrize(
    ("rpc", "code", "status", "reason"),
    [
        ("GetExecution", grpc.StatusCode.UNAVAILABLE, 503, "COORDINATOR_UNAVAILABLE"),
        ("SubmitExecution", grpc.StatusCode.DEADLINE_EXCEEDED, 504, "COORDINATOR_UNAVAILABLE"),
        ("ListReleases", grpc.StatusCode.UNAVAILABLE, 503, "REGISTRY_UNAVAILABLE"),
        ("DrainWorker", grpc.StatusCode.CANCELLED, 503, "REGISTRY_UNAVAILABLE"),
    ],
)
def test_a_service_that_did_not_answer_is_named_and_its_address_is_not_sent(
    routes: list[Route], rpc: str, code: grpc.StatusCode, status: int, reason: str
) -> None:
    transport = UpstreamError(
        code,
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:51051: "
        "Failed to connect to remote host: Connection refused",
    )
    for route in [r for r in routes if r.method.name == rpc]:
        problem = problem_of(route, transport)
        assert (problem.status, problem.reason, problem.domain) == (status, reason, "tpf.gateway")
        assert "127.0.0.1" not in problem.message and "51051" not in problem.message
        for tpf_style in (True, False):
            response = render(problem, tpf_style=tpf_style)
            assert response.headers[REASON_HEADER] == reason
            assert isinstance(response.body, bytes)
            assert b"127.0.0.1" not in response.body


def test_unknown_execution_is_not_found_text_on_status_but_named_on_redrive(
    routes: list[Route],
) -> None:
    failure = error(grpc.StatusCode.NOT_FOUND, "EXECUTION_NOT_FOUND", "Execution not found: e-1")
    assert problem_of(route_of(routes, "GetExecution"), failure).message == "Not Found"
    assert problem_of(route_of(routes, "GetExecutionResult"), failure).message == "Not Found"
    redrive = problem_of(route_of(routes, "RedriveExecution"), failure)
    assert (redrive.status, redrive.message) == (404, "Execution not found: e-1")


def test_unknown_release_or_worker_is_an_empty_404_on_tpf_routes_only(routes: list[Route]) -> None:
    failure = error(grpc.StatusCode.NOT_FOUND, "RELEASE_NOT_FOUND", "Release x is not registered")
    tpf = problem_of(route_of(routes, "GetRelease"), failure)
    assert tpf.status == 404 and tpf.empty_tpf_body
    assert render(tpf, tpf_style=True).text == ""
    v1 = problem_of(route_of(routes, "GetRelease", tpf=False), failure)
    assert not v1.empty_tpf_body and v1.message == "Release x is not registered"


@pytest.mark.parametrize("reason", ["INTERACTION_TERMINAL", "INTERACTION_EXPIRED"])
def test_ended_interactions_are_400_invalid_request_on_tpf_complete(
    routes: list[Route], reason: str
) -> None:
    problem = problem_of(
        route_of(routes, "CompleteInteraction"), error(grpc.StatusCode.FAILED_PRECONDITION, reason)
    )
    assert (problem.status, problem.message, problem.reason) == (400, "Invalid request", reason)


def test_payload_errors_are_tpf_invalid_request_payload(routes: list[Route]) -> None:
    problem = problem_of(
        route_of(routes, "SubmitExecution"),
        error(grpc.StatusCode.INVALID_ARGUMENT, "PAYLOAD_UNDECODABLE", "payload at $.x ..."),
    )
    assert (problem.status, problem.message) == (400, "Invalid request payload")


def test_field_required_names_the_field_as_tpf_does(routes: list[Route]) -> None:
    route = route_of(routes, "RegisterRelease")
    with_field = error(
        grpc.StatusCode.INVALID_ARGUMENT, "FIELD_REQUIRED", field="releaseDescriptorPath"
    )
    assert problem_of(route, with_field).message == "releaseDescriptorPath is required"
    # A template naming metadata the error lacks keeps the service's message.
    assert problem_of(route, error(grpc.StatusCode.INVALID_ARGUMENT, "FIELD_REQUIRED")).message == (
        "svc says"
    )


def test_release_conflict_is_409_with_tpf_text(routes: list[Route]) -> None:
    problem = problem_of(
        route_of(routes, "RegisterRelease"),
        error(grpc.StatusCode.ALREADY_EXISTS, "RELEASE_VERSION_CONFLICT", "long text"),
    )
    assert (problem.status, problem.message) == (
        409,
        "Release version is already registered with different metadata",
    )


def test_result_not_ready_is_recovered_only_on_tpf_result_route(routes: list[Route]) -> None:
    failure = error(grpc.StatusCode.FAILED_PRECONDITION, "RESULT_NOT_READY")
    assert recovery_for(route_of(routes, "GetExecutionResult"), failure) is not None
    assert recovery_for(route_of(routes, "GetExecution"), failure) is None


def test_tpf_rendering_is_plain_text_with_reason_header() -> None:
    response = render(
        Problem(status=409, message="Nope", reason="NO_ACTIVE_RELEASE"), tpf_style=True
    )
    assert response.status == 409
    assert response.text == "Nope"
    assert response.content_type == "text/plain"
    assert response.headers[REASON_HEADER] == "NO_ACTIVE_RELEASE"


def test_v1_rendering_is_rfc9457_problem_json() -> None:
    problem = Problem(
        status=404,
        message="Execution e does not exist",
        reason="EXECUTION_NOT_FOUND",
        domain="tpf.coordinator",
        metadata={"executionId": "e"},
    )
    response = render(problem, tpf_style=False)
    assert response.content_type == "application/problem+json"
    assert response.body is not None
    assert json.loads(bytes(response.body)) == {  # type: ignore[arg-type]  # aiohttp types body as Payload
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Execution e does not exist",
        "reason": "EXECUTION_NOT_FOUND",
        "domain": "tpf.coordinator",
        "metadata": {"executionId": "e"},
    }


GUARD = TokenGuard(tokens={Family.CONTROL_PLANE: "cp-token", Family.ADMIN: "admin-token"})


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "bearer cp-token",
        "Basic cp-token",
        "Bearer admin-token",
        "Bearer cp-tokenx",
    ],
)
def test_wrong_or_missing_tokens_are_401_with_empty_tpf_body(
    routes: list[Route], header: str | None
) -> None:
    with pytest.raises(ProblemError) as raised:
        GUARD.check(route_of(routes, "SubmitExecution"), header)
    assert raised.value.problem.status == 401
    assert render(raised.value.problem, tpf_style=True).text == ""
    assert "WWW-Authenticate" not in render(raised.value.problem, tpf_style=True).headers


def test_each_family_accepts_its_own_token_and_admin_opens_v1_control_plane_routes(
    routes: list[Route],
) -> None:
    GUARD.check(route_of(routes, "SubmitExecution"), "Bearer  cp-token ")
    GUARD.check(route_of(routes, "RedriveExecution"), "Bearer admin-token")
    GUARD.check(route_of(routes, "ListExecutions", tpf=False), "Bearer admin-token")
    GUARD.check(route_of(routes, "ListExecutions", tpf=False), "Bearer cp-token")
    with pytest.raises(ProblemError):
        GUARD.check(route_of(routes, "RedriveExecution"), "Bearer cp-token")
    with pytest.raises(ProblemError):
        GUARD.check(route_of(routes, "BulkRedrive", tpf=False), "Bearer cp-token")


def test_disabled_guard_lets_everything_through(routes: list[Route]) -> None:
    TokenGuard(tokens={}, disabled=True).check(route_of(routes, "SubmitExecution"), None)
