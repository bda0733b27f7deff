// Sessions: name, status, account, number of groups, webhooks; start, stop and restart, each
// after a confirmation. Refreshed every few seconds, redrawn only when something changed.

import { ApiFailure, get, post, seg } from "./api.js";
import { badge, button, el, fill, muted, table } from "./dom.js";

const COLUMNS = ["Name", "Status", "Account", "Groups", "Webhooks", "Actions"];
const STATUS_KIND = { WORKING: "ok", STARTING: "info", STOPPED: "warn", FAILED: "bad" };

/** The number of groups of a WORKING session; "—" for the others, which have none to show. */
async function groupCount(s) {
  if (s.status !== "WORKING") return "—";
  try {
    const c = await get(`/api/${seg(s.name)}/groups/count`);
    return String(c.count);
  } catch (e) {
    return e instanceof ApiFailure ? e.describe() : "?";
  }
}

function account(me) {
  if (!me) return "—";
  return el("span", null, el("code", null, me.id), me.pushName ? el("br") : null, me.pushName || null);
}

function webhooks(config) {
  const hooks = (config && config.webhooks) || [];
  if (hooks.length === 0) return "none";
  return el("ul", { class: "plain" }, hooks.map((h) =>
    el("li", null, el("code", null, h.url), " ", badge((h.events || []).join(", ") || "no events"))));
}

function actions(ctx, s) {
  const name = seg(s.name);
  const act = (verb) => async () => {
    if (!(await ctx.confirm(`${verb[0].toUpperCase() + verb.slice(1)} session "${s.name}"?`))) return;
    try {
      const info = await post(`/api/sessions/${name}/${verb}`);
      ctx.notify(`Session "${info.name}" is ${info.status}.`, "ok");
    } catch (e) {
      ctx.notify(e instanceof ApiFailure ? e.describe() : String(e));
    }
    await draw(ctx, true);
  };
  return el("div", { class: "actions" },
    el("a", { href: `#groups/${name}`, class: "link-button" }, "Groups"),
    el("a", { href: `#deliveries/${name}`, class: "link-button" }, "Deliveries"),
    el("a", { href: `#events/${name}`, class: "link-button" }, "Events"),
    button("Start", act("start"), { class: "secondary", "data-action": "start" }),
    button("Stop", act("stop"), { class: "secondary", "data-action": "stop" }),
    button("Restart", act("restart"), { class: "secondary", "data-action": "restart" }));
}

let shown = "";

async function draw(ctx, force) {
  const sessions = await get("/api/sessions?all=true");
  const counts = await Promise.all(sessions.map(groupCount));
  if (!ctx.live()) return;
  const key = JSON.stringify([sessions, counts]);
  if (!force && key === shown) return;
  shown = key;
  const rows = sessions.map((s, i) => el("tr", { "data-session": s.name },
    [s.name, badge(s.status, STATUS_KIND[s.status]), account(s.me), counts[i], webhooks(s.config),
      actions(ctx, s)].map((c, j) => el("td", { "data-label": COLUMNS[j] }, c))));
  fill(ctx.main,
    el("h2", null, "Sessions"),
    sessions.length === 0
      ? muted("No sessions yet: create one with POST /api/sessions.")
      : table(null, COLUMNS, rows, { id: "sessions-table" }));
}

export async function renderSessions(ctx) {
  shown = "";
  await draw(ctx, true);
  ctx.every(() => draw(ctx, false).catch((e) => ctx.notify(e.describe ? e.describe() : String(e))), 5000);
}
