"""`tpf-registry migrate` / `tpf-coordinator migrate`: the schema once per rollout.

The production overlay runs the command as an init container and the server with
TPF_MIGRATE_ON_START=false: the server must then refuse a schema that is behind (naming the
command), the commands of several pods at once must apply each file once, and the server must
start on the schema they leave.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.harness.services import minimal_environment
from tests.support.registry_client import auth_env
from tpf_store import load_migrations

pytestmark = pytest.mark.e2e

# (module, component and package of its migrations)
SERVICES = [("tpf_registry", "registry"), ("tpf_coordinator", "coordinator")]
TIMEOUT_S = 60


async def run(module: str, env: dict[str, str], *args: str) -> tuple[int, str]:
    """`python -m <module> <args>` to its end: exit code and output (stdout and stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def environment(database: str, tmp_path: Path) -> dict[str, str]:
    return {
        **minimal_environment(),
        "TPF_DATABASE_URL": database,
        "TPF_DATA_DIR": str(tmp_path / "data"),
        "TPF_MIGRATE_ON_START": "false",
        # The coordinator needs a registry only once it admits work.
        "TPF_REGISTRY_TARGET": "127.0.0.1:9",
        **auth_env(),
    }


async def applied_versions(database: str, component: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(database) as conn:
        cursor = await conn.execute(
            "SELECT version FROM schema_version WHERE component = %s ORDER BY version",
            (component,),
        )
        return [row[0] for row in await cursor.fetchall()]


@pytest.mark.parametrize(("module", "component"), SERVICES)
async def test_a_server_that_may_not_migrate_refuses_an_empty_schema_and_names_the_command(
    module: str, component: str, empty_database: str, tmp_path: Path
) -> None:
    code, output = await run(module, environment(empty_database, tmp_path))
    assert code == 2, output
    assert f"run `tpf-{component} migrate` first" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(("module", "component"), SERVICES)
async def test_migrate_commands_at_once_apply_every_file_once_and_the_server_then_starts(
    module: str, component: str, empty_database: str, tmp_path: Path, start_service: Any
) -> None:
    env = environment(empty_database, tmp_path)
    # Two pods' init containers starting together: one applies every file, the other waits on
    # the advisory lock and finds nothing left.
    runs = await asyncio.gather(*(run(module, env, "migrate") for _ in range(2)))
    assert [code for code, _ in runs] == [0, 0], runs
    expected = [m.version for m in load_migrations(module)]
    assert await applied_versions(empty_database, component) == expected
    assert sum(output.count("applied migration") for _, output in runs) == len(expected), runs
    assert all("migrations up to date" in output for _, output in runs), runs

    # start_service waits for SERVING; the server found the schema current and changed nothing.
    server = start_service(module, env)
    assert "applied migration" not in server.log_text()
