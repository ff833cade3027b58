"""Bulk-load parked executions and dead letters into the coordinator's database.

The scaled runs (`*-scaled`) measure the hot path next to a large idle backlog: by default
1,000,000 executions parked at an await (WAITING_EXTERNAL, with their await unit and pending
interaction) and 100,000 dead letters (FAILED executions with their dead-letter row). Driving
that many through the services would take hours, so each kind is made once for real (one
execution run by the suite: it parks, or its step fails for good) and then cloned with
set-based SQL, `generate_series` in batches, straight into the tables:

* every row of the template execution (executions, execution_history, await_units,
  interactions, dead_letters) is copied once per clone, in one statement per table and batch;
* every identifier of the template (execution, await unit, interaction, correlation and
  idempotency ids) is replaced wherever it occurs (text, text[] and jsonb columns) by a
  UUID-shaped id derived from the clone's number, so unique indexes hold;
* identity columns get new values and `execution_history.xact_id` its default, so the clones
  are what the coordinator itself would have written: same statuses, versions 0..version with
  one history row each, one dead letter per FAILED transition. The columns are read from the
  catalog, so a migration that adds columns does not break the loader.

The clones keep the template's timestamps and deadlines (the await's is an hour away), and the
loader checks the invariants afterwards (`verify`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Tables in insert order (interactions reference await_units), with the column naming the
# execution a row belongs to.
_TABLES = ("executions", "execution_history", "await_units", "interactions", "dead_letters")
# Columns whose values are identifiers to replace in the clones.
_ID_COLUMNS = {
    "executions": ("execution_id", "idempotency_key", "await_unit_id"),
    "await_units": ("unit_id", "primary_interaction_id"),
    "interactions": ("interaction_id", "correlation_id", "idempotency_key", "causation_id"),
}
# Written by the database itself (its default), never copied.
_DEFAULTED = {("execution_history", "xact_id")}
_TEXTUAL = {"text": "text", "character varying": "text", "jsonb": "jsonb"}


@dataclass(frozen=True)
class Column:
    name: str
    cast: str | None  # the type to cast back to after replacing ids in its text; None: copied


def columns_of(conn: psycopg.Connection[Any], table: str) -> list[Column]:
    rows = conn.execute(
        "SELECT column_name, data_type, udt_name, is_identity, is_generated "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    out = []
    for name, data_type, udt_name, identity, generated in rows:
        if identity == "YES" or generated == "ALWAYS" or (table, name) in _DEFAULTED:
            continue
        cast = _TEXTUAL.get(str(data_type))
        if data_type == "ARRAY" and udt_name == "_text":
            cast = "text[]"
        out.append(Column(str(name), cast))
    return out


def template_ids(conn: psycopg.Connection[Any], tenant: str, execution_id: str) -> list[str]:
    """The identifiers of one execution's rows to replace in its clones, longest first."""
    found: set[str] = {execution_id}
    for table, names in _ID_COLUMNS.items():
        columns = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        rows = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE tenant_id = %s AND execution_id = %s").format(
                columns, sql.Identifier(table)
            ),
            (tenant, execution_id),
        ).fetchall()
        found.update(str(v) for row in rows for v in row if v)
    # A value built from the execution id ("<id>:0:1") becomes unique with it, and keeps its
    # shape; short values (a causation id like "1") could match inside unrelated text.
    kept = {v for v in found if v == execution_id or (execution_id not in v and len(v) >= 8)}
    return sorted(kept, key=lambda v: (-len(v), v))


def template_texts(
    conn: psycopg.Connection[Any], table: str, columns: list[Column], tenant: str, template: str
) -> dict[str, list[str]]:
    """The template's values of the columns that may hold an id, as text, by column."""
    textual = [c for c in columns if c.cast is not None]
    if not textual:
        return {}
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE tenant_id = %s AND execution_id = %s").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in textual),
            sql.Identifier(table),
        ),
        (tenant, template),
    ).fetchall()
    return {c.name: [row[i] for row in rows if row[i]] for i, c in enumerate(textual)}


def _replaced(column: Column, ids: list[str], texts: list[str]) -> sql.Composable:
    source = sql.SQL("src.{}").format(sql.Identifier(column.name))
    # Only the ids that occur in the template's values of this column are replaced in it;
    # a column holding none is copied as it is (most are: statuses, payloads, timestamps).
    used = [(i, v) for i, v in enumerate(ids) if any(v in text for text in texts)]
    if column.cast is None or not used:
        return source
    expression: sql.Composable = sql.SQL("{}::text").format(source)
    for index, value in used:
        expression = sql.SQL("replace({}, {}, new.{})").format(
            expression, sql.Literal(value), sql.Identifier(f"id{index}")
        )
    return sql.SQL("({})::{}").format(expression, sql.SQL(column.cast))


