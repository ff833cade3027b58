// Retries of calls that failed with UNAVAILABLE (the service restarting, a connection reset).
// Calls that change state carry a request id (AIP-155) chosen once before the first attempt, so
// the service answers a repeat with the first response instead of acting twice.
import { randomUUID } from "node:crypto";

import { Code } from "@connectrpc/connect";

import { TpfError, toTpfError } from "./errors.js";
import type { RetryOptions } from "./options.js";

export function newRequestId(): string {
  return randomUUID();
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Runs `attempt` until it succeeds, fails with anything but UNAVAILABLE, or attempts run out. */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  options: RetryOptions | undefined,
  signal: AbortSignal | undefined,
): Promise<T> {
  const maxAttempts = Math.max(1, options?.maxAttempts ?? 4);
  let backoffMs = options?.initialBackoffMs ?? 100;
  const maxBackoffMs = options?.maxBackoffMs ?? 2_000;
  for (let number = 1; ; number++) {
    let error: TpfError;
    try {
      return await attempt();
    } catch (thrown) {
      error = toTpfError(thrown);
    }
    if (error.code !== Code.Unavailable || number >= maxAttempts) {
      throw error;
    }
    // Full jitter, so clients that failed together do not come back together.
    await sleep(Math.random() * backoffMs, signal);
    backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
  }
}
