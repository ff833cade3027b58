"""TPF-format release artifacts for tests (the builder `make dev` uses for its demo release)."""

from tpf_testkit.demo_release import (
    ARTIFACT_ID,
    CONTRACT_PATH,
    PIPELINE_ID,
    RESTAURANT_STEPS,
    BuiltRelease,
    build_release,
    sha256_digest,
    tpf_contract,
    write_jar,
)

__all__ = [
    "ARTIFACT_ID",
    "CONTRACT_PATH",
    "PIPELINE_ID",
    "RESTAURANT_STEPS",
    "BuiltRelease",
    "build_release",
    "sha256_digest",
    "tpf_contract",
    "write_jar",
]
