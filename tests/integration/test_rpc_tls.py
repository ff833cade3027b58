"""TLS and mTLS through serve() and client_channel, with certificates made in the test.

A gRPC listener with TPF_TLS_* files answers clients that trust its CA, refuses plain text,
and under mTLS refuses clients without a certificate or with one from another CA. Replaced
files are served to new connections without a restart; unusable replacements are ignored.
Outgoing channels opened after a rotation present the new client certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.harness.ports import free_port
from tests.harness.wait import wait_until
from tests.support.certificates import CertificateAuthority, Issued, served_serial
from tpf_config import ROLE_ADMIN, ClientTls, CommonSettings, ConfigError, ServerTls
from tpf_rpc.channel import client_channel
from tpf_rpc.renewing_channel import RenewingChannel
from tpf_rpc.server import serve
from tpf_rpc.tls import ClientCertificates, ServerCertificates

TOKEN = "tls-test-admin-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
PEER_SERVICE = "tpf.test.v1.PeerService"


@dataclass
class Pki:
    """Our CA with a server and a client certificate, and a foreign CA's client certificate."""

    ca: CertificateAuthority
    server: Issued
    client: Issued
    foreign_ca: CertificateAuthority
    foreign_client: Issued

    def client_tls(self, client: Issued | None = None) -> ClientCertificates:
        return ClientCertificates(
            ClientTls(
                self.ca.ca_file,
                client.cert_file if client else None,
                client.key_file if client else None,
            )
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = CertificateAuthority(tmp_path / "ca")
    foreign = CertificateAuthority(tmp_path / "foreign", name="foreign-ca")
    return Pki(
        ca=ca,
        server=ca.issue("server", serial=1001),
        client=ca.issue("client-a", serial=2001),
        foreign_ca=foreign,
        foreign_client=foreign.issue("intruder", serial=3001),
    )


async def _peer_name(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    """The common name of the client certificate this call came with ('' without one)."""
    return next(iter(context.auth_context().get("x509_common_name", ())), b"")


def _register_peer_service(server: grpc.aio.Server) -> None:
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                PEER_SERVICE, {"Name": grpc.unary_unary_rpc_method_handler(_peer_name)}
            ),
        )
    )


@dataclass
class Listener:
    port: int
    cert_file: Path
    key_file: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def tls_server(
    pki: Pki, directory: Path, *, mutual: bool, health_port: int = 0
) -> AsyncIterator[Listener]:
    """serve() on a free port with the server certificate copied to files of its own (so the
    test can rotate them), requiring client certificates when `mutual`."""
    listener = Listener(free_port(), directory / "tls.crt", directory / "tls.key")
    pki.server.install(listener.cert_file, listener.key_file)
    settings = CommonSettings(
        grpc_host="127.0.0.1",
        grpc_port=listener.port,
        auth_tokens=json.dumps(
            [{"token": TOKEN, "subject": "ops", "roles": [ROLE_ADMIN], "tenants": ["*"]}]
        ),
        shutdown_grace_s=1.0,
        tls_cert_file=listener.cert_file,
        tls_key_file=listener.key_file,
        tls_client_ca_file=pki.ca.ca_file if mutual else None,
        health_port=health_port,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            settings=settings,
            service_name="tls-probe",
            domain="tpf.probe",
            register=_register_peer_service,
            service_full_names=[PEER_SERVICE],
            stop_event=stop,
        )
    )
    try:
        tls = pki.client_tls(pki.client)
        await wait_until(
            lambda: _serving(listener.target, tls), timeout_s=10, what="TLS server SERVING"
        )
        yield listener
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)


async def _serving(target: str, tls: ClientCertificates | None) -> bool:
    try:
        status = await _health(target, tls)
    except grpc.aio.AioRpcError:
        return False
    serving: bool = status == health_pb2.HealthCheckResponse.SERVING
    return serving


async def _health(target: str, tls: ClientCertificates | None) -> int:
    # A bare channel: no retries (client_channel's would delay each refusal by a second), and
    # a fresh subchannel per check, so one refused handshake does not shape the next.
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with (
        grpc.aio.insecure_channel(target, options=options)
        if tls is None
        else grpc.aio.secure_channel(target, tls.grpc_credentials(), options=options)
    ) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    status: int = response.status
    return status


async def _refused(target: str, tls: ClientCertificates | None) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(target, tls)
    code: grpc.StatusCode = refused.value.code()
    return code


def _peer_name_call(channel: grpc.aio.Channel) -> Callable[..., Any]:
    return channel.unary_unary(f"/{PEER_SERVICE}/Name")


