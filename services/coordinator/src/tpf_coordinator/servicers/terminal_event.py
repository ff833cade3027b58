"""tpf.coordinator.v1.TerminalEventService."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from tpf.coordinator.v1 import terminal_event_pb2 as tepb
from tpf.coordinator.v1 import terminal_event_service_pb2 as pb
from tpf.coordinator.v1 import terminal_event_service_pb2_grpc
from tpf_coordinator.domain.event_feed import (
    MAX_CONSUMER_ID_CHARS,
    EventCursor,
    FeedPosition,
    TenantSet,
    TerminalEvent,
)
from tpf_coordinator.servicers.access import CONTROL_PLANE_ROLES
from tpf_coordinator.servicers.convert import STATUS_TO_PROTO
from tpf_coordinator.terminal_events import TerminalEventFeed
from tpf_errors import InvalidArgument, PermissionDenied
from tpf_rpc.auth import ALL_TENANTS, Principal, current_principal
from tpf_rpc.validation import required

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_MAX_EVENTS = 100
MAX_EVENTS = 1000
MAX_WAIT_MS = 60_000


class TerminalEventServicer(terminal_event_service_pb2_grpc.TerminalEventServiceServicer):
    def __init__(self, feed: TerminalEventFeed) -> None:
        self._feed = feed

    async def PollTerminalEvents(
        self, request: pb.PollTerminalEventsRequest, context: Context
    ) -> pb.PollTerminalEventsResponse:
        tenants = _readable_tenants(request.tenant_ids)
        after = (
            FeedPosition.parse(request.after_position, field="afterPosition")
            if request.after_position.strip()
            else FeedPosition.start()
        )
        page = await self._feed.poll(
            after,
            tenants,
            limit=_max_events(request.max_events),
            wait_ms=_wait_ms(request),
        )
        return pb.PollTerminalEventsResponse(
            events=[_event_to_proto(event) for event in page.events],
            next_position=str(page.next_position),
        )

    async def OpenEventCursor(
        self, request: pb.OpenEventCursorRequest, context: Context
    ) -> pb.OpenEventCursorResponse:
        tenants = _readable_tenants(request.tenant_ids)
        cursor, created = await self._feed.open_cursor(
            _consumer_id(request.consumer_id), tenants, actor=current_principal().subject
        )
        return pb.OpenEventCursorResponse(cursor=_cursor_to_proto(cursor), created=created)

    async def AdvanceEventCursor(
        self, request: pb.AdvanceEventCursorRequest, context: Context
    ) -> pb.AdvanceEventCursorResponse:
        tenants = _readable_tenants(request.tenant_ids)
        consumer_id = _consumer_id(request.consumer_id)
        position = FeedPosition.parse(required(request.position, "position"), field="position")
        cursor, advanced = await self._feed.advance_cursor(
            consumer_id, tenants, position, actor=current_principal().subject
        )
        return pb.AdvanceEventCursorResponse(cursor=_cursor_to_proto(cursor), advanced=advanced)


def _readable_tenants(requested: Sequence[str]) -> TenantSet:
    """The tenants a feed call covers: those requested, each in the token's scope; none
    requested means every tenant in the scope (all of them for a `*` token)."""
    principal = current_principal()
    principal.require_any_role(CONTROL_PLANE_ROLES)
    tenants = tuple(tenant.strip() for tenant in requested)
    if tenants:
        for tenant in tenants:
            required(tenant, "tenantIds")
            principal.require_tenant(tenant)
        return TenantSet.of(tenants)
    return _scope_of(principal)


def _scope_of(principal: Principal) -> TenantSet:
    if ALL_TENANTS in principal.tenants:
        return TenantSet(())
    if not principal.tenants:
        # An empty set would read as "every tenant"; a grant always names one, but be sure.
        raise PermissionDenied(
            "TENANT_NOT_IN_SCOPE", "This token is scoped to no tenant; use a token for one."
        )
    return TenantSet.of(tuple(principal.tenants))


def _consumer_id(value: str) -> str:
    consumer_id = required(value, "consumerId")
    if len(consumer_id) > MAX_CONSUMER_ID_CHARS:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE",
            f"consumerId has {len(consumer_id)} characters; use at most {MAX_CONSUMER_ID_CHARS}.",
            field="consumerId",
            max=MAX_CONSUMER_ID_CHARS,
        )
    return consumer_id


def _max_events(value: int) -> int:
    if value < 0:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE",
            f"Set maxEvents between 0 and {MAX_EVENTS} (0 means {DEFAULT_MAX_EVENTS}); "
            f"got {value}.",
            field="maxEvents",
            value=value,
        )
    return DEFAULT_MAX_EVENTS if value == 0 else min(value, MAX_EVENTS)


def _wait_ms(request: pb.PollTerminalEventsRequest) -> int:
    wait_ms = request.wait.ToMilliseconds() if request.HasField("wait") else 0
    if not 0 <= wait_ms <= MAX_WAIT_MS:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE",
            f"Set wait between 0 and {MAX_WAIT_MS // 1000} s; got {wait_ms} ms.",
            field="wait",
            value=wait_ms,
        )
    return wait_ms


def _event_to_proto(event: TerminalEvent) -> tepb.TerminalEvent:
    message = tepb.TerminalEvent(
        position=str(event.position),
        tenant_id=event.tenant_id,
        execution_id=event.execution_id,
        pipeline_id=event.pipeline_id,
        release_version=event.release_version,
        status=STATUS_TO_PROTO[event.status],
        version=event.version,
        updated_at_epoch_ms=event.updated_at_ms,
        terminal_reason=event.terminal_reason,
    )
    if event.error_code is not None:
        message.error_code = event.error_code
    if event.error_message is not None:
        message.error_message = event.error_message
    return message


def _cursor_to_proto(cursor: EventCursor) -> tepb.EventCursor:
    return tepb.EventCursor(
        consumer_id=cursor.consumer_id,
        tenant_ids=list(cursor.tenants.tenant_ids),
        position=str(cursor.position),
        version=cursor.version,
        updated_at_epoch_ms=cursor.updated_at_ms,
    )