def clone_statement(
    table: str, columns: list[Column], ids: list[str], texts: dict[str, list[str]], tag: str
) -> sql.Composed:
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    values = sql.SQL(", ").join(_replaced(c, ids, texts.get(c.name, [])) for c in columns)
    # md5(tag:index:n) as a UUID: unique per template id and clone, shaped like the coordinator's
    # ids, computed once per clone.
    new_ids = sql.SQL(", ").join(
        sql.SQL("md5({} || g)::uuid::text AS {}").format(
            sql.Literal(f"{tag}:{index}:"), sql.Identifier(f"id{index}")
        )
        for index in range(len(ids))
    )
    return sql.SQL(
        "INSERT INTO {table} ({names}) SELECT {values} FROM {table} AS src "
        "CROSS JOIN generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g "
        "CROSS JOIN LATERAL (SELECT {new_ids}) AS new "
        "WHERE src.tenant_id = %(tenant)s AND src.execution_id = %(template)s"
    ).format(table=sql.Identifier(table), names=names, values=values, new_ids=new_ids)


@dataclass
class Loaded:
    kind: str
    template: str
    clones: int
    seconds: float
    rows: dict[str, int]


def clone(
    url: str, *, tenant: str, template: str, count: int, tag: str, batch: int = 50_000
) -> Loaded:
    """`count` copies of execution `template` and all its rows, `batch` clones per transaction
    (each commit leaves whole executions: every invariant holds between batches)."""
    started = time.monotonic()
    rows = dict.fromkeys(_TABLES, 0)
    with psycopg.connect(url) as conn:
        ids = template_ids(conn, tenant, template)
        statements = []
        for table in _TABLES:
            columns = columns_of(conn, table)
            texts = template_texts(conn, table, columns, tenant, template)
            statements.append((table, clone_statement(table, columns, ids, texts, tag)))
        conn.commit()
        for lo in range(1, count + 1, batch):
            params = {"lo": lo, "hi": min(count, lo + batch - 1), "tenant": tenant}
            with conn.transaction():
                for table, statement in statements:
                    cursor = conn.execute(statement, {**params, "template": template})
                    rows[table] += max(0, cursor.rowcount)
    return Loaded(tag, template, count, time.monotonic() - started, rows)


# Every execution's history is versions 0..version, one row each (the suite's invariant).
_VERSION_GAPS = """
SELECT count(*) FROM executions e
LEFT JOIN (SELECT tenant_id, execution_id, count(*) AS n, min(version) AS lo, max(version) AS hi
           FROM execution_history GROUP BY tenant_id, execution_id) h
  ON h.tenant_id = e.tenant_id AND h.execution_id = e.execution_id
WHERE h.n IS NULL OR h.lo <> 0 OR h.hi <> e.version OR h.n <> e.version + 1
"""
# A dead letter names the version of the FAILED transition that wrote it.
_ORPHAN_DEAD_LETTERS = """
SELECT count(*) FROM dead_letters d
LEFT JOIN execution_history h ON h.tenant_id = d.tenant_id
  AND h.execution_id = d.execution_id AND h.version = d.execution_version AND h.event = 'FAILED'
WHERE h.id IS NULL
"""
_PARKED = """
SELECT count(*) FROM executions e
JOIN await_units u ON u.tenant_id = e.tenant_id AND u.unit_id = e.await_unit_id
  AND u.status = 'WAITING_EXTERNAL'
JOIN interactions i ON i.tenant_id = u.tenant_id AND i.unit_id = u.unit_id
  AND i.status IN ('WAITING', 'DISPATCHING', 'DISPATCHED')
WHERE e.status = 'WAITING_EXTERNAL'
"""
_OPEN_DEAD_LETTERS = "SELECT count(*) FROM dead_letters WHERE redriven_at_ms IS NULL"


def verify(url: str) -> dict[str, int]:
    """The invariants over the whole database after loading (a few seconds per million)."""
    with psycopg.connect(url, autocommit=True) as conn:
        # Fresh statistics first: planned for the tables' sizes before the load, the joins
        # below run as nested loops over a million rows.
        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, _TABLES))))

        def count(query: str) -> int:
            row = conn.execute(query).fetchone()
            return int(row[0]) if row else 0

        return {
            "version_gaps": count(_VERSION_GAPS),
            "dead_letters_without_failed_transition": count(_ORPHAN_DEAD_LETTERS),
            "parked_with_pending_interaction": count(_PARKED),
            "open_dead_letters": count(_OPEN_DEAD_LETTERS),
        }
