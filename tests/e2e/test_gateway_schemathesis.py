"""Schemathesis over the gateway's own OpenAPI document, against the live gateway in front of a
real registry and coordinator: whatever it sends, no answer is a 5xx.

Every operation of the document is run, with strings as the schema draws them and, through
`schemathesis_long_strings`, long ones (past the identifier limit, thousands of characters,
past what a URL line may hold, non-ASCII): at least MIN_CASES cases in all (about 2,500 in
70 s on a busy 2-core machine). TPF_SCHEMATHESIS_EXAMPLES raises the examples per operation
for a longer local run. Both API families get the same token here, as in TPF's demo, so every
operation is reached past the guard.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_gateway_routes import running_gateway
from tests.support.registry_client import ADMIN

pytestmark = pytest.mark.e2e

# One token for both families, known to the services too (the gateway forwards it).
TOKEN = ADMIN
MIN_CASES = 1_000
EXAMPLES_PER_OPERATION = int(os.environ.get("TPF_SCHEMATHESIS_EXAMPLES", "25"))
# A bound on the whole run, not a budget it fills: with --max-time schemathesis would keep
# fuzzing until the time is spent.
RUN_TIMEOUT_S = 240
HOOKS = "tests.e2e.schemathesis_long_strings"


async def test_schemathesis_finds_no_server_errors(
    suite: Suite, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    log_path = tmp_path / "schemathesis.log"
    async with running_gateway(
        suite,
        tmp_path,
        pytestconfig.rootpath,
        TPF_CONTROL_PLANE_TOKEN=TOKEN,
        TPF_ADMIN_TOKEN=TOKEN,
    ) as gateway:
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{gateway.base_url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                # One worker: schemathesis' coverage phase is not thread-safe on Python 3.11
                # (a SystemError from CPython's AST parser, seen with two).
                "--workers",
                "1",
                "--seed",
                "7",
                "--no-shrink",
                "--generation-database",
                "none",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--no-color",
                "--report-dir",
                str(tmp_path / "schemathesis"),
                cwd=tmp_path,
                env={
                    **os.environ,
                    "SCHEMATHESIS_HOOKS": HOOKS,
                    "PYTHONPATH": str(pytestconfig.rootpath),
                },
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                await asyncio.wait_for(process.wait(), timeout=RUN_TIMEOUT_S)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    text = log_path.read_text(errors="replace")
    assert process.returncode == 0, text[-6000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", text)
    tested = re.search(r"Tested: (\d+)", text)
    generated = re.search(r"(\d+) generated", text)
    assert selected and tested and generated, text[-3000:]
    assert int(selected[1]) == int(selected[2]) == int(tested[1]), "every route is run"
    assert int(generated[1]) >= MIN_CASES, text[-3000:]
