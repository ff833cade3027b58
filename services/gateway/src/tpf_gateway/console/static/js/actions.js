// The console's actions, each a dialog: complete an interaction, redrive one execution (with an
// optional fixed input), cancel an execution. The API decides; its refusals are shown next to
// the field they are about, or at the top of the form.

import { api, consoleApi, segment, v1 } from "./api.js";
import { openDialog } from "./dialog.js";
import { announce, field, h, jsonBlock, setFieldError, shortId } from "./dom.js";
import { JsonEditor } from "./json-editor.js";

/** Which editor control an API error is about: "type", "json", or "" (the form). */
function payloadErrorTarget(error) {
  if (error.reason === "PAYLOAD_TYPE_UNSUPPORTED") return "type";
  if (error.reason.startsWith("PAYLOAD_")) return "json";
  if (/payload|input/i.test(error.field)) return /TypeId/.test(error.field) ? "type" : "json";
  return "";
}

function showPayloadError(editor, dialog, error) {
  const target = payloadErrorTarget(error);
  if (target) editor.showApiError(error.describe(), { aboutType: target === "type" });
  else dialog.showError(error.describe());
}

/** Complete `interaction` with a JSON response; `done(answer)` after the API accepted it. */
export function openCompleteDialog(interaction, done) {
  const editor = new JsonEditor("complete", {
    label: "Response",
    initial: {},
    typeId: interaction.outputType || "",
    hint: "The JSON answer the pipeline resumes with; checked as you type.",
  });
  const actor = h("input", { type: "text", autocomplete: "off", value: "console" });
  openDialog({
    title: `Complete interaction ${shortId(interaction.interactionId)}`,
    submitLabel: "Complete interaction",
    body: [
      h(
        "p",
        {},
        `Execution ${interaction.executionId}, step ${interaction.stepIndex} (${interaction.stepId}).`,
      ),
      h("h3", {}, "Request"),
      jsonBlock(interaction.requestPayload, "Request payload"),
      editor.element,
      field("complete-actor", "Completed by", actor, "Recorded in the execution's history."),
    ],
    async onSubmit(dialog) {
      editor.clearErrors();
      const envelope = editor.envelope();
      if (!envelope) return false;
      try {
        const answer = await api(
          consoleApi(`/interactions/${segment(interaction.interactionId)}:complete`),
          {
            method: "POST",
            body: {
              responsePayload: envelope,
              actor: actor.value.trim(),
              idempotencyKey: `console-${interaction.interactionId}`,
            },
          },
        );
        announce(
          answer.duplicate
            ? "The interaction was already completed."
            : `Interaction completed; execution ${shortId(interaction.executionId)} resumes.`,
        );
        done(answer);
        return true;
      } catch (error) {
        if (!error.describe) throw error;
        showPayloadError(editor, dialog, error);
        return false;
      }
    },
  });
}

/**
 * Redrive one execution from FAILED or DLQ: `target` has executionId and expectedVersion (the
 * version the operator looked at). `done(answer)` after the API accepted it.
 */
export function openRedriveDialog(target, done) {
  const reason = h("input", {
    type: "text",
    autocomplete: "off",
    maxlength: "80",
    value: "redriven from the console",
  });
  const replace = h("input", { type: "checkbox", id: "redrive-replace" });
  const editor = new JsonEditor("redrive", {
    label: "Fixed input",
    initial: {},
    typeId: target.typeId || "",
    hint: "Replaces the stored input of the step it runs again (after an await: the stored answer).",
  });
  const editorBox = h("div", { class: "replace-box", hidden: true }, editor.element);
  replace.addEventListener("change", () => {
    editorBox.hidden = !replace.checked;
    if (replace.checked) editor.typeInput.focus();
  });
  openDialog({
    title: `Redrive execution ${shortId(target.executionId)}`,
    submitLabel: "Redrive",
    body: [
      h(
        "p",
        {},
        `Runs execution ${target.executionId} again from its failed step, if it is still at ` +
          `version ${target.expectedVersion}.`,
      ),
      field("redrive-reason", "Reason", reason, "Recorded in the history and on the dead letter."),
      h(
        "div",
        { class: "check" },
        replace,
        h("label", { for: "redrive-replace" }, "Replace the input before it runs again"),
      ),
      editorBox,
    ],
    async onSubmit(dialog) {
      editor.clearErrors();
      setFieldError("redrive-reason", "");
      const body = {
        allowFailed: true,
        expectedVersion: target.expectedVersion,
        reason: reason.value.trim(),
        requestId: crypto.randomUUID(),
      };
      if (replace.checked) {
        const envelope = editor.envelope();
        if (!envelope) return false;
        body.replacementInput = envelope;
      }
      try {
        const answer = await api(consoleApi(`/executions/${segment(target.executionId)}:redrive`), {
          method: "POST",
          body,
        });
        announce(`Execution ${shortId(target.executionId)} redriven: ${answer.status}.`);
        done(answer);
        return true;
      } catch (error) {
        if (!error.describe) throw error;
        if (error.field === "reason") {
          setFieldError("redrive-reason", error.describe());
          reason.focus();
        } else if (replace.checked && payloadErrorTarget(error)) {
          showPayloadError(editor, dialog, error);
        } else if (error.reason === "VERSION_CONFLICT") {
          dialog.showError(
            `${error.describe()} The execution changed since you looked; close and look again.`,
          );
        } else {
          dialog.showError(error.describe());
        }
        return false;
      }
    },
  });
}

/** Cancel a non-terminal execution at the version shown. */
export function openCancelDialog(execution, done) {
  const reason = h("input", { type: "text", autocomplete: "off", maxlength: "256", value: "" });
  openDialog({
    title: `Cancel execution ${shortId(execution.executionId)}`,
    submitLabel: "Cancel execution",
    danger: true,
    body: [
      h("p", {}, `Execution ${execution.executionId} stops for good; it cannot be redriven.`),
      field("cancel-reason", "Reason", reason, "Optional; recorded in the history."),
    ],
    async onSubmit() {
      const answer = await api(v1(`/executions/${segment(execution.executionId)}:cancel`), {
        method: "POST",
        body: { expectedVersion: execution.version, reason: reason.value.trim() },
      });
      announce(`Execution ${shortId(execution.executionId)} cancelled.`);
      done(answer);
      return true;
    },
  });
}
