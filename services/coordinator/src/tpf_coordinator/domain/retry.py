"""Step retry policy: how many retries a step gets and how long to wait before each (DESIGN §5).

Defaults and arithmetic are TPF's (TPF_WIRE §10): `max-retries` 3 counted as retries after the
first attempt (`attempt + 1 <= max_retries`), base delay 10 s, multiplier 2.0 floored at 1.0,
delay(n) = min(base * multiplier**(n-1), cap). The cap is TPF's fixed 30 minutes by default; jitter
is ours and off by default, so default delays equal TPF's to the millisecond.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetrySettings:
    max_retries: int = 3
    initial_delay_ms: int = 10_000
    multiplier: float = 2.0
    max_delay_ms: int = 1_800_000
    # Fraction of the delay that may be taken off at random (0 = none, 0.2 = up to 20 % sooner).
    jitter: float = 0.0

    @classmethod
    def resolve(
        cls,
        max_retries: int | None = None,
        initial_delay_ms: int | None = None,
        multiplier: float | None = None,
        max_delay_ms: int | None = None,
        jitter: float | None = None,
    ) -> RetrySettings:
        """Settings from a step policy whose unset (None) values take the defaults.

        Out-of-range values are clamped, never refused: negative counts and delays become 0, the
        multiplier is floored at 1.0 (as TPF) and jitter is kept within 0..1.
        """
        defaults = cls()

        def pick_int(value: int | None, default: int) -> int:
            return default if value is None else max(0, value)

        def pick_float(value: float | None, default: float) -> float:
            return default if value is None or math.isnan(value) else value

        return cls(
            max_retries=pick_int(max_retries, defaults.max_retries),
            initial_delay_ms=pick_int(initial_delay_ms, defaults.initial_delay_ms),
            multiplier=max(1.0, pick_float(multiplier, defaults.multiplier)),
            max_delay_ms=pick_int(max_delay_ms, defaults.max_delay_ms),
            jitter=min(1.0, max(0.0, pick_float(jitter, defaults.jitter))),
        )

    def may_retry(self, attempt: int) -> bool:
        """Whether a retryable failure at `attempt` (0 = first run) is retried."""
        return attempt + 1 <= self.max_retries

    def delay_ms(self, next_attempt: int, random: Callable[[], float]) -> int:
        """Wait before attempt `next_attempt` (1 = first retry); `random` returns 0 <= r < 1."""
        # TPF: Math.max(0, nextAttempt - 1) as the exponent, and a (long) cast that truncates.
        exponent = max(0, next_attempt - 1)
        try:
            calculated = self.initial_delay_ms * max(1.0, self.multiplier) ** exponent
        except OverflowError:
            calculated = math.inf
        delay = self.max_delay_ms if calculated >= self.max_delay_ms else int(calculated)
        if self.jitter <= 0.0 or delay == 0:
            return delay
        fraction = min(1.0, max(0.0, random())) * min(1.0, self.jitter)
        return delay - int(delay * fraction)
