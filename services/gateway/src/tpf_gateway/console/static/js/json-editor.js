// A JSON editor: a monospace textarea checked as the operator types, its error shown under it
// (and tied to it for screen readers), plus the payload type id the value is sent as.

import { field, h, pretty, setFieldError } from "./dom.js";

const TRANSITION_JSON = "application/tpf-transition+json";

/** Where in `text` JSON.parse stopped, as "line L, column C" when the engine says where. */
function position(text, message) {
  const match = /position (\d+)/.exec(message);
  if (!match) return "";
  const offset = Number(match[1]);
  const before = text.slice(0, offset).split("\n");
  return ` (line ${before.length}, column ${before[before.length - 1].length + 1})`;
}

export class JsonEditor {
  /**
   * `idPrefix` names the controls; `initial` is the value shown first; `typeId` the payload
   * type id proposed (the interaction's expected response type, for instance).
   */
  constructor(idPrefix, { label, initial = {}, typeId = "", hint = "" }) {
    this.textId = `${idPrefix}-json`;
    this.typeInputId = `${idPrefix}-type`;
    this.textarea = h("textarea", {
      class: "json-input",
      rows: "12",
      spellcheck: "false",
      autocomplete: "off",
      "aria-required": "true",
    });
    this.textarea.value = pretty(initial);
    this.typeInput = h("input", {
      type: "text",
      required: true,
      autocomplete: "off",
      spellcheck: "false",
    });
    this.typeInput.value = typeId;
    this.textarea.addEventListener("input", () => this.validate());
    this.element = h(
      "div",
      { class: "json-editor" },
      field(
        this.typeInputId,
        "Payload type",
        this.typeInput,
        "The Java type id the value is sent as (TPF's payloadTypeId).",
      ),
      field(this.textId, label, this.textarea, hint || "JSON; checked as you type."),
    );
  }

  /** The parsed value, or undefined after showing why the text is not JSON. */
  validate() {
    const text = this.textarea.value;
    if (!text.trim()) {
      setFieldError(this.textId, "Enter a JSON value.");
      return undefined;
    }
    try {
      const value = JSON.parse(text);
      setFieldError(this.textId, "");
      return value;
    } catch (error) {
      setFieldError(this.textId, `Not valid JSON: ${error.message}${position(text, error.message)}`);
      return undefined;
    }
  }

  /** The payload envelope to send, or undefined (errors shown, focus on the first bad field). */
  envelope() {
    const typeId = this.typeInput.value.trim();
    setFieldError(this.typeInputId, typeId ? "" : "Enter the payload type id.");
    const value = this.validate();
    if (!typeId) {
      this.typeInput.focus();
      return undefined;
    }
    if (value === undefined) {
      this.textarea.focus();
      return undefined;
    }
    return {
      payloadTypeId: typeId,
      payloadEncoding: TRANSITION_JSON,
      payload: JSON.stringify(value),
    };
  }

  /** Show an API error next to the control it is about (`typeField`: the type id's name). */
  showApiError(message, { aboutType = false } = {}) {
    const id = aboutType ? this.typeInputId : this.textId;
    setFieldError(id, message);
    document.getElementById(id)?.focus();
  }

  clearErrors() {
    setFieldError(this.textId, "");
    setFieldError(this.typeInputId, "");
  }
}
