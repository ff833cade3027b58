"""TPF's restaurant-approval example pipeline, written with the tpf_worker SDK."""
