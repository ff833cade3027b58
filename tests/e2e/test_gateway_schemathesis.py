"""Schemathesis over the gateway's own OpenAPI document, against the live gateway in front of a
real registry and coordinator: whatever it sends, no answer is a 5xx.

Bounded (few examples per operation, a time budget, one worker) so the run stays under a
minute. Both API families get the same token here, as in TPF's demo, so every operation is
reached past the guard.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_gateway_routes import running_gateway
from tests.support.registry_client import ADMIN

pytestmark = pytest.mark.e2e

# One token for both families, known to the services too (the gateway forwards it).
TOKEN = ADMIN
TIME_BUDGET_S = 45


async def test_schemathesis_finds_no_server_errors(
    suite: Suite, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    async with running_gateway(
        suite,
        tmp_path,
        pytestconfig.rootpath,
        TPF_CONTROL_PLANE_TOKEN=TOKEN,
        TPF_ADMIN_TOKEN=TOKEN,
    ) as gateway:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{gateway.base_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "5",
            "--max-time",
            str(TIME_BUDGET_S),
            "--workers",
            "1",
            "--seed",
            "7",
            "--no-shrink",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--no-color",
            "--report-dir",
            str(tmp_path / "schemathesis"),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=TIME_BUDGET_S + 60)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
