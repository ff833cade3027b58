"""The worker SDK's gRPC and REST transports over TLS, with certificates made in the test.

Servers given ServerCertificates speak only TLS (HTTPS for REST) and, with a client CA,
require a client certificate; clients given ClientCertificates check the worker against the
CA and present theirs. A rotated server certificate reaches new connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.worker.test_transports import CAPABILITY, SECRET, command, echo
from tests.support.certificates import CertificateAuthority, Issued, served_serial
from tpf_config import ClientTls, ServerTls
from tpf_rpc.tls import ClientCertificates, ServerCertificates
from tpf_worker.protocol.result import Result
from tpf_worker.transports import TransportFailure
from tpf_worker.transports.grpc import GrpcWorkerClient, GrpcWorkerServer
from tpf_worker.transports.rest import RestWorkerClient, RestWorkerServer


@dataclass
class Pki:
    ca: CertificateAuthority
    dispatcher: Issued
    intruder: Issued
    cert_file: Path
    key_file: Path

    def server(self) -> ServerCertificates:
        return ServerCertificates(ServerTls(self.cert_file, self.key_file, self.ca.ca_file))

    def client(self, issued: Issued | None) -> ClientCertificates:
        return ClientCertificates(
            ClientTls(
                self.ca.ca_file,
                issued.cert_file if issued else None,
                issued.key_file if issued else None,
            )
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = CertificateAuthority(tmp_path / "ca")
    foreign = CertificateAuthority(tmp_path / "foreign", name="foreign-ca")
    worker = tmp_path / "worker"
    ca.issue("worker", serial=501).install(worker / "tls.crt", worker / "tls.key")
    return Pki(
        ca,
        ca.issue("dispatcher"),
        foreign.issue("intruder"),
        worker / "tls.crt",
        worker / "tls.key",
    )


@pytest.fixture
async def rest_port(pki: Pki) -> AsyncIterator[int]:
    server = RestWorkerServer(echo, CAPABILITY, shared_secret=SECRET, tls=pki.server())
    port = await server.start("127.0.0.1", 0)
    yield port
    await server.stop(1.0)


@pytest.fixture
async def grpc_port(pki: Pki) -> AsyncIterator[int]:
    server = GrpcWorkerServer(echo, CAPABILITY, shared_secret=SECRET, tls=pki.server())
    port = await server.start("127.0.0.1", 0)
    yield port
    await server.stop(1.0)


async def test_https_worker_answers_a_client_with_a_certificate_of_its_ca(
    pki: Pki, rest_port: int
) -> None:
    client = RestWorkerClient(
        f"https://127.0.0.1:{rest_port}", shared_secret=SECRET, tls=pki.client(pki.dispatcher)
    )
    try:
        assert await client.execute(command(), timeout_s=5) == Result.completed(
            [command().input_envelope()]
        )
        assert await client.capabilities(timeout_s=5) == CAPABILITY
    finally:
        await client.close()


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate", "plain http"])
async def test_https_worker_refuses_clients_without_a_certificate_of_its_ca(
    pki: Pki, rest_port: int, who: str
) -> None:
    issued = {"no certificate": None, "another CA's certificate": pki.intruder}.get(who)
    scheme = "http" if who == "plain http" else "https"
    client = RestWorkerClient(
        f"{scheme}://127.0.0.1:{rest_port}", shared_secret=SECRET, tls=pki.client(issued)
    )
    try:
        with pytest.raises(TransportFailure):
            await client.capabilities(timeout_s=5)
    finally:
        await client.close()


async def test_https_worker_serves_a_rotated_certificate_to_new_connections(
    pki: Pki, rest_port: int
) -> None:
    def serial() -> int:
        return served_serial(rest_port, pki.ca.ca_file, pki.dispatcher, alpn="http/1.1")

    assert await asyncio.to_thread(serial) == 501
    pki.ca.issue("worker-renewed", serial=502).install(pki.cert_file, pki.key_file)
    assert await asyncio.to_thread(serial) == 502


async def test_grpc_worker_over_mtls_round_trips(pki: Pki, grpc_port: int) -> None:
    client = GrpcWorkerClient(
        f"127.0.0.1:{grpc_port}",
        shared_secret=SECRET,
        plaintext=False,
        tls=pki.client(pki.dispatcher),
    )
    try:
        assert await client.execute(command(), timeout_s=5) == Result.completed(
            [command().input_envelope()]
        )
        assert await client.capabilities(timeout_s=5) == CAPABILITY
    finally:
        await client.close()


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate", "plain text"])
async def test_grpc_worker_over_mtls_refuses_clients_without_a_certificate_of_its_ca(
    pki: Pki, grpc_port: int, who: str
) -> None:
    issued = {"no certificate": None, "another CA's certificate": pki.intruder}.get(who)
    client = GrpcWorkerClient(
        f"127.0.0.1:{grpc_port}",
        shared_secret=SECRET,
        plaintext=who == "plain text",
        tls=pki.client(issued),
    )
    try:
        with pytest.raises(TransportFailure):
            await client.capabilities(timeout_s=5)
    finally:
        await client.close()
