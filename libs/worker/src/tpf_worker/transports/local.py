"""The in-process worker: the handler runs in the caller's event loop, with no wire in between.

Commands and results still round-trip through the strict codecs, so an in-process worker fails
exactly where a remote one would (an envelope with unknown keys is no more valid locally).
"""

import asyncio

from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command, decode_command, encode_command
from tpf_worker.protocol.malformed import MalformedEnvelope
from tpf_worker.protocol.result import Result, decode_result, encode_result
from tpf_worker.transports import WORKER_FAILURE, CommandHandler, TransportFailure


class LocalWorkerClient:
    """Runs commands with `handler` in this process."""

    def __init__(self, handler: CommandHandler, capability: Capability) -> None:
        self._handler = handler
        self._capability = capability

    async def execute(self, command: Command, *, timeout_s: float) -> Result:
        try:
            sent = decode_command(encode_command(command))
            async with asyncio.timeout(timeout_s):
                result = await self._handler(sent)
            return decode_result(encode_result(result))
        except TimeoutError:
            raise TransportFailure(
                "TimeoutError",
                f"Local transition worker timed out for execution {command.execution_id}",
            ) from None
        except MalformedEnvelope as error:
            raise TransportFailure(WORKER_FAILURE, str(error)) from None
        except Exception as error:  # a handler bug surfaces as the raw exception (§9.7)
            raise TransportFailure(type(error).__name__, str(error)) from error

    async def capabilities(self, *, timeout_s: float) -> Capability:
        return self._capability

    async def close(self) -> None:
        return None
