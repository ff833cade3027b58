// Releases and workers of one pipeline: the active release, release drift (what is pinned
// where, what is safe to retire), every worker's state and last heartbeat (drain), the
// registered releases and the activation history. Refreshed every few seconds.

import { api, listAll, segment, v1 } from "../api.js";
import { openDialog } from "../dialog.js";
import {
  announce,
  field,
  fill,
  h,
  notice,
  shortId,
  statusBadge,
  timeElement,
} from "../dom.js";
import { PIPELINE_LIST_ID, knownPipelines, pipelineDatalist } from "../pipelines.js";
import { poll } from "../poll.js";
import { canAdminister, canReadAdmin } from "../session.js";

const REFRESH_MS = 5000;

function table(caption, columns, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows),
    ),
  );
}

function driftSection(drift) {
  const rows = (drift.releases || []).map((release) =>
    h(
      "tr",
      {},
      h("td", { class: "mono", title: release.releaseVersion }, shortId(release.releaseVersion)),
      h("td", { class: "mono", title: release.contractVersion }, shortId(release.contractVersion)),
      h("td", {}, release.active ? "active" : ""),
      h(
        "td",
        {},
        String(release.pinnedExecutions),
        (release.pinnedByStatus || []).length
          ? h(
              "span",
              { class: "hint" },
              ` (${release.pinnedByStatus.map((each) => `${each.count} ${each.status}`).join(", ")})`,
            )
          : null,
      ),
      h("td", {}, (release.healthyWorkerIds || []).join(", ") || "none"),
      h(
        "td",
        { class: "wrap" },
        h("strong", {}, release.retirement?.safe ? "safe" : "not safe"),
        ` ${release.retirement?.verdict || ""}`,
        h("br"),
        h("span", { class: "hint" }, release.retirement?.detail || ""),
      ),
    ),
  );
  return h(
    "section",
    { class: "panel", "aria-labelledby": "drift-heading" },
    h("h2", { id: "drift-heading" }, "Release drift"),
    h(
      "p",
      {},
      "Active release: ",
      h("span", { class: "mono", id: "active-release" }, drift.activeReleaseVersion || "none"),
    ),
    rows.length
      ? table(
          "Releases that matter now",
          ["Release", "Contract", "Active", "Pinned executions", "Healthy workers", "Retirement"],
          rows,
        )
      : h("p", { class: "empty" }, "Nothing is registered for this pipeline."),
  );
}

function workersSection(drift, pipeline, onChanged, showError) {
  const rows = (drift.workers || []).map(({ worker, servesActiveRelease, lastHealthyWorkerFor }) =>
    h(
      "tr",
      { "data-id": worker.workerId },
      h("td", { class: "mono" }, worker.workerId),
      h("td", {}, worker.protocol),
      h("td", { class: "mono" }, worker.endpoint || "—"),
      h("td", { class: "mono", title: worker.releaseVersion }, shortId(worker.releaseVersion)),
      h("td", {}, statusBadge(worker.state)),
      h("td", {}, timeElement(worker.lastHeartbeatAtEpochMs)),
      h("td", {}, servesActiveRelease ? "yes" : "no"),
      h(
        "td",
        {},
        (lastHealthyWorkerFor || []).length
          ? h("span", { class: "warning" }, `last healthy worker for ${lastHealthyWorkerFor.map(shortId).join(", ")}`)
          : "",
      ),
      h(
        "td",
        {},
        canAdminister() && worker.state !== "DRAINING"
          ? h(
              "button",
              {
                type: "button",
                class: "danger small",
                "aria-label": `Drain worker ${worker.workerId}`,
                onclick: () => drain(pipeline, worker, lastHealthyWorkerFor || [], onChanged),
              },
              "Drain…",
            )
          : worker.state === "DRAINING"
            ? [
                `draining since ${new Date(worker.drainingSinceEpochMs).toLocaleTimeString()} `,
                canAdminister()
                  ? h(
                      "button",
                      {
                        type: "button",
                        class: "secondary small",
                        "aria-label": `Undrain worker ${worker.workerId}`,
                        onclick: () => undrain(pipeline, worker, onChanged, showError),
                      },
                      "Undrain",
                    )
                  : null,
              ]
            : null,
      ),
    ),
  );
  return h(
    "section",
    { class: "panel", "aria-labelledby": "workers-heading" },
    h("h2", { id: "workers-heading" }, "Workers"),
    rows.length
      ? table(
          "Registered workers",
          ["Worker", "Protocol", "Endpoint", "Release", "State", "Last heartbeat", "Serves active", "Note", "Actions"],
          rows,
        )
      : h("p", { class: "empty" }, "No worker is registered for this pipeline."),
  );
}

function drain(pipeline, worker, lastFor, onChanged) {
  openDialog({
    title: `Drain worker ${worker.workerId}`,
    submitLabel: "Drain worker",
    danger: true,
    body: [
      h("p", {}, "A draining worker gets no new work; what it runs now finishes."),
      lastFor.length
        ? notice(
            `It is the last healthy worker for ${lastFor.join(", ")}: executions pinned there stop progressing.`,
            "error",
          )
        : null,
    ],
    async onSubmit() {
      await api(
        v1(`/pipelines/${segment(pipeline)}/workers/${segment(worker.workerId)}:drain`),
        { method: "POST", body: {} },
      );
      announce(`Worker ${worker.workerId} is draining.`);
      onChanged();
      return true;
    },
  });
}

