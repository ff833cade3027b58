"""bench/scale_load.py clones a parked execution and a dead letter into the migrated coordinator
schema: every row of the template, new ids everywhere they occur, the invariants intact."""

from __future__ import annotations

import psycopg

from bench import scale_load

TENANT = "bench"
PARKED = "tpl-parked-0000"
DEAD = "tpl-dead-0000"
UNIT = "0a1b2c3d-0000-4000-8000-000000000001"
INTERACTION = "0a1b2c3d-0000-4000-8000-000000000002"
CORRELATION = "0a1b2c3d-0000-4000-8000-000000000003"

_HISTORY = """
INSERT INTO execution_history (tenant_id, execution_id, version, event, from_status, to_status,
                               step_index, attempt, actor, release_version, occurred_at_ms)
VALUES (%(t)s, %(e)s, 0, 'SUBMITTED', NULL, 'QUEUED', 0, 0, 'client', 'r1', 1),
       (%(t)s, %(e)s, 1, 'CLAIMED', 'QUEUED', 'RUNNING', 0, 0, 'dispatcher', 'r1', 2),
       (%(t)s, %(e)s, 2, %(last)s, 'RUNNING', %(status)s, 0, 0, 'worker', 'r1', 3)
"""
_EXECUTION = """
INSERT INTO executions (tenant_id, execution_id, pipeline_id, contract_version, release_version,
                        status, version, input_shape, result_shape, idempotency_key,
                        input_fingerprint, next_due_at_ms, error_code, terminal_reason,
                        await_unit_id, payload, created_at_ms, updated_at_ms)
VALUES (%(t)s, %(e)s, %(p)s, 'c1', 'r1', %(status)s, 2, 'UNI', 'SINGLE', %(key)s, 'f',
        9223372036854775807, %(code)s, %(reason)s, %(unit)s, '{"n":1}', 1, 3)
"""


def _templates(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            _EXECUTION,
            {
                "t": TENANT,
                "e": PARKED,
                "p": "p.w3",
                "status": "WAITING_EXTERNAL",
                "key": "key-parked-template",
                "code": None,
                "reason": "",
                "unit": UNIT,
            },
        )
        conn.execute(
            _HISTORY,
            {"t": TENANT, "e": PARKED, "last": "AWAIT_REQUESTED", "status": "WAITING_EXTERNAL"},
        )
        conn.execute(
            "INSERT INTO await_units (tenant_id, unit_id, execution_id, step_id, step_index, "
            "status, primary_interaction_id, deadline_ms, created_at_ms, updated_at_ms, "
            "item_interaction_ids) VALUES (%s, %s, %s, 'Await', 0, 'WAITING_EXTERNAL', %s, "
            "4000000000000, 3, 3, ARRAY[%s])",
            (TENANT, UNIT, PARKED, INTERACTION, INTERACTION),
        )
        conn.execute(
            "INSERT INTO interactions (tenant_id, interaction_id, unit_id, execution_id, step_id, "
            "step_index, correlation_id, idempotency_key, status, request_payload, deadline_ms, "
            "created_at_ms, updated_at_ms) VALUES (%s, %s, %s, %s, 'Await', 0, %s, %s, "
            "'WAITING', %s, 4000000000000, 3, 3)",
            (
                TENANT,
                INTERACTION,
                UNIT,
                PARKED,
                CORRELATION,
                f"{PARKED}:AwaitService",
                f'{{"executionId": "{PARKED}"}}',
            ),
        )
        conn.execute(
            _EXECUTION,
            {
                "t": TENANT,
                "e": DEAD,
                "p": "p.dead",
                "status": "FAILED",
                "key": "key-dead-template",
                "code": "NonRetryableException",
                "reason": "non_retryable",
                "unit": "",
            },
        )
        conn.execute(_HISTORY, {"t": TENANT, "e": DEAD, "last": "FAILED", "status": "FAILED"})
        conn.execute(
            "INSERT INTO dead_letters (tenant_id, execution_id, execution_version, pipeline_id, "
            "contract_version, release_version, step_index, attempt, transition_key, "
            "terminal_reason, error_code, error_message, retryable, created_at_ms) VALUES "
            "(%s, %s, 2, 'p.dead', 'c1', 'r1', 0, 0, %s, 'non_retryable', "
            "'NonRetryableException', 'always fails', false, 3)",
            (TENANT, DEAD, f"{DEAD}:0:0"),
        )


def test_clones_hold_every_row_with_new_ids_and_the_invariants(database: str) -> None:
    _templates(database)
    parked = scale_load.clone(
        database, tenant=TENANT, template=PARKED, count=50, tag="parked", batch=20
    )
    dead = scale_load.clone(database, tenant=TENANT, template=DEAD, count=30, tag="dead", batch=7)
    assert parked.rows == {
        "executions": 50,
        "execution_history": 150,
        "await_units": 50,
        "interactions": 50,
        "dead_letters": 0,
    }
    assert dead.rows["executions"] == 30
    assert dead.rows["execution_history"] == 90
    assert dead.rows["dead_letters"] == 30
    assert scale_load.verify(database) == {
        "version_gaps": 0,
        "dead_letters_without_failed_transition": 0,
        "parked_with_pending_interaction": 51,
        "open_dead_letters": 31,
    }
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT e.execution_id, e.idempotency_key, u.unit_id, u.item_interaction_ids, "
            "i.interaction_id, i.correlation_id, i.idempotency_key, i.request_payload "
            "FROM executions e JOIN await_units u ON u.unit_id = e.await_unit_id "
            "JOIN interactions i ON i.unit_id = u.unit_id WHERE e.execution_id <> %s",
            (PARKED,),
        ).fetchall()
        keys = conn.execute(
            "SELECT count(DISTINCT idempotency_key), count(*) FROM executions"
        ).fetchone()
        transition_keys = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE transition_key = execution_id || ':0:0'"
        ).fetchone()
    assert len(rows) == 50
    templates = {PARKED, UNIT, INTERACTION, CORRELATION, "key-parked-template"}
    for execution, key, unit, items, interaction, correlation, step_key, payload in rows:
        assert not templates & {execution, key, unit, interaction, correlation}
        assert items == [interaction]
        assert step_key == f"{execution}:AwaitService"  # built from the id, keeps its shape
        assert payload == {"executionId": execution}
    assert len({r[0] for r in rows}) == 50
    assert keys == (82, 82)
    assert transition_keys == (31,)
