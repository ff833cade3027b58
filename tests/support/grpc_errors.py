"""Read a failed call's status code and its single google.rpc.ErrorInfo."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class CallError:
    code: grpc.StatusCode
    message: str
    reason: str
    domain: str
    metadata: dict[str, str]


def error_of(error: grpc.aio.AioRpcError) -> CallError:
    infos = []
    for key, value in error.trailing_metadata() or ():
        if key == _DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    infos.append(info)
    assert len(infos) == 1, f"expected exactly one ErrorInfo, got {len(infos)}: {error}"
    info = infos[0]
    return CallError(
        code=error.code(),
        message=error.details() or "",
        reason=info.reason,
        domain=info.domain,
        metadata=dict(info.metadata),
    )


async def expect_error(call: Awaitable[Any], code: grpc.StatusCode, reason: str) -> CallError:
    """Await `call`, which must fail with `code` and ErrorInfo `reason`."""
    try:
        result = await call
    except grpc.aio.AioRpcError as error:
        found = error_of(error)
        assert (found.code, found.reason) == (code, reason), found
        assert "Traceback" not in found.message
        return found
    raise AssertionError(f"expected {code.name} {reason}, got a response: {result}")
