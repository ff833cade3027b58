// A pipeline's steps, in TypeScript, and the runtime that runs a command's steps (TPF_WIRE §9.1):
// from `currentStepIndex` to `stopBeforeStepIndex` (or the first await), each step's output the
// next one's input, answering COMPLETED, WAITING_EXTERNAL (an await) or FAILED. Like the Python
// SDK, a build serves every release of its contract: the pipeline id and contract version must
// match the command's, the release-version label may differ.
import {
  DEFAULT_ALLOWED_PREFIXES,
  EnvelopeError,
  application,
  decodeItems,
  encode,
  type Envelope,
  type Json,
} from "../envelope.js";
import { awaitSuspension } from "./awaits.js";
import { inputEnvelope, type Capability, type Command, type Result } from "./protocol.js";

export const NON_RETRYABLE_FAILURE_CLASS = "org.pipelineframework.step.NonRetryableException";
const ILLEGAL_ARGUMENT = "java.lang.IllegalArgumentException";
const ILLEGAL_STATE = "java.lang.IllegalStateException";
const GENERIC_TYPE_IDS = new Set(["null", "java.util.Map", "java.util.List", "java.util.Set"]);

/** Fails the execution at once (no retries) and dead-letters it. */
export class NonRetryableStepError extends Error {
  override readonly name = "NonRetryableStepError";
}

export interface StepContext {
  tenantId: string;
  executionId: string;
  stepIndex: number;
  attempt: number;
  /** Stable per attempt (`{executionId}:{stepIndex}:{attempt}`): dedupe side effects with it. */
  idempotencyKey: string;
}

export type StepFunction = (input: Json, context: StepContext) => Json | Promise<Json>;

export interface StepTypes {
  /** TPF's step id; unique in the pipeline. */
  service: string;
  inputType: string;
  outputType: string;
}

export interface AwaitOptions extends StepTypes {
  /** After this the execution fails with AWAIT_TIMEOUT. */
  timeoutMs: number;
  /** Request fields the interaction's idempotency key is made of (default: execution + step). */
  idempotencyKeyFields?: string[];
  transportType?: string;
  correlationStrategy?: string;
}

interface StepDefinition extends StepTypes {
  name: string;
  index: number;
  run?: StepFunction;
  awaiting?: Required<Omit<AwaitOptions, keyof StepTypes>>;
}

/** What the release build needs to know of a pipeline (see `describe`). */
export interface PipelineDescription {
  pipelineId: string;
  steps: Array<{
    name: string;
    service: string;
    inputType: string;
    outputType: string;
    kind: "internal" | "await";
    await?: { timeoutMs: number; idempotencyKeyFields: string[]; transportType: string; correlationStrategy: string };
  }>;
}

export class Pipeline {
  private readonly definitions: StepDefinition[] = [];

  constructor(readonly pipelineId: string) {}

  /** Adds a step; steps run in the order they are added. */
  step(name: string, types: StepTypes, run: StepFunction): this {
    this.definitions.push({ ...types, name, index: this.definitions.length, run });
    return this;
  }

  /** Adds an await: the execution waits for a human or system to complete an interaction. */
  awaitStep(name: string, options: AwaitOptions): this {
    const { service, inputType, outputType, ...awaiting } = options;
    this.definitions.push({
      service,
      inputType,
      outputType,
      name,
      index: this.definitions.length,
      awaiting: {
        timeoutMs: awaiting.timeoutMs,
        idempotencyKeyFields: awaiting.idempotencyKeyFields ?? [],
        transportType: awaiting.transportType ?? "interaction-api",
        correlationStrategy: awaiting.correlationStrategy ?? "interactionId",
      },
    });
    return this;
  }

  get steps(): readonly StepDefinition[] {
    return this.definitions;
  }

  /** The steps as JSON, from which a release (contract jar and descriptor) is built. */
  describe(): PipelineDescription {
    return {
      pipelineId: this.pipelineId,
      steps: this.definitions.map((step) => ({
        name: step.name,
        service: step.service,
        inputType: step.inputType,
        outputType: step.outputType,
        kind: step.awaiting ? "await" : "internal",
        ...(step.awaiting ? { await: { ...step.awaiting, idempotencyKeyFields: [...step.awaiting.idempotencyKeyFields] } } : {}),
      })),
    };
  }
}

/** The release a worker hosts, as its `pipeline-release.json` names it. */
export interface WorkerIdentity {
  pipelineId: string;
  contractVersion: string;
  releaseVersion: string;
  artifactId: string;
  artifactDigest: string;
}

class Failed extends Error {
  constructor(readonly result: Result) {
    super(result.outcome === "FAILED" ? (result.message ?? "") : "");
  }
}

function failed(failureClass: string, message: string | null): Failed {
  return new Failed({ outcome: "FAILED", failureClass, message });
}

export class WorkerRuntime {
  private readonly prefixes: string[];

