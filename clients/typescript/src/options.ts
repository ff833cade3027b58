// Connection options and the transport every client shares: gRPC over HTTP/2 (plain text or
// TLS), the bearer token on every call, and a default deadline.
import { readFileSync } from "node:fs";

import type { Interceptor, Transport } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";

export interface TlsOptions {
  /** PEM of the CA that signed the server's certificate; the system's CAs when absent. */
  ca?: string | Buffer;
  /** PEM client certificate and key, for servers that ask for one (mutual TLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to check the server's certificate against, when it differs from the target host. */
  serverName?: string;
}

export interface RetryOptions {
  /** Attempts in all, the first included (1 turns retries off). Default 4. */
  maxAttempts?: number;
  /** Backoff before the second attempt; doubles up to `maxBackoffMs`. Defaults 100 and 2000. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ClientOptions {
  /** `host:port` of the service (coordinator :50051, registry :50052 under `make dev`). */
  target: string;
  /** Bearer token sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** TLS settings; `true` for TLS with the system's CAs. Plain text (h2c) when absent. */
  tls?: TlsOptions | true;
  /** Deadline of each unary call unless the call names its own. Default 10 000 ms. */
  deadlineMs?: number;
  /** Retries of calls that fail with UNAVAILABLE (see RetryOptions). */
  retry?: RetryOptions;
  /** Extra Connect interceptors (tracing, logging), run after the token is added. */
  interceptors?: Interceptor[];
}

/** What a single call may override. */
export interface CallOptions {
  /** Deadline of this call in milliseconds. */
  deadlineMs?: number;
  /** Cancels the call (and its retries). */
  signal?: AbortSignal;
}

export const DEFAULT_DEADLINE_MS = 10_000;

/** Reads a PEM file, for TlsOptions fields. */
export function pem(path: string): Buffer {
  return readFileSync(path);
}

function bearer(token: string): Interceptor {
  return (next) => async (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

/** A transport with its HTTP/2 connection, which `close` ends (it keeps a process alive). */
export interface TpfTransport {
  transport: Transport;
  close(): void;
}

export function createTransport(options: ClientOptions): TpfTransport {
  const tls = options.tls === true ? {} : options.tls;
  const interceptors: Interceptor[] = [];
  if (options.token) {
    interceptors.push(bearer(options.token));
  }
  interceptors.push(...(options.interceptors ?? []));
  const baseUrl = `${tls ? "https" : "http"}://${options.target}`;
  const nodeOptions = tls
    ? {
        ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
        ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
        ...(tls.key !== undefined ? { key: tls.key } : {}),
        ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
      }
    : {};
  const sessionManager = new Http2SessionManager(baseUrl, {}, nodeOptions);
  const transport = createGrpcTransport({
    baseUrl,
    interceptors,
    defaultTimeoutMs: options.deadlineMs ?? DEFAULT_DEADLINE_MS,
    sessionManager,
  });
  return { transport, close: () => sessionManager.abort() };
}
