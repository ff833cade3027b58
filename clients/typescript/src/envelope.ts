// TPF's payload envelope (`tpf.common.v1.PayloadEnvelope`): a type id, the encoding
// `application/tpf-transition+json`, and the payload as JSON *text*. Maps and lists nest an
// envelope per value; application objects are their own JSON under their class name.
//
// Numbers are JavaScript numbers here: decimals beyond a double's precision lose digits.

export const TRANSITION_ENCODING = "application/tpf-transition+json";

/** The three fields, as they appear in proto messages and in the worker protocol's JSON. */
export interface Envelope {
  payloadTypeId: string;
  payloadEncoding: string;
  payload: string;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const NULL = "null";
const MAP = "java.util.Map";
const LIST = "java.util.List";
const SET = "java.util.Set";
export const INPUT_SNAPSHOT = "org.pipelineframework.orchestrator.ExecutionInputSnapshot";
const LONG = "java.lang.Long";
const BIG_INTEGER = "java.math.BigInteger";
const DOUBLE = "java.lang.Double";
const BOOLEAN = "java.lang.Boolean";
const STRING = "java.lang.String";
const JDK_SCALARS = new Set([
  STRING,
  LONG,
  "java.lang.Integer",
  "java.lang.Short",
  "java.lang.Byte",
  DOUBLE,
  "java.lang.Float",
  BOOLEAN,
  "java.lang.Character",
  "java.math.BigDecimal",
  BIG_INTEGER,
  "java.time.Instant",
  "java.time.LocalDate",
  "java.time.LocalDateTime",
  "java.time.OffsetDateTime",
  "java.time.ZonedDateTime",
  "java.nio.file.Path",
  "java.util.UUID",
]);
/** The coordinator's default allow-list of application type ids. */
export const DEFAULT_ALLOWED_PREFIXES: readonly string[] = ["org.pipelineframework."];
const JAVA_BINARY_NAME = /^(?:[\p{L}_$][\p{L}\p{N}_$]*)(?:\.[\p{L}_$][\p{L}\p{N}_$]*)*$/u;

export class EnvelopeError extends Error {
  override readonly name = "EnvelopeError";
}

/** An application object of class `typeId`, as its JSON (how steps pass typed values). */
export function application(typeId: string, value: Json): Envelope {
  if (value === null) {
    throw new EnvelopeError("an application value is never null; use encode(null)");
  }
  return { payloadTypeId: typeId, payloadEncoding: TRANSITION_ENCODING, payload: JSON.stringify(value) };
}

/** Plain JSON as TPF's generic envelopes: objects are java.util.Map, arrays java.util.List. */
export function encode(value: Json): Envelope {
  return { payloadTypeId: typeOf(value), payloadEncoding: TRANSITION_ENCODING, payload: text(value) };
}

function typeOf(value: Json): string {
  if (value === null) return NULL;
  if (typeof value === "boolean") return BOOLEAN;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new EnvelopeError(`${value} has no JSON form`);
    if (!Number.isInteger(value)) return DOUBLE;
    return Number.isSafeInteger(value) ? LONG : BIG_INTEGER;
  }
  if (typeof value === "string") return STRING;
  return Array.isArray(value) ? LIST : MAP;
}

function text(value: Json): string {
  if (Array.isArray(value)) {
    return `{"items":[${value.map((item) => nested(encode(item))).join(",")}]}`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).map(([key, item]) => {
      if (!key.trim()) throw new EnvelopeError(`map keys must not be blank, got ${JSON.stringify(key)}`);
      return `${JSON.stringify(key)}:${nested(encode(item))}`;
    });
    return `{"items":{${entries.join(",")}}}`;
  }
  return JSON.stringify(value);
}

function nested(envelope: Envelope): string {
  return JSON.stringify({
    payloadTypeId: envelope.payloadTypeId,
    payloadEncoding: envelope.payloadEncoding,
    payload: envelope.payload,
  });
}

/** TPF's step-0 wrapper of a submission's input. */
export interface InputSnapshot {
  shape: "UNI" | "MULTI" | "RAW";
  payload: Json;
  items: Json[];
}

export interface DecodeOptions {
  /** Application type ids accepted (by prefix); DEFAULT_ALLOWED_PREFIXES when absent. */
  allowedPrefixes?: readonly string[];
}

/** An envelope as plain JSON (an input snapshot as `{shape, payload, items}`). */
export function decode(envelope: Envelope, options: DecodeOptions = {}): Json {
  const value = decodeValue(envelope, options.allowedPrefixes ?? DEFAULT_ALLOWED_PREFIXES, "$");
  return isSnapshot(value) ? { shape: value.shape, payload: value.payload, items: value.items } : value;
}

