// Live pages: the log's stream (Server-Sent Events, /api/v1/events/stream, signed in by
// the session cookie) says when something happened; the page's live parts then ask the
// server whether they changed (they answer 204 when not). One refresh per burst of events.
(function () {
  "use strict";
  const KINDS = ["run.created", "run.done", "run.failed", "run.cancelled", "run.compensating",
                 "step.transition", "approval.requested", "approval.decided",
                 "intent.dispatched", "memory.put", "memory.forget", "memory.revert"];
  let pending = null;

  function changed() {
    if (pending !== null) { return; }
    pending = window.setTimeout(function () {
      pending = null;
      document.body.dispatchEvent(new Event("soloist:changed"));
    }, 100);
  }

  function open() {
    if (!window.EventSource || !document.querySelector("[hx-trigger*='soloist:changed']")) {
      return;
    }
    // From the log's head as the page was made, not from now: what happened while it
    // was being made refreshes it too.
    const after = document.body.dataset.after;
    const stream = new EventSource("/api/v1/events/stream" +
                                   (after ? "?after=" + encodeURIComponent(after) : ""));
    KINDS.forEach(function (kind) { stream.addEventListener(kind, changed); });
    // The browser reconnects by itself (retry: 1000) and resumes from the last event id.
  }

  document.addEventListener("DOMContentLoaded", open);
})();
