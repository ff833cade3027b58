// One execution: its state and pinned release, live through WatchExecution; its history as a
// timeline (actors, attempts, failures, retries); its pending interaction, result or dead
// letter; and the actions the token allows.

import { ApiError, api, consoleApi, segment, v1, watchExecution, listAll } from "../api.js";
import { openCancelDialog, openCompleteDialog, openRedriveDialog } from "../actions.js";
import {
  TERMINAL,
  announce,
  details,
  fill,
  h,
  jsonBlock,
  notice,
  plainOf,
  statusBadge,
  time,
  timeElement,
} from "../dom.js";
import { canAdminister, canOperate, canReadAdmin } from "../session.js";

const RECHECK_MS = 5000;

function summary(execution) {
  const identity = execution.identity || {};
  return details([
    ["Status", statusBadge(execution.status)],
    ["Pipeline", identity.pipelineId],
    ["Pinned release", h("span", { class: "mono" }, identity.releaseVersion || "—")],
    ["Contract version", h("span", { class: "mono" }, identity.contractVersion || "—")],
    ["Step", String(execution.stepIndex)],
    ["Attempt", String(execution.attempt)],
    ["Version", String(execution.version)],
    ["Created", timeElement(execution.createdAtEpochMs)],
    ["Updated", timeElement(execution.updatedAtEpochMs)],
    ["Next due", timeElement(execution.nextDueAtEpochMs)],
    ["Idempotency key", execution.idempotencyKey || "—"],
    ["Lease owner", execution.leaseOwner || "—"],
    ["Error", execution.errorCode ? `${execution.errorCode}: ${execution.errorMessage || ""}` : "—"],
    ["Terminal reason", execution.terminalReason || "—"],
  ]);
}

function historyItem(entry, previous) {
  const failure = entry.failure;
  const repinned = previous && previous.releaseVersion !== entry.releaseVersion;
  return h(
    "li",
    { class: `event event-${entry.event.toLowerCase()}` },
    h(
      "div",
      { class: "event-head" },
      h("span", { class: "event-name" }, entry.event.replaceAll("_", " ").toLowerCase()),
      timeElement(entry.occurredAtEpochMs),
    ),
    h(
      "p",
      { class: "event-line" },
      entry.fromStatus !== "UNSPECIFIED" ? [statusBadge(entry.fromStatus), " → "] : null,
      statusBadge(entry.toStatus),
      ` step ${entry.stepIndex}, attempt ${entry.attempt}, version ${entry.version}`,
    ),
    entry.actor ? h("p", { class: "event-actor" }, `by ${entry.actor}`) : null,
    entry.reason ? h("p", { class: "event-reason" }, `reason: ${entry.reason}`) : null,
    failure
      ? h(
          "p",
          { class: "event-failure" },
          h("strong", {}, failure.errorCode || "failure"),
          `: ${failure.errorMessage || ""} `,
          h("span", { class: "hint" }, failure.retryable ? "(retryable)" : "(not retryable)"),
        )
      : null,
    repinned ? h("p", { class: "event-reason" }, `re-pinned to ${entry.releaseVersion}`) : null,
  );
}

