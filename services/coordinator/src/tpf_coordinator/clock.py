"""Wall-clock time in epoch milliseconds (the unit of every stored time)."""

from __future__ import annotations

import time


def system_now_ms() -> int:
    return time.time_ns() // 1_000_000
