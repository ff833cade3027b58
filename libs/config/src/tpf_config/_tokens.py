"""Bearer-token grants: the JSON spec operators write, and the resolved grants auth checks.

A spec entry is `{"token": ..., "subject": ..., "roles": [...], "tenants": [...]}`. `token` is
either the secret itself, `env:NAME` (read from the environment) or `file:/path` (read from a
file, surrounding whitespace stripped), so secrets can stay out of the spec.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from tpf_config._errors import ConfigError

ROLE_ADMIN = "admin"
ROLE_CONTROL_PLANE = "control-plane"
ROLE_WORKER = "worker"
# Reads only: executions, history, interactions, dead letters, releases, workers, drift (an
# operator console's read-only sign-in); every change is refused with ROLE_REQUIRED.
ROLE_VIEWER = "viewer"
KNOWN_ROLES = frozenset({ROLE_ADMIN, ROLE_CONTROL_PLANE, ROLE_WORKER, ROLE_VIEWER})

ALL_TENANTS = "*"

_ENV_REF = "env:"
_FILE_REF = "file:"


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What one bearer token allows: who it is, which roles, which tenants ("*" = all)."""

    subject: str
    roles: frozenset[str]
    tenants: frozenset[str]
    secret: str = field(repr=False)


class _TokenSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    roles: list[str] = Field(min_length=1)
    tenants: list[str] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _roles_are_known(cls, roles: list[str]) -> list[str]:
        # A misspelt role would otherwise only surface as PERMISSION_DENIED at call time.
        unknown = sorted(set(roles) - KNOWN_ROLES)
        if unknown:
            raise ValueError(f"unknown roles {unknown}; known roles are {sorted(KNOWN_ROLES)}")
        return roles

    @field_validator("tenants")
    @classmethod
    def _tenants_are_not_blank(cls, tenants: list[str]) -> list[str]:
        if any(not tenant.strip() for tenant in tenants):
            raise ValueError('tenant ids must not be blank; use "*" for every tenant')
        return tenants


_SPECS = TypeAdapter(list[_TokenSpec])


def parse_token_grants(
    spec_json: str, *, source: str, environ: Mapping[str, str]
) -> list[TokenGrant]:
    """Parse a JSON token spec and resolve its secret references.

    `source` names where the spec came from (an env var, or a file) for error messages.
    Raises ConfigError; messages never include token values.
    """
    try:
        specs = _SPECS.validate_json(spec_json)
    except ValidationError as error:
        raise ConfigError(f"{source} is not a valid token list: {_describe(error)}") from None
    return [
        TokenGrant(
            subject=spec.subject,
            roles=frozenset(spec.roles),
            tenants=frozenset(spec.tenants),
            secret=_resolve_secret(spec, source=source, environ=environ),
        )
        for spec in specs
    ]


def _resolve_secret(spec: _TokenSpec, *, source: str, environ: Mapping[str, str]) -> str:
    where = f"{source}: the token of subject {spec.subject!r}"
    return resolve_secret_ref(spec.token, what=where, environ=environ)


def _describe(error: ValidationError) -> str:
    # include_input=False keeps secrets out of the message.
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'value'}: {issue['msg']}"
        for issue in error.errors(include_input=False, include_url=False)
    )


def resolve_secret_ref(value: str, *, what: str, environ: Mapping[str, str]) -> str:
    """A secret given literally, as `env:NAME` or as `file:/path` (same rules as token grants).

    Raises ConfigError naming `what` (e.g. the variable) when a reference cannot be resolved.
    """
    if value.startswith(_ENV_REF):
        name = value.removeprefix(_ENV_REF)
        secret = environ.get(name, "").strip()
        if not secret:
            raise ConfigError(f"{what} refers to environment variable {name}; set it")
        return secret
    if value.startswith(_FILE_REF):
        path = Path(value.removeprefix(_FILE_REF))
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{what} refers to {path}, which cannot be read: {error}") from None
        if not secret:
            raise ConfigError(f"{what} refers to {path}, which is empty")
        return secret
    return value
