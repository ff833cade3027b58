"""Channel options shared by the test clients."""

from typing import Any, Final

# gRPC shares subchannels between channels of one process: a channel opened just after a
# service restart would inherit the previous channel's reconnect backoff (from the refused
# connections while the service was down) and fail fast with UNAVAILABLE. Tests that restart
# services want each client to connect afresh.
FRESH_CONNECTION: Final[list[tuple[str, Any]]] = [("grpc.use_local_subchannel_pool", 1)]
