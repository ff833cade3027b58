"""`WorkerRuntime`: runs a pipeline's steps for one worker command and answers with a result.

`execute` is a `CommandHandler` for every transport. It never raises: whatever goes wrong
becomes a FAILED result (TPF_WIRE §9.2), classified by `tpf_worker.errors`. For one command it

1. checks that the command targets this worker's pipeline, contract and release (§9.1);
2. decodes the input envelope into plain JSON items: the step-0 `ExecutionInputSnapshot` (UNI
   and RAW give one item, MULTI one per element), a previous step's output, or an await's
   stored completion, which is first converted to the await's output type (after an itemized
   await: the MULTI snapshot of every item's answer, in item order, becomes one list item);
3. runs the steps from `current_step_index` up to `stop_before_step_index` (exclusive; -1 means
   to the end or the first await), feeding each step's outputs to the next;
4. answers COMPLETED with the last step's outputs as envelopes of its output type, or
   WAITING_EXTERNAL with an `awaitSuspension` when it reaches an await step: one interaction
   for one item, one per item for several items or for the list an itemized await receives.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from opentelemetry.trace import StatusCode

from tpf_envelope import (
    DEFAULT_ALLOWED_PREFIXES,
    GENERIC_TYPE_IDS,
    JDK_SCALAR_TYPE_IDS,
    TRANSITION_ENCODING,
    ApplicationValue,
    Envelope,
    InputShape,
    InputSnapshot,
    Value,
    compact_json_text,
    decode,
    encode,
    plain_json_text,
)
from tpf_errors import TpfError
from tpf_worker.awaits import await_suspension
from tpf_worker.errors import (
    AWAIT_CONVERSION_FAILURE_CLASS,
    IDENTITY_MISMATCH_FAILURE_CLASS,
    ILLEGAL_ARGUMENT_FAILURE_CLASS,
    ILLEGAL_STATE_FAILURE_CLASS,
    InputDecodeError,
    StepError,
    await_conversion_message,
    failure_of,
)
from tpf_worker.pipeline import Pipeline, StepContext, StepDefinition
from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command
from tpf_worker.protocol.result import Result
from tpf_worker.tracing import execute_span

_log = logging.getLogger(__name__)
_step_log = logging.getLogger("tpf_worker.step")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class WorkerIdentity:
    """The build a worker hosts. It serves every release of its contract (same pipeline id and
    contract version, whatever the release-version label); commands for another are refused."""

    pipeline_id: str
    contract_version: str
    release_version: str
    artifact_id: str = ""
    artifact_digest: str = ""


class _Failed(Exception):
    """Ends a run early with a FAILED result (already classified)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.failure.message if result.failure else "")
        self.result = result


