"""TPF's REST worker protocol with HMAC headers (TPF_WIRE §9.4), on aiohttp.

Server: `POST /pipeline/worker/transitions/execute` and `GET /pipeline/worker/capabilities`, in
TPF's check order: 415 for a non-JSON body, 503 if the secret is unavailable, 401 (empty body)
for missing/unparsable/stale/wrong signatures or a replayed nonce, 400 (empty) for a malformed
or invalid command. Client: TPF's failure messages, word for word (§9.4, §9.7).
"""

import asyncio
import logging
import ssl
from datetime import timedelta
from typing import Final

import aiohttp
from aiohttp import web

from tpf_rpc.tls import ClientCertificates, ServerCertificates
from tpf_worker.nonces import NonceCache
from tpf_worker.protocol.capability import Capability, decode_capability, encode_capability
from tpf_worker.protocol.command import Command, decode_command, encode_command
from tpf_worker.protocol.malformed import MalformedEnvelope
from tpf_worker.protocol.result import Result, decode_result, encode_result
from tpf_worker.signing import SignatureRejected, Verifier, sign
from tpf_worker.tracing import (
    client_call,
    record_http_status,
    server_span_middleware,
    transport_span,
)
from tpf_worker.transports import WORKER_FAILURE, CommandHandler, TransportFailure

__all__ = [
    "CAPABILITIES_PATH",
    "EXECUTE_PATH",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "RestWorkerClient",
    "RestWorkerServer",
]

logger = logging.getLogger(__name__)

EXECUTE_PATH: Final = "/pipeline/worker/transitions/execute"
CAPABILITIES_PATH: Final = "/pipeline/worker/capabilities"
TIMESTAMP_HEADER: Final = "X-TPF-Worker-Timestamp"
NONCE_HEADER: Final = "X-TPF-Worker-Nonce"
SIGNATURE_HEADER: Final = "X-TPF-Worker-Signature"
_JSON: Final = "application/json"
_SECRET_UNAVAILABLE: Final = "REST transition worker shared secret is unavailable"


