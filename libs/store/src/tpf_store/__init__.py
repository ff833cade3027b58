"""tpf_store."""
