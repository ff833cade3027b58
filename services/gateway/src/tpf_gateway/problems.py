"""Every error the gateway answers, and its two renderings.

`/tpf/...` routes answer as TPF does: a plain-text body with TPF's message (empty for 401 and
for TPF's "guard" 404s) and the machine-readable reason in the `X-TPF-Error-Reason` header.
Every other path answers RFC 9457 `application/problem+json` with `reason`, `domain` and
`metadata` members. Neither ever carries a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import MappingProxyType

import grpc
from aiohttp import web

REASON_HEADER = "X-TPF-Error-Reason"
PROBLEM_CONTENT_TYPE = "application/problem+json"
GATEWAY_DOMAIN = "tpf.gateway"

# docs/api.md's table, with one departure from google/rpc/code.proto: FAILED_PRECONDITION is 409
# because TPF answers 409 for "no active release" and for a redrive from a wrong status.
CODE_TO_HTTP: Mapping[grpc.StatusCode, int] = MappingProxyType(
    {
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.OUT_OF_RANGE: 400,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.FAILED_PRECONDITION: 409,
        grpc.StatusCode.ABORTED: 409,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        # The caller passed the gateway's own check; the service refusing the gateway's token
        # is the gateway's misconfiguration, which the caller can only wait out.
        grpc.StatusCode.UNAUTHENTICATED: 503,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.CANCELLED: 503,
        grpc.StatusCode.DEADLINE_EXCEEDED: 504,
        grpc.StatusCode.UNIMPLEMENTED: 501,
        grpc.StatusCode.INTERNAL: 500,
        grpc.StatusCode.DATA_LOSS: 500,
        # The service answered something that is not one of our statuses.
        grpc.StatusCode.UNKNOWN: 502,
    }
)


def http_status_of(code: grpc.StatusCode) -> int:
    return CODE_TO_HTTP.get(code, 502)


@dataclass(frozen=True, slots=True)
class Problem:
    """One error answer, before it is rendered for a TPF or a /v1 path."""

    status: int
    message: str
    reason: str = ""
    domain: str = GATEWAY_DOMAIN
    metadata: Mapping[str, str] = field(default_factory=dict)
    # TPF's 401 and guard 404s have an empty body, whatever the message says.
    empty_tpf_body: bool = False


class ProblemError(Exception):
    """Raised anywhere in request handling; the error middleware renders it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def render(problem: Problem, *, tpf_style: bool) -> web.Response:
    if tpf_style:
        return _tpf_text(problem)
    return _problem_json(problem)


def _tpf_text(problem: Problem) -> web.Response:
    headers = {REASON_HEADER: problem.reason} if problem.reason else {}
    body = "" if problem.empty_tpf_body else problem.message
    return web.Response(status=problem.status, text=body, headers=headers, charset="utf-8")


def _problem_json(problem: Problem) -> web.Response:
    document: dict[str, object] = {
        "type": "about:blank",
        "title": _title(problem.status),
        "status": problem.status,
        "detail": problem.message,
    }
    if problem.reason:
        document["reason"] = problem.reason
        document["domain"] = problem.domain
        document["metadata"] = dict(problem.metadata)
    headers = {REASON_HEADER: problem.reason} if problem.reason else {}
    return web.Response(
        status=problem.status,
        body=json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode(),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
