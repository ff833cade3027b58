// Dead letters: filter them, redrive one (optionally with a fixed input), or redrive every match
// in bulk: a dry run counts them first, then batches redrive them with a progress bar.

import { api, v1 } from "../api.js";
import { openRedriveDialog } from "../actions.js";
import {
  announce,
  field,
  fill,
  h,
  localInputToRfc3339,
  notice,
  setFieldError,
  shortId,
  timeElement,
} from "../dom.js";
import { PIPELINE_LIST_ID, pipelineDatalist, rememberPipelines } from "../pipelines.js";
import { poll } from "../poll.js";
import { canAdminister, canReadAdmin } from "../session.js";

const REFRESH_MS = 5000;
const BATCH = 10;
const TERMINAL_REASONS = [
  "RETRY_EXHAUSTED",
  "NON_RETRYABLE",
  "CIRCUIT_DEFERRAL_EXHAUSTED",
  "LEASE_EXPIRED_REPEATEDLY",
];

/** The DeadLetterFilter of the form, without empty criteria. */
function filterOf(values) {
  const filter = {};
  if (values.pipeline) filter.pipelineId = values.pipeline;
  if (values.errorCode) filter.errorCode = values.errorCode;
  if (values.reason) filter.terminalReasons = [values.reason];
  if (values.after) filter.createdAfter = localInputToRfc3339(values.after);
  if (values.before) filter.createdBefore = localInputToRfc3339(values.before);
  if (values.executionId) filter.executionId = values.executionId;
  return filter;
}

function listQuery(values) {
  const query = { pageSize: 100 };
  for (const [name, value] of Object.entries(filterOf(values))) query[`filter.${name}`] = value;
  if (values.includeRedriven) query["filter.includeRedriven"] = true;
  return query;
}

function filterForm(onApply) {
  pipelineDatalist();
  const controls = {
    pipeline: h("input", { type: "text", list: PIPELINE_LIST_ID, autocomplete: "off", spellcheck: "false" }),
    errorCode: h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
    reason: h(
      "select",
      {},
      h("option", { value: "" }, "Any reason"),
      TERMINAL_REASONS.map((each) => h("option", { value: each }, each)),
    ),
    after: h("input", { type: "datetime-local" }),
    before: h("input", { type: "datetime-local" }),
    executionId: h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
    includeRedriven: h("input", { type: "checkbox", id: "dl-include-redriven" }),
  };
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter dead letters" },
    field("dl-pipeline", "Pipeline", controls.pipeline),
    field("dl-error-code", "Error code", controls.errorCode),
    field("dl-reason", "Terminal reason", controls.reason),
    field("dl-after", "Created after", controls.after),
    field("dl-before", "Created before", controls.before),
    field("dl-execution", "Execution id", controls.executionId),
    h(
      "div",
      { class: "check" },
      controls.includeRedriven,
      h("label", { for: "dl-include-redriven" }, "Include redriven"),
    ),
    h("div", { class: "filter-buttons" }, h("button", { type: "submit" }, "Apply filters")),
  );
  const values = () => ({
    pipeline: controls.pipeline.value.trim(),
    errorCode: controls.errorCode.value.trim(),
    reason: controls.reason.value,
    after: controls.after.value,
    before: controls.before.value,
    executionId: controls.executionId.value.trim(),
    includeRedriven: controls.includeRedriven.checked,
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply(values());
  });
  return { form, values };
}

function row(letter, onRedriven) {
  const id = letter.executionId;
  const identity = letter.identity || {};
  return h(
    "tr",
    { "data-id": id },
    h(
      "td",
      {},
      h("a", { href: `#/executions/${encodeURIComponent(id)}`, class: "mono", "aria-label": `Execution ${id}` }, shortId(id)),
    ),
    h("td", { class: "pipeline" }, identity.pipelineId || "—"),
    h("td", { class: "mono" }, shortId(identity.releaseVersion || "—")),
    h("td", { class: "num" }, `${letter.stepIndex} / ${letter.attempt}`),
    h("td", {}, letter.terminalReason),
    h("td", { class: "error-cell" }, h("strong", {}, letter.errorCode), h("br"), letter.errorMessage),
    h("td", {}, timeElement(letter.createdAtEpochMs)),
    h("td", {}, letter.redriven ? `by ${letter.redrivenBy}` : "no"),
    h(
      "td",
      {},
      canAdminister() && !letter.redriven
        ? h(
            "button",
            {
              type: "button",
              class: "primary small",
              "aria-label": `Redrive execution ${id}`,
              onclick: () =>
                openRedriveDialog(
                  { executionId: id, expectedVersion: letter.executionVersion },
                  onRedriven,
                ),
            },
            "Redrive…",
          )
        : null,
    ),
  );
}