class WorkerRuntime:
    """Runs `pipeline` for commands aimed at `identity`.

    `clock` and `new_interaction_id` are seams for tests; `allowed_payload_prefixes` extends
    TPF's default allow-list of application type ids (the pipeline's own types are always
    allowed).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        identity: WorkerIdentity,
        *,
        clock: Clock | None = None,
        new_interaction_id: Callable[[], str] | None = None,
        allowed_payload_prefixes: Sequence[str] = DEFAULT_ALLOWED_PREFIXES,
    ) -> None:
        if identity.pipeline_id != pipeline.pipeline_id:
            raise ValueError(
                f"identity names pipeline {identity.pipeline_id!r}, not {pipeline.pipeline_id!r}"
            )
        if not pipeline.steps:
            raise ValueError(f"pipeline {pipeline.pipeline_id} has no steps")
        self._pipeline = pipeline
        self._steps = pipeline.steps
        self._identity = identity
        self._clock = clock or (lambda: datetime.now(UTC))
        self._new_interaction_id = new_interaction_id or (lambda: str(uuid.uuid4()))
        own_types = {t for s in self._steps for t in (s.input_type, s.output_type)}
        self._prefixes = (*allowed_payload_prefixes, *sorted(own_types))

    @property
    def identity(self) -> WorkerIdentity:
        return self._identity

    def capability(self, provider_name: str) -> Capability:
        """What this worker reports on `GET .../capabilities` (TPF_WIRE §9.3)."""
        return Capability(
            pipeline_id=self._identity.pipeline_id,
            contract_version=self._identity.contract_version,
            release_version=self._identity.release_version,
            artifact_id=self._identity.artifact_id,
            artifact_digest=self._identity.artifact_digest,
            provider_name=provider_name,
            worker_protocols=self._pipeline.worker_protocols,
        )

    async def execute(self, command: Command) -> Result:
        """Run the command's steps; every failure is a FAILED result, never an exception."""
        with execute_span(command) as span:
            mismatch = self._identity_mismatch(command)
            if mismatch is not None:
                result = mismatch
            else:
                try:
                    result = await self._run(command)
                except _Failed as failed:
                    result = failed.result
            if result.failure is not None:
                span.set_status(StatusCode.ERROR, result.failure.failure_class)
            return result

    def _identity_mismatch(self, command: Command) -> Result | None:
        # A build serves every release of its own contract: TPF's self-host scripts label a
        # release with the contract version, our build with the artifact digest, and both run
        # the same code. The pipeline id and contract version must match; the release-version
        # label may differ (the dispatcher checks the artifact digest, which commands lack).
        ours = self._identity
        if (command.pipeline_id, command.contract_version) == (
            ours.pipeline_id,
            ours.contract_version,
        ):
            return None
        # TPF's own message, word for word (§9.1).
        message = (
            f"Transition command targets pipelineId={command.pipeline_id}, "
            f"contractVersion={command.contract_version}, "
            f"releaseVersion={command.release_version} but local worker is "
            f"pipelineId={ours.pipeline_id}, contractVersion={ours.contract_version}, "
            f"releaseVersion={ours.release_version}"
        )
        _log.warning(message, extra=_log_fields(command))
        return Result.failed(IDENTITY_MISMATCH_FAILURE_CLASS, message)

    async def _run(self, command: Command) -> Result:
        start = command.current_step_index
        stop = self._stop_index(command)
        items = self._input_items(command)
        if start == stop:
            return Result.completed([command.input_envelope()])
        outputs: list[Envelope] = []
        for index in range(start, stop):
            step = self._steps[index]
            if step.is_await:
                requests, itemized = self._await_requests(command, step, items)
                if requests:
                    return self._suspend(command, step, requests, itemized=itemized)
                # An itemized await of an empty list has nothing to ask: its answer is [].
                outputs, items = [encode([])], [[]]
                continue
            outputs = [await self._run_step(command, step, item) for item in items]
            items = [self._plain_of(output) for output in outputs]
        return Result.completed(outputs)

    def _stop_index(self, command: Command) -> int:
        count = len(self._steps)
        start = command.current_step_index
        if not 0 <= start < count:
            raise _Failed(
                Result.failed(
                    ILLEGAL_ARGUMENT_FAILURE_CLASS,
                    f"Transition command currentStepIndex={start} is out of range for "
                    f"pipelineId={self._pipeline.pipeline_id} with {count} steps",
                )
            )
        stop = command.stop_before_step_index
        return count if stop < 0 or stop > count else stop

    def _input_items(self, command: Command) -> list[Any]:
        """The command's input as plain JSON items for `current_step_index`."""
        try:
            decoded = decode(command.input_envelope(), allowed_prefixes=self._prefixes)
        except TpfError as error:
            raise _Failed(self._failure(command, InputDecodeError(error.message))) from None
        index = command.current_step_index
        previous = self._steps[index - 1] if index > 0 else None
        if previous is not None and previous.is_await:
            if previous.awaiting is not None and previous.awaiting.itemized:
                answers = _itemized_answers(decoded.value)
                return [[self._converted(command, previous, answer) for answer in answers]]
            return [self._converted(command, previous, item) for item in _unwrap(decoded.value)]
        return _unwrap(decoded.value)

    def _converted(self, command: Command, await_step: StepDefinition, item: Any) -> Any:
        """An await completion as the await's output type (TPF's conversion, §11)."""
        settings = await_step.awaiting
        if settings is None or settings.convert is None:
            return item
        try:
            return settings.convert(item)
        except Exception as error:  # any converter error means "does not convert"; reported below
            message = await_conversion_message(settings.transport_output_type)
            _log.warning("%s: %s", message, error, extra=_log_fields(command))
            raise _Failed(Result.failed(AWAIT_CONVERSION_FAILURE_CLASS, message)) from None

    async def _run_step(self, command: Command, step: StepDefinition, item: Any) -> Envelope:
        function = step.function
        if function is None:
            raise _Failed(
                Result.failed(ILLEGAL_STATE_FAILURE_CLASS, f"Step {step.name} has no function")
            )
        context = self._context(command, step)
        try:
            if inspect.iscoroutinefunction(function):
                output = await function(item, context)
            else:
                output = await asyncio.to_thread(function, item, context)
                if inspect.isawaitable(output):
                    output = await output
            return _output_envelope(step.output_type, output)
        except Exception as error:  # a step's failure becomes the command's FAILED result
            raise _Failed(self._failure(command, error, step)) from None

    def _context(self, command: Command, step: StepDefinition) -> StepContext:
        key = command.transition_key
        if step.index != command.current_step_index:
            # Later steps of one segment share the command's key; keep theirs distinct.
            key = f"{key}:step={step.index}"
        fields = {**_log_fields(command), "step": step.name, "step_index": step.index}
        return StepContext(
            tenant_id=command.tenant_id,
            execution_id=command.execution_id,
            step_index=step.index,
            attempt=command.attempt,
            idempotency_key=key,
            logger=logging.LoggerAdapter(_step_log, fields),
        )

    @staticmethod
    def _await_requests(
        command: Command, step: StepDefinition, items: list[Any]
    ) -> tuple[list[Any], bool]:
        """What the await asks, one request per interaction, and whether it is itemized.

        An itemized await takes one list and asks once per element. Any other await asks once
        per item that reaches it: one item is a one-to-one await, several (a MULTI input) are
        itemized too, and each item resumes with its own answer.
        """
        if step.awaiting is not None and step.awaiting.itemized:
            if len(items) != 1 or not isinstance(items[0], list):
                kinds = ", ".join(sorted({type(item).__name__ for item in items})) or "none"
                raise _Failed(
                    Result.failed(
                        ILLEGAL_ARGUMENT_FAILURE_CLASS,
                        f"Itemized await step {step.name} needs one list as its input, "
                        f"not {len(items)} item(s) of {kinds}",
                    )
                )
            return list(items[0]), True
        if not items:
            raise _Failed(
                Result.failed(
                    ILLEGAL_STATE_FAILURE_CLASS, f"Await step {step.name} received no item"
                )
            )
        return items, len(items) > 1

    def _suspend(
        self, command: Command, step: StepDefinition, requests: list[Any], *, itemized: bool
    ) -> Result:
        now_ms = int(self._clock().timestamp() * 1000)
        suspension = await_suspension(
            tenant_id=command.tenant_id,
            execution_id=command.execution_id,
            causation_id=command.transition_key,
            step=step,
            request_payloads=requests,
            itemized=itemized,
            new_interaction_id=self._new_interaction_id,
            now_ms=now_ms,
        )
        return Result.waiting(suspension)

    def _plain_of(self, envelope: Envelope) -> Any:
        """An output envelope read back as the next step's input, exactly as a new command
        would carry it, so step and segment dispatch feed steps the same values."""
        try:
            return _exact_plain(decode(envelope, allowed_prefixes=self._prefixes).value)
        except TpfError as error:
            raise _Failed(Result.failed(*failure_of(ValueError(error.message)))) from None

    def _failure(
        self, command: Command, error: Exception, step: StepDefinition | None = None
    ) -> Result:
        failure_class, message = failure_of(error)
        fields = {**_log_fields(command), "failure_class": failure_class}
        where = f"step {step.name!r}" if step else "input"
        # A StepError is the step's own verdict; anything else is unexpected and keeps its stack.
        stack = None if isinstance(error, StepError) else error
        _log.warning("%s failed: %s", where, message, extra=fields, exc_info=stack)
        return Result.failed(failure_class, message)


