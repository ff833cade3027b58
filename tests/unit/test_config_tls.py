"""TlsSettings: which TPF_TLS_* combinations are refused, and what blank values mean."""

import os
from pathlib import Path

import pytest

from tpf_config import ClientTls, CommonSettings, ConfigError, ServerTls, load_settings


@pytest.fixture(autouse=True)
def _no_tpf_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set exactly the variables they read; the developer's TPF_* must not leak in."""
    for name in list(os.environ):
        if name.startswith("TPF_"):
            monkeypatch.delenv(name)


def test_no_tls_settings_mean_plain_text_both_ways() -> None:
    settings = load_settings(CommonSettings)
    assert (settings.server_tls(), settings.client_tls()) == (None, None)


def test_tls_settings_name_the_listener_and_channel_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CERT", "KEY", "CLIENT_CA", "CA", "CLIENT_CERT", "CLIENT_KEY"):
        monkeypatch.setenv(f"TPF_TLS_{name}_FILE", f"/tls/{name.lower()}.pem")
    settings = load_settings(CommonSettings)
    assert settings.server_tls() == ServerTls(
        Path("/tls/cert.pem"), Path("/tls/key.pem"), Path("/tls/client_ca.pem")
    )
    assert settings.client_tls() == ClientTls(
        Path("/tls/ca.pem"), Path("/tls/client_cert.pem"), Path("/tls/client_key.pem")
    )


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"TPF_TLS_CERT_FILE": "/tls/tls.crt"}, "set both TPF_TLS_CERT_FILE and TPF_TLS_KEY_FILE"),
        (
            {"TPF_TLS_CLIENT_CA_FILE": "/tls/ca.crt"},
            "TPF_TLS_CLIENT_CA_FILE asks clients for certificates, which needs TLS",
        ),
        (
            {"TPF_TLS_CLIENT_CERT_FILE": "/tls/tls.crt", "TPF_TLS_CA_FILE": "/tls/ca.crt"},
            "set both TPF_TLS_CLIENT_CERT_FILE and TPF_TLS_CLIENT_KEY_FILE",
        ),
        (
            {"TPF_TLS_CLIENT_CERT_FILE": "/tls/tls.crt", "TPF_TLS_CLIENT_KEY_FILE": "/tls/k"},
            "TPF_TLS_CLIENT_CERT_FILE is for TLS channels, which need TPF_TLS_CA_FILE",
        ),
    ],
)
def test_incomplete_tls_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings(CommonSettings)


def test_blank_tls_settings_mean_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CERT", "KEY", "CLIENT_CA", "CA", "CLIENT_CERT", "CLIENT_KEY"):
        monkeypatch.setenv(f"TPF_TLS_{name}_FILE", "")
    settings = load_settings(CommonSettings)
    assert (settings.server_tls(), settings.client_tls()) == (None, None)
