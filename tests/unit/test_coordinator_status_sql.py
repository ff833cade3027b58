"""Statuses in the coordinator's SQL come from the domain enums. Lists that are partial index
predicates are literals rendered from the enums (store/status_sql.py); a status literal still
spelled out in a statement must name a status of the enums, and a literal list must be one of
the rendered sets, so a renamed or added status cannot leave a query behind."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from psycopg import sql

import tpf_coordinator.store
from tpf_coordinator.domain.interactions import AwaitUnitStatus, InteractionStatus
from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.store import status_sql
from tpf_coordinator.store.executions_postgres import CANCEL_INTERACTIONS
from tpf_coordinator.store.work_postgres import CLAIM_RUNNABLE

STATUS_NAMES = {
    status.value
    for enum in (ExecutionStatus, InteractionStatus, AwaitUnitStatus)
    for status in enum
}
RENDERED_SETS = {
    name: value
    for name, value in vars(status_sql).items()
    if name.isupper() and isinstance(value, str) and not name.startswith("_")
}
_LITERAL = re.compile(r"'([A-Z][A-Z_]+)'")
_IN_LIST = re.compile(r"\bIN\s*\(\s*('[^()]*')\s*\)")


def _statements() -> dict[str, str]:
    """Every module-level SQL text of the store package, by module and name."""
    found: dict[str, str] = {}
    for module_info in pkgutil.iter_modules(tpf_coordinator.store.__path__):
        module = importlib.import_module(f"tpf_coordinator.store.{module_info.name}")
        for name, value in vars(module).items():
            if not name.isupper() or module_info.name == "status_sql":
                continue
            text = value.as_string(None) if isinstance(value, sql.Composable) else value
            if isinstance(text, str) and re.search(r"\b(SELECT|UPDATE|INSERT|DELETE)\b", text):
                found[f"{module_info.name}.{name}"] = text
    return found


STATEMENTS = _statements()


def test_the_store_statements_are_found() -> None:
    assert {"work_postgres.CLAIM_RUNNABLE", "metrics_postgres.BACKLOG"} <= set(STATEMENTS)


def test_the_rendered_sets_are_the_enums_sets_in_enum_order() -> None:
    def names(text: str) -> list[str]:
        return _LITERAL.findall(text)

    assert names(status_sql.RUNNABLE) == [s.value for s in ExecutionStatus if s.is_runnable]
    assert names(status_sql.TERMINAL) == [s.value for s in ExecutionStatus if s.is_terminal]
    assert names(status_sql.NON_TERMINAL) == [s.value for s in ExecutionStatus if not s.is_terminal]
    assert names(status_sql.PENDING_INTERACTIONS) == [
        s.value for s in InteractionStatus if not s.is_terminal
    ]
    assert names(status_sql.EXPIRABLE_INTERACTIONS) == [
        "COMPLETED",
        "FAILED",
        "TIMED_OUT",
        "CANCELLED",
    ]


@pytest.mark.parametrize("where", sorted(STATEMENTS))
def test_every_status_literal_names_a_status_of_the_enums(where: str) -> None:
    assert set(_LITERAL.findall(STATEMENTS[where])) <= STATUS_NAMES


@pytest.mark.parametrize("where", sorted(STATEMENTS))
def test_every_literal_status_list_is_a_rendered_set(where: str) -> None:
    for listed in _IN_LIST.findall(STATEMENTS[where]):
        assert re.sub(r"\s+", " ", listed) in RENDERED_SETS.values(), (where, listed)


def test_the_claim_and_the_cancel_name_the_sets_they_mean() -> None:
    """Statements still written with literals (kept so while their SQL is tuned)."""
    assert f"status IN ({status_sql.RUNNABLE})" in CLAIM_RUNNABLE
    assert f"SET status = '{ExecutionStatus.RUNNING.value}'" in CLAIM_RUNNABLE
    assert f"status IN ({status_sql.PENDING_INTERACTIONS})" in CANCEL_INTERACTIONS


def test_a_list_that_is_no_rendered_set_is_caught() -> None:
    assert _IN_LIST.findall("WHERE status IN ('QUEUED', 'RUNNING') AND x") == [
        "'QUEUED', 'RUNNING'"
    ]
    assert "'QUEUED', 'RUNNING'" not in RENDERED_SETS.values()


def test_a_status_list_must_be_names() -> None:
    with pytest.raises(ValueError):
        status_sql.literals([])