def _unwrap(value: Value) -> list[Any]:
    if isinstance(value, InputSnapshot):
        if value.shape is InputShape.MULTI:
            return [_exact_plain(item) for item in value.items]
        return [_exact_plain(value.payload)]
    return [_exact_plain(value)]


def _itemized_answers(value: Value) -> list[Any]:
    """An itemized await's answers: the coordinator resumes it with a MULTI snapshot of every
    item's answer in item order; an await of an empty list was answered with an empty list."""
    if isinstance(value, InputSnapshot) and value.shape is InputShape.MULTI:
        return [_exact_plain(item) for item in value.items]
    plain = _exact_plain(value)
    return plain if isinstance(plain, list) else [plain]


def _exact_plain(value: Value) -> Any:
    """Plain JSON with exact numbers: non-integers as `Decimal` (`27.50` stays `27.50`)."""
    return json.loads(plain_json_text(value), parse_float=Decimal)


def _output_envelope(type_id: str, value: Any) -> Envelope:
    """`value` as the envelope of `type_id`; generic ids take the value's own container type."""
    if type_id in GENERIC_TYPE_IDS or value is None:
        return encode(value)
    if type_id in JDK_SCALAR_TYPE_IDS:
        return Envelope(type_id, TRANSITION_ENCODING, compact_json_text(value))
    return encode(ApplicationValue(type_id, value))


def _log_fields(command: Command) -> dict[str, object]:
    return {
        "tenant": command.tenant_id,
        "execution_id": command.execution_id,
        "version": command.execution_version,
        "trace_id": command.trace_id,
    }
