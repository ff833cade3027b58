"""`--py-spy PATH`: py-spy on chosen service processes for a timed window.

py-spy samples a process from outside (`--nonblocking`, so the process is never paused); it
still costs CPU on the same cores, so a profiled run's figures are not the benchmark's. The
raw collapsed stacks stay next to the run's logs; the result keeps the top functions.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Profiler:
    process: asyncio.subprocess.Process
    output: Path


async def start_profiler(py_spy: str, pid: int, output: Path, rate: int = 200) -> Profiler:
    process = await asyncio.create_subprocess_exec(
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        str(rate),
        "--nonblocking",
        "--output",
        str(output),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Profiler(process, output)


async def stop_profiler(profiler: Profiler) -> dict[str, Any]:
    profiler.process.send_signal(signal.SIGINT)
    await asyncio.wait_for(profiler.process.wait(), 30)
    text = await asyncio.to_thread(profiler.output.read_text, errors="replace")
    return hotspots_of(text)


def hotspots_of(collapsed: str, top: int = 25) -> dict[str, Any]:
    """Top functions of py-spy's collapsed stacks: self samples and inclusive samples."""
    self_samples: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        self_samples[frames[-1]] = self_samples.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(frame, round(100 * n / max(1, total), 1)) for frame, n in best]

    return {"samples": total, "self_pct": ranked(self_samples), "inclusive_pct": ranked(inclusive)}
