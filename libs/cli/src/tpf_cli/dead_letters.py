"""`tpf dlq list | redrive | bulk-redrive`: dead letters and redrives (DeadLetterService)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from tpf.coordinator.v1 import dead_letter_pb2
from tpf.coordinator.v1 import dead_letter_service_pb2 as pb
from tpf_cli import output
from tpf_cli.connection import Coordinator, collect_pages
from tpf_cli.output import Report
from tpf_cli.payloads import PayloadSource, envelope_of

# BulkRedrive takes at most this many executions per call.
MAX_PER_CALL = 10_000
DRY_RUN_REASON = "dry run"

Progress = Callable[[str], None]


async def list_dead_letters(
    coordinator: Coordinator, dead_letter_filter: pb.DeadLetterFilter, *, page_size: int
) -> Report:
    async def page(token: str) -> tuple[list[dead_letter_pb2.DeadLetter], str]:
        response = await coordinator.dead_letters.ListDeadLetters(
            pb.ListDeadLettersRequest(
                tenant_id=coordinator.tenant_id,
                filter=dead_letter_filter,
                page_size=page_size,
                page_token=token,
            ),
            timeout=coordinator.timeout_s,
        )
        return list(response.dead_letters), response.next_page_token

    letters = await collect_pages(page)
    return Report(
        pb.ListDeadLettersResponse(dead_letters=letters), output.dead_letter_table(letters)
    )


async def redrive(
    coordinator: Coordinator,
    execution_id: str,
    *,
    allow_failed: bool,
    expected_version: int | None,
    reason: str | None,
    target_release_version: str | None,
    replacement_input: PayloadSource | None = None,
) -> Report:
    request = pb.RedriveExecutionRequest(
        tenant_id=coordinator.tenant_id,
        execution_id=execution_id,
        allow_failed=allow_failed,
        request_id=str(uuid.uuid4()),
    )
    if expected_version is not None:
        request.expected_version = expected_version
    if reason is not None:
        request.reason = reason
    if target_release_version is not None:
        request.target_release_version = target_release_version
    if replacement_input is not None:
        request.replacement_input.CopyFrom(await asyncio.to_thread(envelope_of, replacement_input))
    response = await coordinator.dead_letters.RedriveExecution(
        request, timeout=coordinator.timeout_s
    )
    heading = (
        f"redrove execution {response.execution_id}: "
        f"{output.execution_status(response.previous_status)} → "
        f"{output.execution_status(response.status)}"
    )
    details = output.key_values(
        [
            ("execution", response.execution_id),
            ("status", output.execution_status(response.status)),
            ("previous status", output.execution_status(response.previous_status)),
            ("step", str(response.current_step_index)),
            ("attempt", str(response.attempt)),
            ("version", str(response.version)),
            ("pipeline", response.pipeline_id),
            ("release version", response.release_version),
            ("contract version", response.contract_version),
            ("updated", output.timestamp(response.updated_at_epoch_ms)),
        ]
    )
    return Report(response, f"{heading}\n{details}")


async def bulk_redrive(
    coordinator: Coordinator,
    dead_letter_filter: pb.DeadLetterFilter,
    *,
    dry_run: bool,
    max_executions: int,
    batch_size: int,
    reason: str,
    target_release_version: str | None,
    progress: Progress,
) -> Report:
    """Redrive the executions of matching open dead letters, `batch_size` per call, reporting
    progress after each call; with `dry_run`, one call that changes nothing.

    Every batch selects from the dead letters that existed when the command started (the
    filter's upper creation bound is pinned just after the newest one), so an execution that
    fails again while the command runs is not redriven a second time.
    """

    async def call(request_filter: pb.DeadLetterFilter, limit: int) -> pb.BulkRedriveResponse:
        request = pb.BulkRedriveRequest(
            tenant_id=coordinator.tenant_id,
            filter=request_filter,
            dry_run=dry_run,
            max_executions=limit,
            reason=reason or (DRY_RUN_REASON if dry_run else ""),
            request_id="" if dry_run else str(uuid.uuid4()),
        )
        if target_release_version is not None:
            request.target_release_version = target_release_version
        response: pb.BulkRedriveResponse = await coordinator.dead_letters.BulkRedrive(
            request, timeout=coordinator.timeout_s
        )
        return response

    if dry_run:
        response = await call(dead_letter_filter, min(max_executions, MAX_PER_CALL))
        return Report(response, output.bulk_redrive_summary(response))

    pinned = await _pinned_to_now(coordinator, dead_letter_filter)
    matched: int | None = None
    redriven: list[str] = []
    failures: dict[str, pb.BulkRedriveFailure] = {}
    while len(redriven) < max_executions:
        batch = await call(pinned, min(batch_size, max_executions - len(redriven)))
        if matched is None:
            matched = batch.matched_count
        redriven.extend(batch.execution_ids)
        # An execution that could not be redriven stays selected; later batches try it again.
        failures.update((failure.execution_id, failure) for failure in batch.failures)
        for execution_id in batch.execution_ids:
            failures.pop(execution_id, None)
        goal = min(matched, max_executions)
        progress(
            f"bulk redrive: {len(redriven)}/{goal} redriven, {len(failures)} not redriven "
            f"({matched} matched)"
        )
        if batch.redriven_count == 0:
            break
        if batch.redriven_count + len(batch.failures) >= batch.matched_count:
            break  # this batch took every match that was left
    total = pb.BulkRedriveResponse(
        matched_count=matched or 0,
        redriven_count=len(redriven),
        execution_ids=redriven,
        failures=list(failures.values()),
        dry_run=False,
    )
    return Report(total, output.bulk_redrive_summary(total))


async def _pinned_to_now(
    coordinator: Coordinator, dead_letter_filter: pb.DeadLetterFilter
) -> pb.DeadLetterFilter:
    """`dead_letter_filter` bounded to dead letters created up to the newest open match now
    (by the coordinator's clock), unchanged when nothing matches."""
    newest = await coordinator.dead_letters.ListDeadLetters(
        pb.ListDeadLettersRequest(
            tenant_id=coordinator.tenant_id, filter=dead_letter_filter, page_size=1
        ),
        timeout=coordinator.timeout_s,
    )
    if not newest.dead_letters:
        return dead_letter_filter
    cutoff_ms = newest.dead_letters[0].created_at_epoch_ms + 1
    pinned = pb.DeadLetterFilter()
    pinned.CopyFrom(dead_letter_filter)
    if not pinned.HasField("created_before") or pinned.created_before.ToMilliseconds() > cutoff_ms:
        pinned.created_before.FromMilliseconds(cutoff_ms)
    return pinned
