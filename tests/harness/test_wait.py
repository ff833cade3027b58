"""wait_until and wait_until_sync: return the first truthy value, fail with the last one seen."""

from __future__ import annotations

import pytest

from tests.harness.wait import WaitTimeout, wait_until, wait_until_sync


class Countdown:
    """Falsy until called `ready_after` times."""

    def __init__(self, ready_after: int) -> None:
        self.calls = 0
        self._ready_after = ready_after

    def __call__(self) -> str | None:
        self.calls += 1
        return "ready" if self.calls >= self._ready_after else None


async def test_wait_until_polls_a_sync_predicate_until_truthy() -> None:
    countdown = Countdown(ready_after=3)

    assert await wait_until(countdown, timeout_s=5) == "ready"
    assert countdown.calls == 3


async def test_wait_until_awaits_an_async_predicate() -> None:
    countdown = Countdown(ready_after=2)

    async def predicate() -> str | None:
        return countdown()

    assert await wait_until(predicate, timeout_s=5) == "ready"


async def test_wait_until_fails_at_the_deadline_with_the_last_value() -> None:
    received: list[str] = []

    with pytest.raises(WaitTimeout, match=r"a message not met within 0.05s; last value: \[\]"):
        await wait_until(lambda: received, timeout_s=0.05, what="a message")


async def test_wait_until_treats_ignored_errors_as_not_yet() -> None:
    attempts: list[int] = []

    def flaky() -> bool:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError("not listening yet")
        return True

    assert await wait_until(flaky, timeout_s=5, ignore=(ConnectionRefusedError,)) is True


async def test_wait_until_lets_other_errors_through() -> None:
    def broken() -> bool:
        raise ValueError("a bug, not a wait")

    with pytest.raises(ValueError, match="a bug"):
        await wait_until(broken, timeout_s=5, ignore=(ConnectionRefusedError,))


def test_wait_until_sync_reports_the_last_ignored_error() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("still down")

    with pytest.raises(WaitTimeout, match="still down"):
        wait_until_sync(refused, timeout_s=0.05, ignore=(OSError,))
