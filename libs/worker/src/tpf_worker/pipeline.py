"""Authoring a pipeline in Python: its steps, await steps, retry and dispatch policy.

A `Pipeline` is a plain description, built once at import time and never changed by running it:
the runtime executes it (`tpf_worker.runtime`), the release builder turns it into TPF's contract
(`tpf_worker.release`). Step names, service ids and type ids are the ones TPF's contract and
interactions show (TPF_WIRE §8.1, §5.1), so a Python pipeline can stand in for a TPF one.

    pipeline = Pipeline("org.example.orders")

    @pipeline.step("Validate Order", service="ProcessValidateOrderService",
                   input_type="org.example.orders.dto.OrderDto",
                   output_type="org.example.orders.dto.ValidOrderDto")
    async def validate(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]: ...

    pipeline.await_step("Await Approval", service="ProcessAwaitApprovalService", ...)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal, TypeAlias

DispatchMode: TypeAlias = Literal["step", "segment"]
"""`step`: one step per worker command (our default, every step committed); `segment`: run up
to the next await or the end in one command, as TPF does."""

StepKind: TypeAlias = Literal["internal", "await"]

StepFunction: TypeAlias = Callable[[Any, "StepContext"], Awaitable[Any] | Any]
"""A step: `(input, ctx) -> output`, async or sync (sync functions run in a thread).

