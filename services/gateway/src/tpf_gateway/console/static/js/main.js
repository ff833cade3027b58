// The console's shell: sign-in, the header (sections, tenant, sign-out) and the hash router.
// Each page is a module exporting render(container, params) that may return a cleanup
// function, called when the operator leaves the page (stops polling and watches).

import { fill, h } from "./dom.js";
import { clearSession, currentSession, setTenant } from "./session.js";
import { renderSignIn } from "./pages/signin.js";
import { renderExecutions } from "./pages/executions.js";
import { renderExecution } from "./pages/execution.js";
import { renderInteractions } from "./pages/interactions.js";
import { renderDeadLetters } from "./pages/dead-letters.js";
import { renderReleases } from "./pages/releases.js";

const ROUTES = [
  { pattern: /^\/executions\/([^/]+)$/, section: "executions", render: renderExecution },
  { pattern: /^\/executions$/, section: "executions", render: renderExecutions },
  { pattern: /^\/interactions$/, section: "interactions", render: renderInteractions },
  { pattern: /^\/dead-letters$/, section: "dead-letters", render: renderDeadLetters },
  { pattern: /^\/releases$/, section: "releases", render: renderReleases },
];

const ACCESS_NAMES = {
  admin: "admin",
  "control-plane": "control plane",
  viewer: "read-only",
};

let cleanup = null;

/** The current hash route: its path and its query parameters. */
function location() {
  const hash = window.location.hash.replace(/^#/, "") || "/executions";
  const [path, query = ""] = hash.split("?");
  return { path, params: new URLSearchParams(query) };
}

function renderHeader(session) {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  nav.hidden = !session;
  who.hidden = !session;
  if (!session) {
    fill(who);
    return;
  }
  const tenantInput = h("input", {
    type: "text",
    id: "tenant-switch",
    value: session.tenant,
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const tenantForm = h(
    "form",
    {
      class: "tenant-form",
      "aria-label": "Tenant",
      onsubmit: (event) => {
        event.preventDefault();
        const tenant = tenantInput.value.trim();
        if (tenant) {
          setTenant(tenant);
          route();
        }
      },
    },
    h("label", { for: "tenant-switch" }, "Tenant"),
    tenantInput,
    h("button", { type: "submit", class: "secondary" }, "Switch"),
  );
  fill(
    who,
    tenantForm,
    h(
      "p",
      { class: "access", id: "access" },
      `Signed in: ${ACCESS_NAMES[session.access] || session.access}`,
    ),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          clearSession();
          window.location.hash = "#/executions";
          route();
        },
      },
      "Sign out",
    ),
  );
}

function markSection(section) {
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Render the page the hash names; focus its heading so screen readers announce it. */
function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const main = document.getElementById("main");
  const session = currentSession();
  renderHeader(session);
  if (!session) {
    markSection("");
    document.title = "Sign in · TPF console";
    cleanup = renderSignIn(main, () => route());
    return;
  }
  const { path, params } = location();
  const match = ROUTES.map((each) => ({ each, found: each.pattern.exec(path) })).find(
    ({ found }) => found,
  );
  if (!match) {
    window.location.hash = "#/executions";
    return;
  }
  markSection(match.each.section);
  fill(main);
  cleanup =
    match.each.render(main, { params, id: match.found[1] && decodeURIComponent(match.found[1]) }) ||
    null;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
    document.title = `${heading.textContent} · TPF console`;
  }
}

window.addEventListener("hashchange", route);
route();