async def test_tls_listener_serves_clients_that_trust_its_ca_and_refuses_plain_text(
    pki: Pki, tmp_path: Path
) -> None:
    async with tls_server(pki, tmp_path / "listener", mutual=False) as listener:
        assert await _serving(listener.target, pki.client_tls())
        assert await _refused(listener.target, None) == grpc.StatusCode.UNAVAILABLE
        # A client that trusts another CA refuses our server.
        foreign_trust = ClientCertificates(ClientTls(pki.foreign_ca.ca_file))
        assert await _refused(listener.target, foreign_trust) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_listener_requires_a_client_certificate_from_its_ca(
    pki: Pki, tmp_path: Path
) -> None:
    async with tls_server(pki, tmp_path / "listener", mutual=True) as listener:
        async with client_channel(
            listener.target, token=TOKEN, tls=pki.client_tls(pki.client)
        ) as channel:
            assert await _peer_name_call(channel)(b"", timeout=5) == b"client-a"
        assert await _refused(listener.target, None) == grpc.StatusCode.UNAVAILABLE
        assert await _refused(listener.target, pki.client_tls()) == grpc.StatusCode.UNAVAILABLE
        intruder = pki.client_tls(pki.foreign_client)
        assert await _refused(listener.target, intruder) == grpc.StatusCode.UNAVAILABLE


async def test_rotated_server_certificate_is_served_to_new_connections(
    pki: Pki, tmp_path: Path
) -> None:
    async with tls_server(pki, tmp_path / "listener", mutual=True) as listener:
        assert await asyncio.to_thread(_serial, listener, pki) == 1001
        async with client_channel(
            listener.target, token=TOKEN, tls=pki.client_tls(pki.client)
        ) as open_channel:
            await _peer_name_call(open_channel)(b"", timeout=5)
            pki.ca.issue("server-renewed", serial=1002).install(
                listener.cert_file, listener.key_file
            )
            assert await asyncio.to_thread(_serial, listener, pki) == 1002
            # The connection made before the rotation goes on working.
            assert await _peer_name_call(open_channel)(b"", timeout=5) == b"client-a"
        assert await _serving(listener.target, pki.client_tls(pki.client))


