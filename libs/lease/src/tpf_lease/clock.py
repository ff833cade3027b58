"""Time as a dependency, so lease expiry can be tested by moving a clock rather than waiting."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time, epoch milliseconds."""
        ...


class SystemClock:
    """Wall-clock time: lease expiries are epoch milliseconds shared with the executions row."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000
