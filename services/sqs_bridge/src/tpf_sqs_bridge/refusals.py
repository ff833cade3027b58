"""Why a message was not accepted, and whether trying it again could ever help.

Permanent refusals (the message itself is wrong, or the state it names forbids it) are replied
and dead-lettered at once. Transient ones (the coordinator is slow or overloaded, or the
bridge's own token is refused) leave the message on its queue for redelivery, until the receive
limit is reached. An outage (the coordinator, its database or the registry cannot be reached)
says nothing about the message: it is redelivered for as long as the outage lasts, never
dead-lettered for it. The gRPC status-code litmus test decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from tpf_errors import TpfError
from tpf_rpc.channel import TRANSIENT_CODES
from tpf_rpc.errors import error_info_of

# The call may not have run, or may work as is later: redeliver. UNAUTHENTICATED is here because
# it is the bridge's token, not the message, that is wrong; the operator fixes it and the
# messages waiting meanwhile go through.
_TRANSIENT_CODES = TRANSIENT_CODES | {grpc.StatusCode.UNAUTHENTICATED}
# RESOURCE_EXHAUSTED reasons that no amount of waiting fixes.
_PERMANENT_REASONS = frozenset({"PAYLOAD_TOO_LARGE"})
# A failed call without ErrorInfo was made by the gRPC library here: the coordinator did not
# answer. Said in our words: the library's text names internal addresses.
_UNANSWERED = {
    grpc.StatusCode.UNAVAILABLE: "The coordinator cannot be reached",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The coordinator did not answer in time",
    grpc.StatusCode.CANCELLED: "The call to the coordinator was cancelled",
}
# What the coordinator answers when something it needs is down.
_OUTAGE_REASONS = frozenset(
    {"DATABASE_UNAVAILABLE", "REGISTRY_UNAVAILABLE", "ARTIFACT_STORE_UNAVAILABLE"}
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal as the bridge reports it: an ErrorReason name, a message, the gRPC code."""

    reason: str
    message: str
    code: str
    is_permanent: bool
    metadata: dict[str, str] = field(default_factory=dict)
    # A dependency is down: redeliver for as long as it takes, never dead-letter.
    is_outage: bool = False


def refusal_of_invalid_message(error: TpfError) -> Refusal:
    """The bridge's own validation refused the body: permanent, and never sent anywhere."""
    return Refusal(
        reason=error.reason,
        message=error.message,
        code=grpc.StatusCode.INVALID_ARGUMENT.name,
        is_permanent=True,
        metadata=dict(error.metadata),
    )


def refusal_of_rpc_error(error: grpc.aio.AioRpcError) -> Refusal:
    """Classify a failed coordinator call."""
    code = error.code()
    info = error_info_of(error)
    if info is None and code in _UNANSWERED:
        return Refusal(
            reason="COORDINATOR_UNAVAILABLE",
            message=_UNANSWERED[code],
            code=code.name,
            is_permanent=False,
            is_outage=True,
        )
    reason = info.reason if info is not None else "INTERNAL"
    is_transient = code in _TRANSIENT_CODES and reason not in _PERMANENT_REASONS
    return Refusal(
        reason=reason,
        message=error.details() or code.name,
        code=code.name,
        is_permanent=not is_transient,
        metadata=dict(info.metadata) if info is not None else {},
        is_outage=code == grpc.StatusCode.UNAVAILABLE and reason in _OUTAGE_REASONS,
    )
