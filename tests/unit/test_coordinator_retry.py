"""Retry policy: TPF's defaults and backoff arithmetic (TPF_WIRE §10), plus our optional jitter."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tpf_coordinator.domain.retry import RetrySettings


def never_called() -> float:
    raise AssertionError("random must not be read without jitter")


def test_defaults_are_tpfs() -> None:
    assert RetrySettings() == RetrySettings(
        max_retries=3,
        initial_delay_ms=10_000,
        multiplier=2.0,
        max_delay_ms=1_800_000,
        jitter=0.0,
    )


@pytest.mark.parametrize(
    ("next_attempt", "delay_ms"),
    [(1, 10_000), (2, 20_000), (3, 40_000), (8, 1_280_000), (9, 1_800_000), (10_000, 1_800_000)],
)
def test_default_delays_double_up_to_thirty_minutes(next_attempt: int, delay_ms: int) -> None:
    assert RetrySettings().delay_ms(next_attempt, never_called) == delay_ms


def test_attempt_below_one_uses_the_initial_delay_as_tpf() -> None:
    assert RetrySettings().delay_ms(0, never_called) == 10_000


def test_fractional_delays_are_truncated() -> None:
    settings = RetrySettings(initial_delay_ms=1_000, multiplier=1.5)
    assert settings.delay_ms(3, never_called) == 2_250
    assert settings.delay_ms(4, never_called) == 3_375  # 3375.0
    assert settings.delay_ms(5, never_called) == 5_062  # 5062.5


@pytest.mark.parametrize(
    ("attempt", "may"), [(0, True), (1, True), (2, True), (3, False), (7, False)]
)
def test_may_retry_while_attempt_plus_one_is_within_max_retries(attempt: int, may: bool) -> None:
    assert RetrySettings(max_retries=3).may_retry(attempt) is may


def test_zero_max_retries_never_retries() -> None:
    assert not RetrySettings(max_retries=0).may_retry(0)


def test_resolve_fills_unset_values_with_defaults() -> None:
    assert RetrySettings.resolve(None, None, None, None, None) == RetrySettings()
    assert RetrySettings.resolve(max_retries=5, initial_delay_ms=500) == RetrySettings(
        max_retries=5, initial_delay_ms=500
    )


def test_resolve_floors_the_multiplier_at_one_and_clamps_the_rest() -> None:
    resolved = RetrySettings.resolve(
        max_retries=-1, initial_delay_ms=-5, multiplier=0.5, max_delay_ms=-1, jitter=3.0
    )
    assert resolved == RetrySettings(
        max_retries=0, initial_delay_ms=0, multiplier=1.0, max_delay_ms=0, jitter=1.0
    )
    assert RetrySettings.resolve(multiplier=float("nan")).multiplier == 2.0


def test_jitter_takes_off_up_to_its_fraction_using_the_injected_random() -> None:
    settings = RetrySettings(jitter=0.2)
    assert settings.delay_ms(1, lambda: 0.0) == 10_000
    assert settings.delay_ms(1, lambda: 0.5) == 9_000
    assert settings.delay_ms(1, lambda: 0.999_999) == 8_001  # 1999.998 off, truncated


@given(
    next_attempt=st.integers(min_value=1, max_value=200),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_jittered_delay_stays_between_its_floor_and_the_plain_delay(
    next_attempt: int, jitter: float, r: float
) -> None:
    plain = RetrySettings().delay_ms(next_attempt, never_called)
    jittered = RetrySettings(jitter=jitter).delay_ms(next_attempt, lambda: r)
    assert plain * (1 - jitter) - 1 <= jittered <= plain
    assert 0 <= jittered <= 1_800_000