  constructor(
    private readonly pipeline: Pipeline,
    readonly identity: WorkerIdentity,
    private readonly clock: () => number = Date.now,
  ) {
    if (identity.pipelineId !== pipeline.pipelineId) {
      throw new Error(`identity names pipeline ${identity.pipelineId}, not ${pipeline.pipelineId}`);
    }
    if (pipeline.steps.length === 0) {
      throw new Error(`pipeline ${pipeline.pipelineId} has no steps`);
    }
    const ownTypes = pipeline.steps.flatMap((step) => [step.inputType, step.outputType]);
    this.prefixes = [...DEFAULT_ALLOWED_PREFIXES, ...ownTypes];
  }

  capability(providerName: string): Capability {
    return { ...this.identity, providerName, workerProtocols: ["grpc"] };
  }

  /** Runs the command's steps; every failure is a FAILED result, never an exception. */
  async execute(command: Command): Promise<Result> {
    const ours = this.identity;
    if (command.pipelineId !== ours.pipelineId || command.contractVersion !== ours.contractVersion) {
      // TPF's own message, word for word (§9.1).
      return {
        outcome: "FAILED",
        failureClass: ILLEGAL_ARGUMENT,
        message:
          `Transition command targets pipelineId=${command.pipelineId}, contractVersion=${command.contractVersion}, ` +
          `releaseVersion=${command.releaseVersion} but local worker is pipelineId=${ours.pipelineId}, ` +
          `contractVersion=${ours.contractVersion}, releaseVersion=${ours.releaseVersion}`,
      };
    }
    try {
      return await this.run(command);
    } catch (error) {
      if (error instanceof Failed) return error.result;
      throw error;
    }
  }

  private async run(command: Command): Promise<Result> {
    const steps = this.pipeline.steps;
    const start = command.currentStepIndex;
    if (start < 0 || start >= steps.length) {
      throw failed(
        ILLEGAL_ARGUMENT,
        `Transition command currentStepIndex=${start} is out of range for pipelineId=${this.pipeline.pipelineId} with ${steps.length} steps`,
      );
    }
    const stop = command.stopBeforeStepIndex;
    const end = stop < 0 || stop > steps.length ? steps.length : stop;
    if (start === end) {
      return { outcome: "COMPLETED", outputPayloads: [inputEnvelope(command)] };
    }
    let items: Json[];
    try {
      items = decodeItems(inputEnvelope(command), this.prefixes);
    } catch (error) {
      throw failed(NON_RETRYABLE_FAILURE_CLASS, error instanceof EnvelopeError ? error.message : String(error));
    }
    let outputs: Envelope[] = [];
    for (let index = start; index < end; index++) {
      const step = steps[index];
      if (step === undefined) break;
      if (step.awaiting) {
        const [request] = items;
        if (items.length !== 1 || request === undefined) {
          throw failed(ILLEGAL_STATE, `Await step ${step.name} takes one item here, not ${items.length}`);
        }
        const suspension = awaitSuspension({
          tenantId: command.tenantId,
          executionId: command.executionId,
          causationId: command.transitionKey,
          step: { ...step.awaiting, service: step.service, index: step.index, outputType: step.outputType },
          requestPayload: request,
          nowMs: this.clock(),
        });
        return { outcome: "WAITING_EXTERNAL", awaitSuspension: suspension };
      }
      const values = [];
      for (const item of items) {
        values.push(await this.runStep(command, step, item));
      }
      outputs = values.map((value) => outputEnvelope(step.outputType, value));
      // The next step sees each value as a new command would carry it: plain JSON.
      items = values.map((value) => JSON.parse(JSON.stringify(value)) as Json);
    }
    return { outcome: "COMPLETED", outputPayloads: outputs };
  }

  private async runStep(command: Command, step: StepDefinition, item: Json): Promise<Json> {
    const key =
      step.index === command.currentStepIndex ? command.transitionKey : `${command.transitionKey}:step=${step.index}`;
    const context: StepContext = {
      tenantId: command.tenantId,
      executionId: command.executionId,
      stepIndex: step.index,
      attempt: command.attempt,
      idempotencyKey: key,
    };
    try {
      if (step.run === undefined) throw new Error(`Step ${step.name} has no function`);
      return await step.run(item, context);
    } catch (error) {
      if (error instanceof NonRetryableStepError) {
        throw failed(NON_RETRYABLE_FAILURE_CLASS, error.message || null);
      }
      // Anything else is retried by the coordinator, under the release's retry policy.
      const kind = error instanceof Error ? error.name : "Error";
      throw failed(`typescript.${kind}`, error instanceof Error ? error.message || null : String(error));
    }
  }
}

function outputEnvelope(typeId: string, value: Json): Envelope {
  return GENERIC_TYPE_IDS.has(typeId) || value === null ? encode(value) : application(typeId, value);
}
