"""REST gateway wire-compatible with TPF's control-plane and admin HTTP APIs.

A thin adapter over the gRPC services: no state, no business rules (docs/gateway.md).
"""
