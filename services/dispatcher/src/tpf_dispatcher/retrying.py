"""Calls to the coordinator that outlive its outages: transient failures are retried with
jittered exponential backoff until the call answers or the caller gives up.

A hand-written loop rather than the channel's retryPolicy (which already retries UNAVAILABLE a
few times within one call) or tenacity (not a dependency of this service): the dispatcher must
keep trying for as long as it runs, across coordinator restarts that last longer than any fixed
attempt budget, and stop at once when it shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from tpf_rpc.channel import TRANSIENT_CODES

log = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_PAUSE_S = 0.05
_MAX_PAUSE_S = 2.0


async def call_until_answered(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    give_up: asyncio.Event,
    retry: bool = True,
) -> T | None:
    """`call()` until it answers; None once `give_up` is set, after a non-transient failure,
    or after the first transient failure when `retry` is False. Every failure is logged here."""
    pause_s = _FIRST_PAUSE_S
    while not give_up.is_set():
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code not in TRANSIENT_CODES:
                log.error("%s failed: %s %s", what, code.name, error.details())
                return None
            log.warning("%s failed, will retry: %s %s", what, code.name, error.details())
            if not retry:
                return None
        # Jitter, so dispatchers do not hammer a restarting coordinator in step.
        await _sleep_or_give_up(pause_s * (0.5 + random.random()), give_up)
        pause_s = min(pause_s * 2, _MAX_PAUSE_S)
    return None


async def _sleep_or_give_up(delay_s: float, give_up: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(give_up.wait(), timeout=delay_s)
