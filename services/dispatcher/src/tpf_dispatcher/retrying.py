"""The dispatcher's one retry layer for its calls to the coordinator.

Only a call that may not have reached a healthy coordinator is tried again: UNAVAILABLE (it
could not be reached, or answered that it cannot serve now) and DEADLINE_EXCEEDED (no answer
in time). Every call the dispatcher repeats carries the same request id, so a repeat of a call
that did run is harmless. Any other failure (INTERNAL, UNKNOWN, ABORTED, INVALID_ARGUMENT, ...)
would fail the same way again: it is logged and given up at once, never repeated until
shutdown. Attempts are bounded, with jittered exponential backoff between them.

The channel to the coordinator has no retry policy of its own (`coordinator_channel`): with
both, each attempt here would be several attempts on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from tpf_rpc.channel import client_channel
from tpf_rpc.tls import ClientCertificates

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIED_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """At most `attempts` calls; before each repeat a pause of about `first_pause_s`, doubling
    up to `max_pause_s`, each drawn between half and one and a half times that."""

    attempts: int = 8
    first_pause_s: float = 0.05
    max_pause_s: float = 2.0

    def pauses(self) -> list[float]:
        """The nominal pause before each repeat (without jitter)."""
        pauses, pause_s = [], self.first_pause_s
        for _ in range(self.attempts - 1):
            pauses.append(pause_s)
            pause_s = min(pause_s * 2, self.max_pause_s)
        return pauses


def coordinator_channel(
    target: str,
    *,
    token: str | None,
    tls: ClientCertificates | None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """The dispatcher's channel to the coordinator: no retry policy, `call_with_retries` is
    the only layer that repeats a call."""
    return client_channel(target, token=token, tls=tls, options=options, retries=False)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    budget: RetryBudget,
    give_up: asyncio.Event,
    after_first_attempt: Callable[[], None] | None = None,
) -> T | None:
    """The answer of `call()`, or None: after a failure that is not retried, once the budget
    is spent, or once `give_up` is set. Every failure is logged here.

    `after_first_attempt` runs once, when the first attempt has answered or failed (a caller
    waiting only for that may then go on while the repeats run).
    """
    pauses = iter(budget.pauses())
    attempt = 0
    try:
        while not give_up.is_set():
            attempt += 1
            try:
                return await call()
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if code not in RETRIED_CODES:
                    log.error("%s failed, not retried: %s %s", what, code.name, error.details())
                    return None
                pause_s = next(pauses, None)
                if pause_s is None:
                    log.error(
                        "%s failed %d times, giving up: %s %s",
                        what,
                        attempt,
                        code.name,
                        error.details(),
                    )
                    return None
                log.warning(
                    "%s failed (attempt %d of %d), will retry: %s %s",
                    what,
                    attempt,
                    budget.attempts,
                    code.name,
                    error.details(),
                )
            finally:
                if after_first_attempt is not None and attempt == 1:
                    after_first_attempt()
            # Jitter, so dispatchers do not hammer a restarting coordinator in step.
            await sleep_or_give_up(pause_s * (0.5 + random.random()), give_up)
        return None
    finally:
        if after_first_attempt is not None and attempt == 0:
            after_first_attempt()


async def sleep_or_give_up(delay_s: float, give_up: asyncio.Event) -> None:
    """Sleep `delay_s`, or less if `give_up` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(give_up.wait(), timeout=delay_s)
