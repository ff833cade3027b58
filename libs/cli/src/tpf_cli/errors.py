"""How a failure reads on stderr: one line, never a stack trace.

A failed call prints its gRPC code, the ErrorInfo reason, the server's message and the
ErrorInfo metadata (`error: NOT_FOUND RELEASE_NOT_FOUND: ... (releaseVersion=v9)`). A call that
never reached the service (registry or coordinator) says so, naming the address the CLI tried.
"""

from __future__ import annotations

import grpc

from tpf_rpc.errors import error_info_of


class CliError(Exception):
    """A failure on the client side (unreadable file, bad descriptor), explained in one line."""


def describe_rpc_error(
    error: grpc.aio.AioRpcError, *, target: str, service: str = "registry"
) -> str:
    """The one-line explanation of a failed call to the `service` at `target`."""
    code = error.code()
    # One line, whatever the message holds.
    details = " ".join((error.details() or "").split())
    info = error_info_of(error)
    if info is None:
        # Our services put an ErrorInfo on every status they send; a status without one was
        # made by the gRPC library on this side: no connection, or no answer in time.
        if code == grpc.StatusCode.UNAVAILABLE:
            return f"error: cannot reach the {service} at {target}: {details}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"error: the {service} at {target} did not answer in time (see --timeout)"
        return f"error: {code.name}: {details}"
    line = f"error: {code.name} {info.reason}: {details}"
    if info.metadata:
        pairs = ", ".join(f"{key}={info.metadata[key]}" for key in sorted(info.metadata))
        line += f" ({pairs})"
    return line
