// Calls to the gateway with the operator's bearer token: its /v1 API, and the console's own
// routes under /console/api for what /v1 does not serve. Errors are RFC 9457 problem JSON;
// they become ApiError with the service's reason and the field it names, if any.

import { currentSession } from "./session.js";

export class ApiError extends Error {
  constructor(status, reason, detail, metadata) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.reason = reason || "";
    this.metadata = metadata || {};
  }

  /** The request field the error is about (`responsePayload`, `reason`, ...), or "". */
  get field() {
    return this.metadata.field || "";
  }

  /** One line for people: the message, then the reason in brackets. */
  describe() {
    if (this.status === 401) {
      return "The gateway does not accept this token for this part of the API (401).";
    }
    return this.reason ? `${this.message} (${this.reason})` : this.message;
  }
}

function tenantOf(session) {
  return encodeURIComponent(session.tenant);
}

/** `/v1/tenants/{tenant}` + suffix, for the signed-in tenant. */
export function v1(suffix) {
  return `/v1/tenants/${tenantOf(currentSession())}${suffix}`;
}

/** `/console/api/tenants/{tenant}` + suffix, for the signed-in tenant. */
export function consoleApi(suffix) {
  return `/console/api/tenants/${tenantOf(currentSession())}${suffix}`;
}

/** One path segment, escaped. */
export function segment(value) {
  return encodeURIComponent(value);
}

function urlOf(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    for (const each of Array.isArray(value) ? value : [value]) {
      url.searchParams.append(name, String(each));
    }
  }
  return url;
}

function headersOf(token, withBody) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (withBody) headers["Content-Type"] = "application/json";
  return headers;
}

async function errorOf(response) {
  let document = null;
  try {
    document = await response.json();
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return new ApiError(
    response.status,
    document && document.reason,
    (document && document.detail) || response.statusText,
    document && document.metadata,
  );
}

/**
 * Call the gateway: `api("/v1/...", {method, query, body, signal, token})`; resolves to the
 * JSON answer, rejects with ApiError.
 */
export async function api(path, options = {}) {
  const { method = "GET", query, body, signal } = options;
  const token = options.token ?? currentSession()?.token;
  let response;
  try {
    response = await fetch(urlOf(path, query), {
      method,
      headers: headersOf(token, body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "UNAVAILABLE", "The gateway cannot be reached.", {});
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

/**
 * Follow an execution through the console's WatchExecution stream: calls `onState(execution)`
 * for each state, returns when the stream ends (the execution is terminal, or the gateway
 * closed it). Rejects with ApiError; an AbortError when `signal` aborts.
 */
export async function watchExecution(executionId, { afterVersion, signal, onState }) {
  const path = consoleApi(`/executions/${segment(executionId)}:watch`);
  const response = await fetch(urlOf(path, { afterVersion }), {
    headers: headersOf(currentSession()?.token, false),
    signal,
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      // Empty lines are the gateway's heartbeats.
      if (!line) continue;
      const message = JSON.parse(line);
      if (message.error) {
        throw new ApiError(message.error.status, message.error.reason, message.error.detail, {});
      }
      onState(message.execution);
    }
  }
}

/** Every page of a /v1 list: `items` names the repeated field. */
export async function listAll(path, items, query = {}, { limit = 1000, signal } = {}) {
  const found = [];
  let pageToken = "";
  do {
    const page = await api(path, { query: { ...query, pageSize: 200, pageToken }, signal });
    found.push(...(page[items] || []));
    pageToken = page.nextPageToken || "";
  } while (pageToken && found.length < limit);
  return found;
}
