"""tpf_config."""
