"""tpf_telemetry."""
