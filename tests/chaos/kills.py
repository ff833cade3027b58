"""Killing one of `make dev`'s children with SIGKILL, and timing how long the suite's supervisor
takes to have it serving again."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from tests.support.dev_suite import POSTGRES, DevSuite

# Each process type once, spread over the load: the control plane first, the edges last.
KILL_ORDER: Final = (
    "coordinator",
    POSTGRES,
    "dispatcher",
    "registry",
    "worker",
    "gateway",
    "sqs-bridge",
)
# make dev's promise is 15 s; the campaign waits longer before it calls a child lost, so a slow
# machine shows up as a slow heal in the report rather than as a failed campaign.
HEAL_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Kill:
    name: str
    pid: int
    # Seconds since the load began, and from the kill until the child served again.
    at_s: float
    healed_s: float


def kill_and_wait(suite: DevSuite, name: str, load_began: float) -> Kill:
    """SIGKILL child `name` and wait until the supervisor has it serving again."""
    victim = suite.children()[name]
    lines_before = suite.serving_again_lines(name)
    victim.kill()
    killed_at = time.monotonic()
    serving_at = suite.wait_until_replaced(name, victim.pid, lines_before, timeout_s=HEAL_TIMEOUT_S)
    return Kill(
        name, victim.pid, round(killed_at - load_began, 1), round(serving_at - killed_at, 1)
    )
