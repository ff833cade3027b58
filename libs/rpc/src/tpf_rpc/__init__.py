"""tpf_rpc."""
