"""gRPC plumbing shared by TPF services: serve(), interceptors, errors, auth, validation.

Modules: `server` (serve), `channel` (client_channel), `interceptors`, `errors` (TpfError to
status), `auth` (Principal), `validation` (request edge checks).
"""

from tpf_rpc.auth import (
    ROLE_ADMIN,
    ROLE_CONTROL_PLANE,
    ROLE_WORKER,
    Principal,
    current_principal,
    principal_scope,
)
from tpf_rpc.channel import client_channel
from tpf_rpc.errors import KIND_TO_CODE, error_info_of, to_status
from tpf_rpc.interceptors import AuthInterceptor, ErrorInterceptor, TracingInterceptor
from tpf_rpc.server import serve

__all__ = [
    "KIND_TO_CODE",
    "ROLE_ADMIN",
    "ROLE_CONTROL_PLANE",
    "ROLE_WORKER",
    "AuthInterceptor",
    "ErrorInterceptor",
    "Principal",
    "TracingInterceptor",
    "client_channel",
    "current_principal",
    "error_info_of",
    "principal_scope",
    "serve",
    "to_status",
]