export function renderExecution(main, { id }) {
  const controller = new AbortController();
  let current = null;
  let historyVersion = -1;
  let stopped = false;
  let recheck = null;

  const liveState = h("p", { class: "live-state", role: "status" }, "Connecting…");
  const errorBox = h("div", { class: "error-slot" });
  const summaryBox = h("div", {});
  const actionsBox = h("div", { class: "actions" });
  const interactionBox = h("section", {
    class: "panel",
    "aria-labelledby": "interaction-heading",
    hidden: true,
  });
  const resultBox = h("section", { class: "panel", "aria-labelledby": "result-heading", hidden: true });
  const deadLetterBox = h("section", {
    class: "panel",
    "aria-labelledby": "dead-letter-heading",
    hidden: true,
  });
  const timeline = h("ol", { class: "timeline", "aria-labelledby": "history-heading" });

  fill(
    main,
    h("h1", {}, `Execution ${id}`),
    h("p", {}, h("a", { href: "#/executions" }, "← All executions")),
    liveState,
    errorBox,
    h("section", { class: "panel", "aria-labelledby": "state-heading" }, h("h2", { id: "state-heading" }, "State"), summaryBox, actionsBox),
    interactionBox,
    resultBox,
    deadLetterBox,
    h(
      "section",
      { class: "panel", "aria-labelledby": "history-heading" },
      h("h2", { id: "history-heading" }, "History"),
      timeline,
    ),
  );

  function showError(error) {
    fill(errorBox, notice(error.describe ? error.describe() : String(error), "error"));
  }

  function renderActions(execution) {
    const buttons = [];
    if (canOperate() && !TERMINAL.has(execution.status)) {
      buttons.push(
        h("button", { type: "button", class: "danger", onclick: () => openCancelDialog(execution, restartWatch) }, "Cancel execution…"),
      );
    }
    if (canAdminister() && (execution.status === "FAILED" || execution.status === "DLQ")) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "primary",
            onclick: () =>
              openRedriveDialog(
                { executionId: execution.executionId, expectedVersion: execution.version },
                restartWatch,
              ),
          },
          "Redrive…",
        ),
      );
    }
    fill(actionsBox, buttons);
  }

  async function refreshHistory() {
    const entries = await listAll(v1(`/executions/${segment(id)}/history`), "historyEntries", {}, {
      signal: controller.signal,
    });
    fill(timeline, entries.map((entry, index) => historyItem(entry, entries[index - 1])));
  }

  async function refreshInteraction(execution) {
    interactionBox.hidden = execution.status !== "WAITING_EXTERNAL";
    if (interactionBox.hidden) return;
    const pending = await listAll(consoleApi("/interactions"), "interactions", {}, {
      signal: controller.signal,
    });
    const mine = pending.filter((each) => each.executionId === id);
    fill(
      interactionBox,
      h("h2", { id: "interaction-heading" }, "Waiting for"),
      mine.length
        ? mine.map((interaction) =>
            h(
              "div",
              { class: "interaction" },
              h("p", {}, `Interaction ${interaction.interactionId} at step ${interaction.stepIndex} (${interaction.stepId}), due ${time(interaction.deadlineEpochMs)}.`),
              jsonBlock(interaction.requestPayload, "Request payload"),
              canOperate()
                ? h(
                    "button",
                    {
                      type: "button",
                      class: "primary",
                      onclick: () => openCompleteDialog(interaction, () => refreshAll(current)),
                    },
                    "Complete…",
                  )
                : null,
            ),
          )
        : h("p", {}, "No pending interaction is listed for it."),
    );
  }

  async function refreshResult(execution) {
    resultBox.hidden = execution.status !== "SUCCEEDED";
    if (resultBox.hidden) return;
    const answer = await api(consoleApi(`/executions/${segment(id)}/result`), {
      signal: controller.signal,
    });
    const envelope = answer.resultPayload;
    const plain = plainOf(envelope);
    fill(
      resultBox,
      h("h2", { id: "result-heading" }, "Result"),
      h("p", {}, envelope ? `Type ${envelope.payloadTypeId}` : "No result payload."),
      plain !== undefined ? jsonBlock(plain, "Result") : null,
      envelope
        ? h("details", {}, h("summary", {}, "Envelope as stored"), jsonBlock(envelope, "Result envelope"))
        : null,
    );
  }

  async function refreshDeadLetter(execution) {
    const failed = execution.status === "FAILED" || execution.status === "DLQ";
    deadLetterBox.hidden = !failed || !canReadAdmin();
    if (deadLetterBox.hidden) return;
    const page = await api(v1("/dead-letters"), {
      query: { "filter.executionId": id, "filter.includeRedriven": true, pageSize: 1 },
      signal: controller.signal,
    });
    const [letter] = page.deadLetters || [];
    fill(
      deadLetterBox,
      h("h2", { id: "dead-letter-heading" }, "Dead letter"),
      letter
        ? details([
            ["Terminal reason", letter.terminalReason],
            ["Error", `${letter.errorCode}: ${letter.errorMessage}`],
            ["Retries observed", String(letter.retriesObserved)],
            ["Step and attempt", `step ${letter.stepIndex}, attempt ${letter.attempt}`],
            ["Created", timeElement(letter.createdAtEpochMs)],
            ["Redriven", letter.redriven ? `yes, by ${letter.redrivenBy}: ${letter.redriveReason}` : "no"],
          ])
        : h("p", {}, "No dead letter was written for it (an await timeout writes none)."),
    );
  }

  async function refreshAll(execution) {
    try {
      await Promise.all([
        refreshHistory(),
        refreshInteraction(execution),
        refreshResult(execution),
        refreshDeadLetter(execution),
      ]);
    } catch (error) {
      if (error.name !== "AbortError") showError(error);
    }
  }

  function onState(execution) {
    const before = current;
    current = execution;
    fill(summaryBox, summary(execution));
    renderActions(execution);
    fill(errorBox);
    if (before && before.status !== execution.status) {
      announce(`Execution is now ${execution.status}.`);
    }
    if (execution.version !== historyVersion) {
      historyVersion = execution.version;
      refreshAll(execution);
    }
  }

  async function follow() {
    let backoff = 1000;
    while (!stopped) {
      try {
        liveState.textContent = "Live: following changes as they happen.";
        await watchExecution(id, {
          afterVersion: current ? current.version : undefined,
          signal: controller.signal,
          onState,
        });
        backoff = 1000;
        if (current && TERMINAL.has(current.status)) {
          liveState.textContent = `Ended ${current.status}; checking for a redrive every few seconds.`;
          waitForRedrive();
          return;
        }
      } catch (error) {
        if (error.name === "AbortError" || stopped) return;
        if (error instanceof ApiError && (error.status === 404 || error.status === 401 || error.status === 403)) {
          liveState.textContent = "Not following.";
          showError(error);
          return;
        }
        liveState.textContent = "Connection lost; reconnecting…";
      }
      await new Promise((resolve) => window.setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  // A terminal execution changes again only by a redrive; look now and then, and follow it
  // live again when it does.
  function waitForRedrive() {
    recheck = window.setTimeout(async () => {
      recheck = null;
      if (stopped) return;
      try {
        const answer = await api(consoleApi(`/executions/${segment(id)}`), { signal: controller.signal });
        if (answer.execution.version !== current.version) {
          onState(answer.execution);
          follow();
          return;
        }
      } catch (error) {
        if (error.name === "AbortError") return;
      }
      waitForRedrive();
    }, RECHECK_MS);
  }

  function restartWatch() {
    if (recheck !== null) {
      window.clearTimeout(recheck);
      recheck = null;
      follow();
    }
  }

  follow();
  return () => {
    stopped = true;
    controller.abort();
    if (recheck !== null) window.clearTimeout(recheck);
  };
}
