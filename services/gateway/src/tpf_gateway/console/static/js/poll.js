// Live lists: call `refresh` now and every `intervalMs` while the tab is visible, one call at a
// time; `stop()` ends it (pages call it when the operator leaves them).

export function poll(refresh, intervalMs) {
  let timer = null;
  let stopped = false;
  let running = false;

  async function tick() {
    timer = null;
    if (stopped) return;
    if (!document.hidden && !running) {
      running = true;
      try {
        await refresh();
      } finally {
        running = false;
      }
    }
    if (!stopped) timer = window.setTimeout(tick, intervalMs);
  }

  const onVisible = () => {
    if (!document.hidden && timer !== null && !running) {
      window.clearTimeout(timer);
      tick();
    }
  };
  document.addEventListener("visibilitychange", onVisible);
  tick();
  return {
    stop() {
      stopped = true;
      if (timer !== null) window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    },
    /** Refresh now (after an action), keeping the schedule. */
    async now() {
      if (!running && !stopped) {
        running = true;
        try {
          await refresh();
        } finally {
          running = false;
        }
      }
    },
  };
}
