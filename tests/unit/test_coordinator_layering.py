"""The coordinator's layers (docs/design.md): servicers and use cases depend on the store's
protocols (store/protocol.py) and records (store/records.py), never on a Postgres module; only
the composition root (server.py, __main__.py) wires the Postgres implementations in."""

from __future__ import annotations

import ast
from pathlib import Path

import tpf_coordinator

PACKAGE = Path(tpf_coordinator.__file__).parent
STORE = "tpf_coordinator.store"
# What a servicer or use case may import from the store package.
STORE_INTERFACE = {f"{STORE}.protocol", f"{STORE}.records"}
# The composition root: where the implementations are chosen.
ROOT = {"server.py", "__main__.py"}
# Adapters outside store/ that talk to Postgres themselves (LISTEN needs its own connection).
DRIVER_ADAPTERS = {"notifications.py"}
DRIVERS = ("psycopg", "psycopg_pool", "tpf_store")
# The mapping of a database outage to an error answer is not database access.
DRIVER_ERRORS = "tpf_store.errors"


def _modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "store" and path.name not in ROOT
    )


def _imports(path: Path) -> set[str]:
    """Every module the file imports, `from x import y` counted as both x and x.y (y may be a
    module of package x)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _store_modules_imported(path: Path) -> set[str]:
    imported = _imports(path)
    store_modules = {
        name
        for name in imported
        if name.startswith(f"{STORE}.") and name.count(".") == STORE.count(".") + 1
    }
    return store_modules - STORE_INTERFACE


def test_the_scan_sees_the_servicers_and_use_cases() -> None:
    names = {path.relative_to(PACKAGE).as_posix() for path in _modules()}
    assert {"servicers/work.py", "executions.py", "work.py", "sweeper.py"} <= names
    assert "server.py" not in names


def test_servicers_and_use_cases_import_only_the_store_protocols_and_records() -> None:
    offenders = {
        path.relative_to(PACKAGE).as_posix(): sorted(found)
        for path in _modules()
        if (found := _store_modules_imported(path))
    }
    assert offenders == {}, "import store.protocol / store.records instead, wire in server.py"


def test_only_the_store_and_its_adapters_import_the_database_driver() -> None:
    offenders = {
        path.relative_to(PACKAGE).as_posix(): sorted(found)
        for path in _modules()
        if path.name not in DRIVER_ADAPTERS
        and (
            found := {
                name
                for name in _imports(path)
                if (name in DRIVERS or name.startswith(tuple(f"{d}." for d in DRIVERS)))
                and not name.startswith(DRIVER_ERRORS)
            }
        )
    }
    assert offenders == {}


def test_the_scan_would_catch_a_postgres_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from tpf_coordinator.store import work_postgres\n"
        "from tpf_coordinator.store.records import ExecutionRecord\n"
        "import tpf_coordinator.store.transitions_sql\n"
    )
    assert _store_modules_imported(sample) == {
        f"{STORE}.work_postgres",
        f"{STORE}.transitions_sql",
    }
