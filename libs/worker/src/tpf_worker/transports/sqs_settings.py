"""Settings of TPF's SQS worker protocol (TPF_WIRE §9.6): where SQS is, and the polling timings
the worker server and the reply router share.

The protocol's modules: `sqs_messages` (the signed request and reply bodies), `sqs_connection`
(one SQS client), `sqs_server` (the worker's request loop), `sqs_client` (the dispatcher's
sender) and `sqs_reply_router` (the dispatcher's reply loop).
"""

from dataclasses import dataclass
from typing import Final

WAIT_TIME_S: Final = 1
"""Long-poll wait of one receive; `stop` notices a stop request within it."""
ERROR_POLL_DELAY_S: Final = 0.5
"""Pause after a failed receive before polling again."""
DEFAULT_TIMEOUT_S: Final = 30.0
"""How long a command may run, and how old an unclaimed reply may get before it is deleted."""


@dataclass(frozen=True)
class SqsConfig:
    """Where SQS is and how to sign requests to it; None means botocore's own default chain."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
