"""CommonSettings: the TPF_* variables every service reads; each service's settings extend it."""

import logging
import os
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tpf_config._errors import ConfigError
from tpf_config._tls import TlsSettings
from tpf_config._tokens import TokenGrant, parse_token_grants

_ENV_PREFIX = "TPF_"

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class CommonSettings(TlsSettings):
    """Settings shared by every service. Read once in `__main__` and passed down.

    A service subclasses it, adds its own fields and overrides `grpc_port`'s default. The
    TPF_TLS_* fields come from TlsSettings.
    """

    model_config = SettingsConfigDict(env_prefix=_ENV_PREFIX)

    # None starts an embedded Postgres under data_dir. repr=False: URLs carry passwords.
    database_url: str | None = Field(default=None, repr=False)
    data_dir: Path = Path(".tpf")
    # None uses row leases in Postgres instead of Redis.
    redis_url: str | None = Field(default=None, repr=False)
    db_pool_min_size: int = Field(default=1, ge=1)
    db_pool_max_size: int = Field(default=10, ge=1)

    grpc_host: str = "0.0.0.0"
    # 0 asks the OS for a free port; every service overrides this default with its own port.
    grpc_port: int = Field(default=0, ge=0, le=65535)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # Plain-text gRPC health (Check and Watch, nothing else) on a port of its own, for probes
    # that cannot speak TLS (Kubernetes' grpc probe) when the service port does; 0 = none.
    health_port: int = Field(default=0, ge=0, le=65535)

    # Prometheus text at http://<metrics_host>:<metrics_port>/metrics, on a port of its own;
    # 0 (the default) serves none, so services sharing a machine never collide by default.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    # How often gauges computed by a database query (backlog, dead letters, workers) refresh.
    metrics_refresh_s: float = Field(default=15.0, gt=0)

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    # The event loop: uvloop (the default; its loop and socket handling cost about a fifth less
    # CPU per call than asyncio's) or asyncio's own.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # The older spelling of OTEL_TRACES_EXPORTER; wins when set. The other OTEL_* variables
    # (endpoint, protocol, service name, resource, sampler) are read by configure_tracing.
    otel_traces_exporter: str | None = None

    # JSON list of token specs (see tpf_config._tokens); repr=False: it may hold secrets.
    auth_tokens: str | None = Field(default=None, repr=False)
    auth_tokens_file: Path | None = None
    # Local development only: every caller becomes an all-tenant admin.
    auth_disabled: bool = False
    # Key that signs page tokens (tpf_rpc.paging reads it from the environment); give every
    # replica of a service the same one. Unset: a built-in key.
    page_token_key: str | None = Field(default=None, repr=False)

    @field_validator("log_level")
    @classmethod
    def _log_level_is_known(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError("use one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("otel_traces_exporter")
    @classmethod
    def _traces_exporters_are_known(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for name in value.split(","):
            if name.strip().lower() not in ("none", "console", "otlp", ""):
                raise ValueError("use none, console or otlp (comma-separated for several)")
        return value

    @field_validator("auth_tokens")
    @classmethod
    def _blank_tokens_mean_unset(cls, value: str | None) -> str | None:
        # `TPF_AUTH_TOKENS=` in an env file should read as "not set", not as broken JSON.
        return value if value and value.strip() else None

    @model_validator(mode="after")
    def _pool_bounds_are_ordered(self) -> "CommonSettings":
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError(
                f"{env_var_name(type(self), 'db_pool_min_size')} ({self.db_pool_min_size}) must "
                f"not exceed {env_var_name(type(self), 'db_pool_max_size')} "
                f"({self.db_pool_max_size})"
            )
        return self

    def token_grants(self) -> list[TokenGrant]:
        """Resolve the configured bearer tokens (`env:` and `file:` references included).

        Raises ConfigError when a spec is invalid or a reference cannot be resolved, and when
        no token is configured while auth is enabled: a service must not start open by accident.
        Reads files, so call it before the event loop or through `asyncio.to_thread`.
        """
        grants: list[TokenGrant] = []
        if self.auth_tokens is not None:
            grants += parse_token_grants(
                self.auth_tokens,
                source=env_var_name(type(self), "auth_tokens"),
                environ=os.environ,
            )
        if self.auth_tokens_file is not None:
            grants += self._grants_from_file(self.auth_tokens_file)
        if not grants and not self.auth_disabled:
            raise ConfigError(
                f"No bearer tokens are configured. Set {env_var_name(type(self), 'auth_tokens')} "
                '(JSON list of {"token", "subject", "roles", "tenants"}) or '
                f"{env_var_name(type(self), 'auth_tokens_file')}; for local development only, "
                f"set {env_var_name(type(self), 'auth_disabled')}=true."
            )
        _reject_shared_secrets(grants)
        return grants

    def _grants_from_file(self, path: Path) -> list[TokenGrant]:
        source = f"{env_var_name(type(self), 'auth_tokens_file')} ({path})"
        try:
            spec_json = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{source} cannot be read: {error}") from None
        return parse_token_grants(spec_json, source=source, environ=os.environ)


def _reject_shared_secrets(grants: list[TokenGrant]) -> None:
    # Two grants with one secret would make the caller's identity depend on list order.
    subjects_by_secret: dict[str, list[str]] = {}
    for grant in grants:
        subjects_by_secret.setdefault(grant.secret, []).append(grant.subject)
    for subjects in subjects_by_secret.values():
        if len(subjects) > 1:
            raise ConfigError(
                f"Token grants for subjects {subjects} share one secret; give each its own."
            )


def env_var_name(settings_cls: type[BaseSettings], field_name: str) -> str:
    """The environment variable that sets `field_name`, for messages (`TPF_GRPC_PORT`)."""
    prefix = settings_cls.model_config.get("env_prefix") or ""
    return f"{prefix}{field_name}".upper()


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """Read settings from the environment, turning validation failures into one ConfigError.

    The message names each offending variable and never echoes its value (values may be
    secrets).
    """
    try:
        return settings_cls()
    except ValidationError as error:
        problems = "; ".join(
            _describe_issue(settings_cls, issue["loc"], issue["msg"])
            for issue in error.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"Invalid configuration: {problems}") from None


def _describe_issue(settings_cls: type[BaseSettings], loc: tuple[int | str, ...], msg: str) -> str:
    # pydantic prefixes messages from our validators with "Value error, "; it adds nothing here.
    msg = msg.removeprefix("Value error, ")
    if not loc:
        return msg
    return f"{env_var_name(settings_cls, str(loc[0]))}: {msg}"
