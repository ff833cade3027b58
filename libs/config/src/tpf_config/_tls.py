"""TlsSettings: the TPF_TLS_* variables, for a listener and for the channels a process opens.

Unset, everything is plain text (the `make dev` default). A listener serves TLS once it has a
certificate and a key, and asks every client for a certificate once it also has a client CA.
Outgoing channels use TLS once they have a CA to check servers against, and present a client
certificate when one is set. Only paths live here; reading and watching the files is
`tpf_rpc.tls`'s job.
"""

from dataclasses import dataclass
from pathlib import Path

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SERVER_CERT = "TPF_TLS_CERT_FILE"
_SERVER_KEY = "TPF_TLS_KEY_FILE"
_CLIENT_CA = "TPF_TLS_CLIENT_CA_FILE"
_CA = "TPF_TLS_CA_FILE"
_CLIENT_CERT = "TPF_TLS_CLIENT_CERT_FILE"
_CLIENT_KEY = "TPF_TLS_CLIENT_KEY_FILE"


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A listener's TLS files: certificate chain and key (PEM), and the CA that client
    certificates must chain to (None: no client certificate is asked for)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    # How messages name each file: the variables, or a CLI's flags.
    cert_label: str = _SERVER_CERT
    key_label: str = _SERVER_KEY
    client_ca_label: str = _CLIENT_CA


@dataclass(frozen=True, slots=True)
class ClientTls:
    """An outgoing channel's TLS files: the CA that server certificates must chain to, and
    optionally the client certificate chain and key presented to servers that ask (mTLS)."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_label: str = _CA
    cert_label: str = _CLIENT_CERT
    key_label: str = _CLIENT_KEY


class TlsSettings(BaseSettings):
    """TPF_TLS_* alone, for processes that are not services (the worker SDK's `serve`).

    CommonSettings extends it, so every service reads the same variables.
    """

    model_config = SettingsConfigDict(env_prefix="TPF_")

    # The listener's certificate chain and private key (PEM, key unencrypted).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Require client certificates signed by this CA (PEM bundle).
    tls_client_ca_file: Path | None = None
    # Outgoing channels: check servers against this CA (PEM bundle); unset means plain text.
    tls_ca_file: Path | None = None
    # Outgoing channels: the client certificate chain and key presented to servers (mTLS).
    tls_client_cert_file: Path | None = None
    tls_client_key_file: Path | None = None

    @field_validator(
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        "tls_ca_file",
        "tls_client_cert_file",
        "tls_client_key_file",
        mode="before",
    )
    @classmethod
    def _blank_tls_path_means_unset(cls, value: object) -> object:
        # `TPF_TLS_CERT_FILE=` in an env file or a manifest reads as "not set", not as the
        # current directory.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _tls_files_come_in_pairs(self) -> "TlsSettings":
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(f"set both {_SERVER_CERT} and {_SERVER_KEY}, or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError(
                f"{_CLIENT_CA} asks clients for certificates, which needs TLS: set "
                f"{_SERVER_CERT} and {_SERVER_KEY} too"
            )
        if (self.tls_client_cert_file is None) != (self.tls_client_key_file is None):
            raise ValueError(f"set both {_CLIENT_CERT} and {_CLIENT_KEY}, or neither")
        if self.tls_client_cert_file is not None and self.tls_ca_file is None:
            raise ValueError(
                f"{_CLIENT_CERT} is for TLS channels, which need {_CA} (the CA that signed "
                "the servers' certificates)"
            )
        return self

    def server_tls(self) -> ServerTls | None:
        """The listener's TLS files, or None to listen in plain text."""
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        return ServerTls(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)

    def client_tls(self) -> ClientTls | None:
        """The outgoing channels' TLS files, or None to call in plain text."""
        if self.tls_ca_file is None:
            return None
        return ClientTls(self.tls_ca_file, self.tls_client_cert_file, self.tls_client_key_file)
