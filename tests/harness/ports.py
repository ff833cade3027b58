"""Moved to `tpf_testkit.ports` (bench/ shares it); re-exported for the tests."""

from tpf_testkit.ports import (
    free_port as free_port,
)
