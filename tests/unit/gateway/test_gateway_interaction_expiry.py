"""An interaction past its record TTL is TPF's 404 `Not Found` on the complete route (TPF_WIRE
§5.3: TPF has purged the record), with the reason in the header; `/v1` keeps the message."""

from __future__ import annotations

import grpc

from tpf_gateway.adaptations import problem_of
from tpf_gateway.problems import REASON_HEADER, render
from tpf_gateway.routes import build_route_table
from tpf_gateway.upstream import UpstreamError

MESSAGE = "Interaction i-1 expired at 1000 (its deadline plus the record TTL)"


def test_an_expired_interaction_is_not_found_on_tpf_complete_and_named_on_v1() -> None:
    failure = UpstreamError(
        grpc.StatusCode.NOT_FOUND,
        MESSAGE,
        reason="INTERACTION_RECORD_EXPIRED",
        domain="tpf.coordinator",
        metadata={"interactionId": "i-1", "expiredAtEpochMs": "1000"},
    )
    routes = [r for r in build_route_table() if r.method.name == "CompleteInteraction"]
    [tpf] = [r for r in routes if r.is_tpf]
    problem = problem_of(tpf, failure)
    assert (problem.status, problem.message) == (404, "Not Found")
    rendered = render(problem, tpf_style=True)
    assert rendered.text == "Not Found"
    assert rendered.headers[REASON_HEADER] == "INTERACTION_RECORD_EXPIRED"
    for v1 in (r for r in routes if not r.is_tpf):
        assert (problem_of(v1, failure).status, problem_of(v1, failure).message) == (404, MESSAGE)
