"""Serve a registry as Prometheus text at http://host:port/metrics, on its own port."""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

logger = logging.getLogger(__name__)


class MetricsEndpoint:
    """prometheus_client's HTTP server (a daemon thread, so a slow scrape never blocks the
    event loop) over one registry. `start` binds; `stop` closes the socket.
    """

    def __init__(self, registry: CollectorRegistry, *, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the OS's pick for port 0 once started)."""
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind and serve; raises OSError when the address cannot be bound."""
        self._server, self._thread = start_http_server(
            self._port, addr=self._host, registry=self._registry
        )
        logger.info(
            "serving Prometheus metrics on http://%s:%d/metrics",
            self._host,
            self.port,
            extra={"metrics_port": self.port},
        )

    def stop(self) -> None:
        """Stop serving and release the port. Idempotent; blocks up to one poll interval."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def metrics_text(registry: CollectorRegistry) -> str:
    """The registry in Prometheus text format, as a scrape would see it."""
    return generate_latest(registry).decode("utf-8")
