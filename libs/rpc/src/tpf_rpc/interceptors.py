"""grpc.aio server interceptors: one span per RPC, errors to status, bearer-token auth.

Order matters and `serve` fixes it: tracing outermost (the span and its trace id cover
everything, including the INTERNAL reply), then errors (it maps what auth and handlers
raise), then auth (innermost, so the principal is set only around the handler).
"""

# grpc.RpcMethodHandler is generic only in the stubs, so annotations must stay unevaluated.
from __future__ import annotations

import abc
import functools
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode

from tpf_config import TokenGrant
from tpf_errors import ErrorKind, TpfError, Unauthenticated
from tpf_rpc._handlers import ServicerContext, wrap_method_handler
from tpf_rpc.auth import Principal, principal_scope
from tpf_rpc.errors import KIND_TO_CODE, internal_error, to_status
from tpf_telemetry import current_trace_id, log_context, quiet_span

logger = logging.getLogger(__name__)

MetadataPairs = Iterable[tuple[str, str | bytes]]
# Maps an exception of a lower layer (a driver, a client library) to the TpfError a client
# should see, or None when it does not know it. Keeps tpf_rpc free of those libraries.
ErrorTranslator = Callable[[Exception], TpfError | None]
_Continuation = Callable[
    [grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]
]

DEFAULT_AUTH_EXEMPT_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

# OTel RPC semantic conventions: only these codes mark a server span as failed; the others
# are the client's doing.
_SERVER_FAULT_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class _AroundInterceptor(grpc.aio.ServerInterceptor, abc.ABC):
    """Runs `_around(details, context)` around every handler `_applies_to`."""

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not self._applies_to(handler_call_details.method):
            return handler
        return wrap_method_handler(handler, functools.partial(self._around, handler_call_details))

    def _applies_to(self, method: str) -> bool:
        return True

    @abc.abstractmethod
    def _around(
        self, details: grpc.HandlerCallDetails, context: ServicerContext
    ) -> AbstractAsyncContextManager[None]: ...


class TracingInterceptor(_AroundInterceptor):
    """One SERVER span per RPC, continuing the caller's W3C trace context when sent."""

    def __init__(self, tracer_provider: trace.TracerProvider) -> None:
        self._tracer = tracer_provider.get_tracer(__name__)

    @asynccontextmanager
    async def _around(
        self, details: grpc.HandlerCallDetails, context: ServicerContext
    ) -> AsyncIterator[None]:
        parent = propagate.extract(_text_metadata(details.invocation_metadata))
        # Exporting nowhere: the ids alone (they reach the logs and the calls made here).
        quiet = quiet_span(self._tracer, parent)
        with (
            trace.use_span(quiet, end_on_exit=False)
            if quiet is not None
            else self._server_span(details.method, parent)
        ) as span:
            trace_id = trace.format_trace_id(span.get_span_context().trace_id)
            with log_context(trace_id=trace_id):
                try:
                    yield
                finally:
                    if span.is_recording():
                        _record_status(span, context)

    def _server_span(self, method_path: str, parent: Context) -> AbstractContextManager[Span]:
        full_method = method_path.lstrip("/")
        service, _, method = full_method.rpartition("/")
        return self._tracer.start_as_current_span(
            full_method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
            # The error interceptor inside turns failures into statuses; record those instead.
            record_exception=False,
            set_status_on_exception=False,
        )


def _record_status(span: trace.Span, context: ServicerContext) -> None:
    code = context.code() or grpc.StatusCode.OK
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in _SERVER_FAULT_CODES:
        span.set_status(StatusCode.ERROR, code.name)


def _text_metadata(metadata: MetadataPairs) -> dict[str, str]:
    return {key: value for key, value in metadata if isinstance(value, str)}


