"""Who is calling: the Principal an authenticated RPC runs as, and its role and tenant checks.

`AuthInterceptor` sets the principal for the duration of each RPC; servicers call
`current_principal()` and then `require_role` / `require_tenant` before touching data.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from tpf_config import (
    ALL_TENANTS,
    ROLE_ADMIN,
    ROLE_CONTROL_PLANE,
    ROLE_VIEWER,
    ROLE_WORKER,
    TokenGrant,
)
from tpf_errors import PermissionDenied
from tpf_rpc.validation import required

__all__ = [
    "ALL_TENANTS",
    "ROLE_ADMIN",
    "ROLE_CONTROL_PLANE",
    "ROLE_VIEWER",
    "ROLE_WORKER",
    "Principal",
    "authorize",
    "current_principal",
    "principal_scope",
]

ANONYMOUS_SUBJECT = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: subject, roles, and tenant scope ("*" means every tenant)."""

    subject: str
    roles: frozenset[str]
    tenants: frozenset[str]

    @classmethod
    def from_grant(cls, grant: TokenGrant) -> "Principal":
        return cls(subject=grant.subject, roles=grant.roles, tenants=grant.tenants)

    @classmethod
    def anonymous_admin(cls) -> "Principal":
        """The caller when auth is disabled (local development): every role, every tenant."""
        return cls(
            subject=ANONYMOUS_SUBJECT,
            roles=frozenset({ROLE_ADMIN}),
            tenants=frozenset({ALL_TENANTS}),
        )

    def has_role(self, role: str) -> bool:
        """Admin implies every role."""
        return role in self.roles or ROLE_ADMIN in self.roles

    def is_tenant_in_scope(self, tenant_id: str) -> bool:
        return tenant_id in self.tenants or ALL_TENANTS in self.tenants

    def require_any_role(self, roles: tuple[str, ...]) -> None:
        """Raise PERMISSION_DENIED (ROLE_REQUIRED, naming the first) unless the caller has one."""
        if not any(self.has_role(role) for role in roles):
            self.require_role(roles[0])

    def require_role(self, role: str) -> None:
        """Raise PERMISSION_DENIED (ROLE_REQUIRED) unless the caller has `role`."""
        if not self.has_role(role):
            raise PermissionDenied(
                "ROLE_REQUIRED",
                f"This call needs role {role}; use a token granted that role.",
                requiredRole=role,
            )

    def require_tenant(self, tenant_id: str) -> None:
        """Raise PERMISSION_DENIED (TENANT_NOT_IN_SCOPE) unless the caller may see `tenant_id`."""
        if not self.is_tenant_in_scope(tenant_id):
            raise PermissionDenied(
                "TENANT_NOT_IN_SCOPE",
                f"This token is not scoped to tenant {tenant_id}; use a token for that tenant.",
                tenantId=tenant_id,
            )


# Indexes each RPC task's context; holds no state of its own.
_principal: ContextVar[Principal] = ContextVar("tpf_principal")


@contextmanager
def principal_scope(principal: Principal) -> Iterator[None]:
    """Run the block as `principal` (the auth interceptor wraps each RPC in one)."""
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


def current_principal() -> Principal:
    """The caller of the RPC being handled.

    Raises LookupError outside an authenticated RPC: reaching here without the auth
    interceptor is a wiring bug, which the error interceptor reports as INTERNAL.
    """
    try:
        return _principal.get()
    except LookupError:
        raise LookupError(
            "no principal in context; is the RPC served through tpf_rpc's AuthInterceptor?"
        ) from None


def authorize(tenant_id: str, roles: tuple[str, ...]) -> tuple[Principal, str]:
    """The caller of a tenant-scoped RPC: one of `roles`, scoped to the tenant.

    The tenant is validated first, so a request without one gets FIELD_REQUIRED, not a
    permission error. Returns the principal and the trimmed tenant id.
    """
    tenant = required(tenant_id, "tenantId")
    principal = current_principal()
    principal.require_any_role(roles)
    principal.require_tenant(tenant)
    return principal, tenant