class RestWorkerServer:
    """Serves one worker over HTTP, or HTTPS with `tls`; `stop` refuses new requests and drains
    in-flight ones."""

    def __init__(
        self,
        handler: CommandHandler,
        capability: Capability,
        *,
        shared_secret: str,
        tolerance: timedelta = timedelta(minutes=2),
        tls: ServerCertificates | None = None,
        nonces: NonceCache | None = None,
    ) -> None:
        self._handler = handler
        self._capability = capability
        self._secret = shared_secret
        self._verifier = Verifier(shared_secret, tolerance=tolerance, nonces=nonces)
        self._tls = tls
        self._runner: web.AppRunner | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True

    def _application(self) -> web.Application:
        app = web.Application(middlewares=[server_span_middleware])
        app.router.add_post(EXECUTE_PATH, self._execute)
        app.router.add_get(CAPABILITIES_PATH, self._capabilities)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start serving; returns the bound port (useful with `port=0`)."""
        # Draining happens in `stop` before cleanup, so the runner's own wait can be short.
        runner = web.AppRunner(self._application(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        ssl_context = self._tls.ssl_context() if self._tls is not None else None
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        self._runner = runner
        self._accepting = True
        return int(runner.addresses[0][1])

    async def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new requests (503), wait up to `grace_s` for in-flight ones, then close."""
        self._accepting = False
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            logger.warning("REST worker stopped with %d requests still running", self._in_flight)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _authenticate(
        self, request: web.Request, method: str, path: str, body: bytes
    ) -> None:
        await self._verifier.verify(
            method,
            path,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(NONCE_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
        )

    async def _execute(self, request: web.Request) -> web.StreamResponse:
        if not self._accepting:
            return web.Response(status=503)
        if request.content_type != _JSON:
            return web.Response(status=415)
        if not self._secret:
            return web.Response(status=503, text=_SECRET_UNAVAILABLE)
        body = await request.read()
        try:
            await self._authenticate(request, "POST", EXECUTE_PATH, body)
        except SignatureRejected as rejected:
            logger.warning("REST worker request rejected: %s", rejected.reason)
            return web.Response(status=401)
        try:
            command = decode_command(body)
        except MalformedEnvelope as error:
            logger.warning("REST worker refused a command: %s", error)
            return web.Response(status=400)
        self._in_flight += 1
        self._idle.clear()
        try:
            with transport_span(command):
                result = await self._handler(command)
            result_bytes = encode_result(result)
        except Exception:  # a handler bug: log once here, answer 500 like TPF's mapper
            logger.exception("REST worker command failed for execution %s", command.execution_id)
            return web.Response(status=500)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
        return web.Response(status=200, body=result_bytes, content_type=_JSON)

    async def _capabilities(self, request: web.Request) -> web.StreamResponse:
        if not self._accepting:
            return web.Response(status=503)
        if not self._secret:
            return web.Response(status=503, text=_SECRET_UNAVAILABLE)
        try:
            await self._authenticate(request, "GET", CAPABILITIES_PATH, await request.read())
        except SignatureRejected as rejected:
            logger.warning("REST worker capabilities request rejected: %s", rejected.reason)
            return web.Response(status=401)
        return web.Response(
            status=200, body=encode_capability(self._capability), content_type=_JSON
        )


def _is_json_null(body: bytes) -> bool:
    """Jackson reads the text `null` as a null value rather than as malformed JSON."""
    return body.strip() == b"null"


class RestWorkerClient:
    """Calls a TPF-protocol REST worker at `base_url` (the worker's HTTP root).

    An `https://` worker is checked against `tls`'s CA (and is shown its client certificate),
    or against the system's trusted CAs without `tls`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        shared_secret: str,
        connect_timeout_s: float = 2.0,
        tls: ClientCertificates | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._secret = shared_secret
        self._connect_timeout_s = connect_timeout_s
        self._tls = tls
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a session must be made inside the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _timeout(self, timeout_s: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=min(self._connect_timeout_s, timeout_s)
        )

    async def _send(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, bytes]:
        """Status and body, or TransportFailure named after the raw network error (§9.7)."""
        signed = sign(self._secret, method, path, body)
        headers = {
            **headers,
            "Accept": _JSON,
            TIMESTAMP_HEADER: signed.timestamp,
            NONCE_HEADER: signed.nonce,
            SIGNATURE_HEADER: signed.signature,
        }
        try:
            async with asyncio.timeout(timeout_s):
                async with self._client().request(
                    method,
                    f"{self._base_url}{path}",
                    data=body if body else None,
                    headers=headers,
                    timeout=self._timeout(timeout_s),
                    ssl=self._ssl(),
                ) as response:
                    return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            message = str(error) or (
                f"REST transition worker request to {self._base_url}{path} "
                f"timed out after {timeout_s:g} s"
            )
            raise TransportFailure(type(error).__name__, message) from None

    def _ssl(self) -> ssl.SSLContext | bool:
        # The files as they are now: after a rotation, new connections use the new ones.
        if self._tls is not None and self._base_url.startswith("https://"):
            return self._tls.ssl_context()
        return True

    async def execute(self, command: Command, *, timeout_s: float) -> Result:
        execution_id = command.execution_id
        # The context rides in headers: the signed JSON body stays exactly TPF's.
        with client_call(f"POST {EXECUTE_PATH}", {"url.full": self._base_url}) as trace_headers:
            status, body = await self._send(
                "POST",
                EXECUTE_PATH,
                encode_command(command),
                {"Content-Type": _JSON, **trace_headers},
                timeout_s,
            )
            record_http_status(status)
        if not 200 <= status < 300:
            raise TransportFailure(
                WORKER_FAILURE,
                f"REST transition worker returned HTTP {status} for execution {execution_id} "
                "with response body omitted",
            )
        if _is_json_null(body):
            raise TransportFailure(
                WORKER_FAILURE,
                f"REST transition worker returned an empty result for execution {execution_id} "
                f"with HTTP {status} and response body omitted",
            )
        try:
            return decode_result(body)
        except MalformedEnvelope:
            raise TransportFailure(
                WORKER_FAILURE,
                f"REST transition worker returned malformed JSON for execution {execution_id} "
                f"with HTTP {status} and response body omitted",
            ) from None

    async def capabilities(self, *, timeout_s: float) -> Capability:
        with client_call(f"GET {CAPABILITIES_PATH}", {"url.full": self._base_url}) as headers:
            status, body = await self._send("GET", CAPABILITIES_PATH, b"", headers, timeout_s)
            record_http_status(status)
        if not 200 <= status < 300:
            raise TransportFailure(
                WORKER_FAILURE,
                f"REST transition worker capabilities returned HTTP {status} "
                "with response body omitted",
            )
        if _is_json_null(body):
            raise TransportFailure(
                WORKER_FAILURE, "REST transition worker capabilities returned an empty response"
            )
        try:
            return decode_capability(body)
        except MalformedEnvelope:
            raise TransportFailure(
                WORKER_FAILURE, "REST transition worker capabilities returned malformed JSON"
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
