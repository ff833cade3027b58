// Pending interactions: what each waiting execution asks, soonest deadline first, refreshed
// every few seconds; each can be completed with a JSON answer.

import { consoleApi, listAll } from "../api.js";
import { openCompleteDialog } from "../actions.js";
import { announce, details, fill, h, jsonBlock, notice, shortId, timeElement } from "../dom.js";
import { poll } from "../poll.js";
import { canOperate } from "../session.js";

const REFRESH_MS = 3000;

function card(interaction, onDone) {
  const headingId = `interaction-${interaction.interactionId}`;
  return h(
    "article",
    { class: "panel interaction", "aria-labelledby": headingId, "data-id": interaction.interactionId },
    h("h2", { id: headingId }, `${interaction.stepId} · ${shortId(interaction.interactionId)}`),
    details([
      ["Interaction", h("span", { class: "mono" }, interaction.interactionId)],
      [
        "Execution",
        h(
          "a",
          { href: `#/executions/${encodeURIComponent(interaction.executionId)}`, class: "mono" },
          interaction.executionId,
        ),
      ],
      ["Step", `${interaction.stepIndex} (${interaction.stepId})`],
      ["Expected answer", h("span", { class: "mono" }, interaction.outputType || "—")],
      ["Deadline", timeElement(interaction.deadlineEpochMs)],
      ["Assignee", interaction.assignee || "—"],
      ["Group", interaction.group || "—"],
      ["Status", interaction.status],
    ]),
    h("h3", {}, "Request"),
    jsonBlock(interaction.requestPayload, `Request of interaction ${interaction.interactionId}`),
    canOperate()
      ? h(
          "button",
          {
            type: "button",
            class: "primary",
            onclick: () => openCompleteDialog(interaction, onDone),
          },
          "Complete…",
        )
      : null,
  );
}

export function renderInteractions(main) {
  const list = h("div", { class: "cards" });
  const errorBox = h("div", { class: "error-slot" });
  const count = h("p", { class: "updated" });
  let lastRendered = "";
  let seen = null;

  async function refresh() {
    try {
      const interactions = await listAll(consoleApi("/interactions"), "interactions");
      const ids = new Set(interactions.map((each) => each.interactionId));
      if (seen) {
        const added = [...ids].filter((each) => !seen.has(each)).length;
        const gone = [...seen].filter((each) => !ids.has(each)).length;
        if (added) announce(`${added} new pending interaction${added > 1 ? "s" : ""}.`);
        else if (gone) announce(`${gone} interaction${gone > 1 ? "s" : ""} no longer pending.`);
      }
      seen = ids;
      fill(errorBox);
      count.textContent = `${interactions.length} pending · updated ${new Date().toLocaleTimeString()}`;
      const key = JSON.stringify(interactions);
      if (key === lastRendered) return;
      lastRendered = key;
      fill(
        list,
        interactions.length
          ? interactions.map((each) => card(each, () => poller.now()))
          : h("p", { class: "empty" }, "Nothing is waiting for an answer."),
      );
    } catch (error) {
      fill(errorBox, notice(error.describe ? error.describe() : String(error), "error"));
    }
  }

  fill(main, h("h1", {}, "Pending interactions"), count, errorBox, list);
  const poller = poll(refresh, REFRESH_MS);
  return () => poller.stop();
}
