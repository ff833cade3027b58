// Building DOM nodes without innerHTML (so no payload text is ever parsed as markup), and the
// small formatting helpers every page shares.

/**
 * An element: h("a", {href: "#/x", class: "c"}, "text", child, [more]).
 * Attributes starting with "on" are listeners; true/false toggle boolean attributes; null and
 * undefined are skipped, as are null children.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/** Replace every child of `element`. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** Say `message` to screen readers through the page's polite live region. */
export function announce(message) {
  const region = document.getElementById("announcer");
  // Clearing first makes a repeated message be read again.
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = message;
  }, 50);
}

// Short enough for a table cell; the <time> element carries the full instant.
const TIME = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});

// Long.MAX_VALUE: TPF's "not due" (an execution waiting on a human).
const NEVER = 9223372036854775807;

/** An epoch-millisecond time for people; "—" for none. */
export function time(epochMs) {
  if (!epochMs) return "—";
  if (epochMs >= NEVER / 2) return "not due";
  return TIME.format(new Date(epochMs));
}

/** A <time> element for an epoch-millisecond time. */
export function timeElement(epochMs) {
  if (!epochMs || epochMs >= NEVER / 2) return h("span", {}, time(epochMs));
  const instant = new Date(epochMs).toISOString();
  return h("time", { datetime: instant, title: instant }, time(epochMs));
}

/** A value of a datetime-local input as RFC 3339 (UTC), or "" when empty. */
export function localInputToRfc3339(value) {
  if (!value) return "";
  const parsed = new Date(value);
  return Number.isNaN(parsed.getTime()) ? "" : parsed.toISOString();
}

/** JSON for reading: indented, stable. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** A pre block of pretty JSON, labelled for assistive technology. */
export function jsonBlock(value, label) {
  return h("pre", { class: "json", tabindex: "0", "aria-label": label }, pretty(value));
}

const GENERIC = new Set(["java.util.Map", "java.util.List", "java.util.Set"]);

/**
 * The plain JSON value a TPF payload envelope holds: TPF's generic envelopes (maps, lists and
 * sets of nested envelopes) are unwrapped, application types are their JSON payload. Returns
 * undefined when the payload is not JSON.
 */
export function plainOf(envelope) {
  if (!envelope || typeof envelope !== "object") return undefined;
  let body;
  try {
    body = envelope.payload === undefined ? null : JSON.parse(envelope.payload);
  } catch {
    return undefined;
  }
  if (!GENERIC.has(envelope.payloadTypeId) || body === null) return body;
  const items = body.items;
  if (Array.isArray(items)) return items.map(plainOf);
  if (items && typeof items === "object") {
    return Object.fromEntries(Object.entries(items).map(([key, item]) => [key, plainOf(item)]));
  }
  return body;
}

/** A status badge: text plus a class per status (never colour alone: the word is shown). */
export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);
}

export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "DLQ", "CANCELLED"]);

export const STATUSES = [
  "QUEUED",
  "RUNNING",
  "WAIT_RETRY",
  "WAITING_EXTERNAL",
  "SUCCEEDED",
  "FAILED",
  "DLQ",
  "CANCELLED",
];

/** A definition list from [term, description] pairs (descriptions may be nodes). */
export function details(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.flatMap(([term, description]) => [h("dt", {}, term), h("dd", {}, description ?? "—")]),
  );
}

/** A labelled form field: label + control + hint + an error slot tied by aria-describedby. */
export function field(id, labelText, control, hint) {
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  control.id = id;
  const describedBy = [hint ? hintId : null, errorId].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", describedBy);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, labelText),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
}

/** Show (or clear, with "") the error of the field whose control has `id`. */
export function setFieldError(id, message) {
  const control = document.getElementById(id);
  const slot = document.getElementById(`${id}-error`);
  if (!control || !slot) return;
  slot.textContent = message || "";
  slot.hidden = !message;
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
}

/** A message box for errors and notices; role alert for errors so they are read at once. */
export function notice(message, kind = "info") {
  return h(
    "div",
    { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : null },
    message,
  );
}

/** A short id for tables; the full id stays in the link's accessible name. */
export function shortId(id) {
  return id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}
