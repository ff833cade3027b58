"""RenewingChannel: a TLS channel that follows its client certificate files through rotation.

gRPC fixes a channel's credentials when the channel is made, and reconnects with them: a
process whose channels outlive its client certificate (cert-manager renews it, the old one
expires) could no longer reconnect. So a TLS channel here is a stand-in that hands each call
to an underlying channel built from the files as they are now. When the files change (checked
at most every `check_interval_s`, on a call), the next calls go through a new channel; the old
one is left to finish what it carries and closed after `retire_after_s`.

Stubs bind their methods once, at construction; the stand-in's methods therefore pick the
current channel on every call, so stubs made before a rotation follow it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, cast

import grpc

from tpf_rpc.tls import ClientCertificates

_CHECK_INTERVAL_S = 5.0
# Longer than any call the services make (ClaimWork waits 60 s at most); a stream still open on
# the old channel after that is cancelled, and its caller opens it again.
_RETIRE_AFTER_S = 600.0

OpenChannel = Callable[[grpc.ChannelCredentials], grpc.aio.Channel]


class RenewingChannel(grpc.aio.Channel):
    """A grpc.aio channel over TLS whose certificates follow `tls`'s files."""

    def __init__(
        self,
        open_channel: OpenChannel,
        tls: ClientCertificates,
        *,
        check_interval_s: float = _CHECK_INTERVAL_S,
        retire_after_s: float = _RETIRE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_channel
        self._tls = tls
        self._check_interval_s = check_interval_s
        self._retire_after_s = retire_after_s
        self._clock = clock
        self._generation = tls.generation()
        self._channel = open_channel(tls.grpc_credentials())
        self._checked_at = clock()
        self._retired: list[grpc.aio.Channel] = []
        self._closers: set[asyncio.Task[None]] = set()

    def current(self) -> grpc.aio.Channel:
        """The channel for the next call: a new one once the certificate files changed."""
        now = self._clock()
        if now - self._checked_at >= self._check_interval_s:
            self._checked_at = now
            generation = self._tls.generation()
            if generation != self._generation:
                self._generation = generation
                self._retire(self._channel)
                self._channel = self._open(self._tls.grpc_credentials())
        return self._channel

    def _retire(self, channel: grpc.aio.Channel) -> None:
        self._retired.append(channel)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # called outside the event loop: closed with the stand-in instead
        closer = loop.create_task(self._close_later(channel))
        self._closers.add(closer)
        closer.add_done_callback(self._closers.discard)

    async def _close_later(self, channel: grpc.aio.Channel) -> None:
        await asyncio.sleep(self._retire_after_s)
        self._retired.remove(channel)
        await channel.close()

    async def close(self, grace: float | None = None) -> None:
        for closer in list(self._closers):
            closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closer
        channels, self._retired = [self._channel, *self._retired], []
        for channel in channels:
            await channel.close(grace)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        await self.close()
        return None

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self.current().get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current().wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current().channel_ready()

    # Each returns a stand-in multicallable; typed as gRPC's, which it serves as.
    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return cast(Any, _Call(self, "unary_unary", method, args, kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return cast(Any, _Call(self, "unary_stream", method, args, kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return cast(Any, _Call(self, "stream_unary", method, args, kwargs))

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return cast(Any, _Call(self, "stream_stream", method, args, kwargs))


class _Call:
    """One method of a RenewingChannel: each call goes to the channel current at that moment
    (the real multicallable is made again only after a rotation)."""

    def __init__(
        self,
        owner: RenewingChannel,
        kind: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self._owner = owner
        self._kind = kind
        self._method = method
        self._args = args
        self._kwargs = kwargs
        self._bound: tuple[grpc.aio.Channel, Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        channel = self._owner.current()
        if self._bound is None or self._bound[0] is not channel:
            make = getattr(channel, self._kind)
            self._bound = (channel, make(self._method, *self._args, **self._kwargs))
        return self._bound[1](*args, **kwargs)
