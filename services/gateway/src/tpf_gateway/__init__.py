"""REST gateway wire-compatible with TPF's control-plane and admin HTTP APIs; a thin adapter over the gRPC services."""
