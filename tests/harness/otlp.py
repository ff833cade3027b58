"""The test OTLP receiver (`tpf_testkit.otlp`, shared with bench/) and its fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tpf_testkit.otlp import (
    OtlpReceiver as OtlpReceiver,
)
from tpf_testkit.otlp import (
    ReceivedLink as ReceivedLink,
)
from tpf_testkit.otlp import (
    ReceivedSpan as ReceivedSpan,
)
from tpf_testkit.otlp import (
    decode as decode,
)


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
