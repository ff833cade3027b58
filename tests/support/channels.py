"""Moved to `tpf_testkit.channels` (bench/ shares it); re-exported for the tests."""

from tpf_testkit.channels import (
    FRESH_CONNECTION as FRESH_CONNECTION,
)