Input and output are plain JSON values (dicts, lists, str, int, bool, None); non-integer
numbers arrive as `decimal.Decimal`, so amounts such as `27.50` keep their digits.
"""

AwaitConverter: TypeAlias = Callable[[Any], Any]
"""Turns an await's completion payload (plain JSON) into the await's output type's JSON; any
exception means the completion does not convert (a permanent input error)."""

TRANSPORTS: Final = ("REST", "GRPC", "LOCAL")
WORKER_PROTOCOLS: Final = ("local", "rest", "grpc", "sqs")
_CLIENT_SUFFIX: Final = {
    "REST": "RestClientStep",
    "GRPC": "GrpcClientStep",
    "LOCAL": "LocalClientStep",
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry policy of a step; `None` fields take the coordinator's (TPF's) defaults.

    Mirrors `tpf.registry.v1.RetryPolicy`: retries after the first attempt, the first delay, the
    growth factor, the longest delay and the fraction of random jitter.
    """

    max_retries: int | None = None
    initial_delay: timedelta | None = None
    multiplier: float | None = None
    max_delay: timedelta | None = None
    jitter: float | None = None

    def __post_init__(self) -> None:
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if self.jitter is not None and not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        for name in ("initial_delay", "max_delay"):
            delay = getattr(self, name)
            if delay is not None and delay < timedelta(0):
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a step knows about the run it is part of.

    `idempotency_key` is stable across redeliveries of the same attempt (the command's transition
    key, `{executionId}:{stepIndex}:{attempt}`); use it to make side effects idempotent.
    """

    tenant_id: str
    execution_id: str
    step_index: int
    attempt: int
    idempotency_key: str
    logger: logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True, slots=True)
class AwaitSettings:
    """How an await step suspends (TPF's `await:` step config, §5.3, §11)."""

    timeout: timedelta
    idempotency_key_fields: tuple[str, ...]
    transport_type: str
    correlation_strategy: str
    transport_output_type: str
    convert: AwaitConverter | None
    # One interaction per element of the await's (list) input; the next step gets the list of
    # answers in the same order.
    itemized: bool = False


@dataclass(frozen=True, slots=True)
class StepDefinition:
    """One step as registered: what the contract shows and what the runtime runs."""

    index: int
    name: str
    service: str
    kind: StepKind
    cardinality: str
    input_type: str
    output_type: str
    runtime_class: str
    client_class: str
    retry: RetryPolicy | None
    function: StepFunction | None
    awaiting: AwaitSettings | None

    @property
    def is_await(self) -> bool:
        return self.kind == "await"


class Pipeline:
    """A pipeline's steps in order, plus what its release declares about it."""

    def __init__(
        self,
        pipeline_id: str,
        *,
        dispatch_mode: DispatchMode = "step",
        artifact_id: str | None = None,
        service_package: str | None = None,
        transport: str = "REST",
        platform: str = "COMPUTE",
        runtime_layout: str | None = "MONOLITH",
        module: str | None = None,
        plugin_host: bool = False,
        local_transition_execution: bool = True,
        worker_protocols: Sequence[str] = WORKER_PROTOCOLS,
        default_retry: RetryPolicy | None = None,
    ) -> None:
        if not pipeline_id.strip():
            raise ValueError("pipeline_id must not be blank")
        if dispatch_mode not in ("step", "segment"):
            raise ValueError(f"dispatch_mode must be 'step' or 'segment', not {dispatch_mode!r}")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        unknown = [p for p in worker_protocols if p not in WORKER_PROTOCOLS]
        if unknown or not worker_protocols:
            raise ValueError(
                f"worker_protocols must be a non-empty subset of {', '.join(WORKER_PROTOCOLS)}"
            )
        self.pipeline_id = pipeline_id
        self.dispatch_mode: DispatchMode = dispatch_mode
        self.artifact_id = artifact_id or f"{pipeline_id.rsplit('.', 1)[-1]}-python-worker"
        # TPF generates step classes under `<basePackage>.service.pipeline` (§8.1).
        self.service_package = service_package or f"{pipeline_id}.service"
        self.transport = transport
        self.platform = platform
        self.runtime_layout = runtime_layout
        self.module = module
        self.plugin_host = plugin_host
        self.local_transition_execution = local_transition_execution
        self.worker_protocols = tuple(worker_protocols)
        self.default_retry = default_retry
        self._steps: list[StepDefinition] = []

    @property
    def steps(self) -> tuple[StepDefinition, ...]:
        return tuple(self._steps)

    def step(
        self,
        name: str,
        *,
        service: str,
        input_type: str,
        output_type: str,
        retry: RetryPolicy | None = None,
        cardinality: str = "ONE_TO_ONE",
    ) -> Callable[[StepFunction], StepFunction]:
        """Register the decorated function as the next step; returns the function unchanged."""

        def register(function: StepFunction) -> StepFunction:
            self._add(
                name,
                service=service,
                kind="internal",
                cardinality=cardinality,
                input_type=input_type,
                output_type=output_type,
                retry=retry,
                function=function,
                awaiting=None,
            )
            return function

        return register

    def await_step(
        self,
        name: str,
        *,
        service: str,
        input_type: str,
        output_type: str,
        timeout: timedelta,
        idempotency_key_fields: Sequence[str] = (),
        transport_type: str = "interaction-api",
        correlation_strategy: str = "interactionId",
        transport_output_type: str | None = None,
        convert: AwaitConverter | None = None,
        retry: RetryPolicy | None = None,
        itemized: bool = False,
    ) -> StepDefinition:
        """Register an await step: the execution parks until its interaction is completed.

        `convert` turns the completion payload into `output_type`'s JSON for the next step (by
        default the payload passes as it is). `transport_output_type` is the type the
        completion is converted to, as TPF names it in the failure message; by default
        `output_type`.

        `itemized=True` makes it TPF's itemized await: the step's input must be a list, and each
        element becomes one interaction (its `requestPayload`, `itemIndex` = its position). The
        execution resumes once every element is answered, and the next step receives the list
        of answers in the elements' order, each converted by `convert`. An empty list is
        answered at once with an empty list.
        """
        if timeout <= timedelta(0):
            raise ValueError("an await step needs a positive timeout")
        if isinstance(idempotency_key_fields, str):
            raise TypeError("idempotency_key_fields is a sequence of field names, not one string")
        settings = AwaitSettings(
            timeout=timeout,
            idempotency_key_fields=tuple(idempotency_key_fields),
            transport_type=transport_type,
            correlation_strategy=correlation_strategy,
            transport_output_type=transport_output_type or output_type,
            convert=convert,
            itemized=itemized,
        )
        return self._add(
            name,
            service=service,
            kind="await",
            cardinality="ONE_TO_ONE",
            input_type=input_type,
            output_type=output_type,
            retry=retry,
            function=None,
            awaiting=settings,
        )

    def step_named(self, name: str) -> StepDefinition:
        for step in self._steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def _add(
        self,
        name: str,
        *,
        service: str,
        kind: StepKind,
        cardinality: str,
        input_type: str,
        output_type: str,
        retry: RetryPolicy | None,
        function: StepFunction | None,
        awaiting: AwaitSettings | None,
    ) -> StepDefinition:
        if not name.strip():
            raise ValueError("a step needs a non-blank name")
        if any(step.name == name for step in self._steps):
            raise ValueError(f"step name {name!r} is used twice in {self.pipeline_id}")
        if not re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", service):
            raise ValueError(f"service {service!r} must be a Java class simple name")
        for what, type_id in (("input_type", input_type), ("output_type", output_type)):
            if not type_id.strip():
                raise ValueError(f"step {name!r} needs a non-blank {what}")
        runtime_class, client_class = self._classes(service, kind)
        step = StepDefinition(
            index=len(self._steps),
            name=name,
            service=service,
            kind=kind,
            cardinality=cardinality,
            input_type=input_type,
            output_type=output_type,
            runtime_class=runtime_class,
            client_class=client_class,
            retry=retry,
            function=function,
            awaiting=awaiting,
        )
        self._steps.append(step)
        return step

    def _classes(self, service: str, kind: StepKind) -> tuple[str, str]:
        """The generated class names TPF writes into the contract (§8.1)."""
        package = f"{self.service_package}.pipeline."
        base = service.removesuffix("Service")
        if kind == "await":
            await_class = f"{package}{base}AwaitClientStep"
            return await_class, await_class
        return f"{package}{base}Service", f"{package}{base}{_CLIENT_SUFFIX[self.transport]}"
