// The signed-in operator: token, tenant and what the gateway said the token opens. Kept in
// sessionStorage (this tab only, gone when it closes), never in a URL or a cookie.

const KEY = "tpf-console-session";

export function currentSession() {
  try {
    const stored = JSON.parse(window.sessionStorage.getItem(KEY) || "null");
    return stored && stored.token && stored.tenant ? stored : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  window.sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function setTenant(tenant) {
  const session = currentSession();
  if (session) saveSession({ ...session, tenant });
}

export function clearSession() {
  window.sessionStorage.removeItem(KEY);
}

/** Whether the session may complete interactions and cancel executions. */
export function canOperate(session = currentSession()) {
  return Boolean(
    session &&
      session.controlPlaneEnabled &&
      (session.access === "admin" || session.access === "control-plane"),
  );
}

/** Whether the session may redrive dead letters and drain workers. */
export function canAdminister(session = currentSession()) {
  return Boolean(session && session.adminEnabled && session.access === "admin");
}

/** Whether the session can read the admin API (dead letters, releases, workers). */
export function canReadAdmin(session = currentSession()) {
  return Boolean(
    session && session.adminEnabled && (session.access === "admin" || session.access === "viewer"),
  );
}
