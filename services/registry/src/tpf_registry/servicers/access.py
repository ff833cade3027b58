"""Which roles each kind of registry call needs (checked by `tpf_rpc.auth.authorize`)."""

from __future__ import annotations

from tpf_rpc.auth import ROLE_ADMIN, ROLE_CONTROL_PLANE, ROLE_VIEWER, ROLE_WORKER, authorize

READ_ROLES = (ROLE_CONTROL_PLANE, ROLE_WORKER, ROLE_ADMIN, ROLE_VIEWER)
WORKER_WRITE_ROLES = (ROLE_WORKER, ROLE_ADMIN)
ADMIN_ROLES = (ROLE_ADMIN,)

__all__ = ["ADMIN_ROLES", "READ_ROLES", "WORKER_WRITE_ROLES", "authorize"]
