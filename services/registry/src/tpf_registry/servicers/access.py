"""Who may call what: role and tenant checks shared by the registry's servicers."""

from __future__ import annotations

from tpf_rpc.auth import ROLE_ADMIN, ROLE_CONTROL_PLANE, ROLE_WORKER, Principal, current_principal
from tpf_rpc.validation import required

READ_ROLES = (ROLE_CONTROL_PLANE, ROLE_WORKER, ROLE_ADMIN)
WORKER_WRITE_ROLES = (ROLE_WORKER, ROLE_ADMIN)
ADMIN_ROLES = (ROLE_ADMIN,)


def authorize(tenant_id: str, roles: tuple[str, ...]) -> tuple[Principal, str]:
    """Check the caller has one of `roles` and is scoped to the tenant; return the tenant id.

    The tenant is validated first, so a request without one gets FIELD_REQUIRED, not a
    permission error.
    """
    tenant = required(tenant_id, "tenantId")
    principal = current_principal()
    if not any(principal.has_role(role) for role in roles):
        principal.require_role(roles[0])
    principal.require_tenant(tenant)
    return principal, tenant