async def test_unusable_replacement_is_ignored_until_the_files_are_fixed(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with tls_server(pki, tmp_path / "listener", mutual=False) as listener:
        renewed = pki.ca.issue("server-renewed", serial=1003)
        other = pki.ca.issue("server-other", serial=1004)
        # A certificate with somebody else's key: refused, the old pair stays in use.
        with caplog.at_level(logging.WARNING, logger="tpf_rpc.tls"):
            Issued(renewed.cert_file, other.key_file, renewed.serial).install(
                listener.cert_file, listener.key_file
            )
            assert await asyncio.to_thread(_serial, listener, pki) == 1001
        assert "is not the key of the certificate" in caplog.text
        assert await _serving(listener.target, pki.client_tls())
        renewed.install(listener.cert_file, listener.key_file)
        assert await asyncio.to_thread(_serial, listener, pki) == 1003


async def test_rotated_client_ca_decides_which_client_certificates_are_accepted(
    pki: Pki, tmp_path: Path
) -> None:
    client_ca = tmp_path / "client-ca.pem"
    client_ca.write_bytes(pki.ca.ca_file.read_bytes())
    certificates = ServerCertificates(
        ServerTls(pki.server.cert_file, pki.server.key_file, client_ca)
    )
    server = grpc.aio.server()
    _register_peer_service(server)
    port = server.add_secure_port("127.0.0.1:0", certificates.grpc_credentials())
    await server.start()
    try:
        target = f"127.0.0.1:{port}"
        trusting_our_ca = ClientCertificates(ClientTls(pki.ca.ca_file, *_pair(pki.foreign_client)))
        async with client_channel(target, token=None, tls=pki.client_tls(pki.client)) as ok:
            assert await _peer_name_call(ok)(b"", timeout=5) == b"client-a"
        client_ca.write_bytes(pki.foreign_ca.ca_file.read_bytes())
        async with client_channel(target, token=None, tls=trusting_our_ca) as now_ok:
            assert await _peer_name_call(now_ok)(b"", timeout=5) == b"intruder"
        async with client_channel(target, token=None, tls=pki.client_tls(pki.client)) as old:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _peer_name_call(old)(b"", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


async def test_channels_opened_after_a_client_rotation_present_the_new_certificate(
    pki: Pki, tmp_path: Path
) -> None:
    cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"
    pki.client.install(cert_file, key_file)
    tls = ClientCertificates(ClientTls(pki.ca.ca_file, cert_file, key_file))
    async with tls_server(pki, tmp_path / "listener", mutual=True) as listener:
        async with client_channel(listener.target, token=TOKEN, tls=tls) as before:
            assert await _peer_name_call(before)(b"", timeout=5) == b"client-a"
        pki.ca.issue("client-b").install(cert_file, key_file)
        async with client_channel(listener.target, token=TOKEN, tls=tls) as after:
            assert await _peer_name_call(after)(b"", timeout=5) == b"client-b"


async def test_an_open_channel_moves_to_the_rotated_client_certificate(
    pki: Pki, tmp_path: Path
) -> None:
    cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"
    pki.client.install(cert_file, key_file)
    tls = ClientCertificates(ClientTls(pki.ca.ca_file, cert_file, key_file))
    now = [0.0]
    async with tls_server(pki, tmp_path / "listener", mutual=True) as listener:
        channel = RenewingChannel(
            lambda credentials: grpc.aio.secure_channel(listener.target, credentials),
            tls,
            check_interval_s=10,
            retire_after_s=0,
            clock=lambda: now[0],
        )
        async with channel:
            # Bound once, as a generated stub binds its methods.
            name = _peer_name_call(channel)
            assert await name(b"", timeout=5, metadata=AUTH) == b"client-a"
            pki.ca.issue("client-b").install(cert_file, key_file)
            # Files are looked at every check_interval_s, not on every call.
            assert await name(b"", timeout=5, metadata=AUTH) == b"client-a"
            now[0] = 10
            assert await name(b"", timeout=5, metadata=AUTH) == b"client-b"
            # A replacement that cannot be used leaves the channel as it is.
            now[0] = 20
            Issued(pki.client.cert_file, key_file, 0).install(cert_file, tmp_path / "other.key")
            assert await name(b"", timeout=5, metadata=AUTH) == b"client-b"
            assert channel.get_state() == grpc.ChannelConnectivity.READY


def _pair(issued: Issued) -> tuple[Path, Path]:
    return issued.cert_file, issued.key_file


def _serial(listener: Listener, pki: Pki) -> int:
    return served_serial(listener.port, pki.ca.ca_file, pki.client)


async def test_health_port_answers_probes_in_plain_text_and_serves_nothing_else(
    pki: Pki, tmp_path: Path
) -> None:
    health_port = free_port()
    health_target = f"127.0.0.1:{health_port}"
    async with tls_server(pki, tmp_path / "listener", mutual=True, health_port=health_port):
        assert await _serving(health_target, None)
        async with grpc.aio.insecure_channel(health_target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _peer_name_call(channel)(b"", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", health_port)) != 0, "the health port is closed"


# Startup: every unusable configuration is one ConfigError naming the variable and the file.


def _settings(**tls: Any) -> CommonSettings:
    return CommonSettings(
        grpc_host="127.0.0.1",
        grpc_port=free_port(),
        auth_tokens=json.dumps(
            [{"token": TOKEN, "subject": "ops", "roles": [ROLE_ADMIN], "tenants": ["*"]}]
        ),
        **tls,
    )


async def _serve_refuses(settings: CommonSettings) -> str:
    with pytest.raises(ConfigError) as refused:
        await serve(
            settings=settings,
            service_name="tls-probe",
            domain="tpf.probe",
            register=_register_peer_service,
            service_full_names=[PEER_SERVICE],
        )
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", settings.grpc_port)) != 0, "nothing may listen"
    return str(refused.value)


async def test_serve_refuses_a_missing_certificate_file(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    message = await _serve_refuses(
        _settings(tls_cert_file=missing, tls_key_file=pki.server.key_file)
    )
    assert message == (f"TPF_TLS_CERT_FILE ({missing}) cannot be read: No such file or directory")


async def test_serve_refuses_a_key_of_another_certificate(pki: Pki) -> None:
    message = await _serve_refuses(
        _settings(tls_cert_file=pki.server.cert_file, tls_key_file=pki.client.key_file)
    )
    assert message == (
        f"TPF_TLS_KEY_FILE ({pki.client.key_file}) is not the key of the certificate in "
        f"TPF_TLS_CERT_FILE ({pki.server.cert_file})"
    )


@pytest.mark.parametrize(
    ("variable", "content", "expected"),
    [
        ("tls_cert_file", b"not a certificate\n", "holds no PEM certificate"),
        ("tls_key_file", b"not a key\n", "holds no PEM private key"),
        (
            "tls_key_file",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "is encrypted; give the key without a passphrase",
        ),
        ("tls_client_ca_file", b"", "holds no PEM certificate"),
    ],
)
async def test_serve_refuses_files_that_are_not_what_they_should_be(
    pki: Pki, tmp_path: Path, variable: str, content: bytes, expected: str
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(content)
    files: dict[str, Path] = {
        "tls_cert_file": pki.server.cert_file,
        "tls_key_file": pki.server.key_file,
        "tls_client_ca_file": pki.ca.ca_file,
        variable: bad,
    }
    message = await _serve_refuses(_settings(**files))
    assert message.startswith(f"{variable.upper().replace('TLS', 'TPF_TLS', 1)} ({bad}) ")
    assert expected in message


def test_client_certificates_refuse_an_unreadable_ca(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(ConfigError, match=r"^TPF_TLS_CA_FILE \(.*ca\.pem\) cannot be read"):
        ClientCertificates(ClientTls(missing))


async def test_serve_refuses_a_health_port_already_in_use(pki: Pki) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = await _serve_refuses(
            _settings(
                tls_cert_file=pki.server.cert_file,
                tls_key_file=pki.server.key_file,
                health_port=port,
            )
        )
    assert message == (
        f"Cannot listen on 127.0.0.1:{port} (address in use or not local); change TPF_HEALTH_PORT."
    )
