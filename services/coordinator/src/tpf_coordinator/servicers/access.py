"""Who may call what in the coordinator: role and tenant checks shared by the servicers."""

from __future__ import annotations

from tpf_rpc.auth import (
    ALL_TENANTS,
    ROLE_ADMIN,
    ROLE_CONTROL_PLANE,
    ROLE_WORKER,
    Principal,
    current_principal,
)
from tpf_rpc.validation import required

CONTROL_PLANE_ROLES = (ROLE_CONTROL_PLANE, ROLE_ADMIN)
WORKER_ROLES = (ROLE_WORKER, ROLE_ADMIN)
ADMIN_ROLES = (ROLE_ADMIN,)


def require_any_role(principal: Principal, roles: tuple[str, ...]) -> None:
    if not any(principal.has_role(role) for role in roles):
        principal.require_role(roles[0])


def authorize(tenant_id: str, roles: tuple[str, ...]) -> tuple[Principal, str]:
    """Tenant first (FIELD_REQUIRED), then role, then tenant scope."""
    tenant = required(tenant_id, "tenantId")
    principal = current_principal()
    require_any_role(principal, roles)
    principal.require_tenant(tenant)
    return principal, tenant


def scoped_tenants(principal: Principal, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The tenants a dispatcher may claim for: its request, narrowed to its token's scope."""
    if ALL_TENANTS in principal.tenants:
        return requested
    if not requested:
        return tuple(sorted(principal.tenants))
    for tenant in requested:
        principal.require_tenant(tenant)
    return requested
