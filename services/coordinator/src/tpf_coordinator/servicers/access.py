"""Who may call what in the coordinator: role and tenant checks shared by the servicers."""

from __future__ import annotations

from tpf_rpc.auth import (
    ALL_TENANTS,
    ROLE_ADMIN,
    ROLE_CONTROL_PLANE,
    ROLE_VIEWER,
    ROLE_WORKER,
    Principal,
    authorize,
)

CONTROL_PLANE_ROLES = (ROLE_CONTROL_PLANE, ROLE_ADMIN)
WORKER_ROLES = (ROLE_WORKER, ROLE_ADMIN)
ADMIN_ROLES = (ROLE_ADMIN,)
# The reads of the control plane and of the admin API also open to `viewer`, which changes nothing.
CONTROL_PLANE_READ_ROLES = (*CONTROL_PLANE_ROLES, ROLE_VIEWER)
ADMIN_READ_ROLES = (*ADMIN_ROLES, ROLE_VIEWER)

__all__ = [
    "ADMIN_READ_ROLES",
    "ADMIN_ROLES",
    "CONTROL_PLANE_READ_ROLES",
    "CONTROL_PLANE_ROLES",
    "WORKER_ROLES",
    "authorize",
    "scoped_tenants",
]


def scoped_tenants(principal: Principal, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The tenants a dispatcher may claim for: its request, narrowed to its token's scope."""
    if ALL_TENANTS in principal.tenants:
        return requested
    if not requested:
        return tuple(sorted(principal.tenants))
    for tenant in requested:
        principal.require_tenant(tenant)
    return requested
