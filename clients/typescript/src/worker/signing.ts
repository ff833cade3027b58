// HMAC-SHA256 signatures of TPF's worker protocol (TPF_WIRE §9.4), as the Python SDK checks them:
// lower-case hex of HMAC(secret, `METHOD\nPATH\nTIMESTAMP\nNONCE\nhex(sha256(body))`). The gRPC
// transport signs with METHOD `GRPC` and the RPC's path; the values travel in message fields.
import { createHash, createHmac, randomUUID, timingSafeEqual } from "node:crypto";

export const DEFAULT_TOLERANCE_MS = 2 * 60 * 1000;
const PURGE_INTERVAL_MS = 30 * 1000;

// Java's Instant.parse: a UTC `Z` or a numeric offset, up to nine fraction digits.
const INSTANT =
  /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2})(?::(\d{2}))?)$/;

/** Milliseconds since the epoch of a Java `Instant.toString` text; throws on anything else. */
export function parseInstant(text: string): number {
  const match = INSTANT.exec(text);
  if (!match) {
    throw new Error(`not an ISO-8601 instant: ${JSON.stringify(text)}`);
  }
  const [, date, hour, minute, second, fraction, utc, sign, offH, offM, offS] = match;
  const millis = (fraction ?? "").slice(0, 3).padEnd(3, "0");
  const local = Date.parse(`${date}T${hour}:${minute}:${second ?? "00"}.${millis}Z`);
  if (Number.isNaN(local)) {
    throw new Error(`not an ISO-8601 instant: ${JSON.stringify(text)}`);
  }
  if (utc) {
    return local;
  }
  const offsetMs = ((Number(offH) * 60 + Number(offM)) * 60 + Number(offS ?? 0)) * 1000;
  return sign === "-" ? local + offsetMs : local - offsetMs;
}

/** The current time as Java's `Instant.toString` prints it (no fraction on a whole second). */
export function javaInstant(now: Date = new Date()): string {
  return now.toISOString().replace(".000Z", "Z");
}

function normalizedPath(path: string): string {
  if (!path.trim()) return "/";
  return path.startsWith("/") ? path : `/${path}`;
}

export function signature(
  secret: string,
  method: string,
  path: string,
  timestamp: string,
  nonce: string,
  body: Uint8Array,
): string {
  const bodyHash = createHash("sha256").update(body).digest("hex");
  const message = `${method}\n${normalizedPath(path)}\n${timestamp}\n${nonce}\n${bodyHash}`;
  return createHmac("sha256", secret).update(message, "utf8").digest("hex");
}

export interface Signed {
  timestamp: string;
  nonce: string;
  signature: string;
}

/** Signs a request made now with a fresh nonce (what a dispatcher does before each call). */
export function sign(secret: string, method: string, path: string, body: Uint8Array): Signed {
  const timestamp = javaInstant();
  const nonce = randomUUID();
  return { timestamp, nonce, signature: signature(secret, method, path, timestamp, nonce, body) };
}

export type RejectReason = "missing" | "timestamp" | "stale" | "signature" | "replayed";

export class SignatureRejected extends Error {
  override readonly name = "SignatureRejected";
  constructor(readonly reason: RejectReason) {
    super(`request signature rejected: ${reason}`);
  }
}

/**
 * Checks signed requests in TPF's order (present, parsable, fresh, authentic, not replayed) and
 * remembers each nonce until its timestamp leaves the tolerance window.
 */
export class Verifier {
  private readonly nonces = new Map<string, number>();
  private lastPurgeMs = 0;

  constructor(
    private readonly secret: string,
    private readonly toleranceMs: number = DEFAULT_TOLERANCE_MS,
    private readonly maxNonces: number = 10_000,
  ) {
    if (!secret) {
      throw new Error("gRPC transition worker shared secret is unavailable");
    }
  }

  verify(
    method: string,
    path: string,
    timestamp: string,
    nonce: string,
    signed: string,
    body: Uint8Array,
    nowMs: number = Date.now(),
  ): void {
    if (!timestamp.trim() || !nonce.trim() || !signed.trim()) {
      throw new SignatureRejected("missing");
    }
    let signedAtMs: number;
    try {
      signedAtMs = parseInstant(timestamp);
    } catch {
      throw new SignatureRejected("timestamp");
    }
    if (Math.abs(nowMs - signedAtMs) > this.toleranceMs) {
      throw new SignatureRejected("stale");
    }
    const expected = Buffer.from(signature(this.secret, method, path, timestamp, nonce, body), "utf8");
    const given = Buffer.from(signed, "utf8");
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new SignatureRejected("signature");
    }
    this.purge(nowMs);
    if (this.nonces.has(nonce)) {
      throw new SignatureRejected("replayed");
    }
    this.nonces.set(nonce, signedAtMs);
    while (this.nonces.size > this.maxNonces) {
      const oldest = this.nonces.keys().next().value;
      if (oldest === undefined) break;
      this.nonces.delete(oldest);
    }
  }

  private purge(nowMs: number): void {
    if (nowMs - this.lastPurgeMs < PURGE_INTERVAL_MS) return;
    this.lastPurgeMs = nowMs;
    const cutoff = nowMs - this.toleranceMs;
    for (const [nonce, signedAtMs] of this.nonces) {
      if (signedAtMs < cutoff) this.nonces.delete(nonce);
    }
  }
}