async function undrain(pipeline, worker, onChanged, showError) {
  try {
    await api(
      v1(`/pipelines/${segment(pipeline)}/workers/${segment(worker.workerId)}:undrain`),
      { method: "POST", body: {} },
    );
    showError("");
    announce(`Worker ${worker.workerId} takes work again.`);
  } catch (error) {
    showError(`Undrain: ${error.describe ? error.describe() : error}`);
  }
  onChanged();
}

function releasesSection(releases) {
  return h(
    "section",
    { class: "panel", "aria-labelledby": "releases-heading" },
    h("h2", { id: "releases-heading" }, "Registered releases"),
    releases.length
      ? table(
          "Registered releases, newest first",
          ["Release", "Contract", "Status", "Primary artifact", "Registered", "Activated"],
          releases.map((release) =>
            h(
              "tr",
              {},
              h("td", { class: "mono", title: release.releaseVersion }, shortId(release.releaseVersion)),
              h("td", { class: "mono", title: release.contractVersion }, shortId(release.contractVersion)),
              h("td", {}, release.status),
              h("td", { class: "mono" }, release.primaryArtifactId),
              h("td", {}, timeElement(release.createdAtEpochMs)),
              h("td", {}, timeElement(release.activatedAtEpochMs)),
            ),
          ),
        )
      : h("p", { class: "empty" }, "None."),
  );
}

function activationsSection(activations) {
  return h(
    "section",
    { class: "panel", "aria-labelledby": "activations-heading" },
    h("h2", { id: "activations-heading" }, "Activation history"),
    activations.length
      ? table(
          "Activations, in order",
          ["#", "Release", "Previous", "By", "Reason", "At"],
          activations.map((each) =>
            h(
              "tr",
              {},
              h("td", { class: "num" }, String(each.sequence)),
              h("td", { class: "mono", title: each.releaseVersion }, shortId(each.releaseVersion)),
              h("td", { class: "mono" }, shortId(each.previousReleaseVersion || "—")),
              h("td", {}, each.activatedBy || "—"),
              h("td", {}, each.reason || "—"),
              h("td", {}, timeElement(each.activatedAtEpochMs)),
            ),
          ),
        )
      : h("p", { class: "empty" }, "Never activated."),
  );
}

export function renderReleases(main, { params }) {
  pipelineDatalist();
  let pipeline = params.get("pipeline") || knownPipelines()[0] || "";
  const input = h("input", {
    type: "text",
    list: PIPELINE_LIST_ID,
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    value: pipeline,
  });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Choose a pipeline" },
    field("releases-pipeline", "Pipeline", input, "Pipelines seen in this session are suggested."),
    h("div", { class: "filter-buttons" }, h("button", { type: "submit" }, "Show")),
  );
  const content = h("div", {});
  const updated = h("p", { class: "updated" });
  const errorBox = h("div", { class: "error-slot" });
  const showError = (message) => fill(errorBox, message ? notice(message, "error") : "");
  let lastRendered = "";

  async function refresh() {
    if (!pipeline) {
      fill(content, h("p", { class: "empty" }, "Choose a pipeline."));
      return;
    }
    const base = `/pipelines/${segment(pipeline)}`;
    const sections = [];
    const key = [];
    try {
      const drift = await api(v1(`${base}/releases:drift`));
      key.push({ ...drift, observedAtEpochMs: 0 });
      sections.push(
        driftSection(drift),
        workersSection(drift, pipeline, () => poller.now(), showError),
      );
    } catch (error) {
      sections.push(notice(`Release drift: ${error.describe ? error.describe() : error}`, "error"));
    }
    if (canReadAdmin()) {
      try {
        const [releases, activations] = await Promise.all([
          listAll(v1(`${base}/releases`), "releases"),
          listAll(v1(`${base}/activations`), "activations"),
        ]);
        key.push(releases, activations);
        sections.push(releasesSection(releases), activationsSection(activations));
      } catch (error) {
        sections.push(notice(`Releases: ${error.describe ? error.describe() : error}`, "error"));
      }
    } else {
      sections.push(
        notice("Registered releases and activations belong to the admin API: sign in with the admin token or a read-only viewer token."),
      );
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    const rendered = JSON.stringify(key);
    if (rendered === lastRendered) return;
    lastRendered = rendered;
    const focusedId = document.activeElement?.closest?.("tr")?.dataset?.id;
    fill(content, sections);
    if (focusedId) content.querySelector(`tr[data-id="${CSS.escape(focusedId)}"] button`)?.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    pipeline = input.value.trim();
    lastRendered = "";
    window.history.replaceState(null, "", `#/releases?pipeline=${encodeURIComponent(pipeline)}`);
    poller.now().then(() => announce(`Showing pipeline ${pipeline}.`));
  });
  fill(main, h("h1", {}, "Releases and workers"), form, updated, errorBox, content);
  const poller = poll(refresh, REFRESH_MS);
  return () => poller.stop();
}
