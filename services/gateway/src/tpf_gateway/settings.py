"""GatewaySettings: the TPF_* variables the gateway reads (documented in docs/gateway.md)."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tpf_config import CommonSettings, ConfigError, env_var_name, resolve_secret_ref
from tpf_gateway.routes import Family


class GatewaySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="TPF_")

    gateway_host: str = "0.0.0.0"
    gateway_port: int = Field(default=8080, ge=0, le=65535)
    # Plain HTTP on its own port serving /q/health/* only, for probes that cannot show a client
    # certificate once the main port requires one (TPF_TLS_CLIENT_CA_FILE); 0 = none.
    gateway_health_port: int = Field(default=0, ge=0, le=65535)
    coordinator_target: str = "127.0.0.1:50051"
    registry_target: str = "127.0.0.1:50052"
    # TPF's API families (pipeline.orchestrator.control-plane / admin): when disabled, every
    # route of the family answers 404 with an empty body, as TPF does.
    control_plane_enabled: bool = True
    admin_enabled: bool = True
    # The bearer tokens TPF clients send (TPF's `admin-token` / `admin-token-ref`): the value,
    # or `env:NAME` / `file:/path`. Required for each enabled family unless TPF_AUTH_DISABLED.
    control_plane_token: str | None = Field(default=None, repr=False)
    admin_token: str | None = Field(default=None, repr=False)
    # A read-only token (value or `env:`/`file:` reference), accepted on every GET route outside
    # /tpf/; the services must grant it role `viewer`. Unset: none.
    viewer_token: str | None = Field(default=None, repr=False)
    # The token the gateway presents to the coordinator and the registry when it does not
    # forward the caller's (health checks; every call with forwarding off); value or
    # `env:`/`file:` reference. Unset sends none (services running with TPF_AUTH_DISABLED).
    gateway_service_token: str | None = Field(default=None, repr=False)
    # Forward the REST caller's bearer token to the services, so they authorize the caller
    # (its TPF_AUTH_TOKENS grant: roles, tenants) rather than the gateway. The control-plane and
    # admin tokens must then be grants of the services. False: every call runs as the service
    # token (the gateway's own family check is then the only authorization).
    gateway_forward_caller_token: bool = True
    # Largest request body accepted; larger bodies get 413.
    gateway_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Deadline of each gRPC call the gateway makes.
    gateway_rpc_timeout_s: float = Field(default=30.0, gt=0)
    # Deadline of each health check behind /q/health/ready.
    gateway_health_timeout_s: float = Field(default=2.0, gt=0)

    def family_tokens(self) -> dict[Family, str]:
        """The resolved token of each enabled family.

        Raises ConfigError when an enabled family has no token (and auth is not disabled) or a
        reference cannot be resolved: TPF would fail its first request; we refuse to start.
        """
        configured = {
            Family.CONTROL_PLANE: ("control_plane_token", self.control_plane_enabled),
            Family.ADMIN: ("admin_token", self.admin_enabled),
        }
        tokens: dict[Family, str] = {}
        for family, (name, enabled) in configured.items():
            value = getattr(self, name)
            variable = env_var_name(type(self), name)
            if not enabled:
                continue
            if value is None or not value.strip():
                if self.auth_disabled:
                    continue
                raise ConfigError(
                    f"{variable} is not set; set the {family.value} API's bearer token (a value "
                    f"or env:NAME), or disable that API with "
                    f"{env_var_name(type(self), name.replace('_token', '_enabled'))}=false"
                )
            tokens[family] = resolve_secret_ref(value.strip(), what=variable, environ=os.environ)
        return tokens

    def resolved_viewer_token(self) -> str | None:
        """The resolved viewer token, or None when unset."""
        value = self.viewer_token
        if value is None or not value.strip():
            return None
        variable = env_var_name(type(self), "viewer_token")
        return resolve_secret_ref(value.strip(), what=variable, environ=os.environ)

    def service_token(self) -> str | None:
        """The resolved token for calls to the services, or None to send none."""
        value = self.gateway_service_token
        if value is None or not value.strip():
            return None
        variable = env_var_name(type(self), "gateway_service_token")
        return resolve_secret_ref(value.strip(), what=variable, environ=os.environ)
