"""Worker SDK: author a pipeline in Python, serve it over TPF's worker protocols (local, gRPC,
REST with HMAC, SQS), build its release.

- `Pipeline`, `StepContext`, `RetryPolicy`: describe the pipeline (`tpf_worker.pipeline`).
- `WorkerRuntime`, `WorkerIdentity`: run it for worker commands (`tpf_worker.runtime`).
- `build_release`, `identity_of`, `load_pipeline`: package it as a TPF release
  (`tpf_worker.release`).
- The errors a step raises, and `classify_failure` for dispatchers (`tpf_worker.errors`).
- The wire documents live in `tpf_worker.protocol` (a module per document), the transports in
  `tpf_worker.transports`.
"""

from tpf_worker.errors import (
    AWAIT_CONVERSION_FAILURE_CLASS,
    AWAIT_CONVERSION_MESSAGE_PREFIX,
    INPUT_DECODE_FAILURE_CLASS,
    NON_RETRYABLE_FAILURE_CLASS,
    FailureClassification,
    InputDecodeError,
    NonRetryableStepError,
    RetryableStepError,
    StepError,
    classify_failure,
)
from tpf_worker.pipeline import (
    DispatchMode,
    Pipeline,
    RetryPolicy,
    StepContext,
    StepDefinition,
)
from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command
from tpf_worker.protocol.result import Failure, Result
from tpf_worker.release import (
    BuiltRelease,
    PipelineLoadError,
    build_release,
    identity_of,
    load_pipeline,
)
from tpf_worker.runtime import WorkerIdentity, WorkerRuntime

__all__ = [
    "AWAIT_CONVERSION_FAILURE_CLASS",
    "AWAIT_CONVERSION_MESSAGE_PREFIX",
    "INPUT_DECODE_FAILURE_CLASS",
    "NON_RETRYABLE_FAILURE_CLASS",
    "BuiltRelease",
    "Capability",
    "Command",
    "DispatchMode",
    "Failure",
    "FailureClassification",
    "InputDecodeError",
    "NonRetryableStepError",
    "Pipeline",
    "PipelineLoadError",
    "Result",
    "RetryPolicy",
    "RetryableStepError",
    "StepContext",
    "StepDefinition",
    "StepError",
    "WorkerIdentity",
    "WorkerRuntime",
    "build_release",
    "classify_failure",
    "identity_of",
    "load_pipeline",
]
