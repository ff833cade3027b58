"""Moved to `tpf_testkit.coordinator_client` (bench/ shares it); re-exported for the tests."""

from tpf_testkit.coordinator_client import (
    CoordinatorClient as CoordinatorClient,
)
from tpf_testkit.coordinator_client import (
    coordinator_client as coordinator_client,
)
