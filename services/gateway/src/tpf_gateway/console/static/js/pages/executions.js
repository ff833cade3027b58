// Executions: the tenant's executions, newest first, filtered by pipeline, status and creation
// time, refreshed every few seconds; changes are announced to screen readers.

import { api, v1 } from "../api.js";
import {
  STATUSES,
  announce,
  field,
  fill,
  h,
  localInputToRfc3339,
  notice,
  shortId,
  statusBadge,
  timeElement,
} from "../dom.js";
import { PIPELINE_LIST_ID, pipelineDatalist, rememberPipelines } from "../pipelines.js";
import { poll } from "../poll.js";
import { currentSession } from "../session.js";

const PAGE_SIZE = 50;
const REFRESH_MS = 3000;

function filterForm(params, onApply) {
  pipelineDatalist();
  const pipeline = h("input", {
    type: "text",
    list: PIPELINE_LIST_ID,
    autocomplete: "off",
    spellcheck: "false",
    value: params.get("pipeline") || "",
  });
  const status = h(
    "select",
    {},
    h("option", { value: "" }, "Any status"),
    STATUSES.map((each) =>
      h("option", { value: each, selected: params.get("status") === each }, each),
    ),
  );
  const after = h("input", { type: "datetime-local", value: params.get("after") || "" });
  const before = h("input", { type: "datetime-local", value: params.get("before") || "" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter executions" },
    field("filter-pipeline", "Pipeline", pipeline),
    field("filter-status", "Status", status),
    field("filter-after", "Created after", after),
    field("filter-before", "Created before", before),
    h("div", { class: "filter-buttons" }, h("button", { type: "submit" }, "Apply filters")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply({
      pipeline: pipeline.value.trim(),
      status: status.value,
      after: after.value,
      before: before.value,
    });
  });
  return form;
}

function queryOf(filters) {
  return {
    pageSize: PAGE_SIZE,
    pipelineId: filters.pipeline,
    statuses: filters.status,
    createdAfter: localInputToRfc3339(filters.after),
    createdBefore: localInputToRfc3339(filters.before),
  };
}

function row(execution) {
  const id = execution.executionId;
  const identity = execution.identity || {};
  return h(
    "tr",
    { "data-id": id },
    h(
      "td",
      {},
      h(
        "a",
        { href: `#/executions/${encodeURIComponent(id)}`, class: "mono", "aria-label": `Execution ${id}` },
        shortId(id),
      ),
    ),
    h("td", {}, identity.pipelineId || "—"),
    h("td", { class: "mono" }, shortId(identity.releaseVersion || "—")),
    h("td", {}, statusBadge(execution.status)),
    h("td", { class: "num" }, execution.stepIndex),
    h("td", { class: "num" }, execution.attempt),
    h("td", {}, timeElement(execution.createdAtEpochMs)),
    h("td", {}, timeElement(execution.updatedAtEpochMs)),
    h("td", { class: "error-cell" }, execution.errorCode || ""),
  );
}

function describeChanges(previous, executions) {
  if (previous === null) return "";
  const changed = executions.filter(
    (each) => previous.has(each.executionId) && previous.get(each.executionId) !== each.status,
  );
  const added = executions.filter((each) => !previous.has(each.executionId));
  const parts = [];
  if (added.length === 1) parts.push(`New execution ${shortId(added[0].executionId)}, ${added[0].status}.`);
  else if (added.length > 1) parts.push(`${added.length} new executions.`);
  if (changed.length === 1) {
    parts.push(`Execution ${shortId(changed[0].executionId)} is now ${changed[0].status}.`);
  } else if (changed.length > 1) parts.push(`${changed.length} executions changed status.`);
  return parts.join(" ");
}

export function renderExecutions(main, { params }) {
  let filters = {
    pipeline: params.get("pipeline") || "",
    status: params.get("status") || "",
    after: params.get("after") || "",
    before: params.get("before") || "",
  };
  let nextPageToken = "";
  let extra = [];
  let seen = null;
  let lastRendered = "";
  const tenant = currentSession().tenant;
  const body = h("tbody");
  const table = h(
    "table",
    { class: "data" },
    h("caption", {}, `Executions of tenant ${tenant}, newest first`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Execution", "Pipeline", "Release", "Status", "Step", "Attempt", "Created", "Updated", "Error"].map(
          (name) => h("th", { scope: "col" }, name),
        ),
      ),
    ),
    body,
  );
  const errorBox = h("div", { class: "error-slot" });
  const updated = h("span", { class: "updated" });
  const live = h("input", { type: "checkbox", id: "executions-live", checked: true });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  const empty = h("p", { class: "empty", hidden: true }, "No executions match these filters.");

  function render(executions) {
    const key = JSON.stringify(executions);
    if (key === lastRendered) return;
    lastRendered = key;
    // Keep keyboard focus on the same execution across a refresh.
    const focusedId = document.activeElement?.closest?.("tr")?.dataset?.id;
    fill(body, executions.map(row));
    empty.hidden = executions.length > 0;
    if (focusedId) body.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] a`)?.focus();
  }

  async function refresh() {
    try {
      const page = await api(v1("/executions"), { query: queryOf(filters) });
      const executions = page.executions || [];
      if (!extra.length) nextPageToken = page.nextPageToken || "";
      more.hidden = !nextPageToken;
      const ids = new Set(executions.map((each) => each.executionId));
      const all = [...executions, ...extra.filter((each) => !ids.has(each.executionId))];
      const message = describeChanges(seen, all);
      if (message) announce(message);
      seen = new Map(all.map((each) => [each.executionId, each.status]));
      rememberPipelines(all.map((each) => each.identity?.pipelineId));
      render(all);
      fill(errorBox);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      fill(errorBox, notice(error.describe ? error.describe() : String(error), "error"));
    }
  }

  more.addEventListener("click", async () => {
    try {
      const page = await api(v1("/executions"), {
        query: { ...queryOf(filters), pageToken: nextPageToken },
      });
      extra = [...extra, ...(page.executions || [])];
      nextPageToken = page.nextPageToken || "";
      lastRendered = "";
      await poller.now();
      announce(`${(page.executions || []).length} more executions shown.`);
    } catch (error) {
      fill(errorBox, notice(error.describe ? error.describe() : String(error), "error"));
    }
  });

  const form = filterForm(params, (applied) => {
    filters = applied;
    extra = [];
    seen = null;
    lastRendered = "";
    const query = new URLSearchParams(
      Object.entries(applied).filter(([, value]) => value),
    ).toString();
    // Keep the filters in the address (bookmarkable) without re-rendering the page.
    window.history.replaceState(null, "", `#/executions${query ? `?${query}` : ""}`);
    poller.now().then(() => announce(`${body.rows.length} executions shown.`));
  });

  fill(
    main,
    h("h1", {}, "Executions"),
    form,
    h(
      "div",
      { class: "list-status" },
      h("div", { class: "check" }, live, h("label", { for: "executions-live" }, "Live updates")),
      updated,
    ),
    errorBox,
    h("div", { class: "table-wrap" }, table),
    empty,
    more,
  );

  let poller = poll(refresh, REFRESH_MS);
  live.addEventListener("change", () => {
    poller.stop();
    poller = live.checked ? poll(refresh, REFRESH_MS) : poll(refresh, 24 * 3600 * 1000);
    announce(live.checked ? "Live updates on." : "Live updates off.");
  });
  return () => poller.stop();
}
