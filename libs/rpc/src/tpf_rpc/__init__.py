"""gRPC plumbing shared by TPF services: serve(), interceptors, errors, auth, validation.

Import from the submodules: the package itself imports nothing, so a light client (the `tpf`
CLI reading `tpf_rpc.errors`) does not pay for the server, OpenTelemetry and settings.

Modules: `server` (serve), `channel` (client_channel), `interceptors`, `errors` (TpfError to
status), `auth` (Principal), `validation` (request edge checks).
"""
