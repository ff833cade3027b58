"""A start line for bench processes that run side by side: each one waits at it until all have
arrived, so that their timed windows begin together and share the machine alike.

`observability_cost --side-by-side` starts the off and the on bench at once; on a machine that
other work shares, whatever else runs then falls on both windows alike, which sequential runs
minutes apart cannot promise.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

_POLL_S = 0.02


async def wait_at_start_line(
    directory: Path, party: str, parties: int, *, timeout_s: float = 900.0
) -> float:
    """Mark `party` as arrived in `directory` and wait until `parties` have; returns the
    seconds waited. Raises TimeoutError when the others do not come."""
    _arrive(directory, party)
    started = time.monotonic()
    while _arrived(directory) < parties:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{parties} parties did not reach {directory} in {timeout_s:.0f} s")
        await asyncio.sleep(_POLL_S)
    return time.monotonic() - started


# Local directory operations of a few microseconds: not worth a thread.
def _arrive(directory: Path, party: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / party).touch()


def _arrived(directory: Path) -> int:
    return sum(1 for _ in directory.iterdir())
