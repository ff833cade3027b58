"""`tpf interactions list | complete`: pending interactions of await steps (InteractionService)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tpf.coordinator.v1 import interaction_pb2
from tpf.coordinator.v1 import interaction_service_pb2 as pb
from tpf_cli import output
from tpf_cli.connection import Coordinator, collect_pages
from tpf_cli.output import Report
from tpf_cli.payloads import PayloadSource, envelope_of


@dataclass(frozen=True, slots=True)
class Handle:
    """Which interaction to complete: one of its id, its correlation id, a resume token."""

    interaction_id: str = ""
    correlation_id: str = ""
    resume_token: str = ""


async def list_pending(
    coordinator: Coordinator, *, step_id: str, assignee: str, group: str, page_size: int
) -> Report:
    async def page(token: str) -> tuple[list[interaction_pb2.Interaction], str]:
        response = await coordinator.interactions.ListPendingInteractions(
            pb.ListPendingInteractionsRequest(
                tenant_id=coordinator.tenant_id,
                step_id=step_id,
                assignee=assignee,
                group=group,
                page_size=page_size,
                page_token=token,
            ),
            timeout=coordinator.timeout_s,
        )
        return list(response.interactions), response.next_page_token

    interactions = await collect_pages(page)
    return Report(
        pb.ListPendingInteractionsResponse(interactions=interactions),
        output.interaction_table(interactions),
    )


async def complete(
    coordinator: Coordinator,
    handle: Handle,
    source: PayloadSource,
    *,
    actor: str,
    idempotency_key: str,
) -> Report:
    response = await coordinator.interactions.CompleteInteraction(
        pb.CompleteInteractionRequest(
            tenant_id=coordinator.tenant_id,
            interaction_id=handle.interaction_id,
            correlation_id=handle.correlation_id,
            resume_token=handle.resume_token,
            response_payload=await asyncio.to_thread(envelope_of, source),
            actor=actor,
            idempotency_key=idempotency_key,
        ),
        timeout=coordinator.timeout_s,
    )
    heading = (
        f"interaction {response.interaction_id} was already completed (duplicate)"
        if response.duplicate
        else f"completed interaction {response.interaction_id}"
    )
    details = output.key_values(
        [
            ("interaction", response.interaction_id),
            ("execution", response.execution_id),
            ("step", response.step_id),
            ("status", output.interaction_status(response.status)),
            ("duplicate", "true" if response.duplicate else "false"),
        ]
    )
    return Report(response, f"{heading}\n{details}")
