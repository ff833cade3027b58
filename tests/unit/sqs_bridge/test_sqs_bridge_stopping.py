"""Stopping the bridge's terminal-event loop: a call in progress is cancelled and waited for,
and a cancellation of the loop itself is never swallowed (which would leave it reading the
result of an unfinished call: `InvalidStateError: Result is not set`)."""

from __future__ import annotations

import asyncio

import pytest

from tpf_sqs_bridge.terminal_events import _unless_stopped


async def test_a_call_in_progress_is_cancelled_once_stop_is_set() -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def slow_call() -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    waiting = asyncio.create_task(_unless_stopped(slow_call(), stop))
    await started.wait()
    stop.set()

    assert await asyncio.wait_for(waiting, timeout=5) is None
    assert cancelled == [True]


async def test_a_cancelled_loop_stays_cancelled_while_its_call_winds_down() -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    winding_down = asyncio.Event()

    async def slow_to_cancel() -> str:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            winding_down.set()
            await asyncio.sleep(0.2)  # closing a connection, say
            raise
        return "never"

    loop = asyncio.create_task(_unless_stopped(slow_to_cancel(), stop))
    await started.wait()
    stop.set()
    await winding_down.wait()
    loop.cancel()  # the process shuts down while the call still winds down

    with pytest.raises(asyncio.CancelledError):
        await loop
