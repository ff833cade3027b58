"""Settings shared by every TPF service: database, redis, gRPC bind, TLS, logging, tracing, auth."""

from tpf_config._errors import ConfigError
from tpf_config._settings import CommonSettings, env_var_name, load_settings
from tpf_config._tls import ClientTls, ServerTls, TlsSettings
from tpf_config._tokens import (
    ALL_TENANTS,
    KNOWN_ROLES,
    ROLE_ADMIN,
    ROLE_CONTROL_PLANE,
    ROLE_VIEWER,
    ROLE_WORKER,
    TokenGrant,
    parse_token_grants,
    resolve_secret_ref,
)

__all__ = [
    "ALL_TENANTS",
    "KNOWN_ROLES",
    "ROLE_ADMIN",
    "ROLE_CONTROL_PLANE",
    "ROLE_VIEWER",
    "ROLE_WORKER",
    "ClientTls",
    "CommonSettings",
    "ConfigError",
    "ServerTls",
    "TlsSettings",
    "TokenGrant",
    "env_var_name",
    "load_settings",
    "parse_token_grants",
    "resolve_secret_ref",
]
