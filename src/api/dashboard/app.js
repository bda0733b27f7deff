// The dashboard's shell: the key form, the tabs (routes in the URL's hash), the session picker,
// the notice line and the confirmation dialog. Each view lives in its own module.

import { ApiFailure, get, getKey, onUnauthorized, setKey } from "./api.js";
import { el, fill } from "./dom.js";
import { renderSessions } from "./sessions.js";
import { renderGroups } from "./groups.js";
import { renderDeliveries } from "./deliveries.js";
import { renderEvents } from "./events.js";

const VIEWS = {
  sessions: renderSessions,
  groups: renderGroups,
  deliveries: renderDeliveries,
  events: renderEvents,
};
const PICKED = "wagate.session";

const $ = (id) => document.getElementById(id);
let generation = 0;
let timers = [];

/** Shows a message above the view; `kind` "error" (default) or "ok". Empty hides it. */
function notify(text, kind) {
  const box = $("notice");
  box.textContent = text || "";
  box.className = "notice " + (kind || "error");
  box.hidden = !text;
}

/** Asks before an action, in an in-page dialog; resolves to true when confirmed. */
function confirmAction(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const done = (ok) => {
      $("confirm-ok").onclick = null;
      $("confirm-cancel").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(ok);
    };
    $("confirm-ok").onclick = () => done(true);
    $("confirm-cancel").onclick = () => done(false);
    dialog.onclose = () => done(false);
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

function parseHash() {
  const [name, ...rest] = location.hash.replace(/^#/, "").split("/");
  const view = VIEWS[name] ? name : "sessions";
  const session = rest.length ? decodeURIComponent(rest.join("/")) : "";
  return { view, session };
}

/** The sessions for the picker; a failure (a 401 above all) is shown and answers null. */
async function loadSessions() {
  try {
    return await get("/api/sessions?all=true");
  } catch (e) {
    notify(e instanceof ApiFailure ? e.describe() : String(e));
    return null;
  }
}

function fillPicker(sessions, chosen) {
  const pick = $("session-pick");
  fill(pick, sessions.map((s) => el("option", { value: s.name, selected: s.name === chosen }, s.name)));
  pick.disabled = sessions.length === 0;
}

async function route() {
  const gen = ++generation;
  timers.forEach(clearInterval);
  timers = [];
  const { view, session: asked } = parseHash();
  for (const name of Object.keys(VIEWS)) {
    const tab = $("tab-" + name);
    if (name === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  const main = $("view");
  const sessions = await loadSessions();
  if (gen !== generation) return;
  if (!sessions) {
    fill(main, el("p", { class: "muted" }, "Enter the API key above to see the gateway."));
    return;
  }
  notify("");
  const names = sessions.map((s) => s.name);
  let session = asked || sessionStorage.getItem(PICKED) || "";
  if (!names.includes(session)) session = names[0] || "";
  if (session) sessionStorage.setItem(PICKED, session);
  fillPicker(sessions, session);
  for (const name of ["groups", "deliveries", "events"]) {
    $("tab-" + name).href = "#" + name + (session ? "/" + encodeURIComponent(session) : "");
  }
  const ctx = {
    main,
    session,
    sessions,
    notify,
    confirm: confirmAction,
    live: () => gen === generation,
    /** Runs `fn` every `ms` while this view is shown; never two runs at once. */
    every(fn, ms) {
      let busy = false;
      timers.push(setInterval(async () => {
        if (busy || gen !== generation) return;
        busy = true;
        try {
          await fn();
        } finally {
          busy = false;
        }
      }, ms));
    },
    reload: route,
  };
  try {
    await VIEWS[view](ctx);
  } catch (e) {
    if (gen === generation) notify(e instanceof ApiFailure ? e.describe() : String(e));
  }
}

function start() {
  const hint = () => {
    $("key-input").placeholder = getKey() ? "a key is kept for this tab" : "none set";
  };
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setKey($("key-input").value.trim());
    $("key-input").value = "";
    hint();
    route();
  });
  $("key-forget").addEventListener("click", () => {
    setKey("");
    hint();
    route();
  });
  hint();
  onUnauthorized((failure) => {
    notify(failure.describe());
    $("key-input").focus();
  });
  $("session-pick").addEventListener("change", (ev) => {
    sessionStorage.setItem(PICKED, ev.target.value);
    const view = parseHash().view;
    location.hash = "#" + view + (view === "sessions" ? "" : "/" + encodeURIComponent(ev.target.value));
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
