"""Certificates made in the test: a CA that issues server and client certificates as PEM files.

Keys are P-256 (fast to make). Every leaf names `localhost` and 127.0.0.1 and may serve either
end of a connection, so one certificate works for a service's listener and its channels.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_LIFETIME = datetime.timedelta(days=1)
_BACKDATE = datetime.timedelta(minutes=5)  # tolerate clock skew between processes


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class Issued:
    """One certificate and its key, as PEM files."""

    cert_file: Path
    key_file: Path
    serial: int

    def install(self, cert_file: Path, key_file: Path) -> None:
        """Copy over `cert_file`/`key_file` the way a secret volume rotates: each file is
        written beside its target and renamed over it (a reader never sees half a file)."""
        for source, target in ((self.cert_file, cert_file), (self.key_file, key_file)):
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".{target.name}.new")
            staged.write_bytes(source.read_bytes())
            os.replace(staged, target)


class CertificateAuthority:
    """A self-signed CA writing what it issues under `directory`."""

    def __init__(self, directory: Path, name: str = "tpf-test-ca") -> None:
        self.directory = directory
        self._key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = _write(
            directory / f"{name}.pem", self._cert.public_bytes(serialization.Encoding.PEM)
        )

    def issue(self, name: str, *, serial: int | None = None) -> Issued:
        """A leaf certificate for `localhost`/127.0.0.1, usable by servers and clients."""
        key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        chosen_serial = serial if serial is not None else x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(chosen_serial)
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _LIFETIME)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return Issued(
            cert_file=_write(
                self.directory / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)
            ),
            key_file=_write(self.directory / f"{name}-key.pem", _key_pem(key)),
            serial=chosen_serial,
        )


def served_serial(
    port: int,
    ca_file: Path,
    client: Issued | None = None,
    *,
    alpn: str = "h2",
    host: str = "127.0.0.1",
) -> int:
    """The serial number of the certificate a TLS listener presents to a new connection.

    `alpn` "h2" for gRPC listeners (gRPC refuses a TLS client that does not offer HTTP/2),
    "http/1.1" for HTTPS.
    """
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols([alpn])
    if client is not None:
        context.load_cert_chain(client.cert_file, client.key_file)
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as connection,
    ):
        der = connection.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number
