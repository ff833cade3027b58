"""Every List RPC answers a crafted, edited or foreign page token with INVALID_ARGUMENT
PAGE_TOKEN_INVALID (three of them used to answer INTERNAL), against real services."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from tests.e2e.conftest import Suite
from tests.support.coordinator_client import coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import registry_client
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import order_envelope
from tpf.coordinator.v1 import dead_letter_service_pb2 as dpb
from tpf.coordinator.v1 import (
    dead_letter_service_pb2_grpc,
    execution_pb2,
    interaction_service_pb2_grpc,
)
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wpb
from tpf_rpc.paging import encode_page_token

pytestmark = pytest.mark.e2e

# A page of one row, so that every list below has a next page to take a token from.
ONE = 1


def _unsigned(cursor: dict[str, Any]) -> str:
    """What tokens looked like before they were signed: base64url JSON any client can write."""
    payload = json.dumps({"c": cursor, "f": "0" * 16}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


CRAFTED = [
    "garbage",
    "a.b.c",
    "x" * 5000,
    _unsigned({"after": "not-a-number"}),
    _unsigned({"seq": 1}),
    encode_page_token({"after": "x"}, "0" * 16),  # signed, but for no list's filters
]

Lister = Callable[[str], Awaitable[Any]]


async def _refused(list_page: Lister, token: str) -> None:
    await expect_error(list_page(token), grpc.StatusCode.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID")


def _edited(token: str) -> str:
    """`token` with one character of its body changed."""
    flipped = "A" if token[0] != "A" else "B"
    return flipped + token[1:]


async def test_every_list_rpc_refuses_crafted_edited_and_foreign_tokens(suite: Suite) -> None:
    tenant = suite.tenant
    async with (
        coordinator_client(suite.coordinator.target) as coordinator,
        registry_client(suite.registry.target) as registry,
    ):
        for key in ("a", "b"):
            await coordinator.executions.SubmitExecution(
                epb.SubmitExecutionRequest(
                    tenant_id=tenant,
                    pipeline_id=PIPELINE_ID,
                    input_shape=execution_pb2.INPUT_SHAPE_UNI,
                    input_payload=order_envelope(),
                    idempotency_key=key,
                )
            )
        dead_letters = dead_letter_service_pb2_grpc.DeadLetterServiceStub(coordinator.channel)
        interactions = interaction_service_pb2_grpc.InteractionServiceStub(coordinator.channel)
        lists: dict[str, Lister] = {
            "ListExecutions": lambda token: coordinator.executions.ListExecutions(
                epb.ListExecutionsRequest(tenant_id=tenant, page_size=ONE, page_token=token)
            ),
            "ListExecutionHistory": lambda token: _history(coordinator, tenant, token),
            "ListPendingInteractions": lambda token: interactions.ListPendingInteractions(
                ipb.ListPendingInteractionsRequest(
                    tenant_id=tenant, page_size=ONE, page_token=token
                )
            ),
            "ListDeadLetters": lambda token: dead_letters.ListDeadLetters(
                dpb.ListDeadLettersRequest(tenant_id=tenant, page_size=ONE, page_token=token)
            ),
            "ListReleases": lambda token: registry.releases.ListReleases(
                rpb.ListReleasesRequest(
                    tenant_id=tenant, pipeline_id=PIPELINE_ID, page_size=ONE, page_token=token
                )
            ),
            "ListActivations": lambda token: registry.releases.ListActivations(
                rpb.ListActivationsRequest(
                    tenant_id=tenant, pipeline_id=PIPELINE_ID, page_size=ONE, page_token=token
                )
            ),
            "ListWorkers": lambda token: registry.workers.ListWorkers(
                wpb.ListWorkersRequest(
                    tenant_id=tenant, pipeline_id=PIPELINE_ID, page_size=ONE, page_token=token
                )
            ),
        }
        executions_token = (await lists["ListExecutions"]("")).next_page_token
        assert executions_token, "two executions, pages of one: there is a next page"
        for name, list_page in lists.items():
            for token in [*CRAFTED, _edited(executions_token)]:
                await _refused(list_page, token)
            if name != "ListExecutions":
                # A real token, but of another list: its filters (and cursor) are not this one's.
                await _refused(list_page, executions_token)
        # The real token still works where it came from.
        second = await lists["ListExecutions"](executions_token)
        assert len(second.executions) == 1


async def _history(client: Any, tenant: str, token: str) -> Any:
    listed = await client.executions.ListExecutions(
        epb.ListExecutionsRequest(tenant_id=tenant, page_size=ONE)
    )
    return await client.executions.ListExecutionHistory(
        epb.ListExecutionHistoryRequest(
            tenant_id=tenant,
            execution_id=listed.executions[0].execution_id,
            page_size=ONE,
            page_token=token,
        )
    )
