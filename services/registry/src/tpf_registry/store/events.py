"""The registry's append-only event log: one row per state change, in the change's transaction."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

INSERT_EVENT = """
INSERT INTO registry_events (
    tenant_id, pipeline_id, resource_kind, resource_id, event, version, actor, detail,
    occurred_at_ms)
VALUES (%(tenant_id)s, %(pipeline_id)s, %(kind)s, %(resource_id)s, %(event)s, %(version)s,
        %(actor)s, %(detail)s, %(now_ms)s)
"""


async def record_event(
    conn: AsyncConnection[Any],
    *,
    tenant_id: str,
    pipeline_id: str,
    kind: str,
    resource_id: str,
    event: str,
    version: int,
    actor: str,
    now_ms: int,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        INSERT_EVENT,
        {
            "tenant_id": tenant_id,
            "pipeline_id": pipeline_id,
            "kind": kind,
            "resource_id": resource_id,
            "event": event,
            "version": version,
            "actor": actor,
            "detail": Jsonb(detail or {}),
            "now_ms": now_ms,
        },
    )
