"""TPF_EVENT_LOOP picks the services' event loop."""

from __future__ import annotations

import asyncio

import uvloop

from tpf_rpc.server import event_loop_factory


def test_uvloop_is_the_default_loop_and_asyncio_the_alternative() -> None:
    factory = event_loop_factory("uvloop")
    assert factory is uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
    assert event_loop_factory("asyncio") is None
