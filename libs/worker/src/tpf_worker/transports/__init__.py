"""How a command reaches a worker and its result comes back: local, gRPC, REST and SQS.

Servers run a `CommandHandler` (normally `WorkerRuntime.execute`); clients implement
`WorkerClient` and turn every failure into a `TransportFailure` already mapped to the
`errorCode`/`errorMessage` pair a TPF coordinator records for it (TPF_WIRE §9.7).
"""

from collections.abc import Awaitable, Callable
from typing import Protocol

from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command
from tpf_worker.protocol.result import Result

__all__ = ["WORKER_FAILURE", "CommandHandler", "TransportFailure", "WorkerClient"]

CommandHandler = Callable[[Command], Awaitable[Result]]

WORKER_FAILURE = "TransitionWorkerFailureException"
"""The errorCode of every protocol-level worker failure (bad status, bad envelope, timeout)."""


class TransportFailure(Exception):
    """A call to a worker failed; `error_code` and `message` are what the execution records."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


class WorkerClient(Protocol):
    """One remote (or in-process) worker, as the dispatcher sees it."""

    async def execute(self, command: Command, *, timeout_s: float) -> Result:
        """Run `command`; raises `TransportFailure`, never waits longer than `timeout_s`."""
        ...

    async def capabilities(self, *, timeout_s: float) -> Capability:
        """The worker's capability document; raises `TransportFailure`."""
        ...

    async def close(self) -> None:
        """Release connections; the client is unusable afterwards."""
        ...
