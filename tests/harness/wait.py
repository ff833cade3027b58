"""Polling with a deadline: the only way tests wait (no fixed sleeps).

`wait_until` calls a predicate with a short, growing pause until it returns something truthy, and
returns that value. At the deadline it fails with the last value seen, so a failing test says what
it was waiting for and what it got instead.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

_FIRST_PAUSE_S = 0.005
_MAX_PAUSE_S = 0.2
_BACKOFF = 1.5


class WaitTimeout(AssertionError):
    """The predicate did not become truthy before the deadline."""

    def __init__(self, *, what: str, timeout_s: float, last: object) -> None:
        subject = what or "condition"
        super().__init__(f"{subject} not met within {timeout_s}s; last value: {last!r}")
        self.what = what
        self.last = last


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T]],
    *,
    timeout_s: float = 10.0,
    what: str = "",
    ignore: tuple[type[BaseException], ...] = (),
) -> T: ...


@overload
async def wait_until(
    predicate: Callable[[], T],
    *,
    timeout_s: float = 10.0,
    what: str = "",
    ignore: tuple[type[BaseException], ...] = (),
) -> T: ...


async def wait_until(
    predicate: Callable[[], Awaitable[T]] | Callable[[], T],
    *,
    timeout_s: float = 10.0,
    what: str = "",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Await `predicate()` (sync or async) until truthy; return its value.

    Exceptions of the types in `ignore` count as "not yet" (e.g. ConnectionRefusedError while a
    server starts); they are reported as the last value if the deadline passes.
    """
    deadline = time.monotonic() + timeout_s
    pause_s = _FIRST_PAUSE_S
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            last: object = value
        except ignore as error:
            last = error
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise WaitTimeout(what=what, timeout_s=timeout_s, last=last)
        await asyncio.sleep(min(pause_s, remaining_s))
        pause_s = min(pause_s * _BACKOFF, _MAX_PAUSE_S)


def wait_until_sync(
    predicate: Callable[[], T],
    *,
    timeout_s: float = 10.0,
    what: str = "",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """`wait_until` for code without an event loop: fixtures starting servers, sync tests."""
    deadline = time.monotonic() + timeout_s
    pause_s = _FIRST_PAUSE_S
    while True:
        try:
            value = predicate()
            if value:
                return value
            last: object = value
        except ignore as error:
            last = error
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise WaitTimeout(what=what, timeout_s=timeout_s, last=last)
        time.sleep(min(pause_s, remaining_s))
        pause_s = min(pause_s * _BACKOFF, _MAX_PAUSE_S)
