"""Fixtures every test suite can use. The servers behind them live in tests/harness/."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# No per-example deadline: on a loaded CI machine a slow example is not a failure (timing lives
# in bench/, never in tests).
settings.register_profile("tpf", deadline=None)
settings.load_profile("tpf")

# Tests start servers (postgres, services) with fork+exec from a process whose gRPC threads are
# busy; gRPC's fork handlers then skip their work and, rarely, the child dies of SIGSEGV before
# it execs (seen once as "postgres exited during startup with code -11"). Nothing here needs
# gRPC to survive a fork, so turn its fork support off before gRPC starts.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

pytest_plugins = [
    "tests.harness.postgres",
    "tests.harness.redis",
    "tests.harness.moto",
    "tests.harness.services",
]

# (component, package holding migrations/), migrated in this order into the template database
# that every `database` fixture copies. Append a service here when it gains migrations.
MIGRATION_COMPONENTS: list[tuple[str, str]] = [
    ("registry", "tpf_registry"),
    ("coordinator", "tpf_coordinator"),
]


@pytest.fixture(scope="session")
def migration_components() -> list[tuple[str, str]]:
    """The schemas `database` provides; a fixture so that a suite's conftest can narrow it."""
    return MIGRATION_COMPONENTS


# `make test` (CI) sets TPF_FAIL_ON_SKIP=1: a test that needs a tool gets it from make test's own
# install steps, so a skipped test there means a missing install step, not an optional test.
FAIL_ON_SKIP_ENV = "TPF_FAIL_ON_SKIP"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get(FAIL_ON_SKIP_ENV) != "1" or exitstatus != pytest.ExitCode.OK:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped:
        reporter.write("\n")
        for report in skipped:
            reporter.write_line(f"SKIPPED under {FAIL_ON_SKIP_ENV}=1: {report.nodeid}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
