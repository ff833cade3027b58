"""The worker-protocol version every document and message names (`protocolVersion`)."""

from typing import Final

PROTOCOL_VERSION: Final = "1"