/** The items a command's input stands for: a MULTI snapshot's items, else the one value. */
export function decodeItems(envelope: Envelope, allowedPrefixes: readonly string[]): Json[] {
  const value = decodeValue(envelope, allowedPrefixes, "$");
  if (isSnapshot(value)) {
    return value.shape === "MULTI" ? value.items : [value.payload];
  }
  return [value];
}

class Snapshot implements InputSnapshot {
  constructor(
    readonly shape: "UNI" | "MULTI" | "RAW",
    readonly payload: Json,
    readonly items: Json[],
  ) {}
}

function isSnapshot(value: Json | Snapshot): value is Snapshot {
  return value instanceof Snapshot;
}

function parse(envelope: Envelope, path: string): unknown {
  try {
    return JSON.parse(envelope.payload);
  } catch (error) {
    throw new EnvelopeError(`${path}: ${envelope.payloadTypeId} payload is not JSON (${String(error)})`);
  }
}

function asEnvelope(value: unknown, path: string): Envelope {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new EnvelopeError(`${path}: expected a nested envelope object`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!["payloadTypeId", "payloadEncoding", "payload"].includes(key)) {
      throw new EnvelopeError(`${path}: unknown field ${JSON.stringify(key)}`);
    }
  }
  const [typeId, encoding, payload] = [record.payloadTypeId, record.payloadEncoding, record.payload];
  if (typeof typeId !== "string" || typeof encoding !== "string" || typeof payload !== "string") {
    throw new EnvelopeError(`${path}: payloadTypeId, payloadEncoding and payload must be strings`);
  }
  return { payloadTypeId: typeId, payloadEncoding: encoding, payload };
}

function items(parsed: unknown, typeId: string, path: string): unknown {
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new EnvelopeError(`${path}: ${typeId} payload must be {"items": ...}`);
  }
  return (parsed as Record<string, unknown>).items ?? null;
}

function decodeValue(envelope: Envelope, prefixes: readonly string[], path: string): Json | Snapshot {
  if (envelope.payloadEncoding !== TRANSITION_ENCODING) {
    throw new EnvelopeError(`${path}: unsupported payload encoding ${envelope.payloadEncoding}`);
  }
  const typeId = envelope.payloadTypeId;
  const parsed = parse(envelope, path);
  if (typeId === NULL) {
    if (parsed !== null) throw new EnvelopeError(`${path}: a null envelope holds the text null`);
    return null;
  }
  if (typeId === MAP) {
    const entries = items(parsed, typeId, path) ?? {};
    if (typeof entries !== "object" || Array.isArray(entries)) {
      throw new EnvelopeError(`${path}: java.util.Map items must be an object`);
    }
    const result: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(entries as Record<string, unknown>)) {
      result[key] = plainOf(decodeValue(asEnvelope(item, `${path}.${key}`), prefixes, `${path}.${key}`));
    }
    return result;
  }
  if (typeId === LIST || typeId === SET) {
    const list = items(parsed, typeId, path) ?? [];
    if (!Array.isArray(list)) throw new EnvelopeError(`${path}: ${typeId} items must be an array`);
    return list.map((item, index) =>
      plainOf(decodeValue(asEnvelope(item, `${path}[${index}]`), prefixes, `${path}[${index}]`)),
    );
  }
  if (typeId === INPUT_SNAPSHOT) {
    const snapshot = parsed as { shape?: unknown; payload?: unknown; items?: unknown } | null;
    const shape = snapshot?.shape;
    if (shape !== "UNI" && shape !== "MULTI" && shape !== "RAW") {
      throw new EnvelopeError(`${path}: input snapshot shape must be UNI, MULTI or RAW`);
    }
    if (shape === "MULTI") {
      const list = Array.isArray(snapshot?.items) ? snapshot.items : [];
      return new Snapshot(
        shape,
        null,
        list.map((item, index) => plainOf(decodeValue(asEnvelope(item, `${path}.items[${index}]`), prefixes, path))),
      );
    }
    const payload = asEnvelope(snapshot?.payload, `${path}.payload`);
    return new Snapshot(shape, plainOf(decodeValue(payload, prefixes, `${path}.payload`)), []);
  }
  if (JDK_SCALARS.has(typeId)) {
    return parsed as Json;
  }
  if (!JAVA_BINARY_NAME.test(typeId) || !prefixes.some((prefix) => typeId.startsWith(prefix))) {
    throw new EnvelopeError(`${path}: payload type ${typeId} is not allowed`);
  }
  if (parsed === null) {
    throw new EnvelopeError(`${path}: an application payload is never null`);
  }
  return parsed as Json;
}

function plainOf(value: Json | Snapshot): Json {
  return isSnapshot(value) ? { shape: value.shape, payload: value.payload, items: value.items } : value;
}
