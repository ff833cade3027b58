"""Wrap every kind of grpc.aio method handler in an async context manager.

Each interceptor in tpf_rpc needs "run this around the handler": a span, a principal, an
exception mapping. Doing that inside the behavior (not in `intercept_service`) keeps it in the
task that runs the handler, so contextvars and exceptions behave as expected, and it covers
streaming responses until the last message.

Only async behaviors (coroutine functions and async generator functions) are supported; the
servers tpf_rpc builds have no thread pool for sync handlers.
"""

# grpc.RpcMethodHandler is generic only in the stubs, so annotations must stay unevaluated.
from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

ServicerContext = grpc.aio.ServicerContext[Any, Any]
Around = Callable[[ServicerContext], AbstractAsyncContextManager[None]]
# grpc-stubs type behaviors as sync callables; at runtime they are async, so stay loose here.
_Behavior = Callable[..., Any]


def wrap_method_handler(
    handler: grpc.RpcMethodHandler[Any, Any], around: Around
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler equal to `handler` whose behavior runs inside `around(context)`."""
    deserializer = handler.request_deserializer
    serializer = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _wrap(handler.unary_unary, around), deserializer, serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _wrap(handler.unary_stream, around), deserializer, serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _wrap(handler.stream_unary, around), deserializer, serializer
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _wrap(handler.stream_stream, around), deserializer, serializer
        )
    raise TypeError("method handler has no behavior")


def _wrap(behavior: _Behavior, around: Around) -> _Behavior:
    # grpc.aio picks how to drive a streaming handler from the function type, so the wrapper
    # must be an async generator exactly when the wrapped behavior is one.
    if inspect.isasyncgenfunction(behavior):
        return _wrap_generator(behavior, around)
    if inspect.iscoroutinefunction(behavior):
        return _wrap_coroutine(behavior, around)
    raise TypeError(f"tpf_rpc serves async handlers only; {behavior!r} is synchronous")


def _wrap_coroutine(behavior: Callable[..., Awaitable[Any]], around: Around) -> _Behavior:
    async def wrapped(request: Any, context: ServicerContext) -> Any:
        async with around(context):
            return await behavior(request, context)

    return wrapped


def _wrap_generator(behavior: Callable[..., AsyncIterator[Any]], around: Around) -> _Behavior:
    async def wrapped(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
        async with around(context):
            async for response in behavior(request, context):
                yield response

    return wrapped