class ErrorInterceptor(_AroundInterceptor):
    """Turns what handlers raise into a status with exactly one ErrorInfo.

    A TpfError becomes its kind's code with its reason and metadata. Anything else is a bug:
    it is logged once with its stack, and the client gets INTERNAL with a trace id and no
    stack. An AbortError means the handler already chose its status, so it passes through.
    """

    def __init__(self, domain: str, *, translators: Sequence[ErrorTranslator] = ()) -> None:
        if not domain:
            raise ValueError("error domain must be set, e.g. 'tpf.registry'")
        self._domain = domain
        self._translators = tuple(translators)

    @asynccontextmanager
    async def _around(
        self, details: grpc.HandlerCallDetails, context: ServicerContext
    ) -> AsyncIterator[None]:
        try:
            yield
        except grpc.aio.AbortError:
            raise
        except TpfError as error:
            await context.abort_with_status(self._status_of(error, details.method))
        # This is the edge every unexpected exception reaches; it is reported, not swallowed.
        except Exception as error:
            translated = self._translate(error)
            if translated is not None:
                # A known infrastructure failure (e.g. the database is down): the client can
                # retry, so it is a warning with the cause, not a stack trace per call.
                logger.warning("%s failed: %s: %s", details.method, type(error).__name__, error)
                await context.abort_with_status(self._status_of(translated, details.method))
            trace_id = current_trace_id()
            logger.exception(
                "Unhandled error in %s; answered INTERNAL",
                details.method,
                extra={"trace_id": trace_id},
            )
            await context.abort_with_status(self._internal_status(trace_id))

    def _translate(self, error: Exception) -> TpfError | None:
        for translator in self._translators:
            translated = translator(error)
            if translated is not None:
                return translated
        return None

    def _status_of(self, error: TpfError, method: str) -> grpc.Status:
        try:
            status = to_status(error, domain=self._domain)
        except ValueError:
            trace_id = current_trace_id()
            logger.exception(
                "%s raised %r, whose reason is not in ErrorReason; answered INTERNAL",
                method,
                error,
                extra={"trace_id": trace_id},
            )
            return self._internal_status(trace_id)
        if error.kind is ErrorKind.INTERNAL:
            logger.error("%s failed: %r", method, error, exc_info=error)
        else:
            logger.debug("%s answered %s %s", method, KIND_TO_CODE[error.kind].name, error.reason)
        return status

    def _internal_status(self, trace_id: str) -> grpc.Status:
        return to_status(internal_error(trace_id), domain=self._domain)


class AuthInterceptor(_AroundInterceptor):
    """Authenticates `authorization: Bearer <token>` and runs the handler as its Principal.

    Must sit inside ErrorInterceptor, which turns the UNAUTHENTICATED errors raised here into
    statuses. Methods under `exempt_prefixes` (health, reflection) need no token. With
    `auth_disabled`, every call runs as `Principal.anonymous_admin()`.
    """

    def __init__(
        self,
        grants: Sequence[TokenGrant],
        *,
        auth_disabled: bool = False,
        exempt_prefixes: Sequence[str] = DEFAULT_AUTH_EXEMPT_PREFIXES,
    ) -> None:
        self._principals = tuple(
            (grant.secret.encode(), Principal.from_grant(grant)) for grant in grants
        )
        self._auth_disabled = auth_disabled
        self._exempt_prefixes = tuple(exempt_prefixes)

    def _applies_to(self, method: str) -> bool:
        return not method.startswith(self._exempt_prefixes)

    @asynccontextmanager
    async def _around(
        self, details: grpc.HandlerCallDetails, context: ServicerContext
    ) -> AsyncIterator[None]:
        with principal_scope(self.principal_for(details.invocation_metadata)):
            yield

    def principal_for(self, metadata: MetadataPairs) -> Principal:
        """The caller named by the request metadata; raises Unauthenticated otherwise."""
        if self._auth_disabled:
            return Principal.anonymous_admin()
        token = _bearer_token(metadata)
        matched: Principal | None = None
        # Compare against every grant, without stopping early, so timing reveals nothing
        # about which secret (if any) was close.
        for secret, principal in self._principals:
            if hmac.compare_digest(secret, token):
                matched = principal
        if matched is None:
            raise Unauthenticated(
                "TOKEN_INVALID", "The bearer token is not known; send a valid token."
            )
        return matched


def _bearer_token(metadata: MetadataPairs) -> bytes:
    header = next((value for key, value in metadata if key == "authorization"), None)
    if isinstance(header, bytes):
        header = header.decode("utf-8", errors="replace")
    scheme, _, token = (header or "").strip().partition(" ")
    if not scheme:
        raise Unauthenticated(
            "TOKEN_MISSING", "Send metadata 'authorization: Bearer <token>' with the call."
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "TOKEN_INVALID", "Use the form 'authorization: Bearer <token>' for the token."
        )
    return token.strip().encode()
