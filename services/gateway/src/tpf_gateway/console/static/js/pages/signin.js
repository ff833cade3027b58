// Sign-in: the operator's bearer token and a tenant. The gateway's session route says what the
// token opens; token and answer are kept in this tab's sessionStorage only.

import { api } from "../api.js";
import { field, h, setFieldError } from "../dom.js";
import { saveSession } from "../session.js";

export function renderSignIn(main, signedIn) {
  const token = h("input", {
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const tenant = h("input", {
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "signin", novalidate: true },
    field(
      "signin-token",
      "Bearer token",
      token,
      "The token you give the gateway's API: admin, control plane, or a read-only viewer token.",
    ),
    field("signin-tenant", "Tenant", tenant, "The tenant whose executions you look after."),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setFieldError("signin-token", "");
    setFieldError("signin-tenant", "");
    const tokenValue = token.value.trim();
    const tenantValue = tenant.value.trim();
    if (!tokenValue) {
      setFieldError("signin-token", "Enter a token.");
      token.focus();
      return;
    }
    if (!tenantValue) {
      setFieldError("signin-tenant", "Enter a tenant.");
      tenant.focus();
      return;
    }
    submit.disabled = true;
    try {
      const session = await api("/console/api/session", { token: tokenValue });
      saveSession({ ...session, token: tokenValue, tenant: tenantValue });
      if (!window.location.hash) window.location.hash = "#/executions";
      signedIn();
    } catch (error) {
      const message =
        error.status === 401
          ? "The gateway does not accept this token."
          : error.describe
            ? error.describe()
            : String(error);
      setFieldError("signin-token", message);
      token.focus();
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(
    h(
      "section",
      { class: "panel narrow", "aria-labelledby": "signin-heading" },
      h("h1", { id: "signin-heading" }, "Sign in"),
      h(
        "p",
        {},
        "The console calls the gateway's API with your token. It stays in this browser tab " +
          "and is forgotten when the tab closes.",
      ),
      form,
    ),
  );
  return null;
}
