// The `awaitSuspension` a worker answers when a run reaches an await step (TPF_WIRE §9.2): the
// await unit and one interaction, with the identifiers TPF derives from names (§5.3: Java's
// `UUID.nameUUIDFromBytes`, an MD5 name-based UUID). Interaction ids are random, as in TPF.
import { createHash, randomUUID } from "node:crypto";

import type { Json } from "../envelope.js";

export const RECORD_TTL_AFTER_DEADLINE_S = 86_400;
const MISSING_FIELD_TEXT = "<null>";
const UNPREFIXED_CORRELATION_STRATEGIES = new Set(["interactionId", "signedResumeToken"]);

/** Java `UUID.nameUUIDFromBytes(text.getBytes(UTF_8)).toString()`. */
export function nameUuid(text: string): string {
  const bytes = createHash("md5").update(text, "utf8").digest();
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x30; // version 3
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // IETF variant
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function awaitUnitId(tenantId: string, executionId: string, stepId: string, stepIndex: number): string {
  return nameUuid(`${tenantId}:${executionId}:${stepId}:${stepIndex}`);
}

/**
 * Jackson's `asText()` of a key field. A non-integral number is printed as JavaScript does,
 * which matches Java's `Double.toString` for plain values such as 12.5 but not for 1.0 (JSON
 * parsing cannot tell 1.0 from 1): key on strings or integers.
 */
function fieldText(value: Json | undefined): string {
  if (value === undefined || value === null) return MISSING_FIELD_TEXT;
  if (typeof value === "boolean" || typeof value === "number") return String(value);
  if (typeof value === "string") return value;
  return "";
}

export function interactionIdempotencyKey(
  executionId: string,
  stepId: string,
  keyFields: readonly string[],
  requestPayload: Json,
): string {
  if (keyFields.length === 0) {
    return `${executionId}:${stepId}`;
  }
  const record =
    requestPayload !== null && typeof requestPayload === "object" && !Array.isArray(requestPayload)
      ? requestPayload
      : {};
  return [stepId, ...keyFields.map((field) => `${field}=${fieldText(record[field])}`)].join(":");
}

export function correlationId(
  strategy: string,
  tenantId: string,
  executionId: string,
  stepId: string,
  idempotencyKey: string,
): string {
  const basis = `${tenantId}:${executionId}:${stepId}:${idempotencyKey}`;
  return nameUuid(UNPREFIXED_CORRELATION_STRATEGIES.has(strategy) ? basis : `${strategy}:${basis}`);
}

export interface AwaitStepInfo {
  /** The step's service name: TPF's step id. */
  service: string;
  index: number;
  outputType: string;
  timeoutMs: number;
  idempotencyKeyFields: readonly string[];
  transportType: string;
  correlationStrategy: string;
}

/** The suspension of a one-to-one await asking `requestPayload` (plain JSON of the step input). */
export function awaitSuspension(args: {
  tenantId: string;
  executionId: string;
  /** The transition key of the command that reached the await. */
  causationId: string;
  step: AwaitStepInfo;
  requestPayload: Json;
  nowMs: number;
  newInteractionId?: () => string;
}): { [key: string]: Json } {
  const { tenantId, executionId, step, nowMs } = args;
  const unitId = awaitUnitId(tenantId, executionId, step.service, step.index);
  const deadlineMs = nowMs + step.timeoutMs;
  const ttlEpochS = Math.floor(deadlineMs / 1000) + RECORD_TTL_AFTER_DEADLINE_S;
  const key = interactionIdempotencyKey(executionId, step.service, step.idempotencyKeyFields, args.requestPayload);
  const interactionId = (args.newInteractionId ?? randomUUID)();
  const interaction: { [key: string]: Json } = {
    tenantId,
    executionId,
    stepId: step.service,
    stepIndex: step.index,
    outputType: step.outputType,
    interactionId,
    correlationId: correlationId(step.correlationStrategy, tenantId, executionId, step.service, key),
    causationId: args.causationId,
    idempotencyKey: key,
    version: 0,
    status: "WAITING",
    requestPayload: args.requestPayload,
    responsePayload: null,
    unitId,
    itemIndex: null,
    actor: null,
    assignee: null,
    group: null,
    transportType: step.transportType,
    transportMetadata: {},
    deadlineEpochMs: deadlineMs,
    createdAtEpochMs: nowMs,
    updatedAtEpochMs: nowMs,
    ttlEpochS,
    transportOutputType: step.outputType,
  };
  const unit: { [key: string]: Json } = {
    tenantId,
    unitId,
    executionId,
    stepId: step.service,
    stepIndex: step.index,
    cardinality: "ONE_TO_ONE",
    version: 0,
    status: "WAITING_EXTERNAL",
    primaryInteractionId: interactionId,
    expectedItemCount: 1,
    completedItemCount: 0,
    completedItemKeys: [],
    dispatchComplete: false,
    createdAtEpochMs: nowMs,
    updatedAtEpochMs: nowMs,
    ttlEpochS,
  };
  return { tenantId, executionId, unitId, stepIndex: step.index, unit, interactions: [interaction] };
}
