// A modal dialog around a form: the native <dialog> (focus kept inside, Escape closes), titled
// for screen readers, focus moved to its first field and back to the button that opened it.

import { h, notice } from "./dom.js";

let counter = 0;

/**
 * Open a dialog. `body` is an array of nodes (fields); `onSubmit(dialogApi)` runs on submit
 * and may return false (or throw) to keep the dialog open. Returns the dialog's api:
 * {close(), showError(message), element}.
 */
export function openDialog({ title, body, submitLabel, onSubmit, danger = false }) {
  counter += 1;
  const titleId = `dialog-title-${counter}`;
  const opener = document.activeElement;
  const formError = h("div", { class: "form-error", "aria-live": "assertive" });
  const submit = h(
    "button",
    { type: "submit", class: danger ? "danger" : "primary" },
    submitLabel,
  );
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const form = h(
    "form",
    { method: "dialog", novalidate: true },
    h("h2", { id: titleId }, title),
    body,
    formError,
    h("div", { class: "dialog-buttons" }, submit, cancel),
  );
  const dialog = h("dialog", { "aria-labelledby": titleId }, form);
  const api = {
    element: dialog,
    close() {
      dialog.close();
    },
    showError(message) {
      formError.replaceChildren(message ? notice(message, "error") : "");
    },
    setBusy(busy) {
      submit.disabled = busy;
      submit.setAttribute("aria-busy", String(busy));
    },
  };
  cancel.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    api.showError("");
    api.setBusy(true);
    try {
      const keepOpen = (await onSubmit(api)) === false;
      if (!keepOpen) dialog.close();
    } catch (error) {
      api.showError(error.describe ? error.describe() : String(error.message || error));
    } finally {
      api.setBusy(false);
    }
  });
  dialog.addEventListener("close", () => {
    dialog.remove();
    // The opener may be gone (a refreshed list): the page heading is the next best place.
    if (opener && opener.isConnected) opener.focus();
    else document.querySelector("main h1")?.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = form.querySelector("input, textarea, select");
  (first || submit).focus();
  return api;
}
