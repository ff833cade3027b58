// TPF's worker-protocol documents (TPF_WIRE §9.1-§9.3): the command a dispatcher sends, the result
// a worker answers, and the capability it reports. TPF reads them with a mapper that refuses
// unknown keys, so results carry exactly TPF's keys in TPF's order.
import type { Envelope, Json } from "../envelope.js";

export const PROTOCOL_VERSION = "1";
export const ENVELOPE_ENCODING = "application/tpf-transition-envelope+json";

/** A command that is not JSON of the right shape (TPF: "Malformed ... envelope"). */
export class MalformedEnvelope extends Error {
  override readonly name: string = "MalformedEnvelope";
}

/** A command that parses but fails the worker's validation (TPF: "Invalid ... command"). */
export class InvalidCommand extends MalformedEnvelope {
  override readonly name = "InvalidCommand";
}

export interface Command {
  tenantId: string;
  executionId: string;
  pipelineId: string;
  contractVersion: string;
  releaseVersion: string;
  currentStepIndex: number;
  /** -1: run to the end or the first await. */
  stopBeforeStepIndex: number;
  attempt: number;
  resultShape: "SINGLE" | "MATERIALIZED_MULTI";
  executionVersion: number;
  transitionKey: string;
  traceId: string;
  payloadTypeId: string;
  payloadEncoding: string;
  payload: string;
}

const COMMAND_KEYS = [
  "tenantId",
  "executionId",
  "pipelineId",
  "contractVersion",
  "releaseVersion",
  "currentStepIndex",
  "stopBeforeStepIndex",
  "attempt",
  "resultShape",
  "executionVersion",
  "transitionKey",
  "traceId",
  "payloadTypeId",
  "payloadEncoding",
  "payload",
] as const;
const REQUIRED_KEYS = [
  "tenantId",
  "executionId",
  "pipelineId",
  "resultShape",
  "traceId",
  "payloadTypeId",
  "payloadEncoding",
  "payload",
] as const;

function optString(obj: Record<string, unknown>, key: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new MalformedEnvelope(`command.${key} must be a string`);
  return value;
}

function integer(obj: Record<string, unknown>, key: string): number {
  const value = obj[key];
  if (value === undefined || value === null) return 0;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new MalformedEnvelope(`command.${key} must be an integer`);
  }
  return value;
}

/** Reads a command as a TPF worker does; throws MalformedEnvelope or InvalidCommand. */
export function decodeCommand(body: Uint8Array): Command {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (error) {
    throw new MalformedEnvelope(`command is not valid JSON: ${String(error)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new MalformedEnvelope("command must be a JSON object");
  }
  const obj = parsed as Record<string, unknown>;
  const unknown = Object.keys(obj).find((key) => !(COMMAND_KEYS as readonly string[]).includes(key));
  if (unknown !== undefined) throw new MalformedEnvelope(`command has unknown field ${JSON.stringify(unknown)}`);
  const resultShape = optString(obj, "resultShape");
  if (resultShape !== undefined && resultShape !== "SINGLE" && resultShape !== "MATERIALIZED_MULTI") {
    throw new MalformedEnvelope(`command.resultShape ${JSON.stringify(resultShape)} is not known`);
  }
  const strings = Object.fromEntries(
    COMMAND_KEYS.filter((key) => typeof obj[key] !== "number").map((key) => [key, optString(obj, key)]),
  ) as Record<string, string | undefined>;
  for (const key of REQUIRED_KEYS) {
    if (obj[key] === undefined || obj[key] === null) throw new InvalidCommand(`command.${key} is required`);
  }
  // TPF's record defaults blank versions: contract → local-contract, release → contract.
  const contractVersion = strings.contractVersion?.trim() ? strings.contractVersion : "local-contract";
  const releaseVersion = strings.releaseVersion?.trim() ? strings.releaseVersion : contractVersion;
  const command: Command = {
    tenantId: strings.tenantId ?? "",
    executionId: strings.executionId ?? "",
    pipelineId: strings.pipelineId ?? "",
    contractVersion,
    releaseVersion,
    currentStepIndex: integer(obj, "currentStepIndex"),
    stopBeforeStepIndex: integer(obj, "stopBeforeStepIndex"),
    attempt: integer(obj, "attempt"),
    resultShape: resultShape as Command["resultShape"],
    executionVersion: integer(obj, "executionVersion"),
    transitionKey: strings.transitionKey ?? "",
    traceId: strings.traceId ?? "",
    payloadTypeId: strings.payloadTypeId ?? "",
    payloadEncoding: strings.payloadEncoding ?? "",
    payload: strings.payload ?? "",
  };
  if (!command.transitionKey.trim()) throw new InvalidCommand("command.transitionKey must not be blank");
  for (const key of ["currentStepIndex", "attempt", "executionVersion"] as const) {
    if (command[key] < 0) throw new InvalidCommand(`command.${key} must be >= 0`);
  }
  const stop = command.stopBeforeStepIndex;
  if (stop >= 0 && stop < command.currentStepIndex) {
    throw new InvalidCommand("command.stopBeforeStepIndex must be >= currentStepIndex");
  }
  return command;
}

export function inputEnvelope(command: Command): Envelope {
  return {
    payloadTypeId: command.payloadTypeId,
    payloadEncoding: command.payloadEncoding,
    payload: command.payload,
  };
}

export type Result =
  | { outcome: "COMPLETED"; outputPayloads: Envelope[] }
  | { outcome: "WAITING_EXTERNAL"; awaitSuspension: { [key: string]: Json } }
  | { outcome: "FAILED"; failureClass: string; message: string | null };

/** The result document, exactly TPF's keys in TPF's order. */
export function encodeResult(result: Result): Uint8Array {
  const document = {
    outcome: result.outcome,
    outputPayloads:
      result.outcome === "COMPLETED"
        ? result.outputPayloads.map((e) => ({
            payloadTypeId: e.payloadTypeId,
            payloadEncoding: e.payloadEncoding,
            payload: e.payload,
          }))
        : [],
    awaitSuspension: result.outcome === "WAITING_EXTERNAL" ? result.awaitSuspension : null,
    failure: result.outcome === "FAILED" ? { failureClass: result.failureClass, message: result.message } : null,
    terminalOutputPublished: false,
    terminalInputPassthrough: false,
  };
  return new TextEncoder().encode(JSON.stringify(document));
}

export interface Capability {
  pipelineId: string;
  contractVersion: string;
  releaseVersion: string;
  artifactId: string;
  artifactDigest: string;
  providerName: string;
  workerProtocols: string[];
}

export function encodeCapability(capability: Capability): Uint8Array {
  const document = {
    protocolVersion: PROTOCOL_VERSION,
    providerName: capability.providerName,
    pipelineId: capability.pipelineId,
    contractVersion: capability.contractVersion,
    releaseVersion: capability.releaseVersion,
    artifactId: capability.artifactId,
    artifactDigest: capability.artifactDigest,
    payloadEncodings: [ENVELOPE_ENCODING],
    workerProtocols: capability.workerProtocols,
  };
  return new TextEncoder().encode(JSON.stringify(document));
}