function bulkPanel(currentValues, afterRun) {
  const reason = h("input", { type: "text", autocomplete: "off", maxlength: "256", required: true });
  const max = h("input", { type: "number", min: "1", max: "10000", value: "100", required: true });
  const dryRun = h("button", { type: "button", class: "secondary" }, "Count first (dry run)");
  const run = h("button", { type: "button", class: "danger", disabled: true }, "Redrive them");
  const outcome = h("div", { class: "bulk-outcome", role: "status", "aria-live": "polite" });
  const progress = h("progress", { id: "bulk-progress", max: "1", value: "0", hidden: true });
  const progressLabel = h("label", { for: "bulk-progress", hidden: true }, "Bulk redrive progress");
  let planned = null;

  function request(dry, count) {
    return {
      filter: filterOf(currentValues()),
      dryRun: dry,
      maxExecutions: count,
      reason: reason.value.trim(),
      requestId: crypto.randomUUID(),
    };
  }

  function checkReason() {
    const ok = Boolean(reason.value.trim());
    setFieldError("bulk-reason", ok ? "" : "Say why; it is recorded on every execution.");
    if (!ok) reason.focus();
    return ok;
  }

  // Filters or the maximum changed since the count: count again before redriving.
  const invalidate = () => {
    planned = null;
    run.disabled = true;
  };
  max.addEventListener("input", invalidate);

  dryRun.addEventListener("click", async () => {
    if (!checkReason()) return;
    dryRun.disabled = true;
    try {
      const answer = await api(v1("/dead-letters:bulkRedrive"), {
        method: "POST",
        body: request(true, Number(max.value) || 100),
      });
      planned = { ids: answer.executionIds || [], matched: answer.matchedCount };
      run.disabled = planned.ids.length === 0;
      run.textContent = `Redrive ${planned.ids.length} execution${planned.ids.length === 1 ? "" : "s"}`;
      fill(
        outcome,
        h(
          "p",
          {},
          `${answer.matchedCount} open dead letter${answer.matchedCount === 1 ? "" : "s"} match; ` +
            `${planned.ids.length} would be redriven (oldest first). Nothing has changed yet.`,
        ),
      );
    } catch (error) {
      fill(outcome, notice(error.describe ? error.describe() : String(error), "error"));
    } finally {
      dryRun.disabled = false;
    }
  });

  run.addEventListener("click", async () => {
    if (!planned || !checkReason()) return;
    const total = planned.ids.length;
    run.disabled = true;
    dryRun.disabled = true;
    progress.hidden = false;
    progressLabel.hidden = false;
    progress.max = total;
    progress.value = 0;
    const failures = new Map();
    let done = 0;
    try {
      while (done < total) {
        // Executions that failed to redrive stay open and are selected again: leave room.
        const answer = await api(v1("/dead-letters:bulkRedrive"), {
          method: "POST",
          body: request(false, Math.min(BATCH, total - done) + failures.size),
        });
        done += answer.redrivenCount;
        for (const failure of answer.failures || []) failures.set(failure.executionId, failure);
        progress.value = Math.min(done, total);
        fill(outcome, h("p", {}, `Redriven ${Math.min(done, total)} of ${total}.`));
        if (answer.redrivenCount === 0) break;
      }
      const failed = [...failures.values()];
      fill(
        outcome,
        h("p", {}, `Done: redriven ${done} of ${total}.`),
        failed.length
          ? h(
              "ul",
              { class: "failures" },
              failed.map((each) => h("li", {}, `${each.executionId}: ${each.reason} — ${each.message}`)),
            )
          : null,
      );
      announce(`Bulk redrive done: ${done} of ${total} redriven, ${failed.length} not.`);
    } catch (error) {
      fill(outcome, notice(`Stopped after ${done} of ${total}: ${error.describe ? error.describe() : error}`, "error"));
    } finally {
      planned = null;
      run.textContent = "Redrive them";
      dryRun.disabled = false;
      afterRun();
    }
  });

  return {
    invalidate,
    element: h(
      "section",
      { class: "panel", "aria-labelledby": "bulk-heading" },
      h("h2", { id: "bulk-heading" }, "Bulk redrive"),
      h("p", {}, "Redrives the executions of every open dead letter matching the filters above."),
      field("bulk-reason", "Reason", reason, "Recorded in every execution's history."),
      field("bulk-max", "At most", max, "Executions redriven, oldest dead letters first."),
      h("div", { class: "filter-buttons" }, dryRun, run),
      progressLabel,
      progress,
      outcome,
    ),
  };
}

export function renderDeadLetters(main) {
  fill(main, h("h1", {}, "Dead letters"));
  if (!canReadAdmin()) {
    main.append(
      notice(
        "Dead letters belong to the admin API: sign in with the admin token or a read-only viewer token.",
      ),
    );
    return null;
  }
  const body = h("tbody");
  const errorBox = h("div", { class: "error-slot" });
  const updated = h("p", { class: "updated" });
  const empty = h("p", { class: "empty", hidden: true }, "No dead letters match these filters.");
  let lastRendered = "";
  const { form, values } = filterForm(() => {
    bulk?.invalidate();
    lastRendered = "";
    poller.now().then(() => announce(`${body.rows.length} dead letters shown.`));
  });

  async function refresh() {
    try {
      const page = await api(v1("/dead-letters"), { query: listQuery(values()) });
      const letters = page.deadLetters || [];
      rememberPipelines(letters.map((each) => each.identity?.pipelineId));
      fill(errorBox);
      const more = page.nextPageToken ? " (more match: narrow the filters)" : "";
      updated.textContent = `${letters.length} shown${more} · updated ${new Date().toLocaleTimeString()}`;
      const key = JSON.stringify(letters);
      if (key === lastRendered) return;
      lastRendered = key;
      const focusedId = document.activeElement?.closest?.("tr")?.dataset?.id;
      fill(body, letters.map((each) => row(each, () => poller.now())));
      empty.hidden = letters.length > 0;
      if (focusedId) body.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] a`)?.focus();
    } catch (error) {
      fill(errorBox, notice(error.describe ? error.describe() : String(error), "error"));
    }
  }

  const bulk = canAdminister() ? bulkPanel(values, () => poller.now()) : null;
  main.append(
    form,
    updated,
    errorBox,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data" },
        h("caption", {}, "Dead letters, newest first"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Execution", "Pipeline", "Release", "Step / attempt", "Terminal reason", "Error", "Created", "Redriven", "Actions"].map(
              (name) => h("th", { scope: "col" }, name),
            ),
          ),
        ),
        body,
      ),
    ),
    empty,
    bulk ? bulk.element : null,
  );
  const poller = poll(refresh, REFRESH_MS);
  return () => poller.stop();
}
