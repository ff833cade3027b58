"""Execution ids: time-ordered UUIDs (RFC 9562 version 7).

An execution's id is the leading key of the rows every transition touches (its row, its
history rows). Random ids (version 4) spread a busy minute's executions over every page of
those indexes, so with millions of older rows (parked at an await, finished, dead-lettered) a
claim or a completion reads and dirties pages from all over them; ids that grow with time keep
the executions in flight together at the end of each index, where the pages stay in memory.
The id is still a UUID string in the canonical 36-character form; its first 48 bits are the
creation time in milliseconds.
"""

from __future__ import annotations

import os
import time
import uuid

_MASK_48 = (1 << 48) - 1
_MASK_62 = (1 << 62) - 1


def new_execution_id() -> str:
    """A UUIDv7: 48 bits of Unix time in ms, version 7, 74 random bits, RFC variant."""
    millis = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 used
    value = (
        (millis & _MASK_48) << 80
        | 0x7 << 76
        | (random_bits >> 68) << 64  # 12 bits (rand_a)
        | 0b10 << 62
        | (random_bits & _MASK_62)  # 62 bits (rand_b)
    )
    return str(uuid.UUID(int=value))
