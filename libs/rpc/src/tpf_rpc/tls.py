"""TLS for every hop: gRPC and HTTP listeners, gRPC channels and HTTPS clients, from PEM files.

Certificates are read from files that cert-manager (or anyone) may replace in place, so each
reader watches its files (inode, mtime, size) and reads them again when they change:

- listeners check on every new connection: a gRPC server through gRPC's certificate fetcher, an
  HTTP server through its SSL context's SNI callback. Connections already open keep the
  certificate they were made with.
- outgoing channels use the files as they are when a connection is made: HTTPS clients ask
  for the SSL context per request, and a gRPC channel from `client_channel` moves its calls to
  a new connection once the files changed (tpf_rpc.renewing_channel). Connections already
  open keep the certificate they were made with.

A replacement that cannot be used (a key that does not match its certificate, a half-written
file) is logged and ignored: the previous certificate stays in use until the files are fixed.
At startup the same problems are a ConfigError instead, naming the variable and the file.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, NoReturn, TypeVar

import grpc

from tpf_config import ClientTls, ConfigError, ServerTls, TlsSettings

__all__ = [
    "ClientCertificates",
    "ClientTls",
    "ConfigError",
    "ServerCertificates",
    "ServerTls",
    "client_certificates_of",
]

logger = logging.getLogger(__name__)

MaterialT = TypeVar("MaterialT")
# (inode, mtime ns, size) of each watched file; None where the file cannot be stat'ed.
_Stamp = tuple[tuple[int, int, int] | None, ...]

_CERTIFICATE_MARKER = b"-----BEGIN CERTIFICATE-----"
_KEY_MARKER = b"PRIVATE KEY-----"
_ENCRYPTED_MARKERS = (b"ENCRYPTED PRIVATE KEY", b"Proc-Type: 4,ENCRYPTED")


def _stamp(paths: Sequence[Path]) -> _Stamp:
    stamps: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            # stat follows symlinks: a Kubernetes secret volume swaps its `..data` link, which
            # changes the inode behind an unchanged path.
            status = path.stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((status.st_ino, status.st_mtime_ns, status.st_size))
    return tuple(stamps)


class _Watched(Generic[MaterialT]):
    """Material read from `paths` by `read`, read again when one of the files changes.

    `read` raises ConfigError for unusable files: at construction that error propagates; later
    the previous material stays and the problem is logged once per state of the files.
    Thread-safe: gRPC calls certificate fetchers from its own threads.
    """

    def __init__(self, paths: Sequence[Path], read: Callable[[], MaterialT], what: str) -> None:
        self._paths = tuple(paths)
        self._read = read
        self._what = what
        self._lock = threading.Lock()
        stamp = _stamp(self._paths)
        self._material = read()
        self._tried = stamp
        self._generation = 0

    def current(self) -> tuple[int, MaterialT]:
        """The generation (bumped on each successful reload) and the material."""
        stamp = _stamp(self._paths)
        with self._lock:
            if stamp != self._tried:
                self._reload(stamp)
            return self._generation, self._material

    def _reload(self, stamp: _Stamp) -> None:
        self._tried = stamp
        try:
            material = self._read()
        except ConfigError as error:
            logger.warning(
                "%s changed but cannot be used; keeping the previous one: %s", self._what, error
            )
            return
        if _stamp(self._paths) != stamp:
            # Rewritten while we read it: the pieces may not belong together. Read again on
            # the next check.
            self._tried = ()
            return
        if material != self._material:
            self._material = material
            self._generation += 1
            logger.info("%s reloaded from %s", self._what, ", ".join(map(str, self._paths)))


def _read_file(path: Path, label: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{label} ({path}) cannot be read: {error.strerror or error}") from None


def _read_certificates(path: Path, label: str) -> bytes:
    data = _read_file(path, label)
    if _CERTIFICATE_MARKER not in data:
        raise ConfigError(
            f"{label} ({path}) holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    return data


def _read_key(path: Path, label: str) -> bytes:
    data = _read_file(path, label)
    if any(marker in data for marker in _ENCRYPTED_MARKERS):
        raise ConfigError(f"{label} ({path}) is encrypted; give the key without a passphrase")
    if _KEY_MARKER not in data:
        raise ConfigError(f"{label} ({path}) holds no PEM private key")
    return data


def _refuse_passphrase() -> NoReturn:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise ConfigError("the private key is encrypted; give it without a passphrase")


def _load_pair(context: ssl.SSLContext, cert: Path, key: Path, labels: tuple[str, str]) -> None:
    try:
        context.load_cert_chain(cert, key, password=_refuse_passphrase)
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                f"{labels[1]} ({key}) is not the key of the certificate in {labels[0]} ({cert})"
            ) from None
        raise ConfigError(
            f"{labels[0]} ({cert}) and {labels[1]} ({key}) cannot be used: {error}"
        ) from None
    except OSError as error:
        raise ConfigError(f"{labels[0]} ({cert}) or {labels[1]} ({key}): {error}") from None


def _load_ca(context: ssl.SSLContext, ca: Path, label: str) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(f"{label} ({ca}) holds no usable CA certificate: {error}") from None


@dataclass(frozen=True, slots=True)
class _ServerMaterial:
    cert: bytes
    key: bytes
    client_ca: bytes | None
    # Built from the same files; not compared (a fresh context never equals the previous one).
    context: ssl.SSLContext = field(compare=False)


def _read_server(tls: ServerTls) -> _ServerMaterial:
    cert = _read_certificates(tls.cert_file, tls.cert_label)
    key = _read_key(tls.key_file, tls.key_label)
    client_ca = (
        _read_certificates(tls.client_ca_file, tls.client_ca_label)
        if tls.client_ca_file is not None
        else None
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_pair(context, tls.cert_file, tls.key_file, (tls.cert_label, tls.key_label))
    if tls.client_ca_file is not None:
        _load_ca(context, tls.client_ca_file, tls.client_ca_label)
        context.verify_mode = ssl.CERT_REQUIRED
    return _ServerMaterial(cert, key, client_ca, context)


class ServerCertificates:
    """A listener's certificate, key and client CA, reloaded when the files change.

    Raises ConfigError at construction for a file that is missing, unreadable, not PEM, an
    encrypted key, or a key that does not match the certificate.
    """

    def __init__(self, tls: ServerTls) -> None:
        self.tls = tls
        paths = [tls.cert_file, tls.key_file]
        if tls.client_ca_file is not None:
            paths.append(tls.client_ca_file)
        self._watched = _Watched(paths, lambda: _read_server(tls), "TLS server certificate")

    @property
    def requires_client_certificates(self) -> bool:
        return self.tls.client_ca_file is not None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for `server.add_secure_port`; each new connection gets the files'
        current certificate (gRPC asks the fetcher before every handshake)."""
        generation, material = self._watched.current()
        served = [generation]

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            latest, current = self._watched.current()
            if latest == served[0]:
                return None  # gRPC keeps the configuration it has
            served[0] = latest
            return _grpc_configuration(current)

        return grpc.dynamic_ssl_server_credentials(
            _grpc_configuration(material),
            # grpc's stub leaves out None, which its docs define as "no change".
            fetch,  # type: ignore[arg-type]
            require_client_authentication=self.requires_client_certificates,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A server SSL context (aiohttp's `ssl_context`) whose handshakes use the files'
        current certificate: its SNI callback, which OpenSSL runs for every handshake (with or
        without a server name), switches the connection to the latest context."""
        _, first = self._watched.current()

        def switch(connection: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
            _, material = self._watched.current()
            if material.context is not first.context:
                connection.context = material.context

        first.context.sni_callback = switch
        return first.context


def _grpc_configuration(material: _ServerMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.key, material.cert)], root_certificates=material.client_ca
    )


@dataclass(frozen=True, slots=True)
class _ClientMaterial:
    ca: bytes
    cert: bytes | None
    key: bytes | None
    context: ssl.SSLContext = field(compare=False)


def _read_client(tls: ClientTls) -> _ClientMaterial:
    ca = _read_certificates(tls.ca_file, tls.ca_label)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks hostnames, requires certificates
    _load_ca(context, tls.ca_file, tls.ca_label)
    if tls.cert_file is None or tls.key_file is None:
        return _ClientMaterial(ca, None, None, context)
    cert = _read_certificates(tls.cert_file, tls.cert_label)
    key = _read_key(tls.key_file, tls.key_label)
    _load_pair(context, tls.cert_file, tls.key_file, (tls.cert_label, tls.key_label))
    return _ClientMaterial(ca, cert, key, context)


class ClientCertificates:
    """The CA (and client certificate) outgoing channels use, read again when files change.

    Each `generation()`, `grpc_credentials()` or `ssl_context()` call reflects the files at
    that moment. Raises ConfigError at construction, like ServerCertificates.
    """

    def __init__(self, tls: ClientTls) -> None:
        self.tls = tls
        paths = [tls.ca_file]
        if tls.cert_file is not None and tls.key_file is not None:
            paths += [tls.cert_file, tls.key_file]
        self._watched = _Watched(paths, lambda: _read_client(tls), "TLS client certificate")

    def generation(self) -> int:
        """Goes up each time the files change into something usable (looks at them now)."""
        return self._watched.current()[0]

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        _, material = self._watched.current()
        return grpc.ssl_channel_credentials(
            root_certificates=material.ca,
            private_key=material.key,
            certificate_chain=material.cert,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context for HTTPS (aiohttp's `ssl=`), as the files are now."""
        return self._watched.current()[1].context


def client_certificates_of(settings: TlsSettings) -> ClientCertificates | None:
    """The outgoing channels' certificates per TPF_TLS_CA_FILE (None: plain text).

    Reads the files: raises ConfigError when they cannot be used."""
    tls = settings.client_tls()
    return ClientCertificates(tls) if tls is not None else None
