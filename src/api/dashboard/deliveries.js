// Deliveries of a session, per webhook: pending and dead ones with attempts, next attempt and
// last error; "Retry" on a dead one. Polled every few seconds; rows are updated in place (keyed
// by delivery id) so that a button under the pointer or the keyboard focus is not replaced.

import { ApiFailure, get, post, seg } from "./api.js";
import { button, el, fill, muted, when } from "./dom.js";

const PENDING = ["Event", "Event id", "Attempts", "Next attempt", "Last error"];
const DEAD = ["Event", "Event id", "Attempts", "Last error", "State", "Action"];
const EVERY_MS = 3000;

/** A webhook URL as the delivery log shows it: no user-info, a query shown as `?…`. */
function redact(url) {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?…" : ""}`;
  } catch {
    return url;
  }
}

function cells(columns, values) {
  return values.map((v, i) => el("td", { "data-label": columns[i] }, v));
}

function pendingRow(d) {
  return el("tr", { "data-delivery": d.id, "data-state": d.state },
    cells(PENDING, [d.event, el("code", null, d.eventId), String(d.attempts),
      when(d.nextAttemptAt), d.lastError || "—"]));
}

function deadRow(ctx, d) {
  const tr = el("tr", { "data-delivery": d.id, "data-state": d.state });
  const state = el("span", { "data-part": "state" }, d.state);
  const retry = button("Retry", async () => {
    retry.disabled = true;
    try {
      const now = await post(`/api/${seg(ctx.session)}/webhooks/deliveries/${seg(d.id)}/retry`);
      tr.dataset.state = now.state;
      state.textContent = now.state + " (retrying)";
      retry.textContent = "Queued";
    } catch (e) {
      retry.disabled = false;
      ctx.notify(e instanceof ApiFailure ? e.describe() : String(e));
    }
  }, { "data-action": "retry", "aria-label": `Retry delivery of ${d.event} ${d.eventId}` });
  tr.append(...cells(DEAD, [d.event, el("code", null, d.eventId), String(d.attempts),
    d.lastError || "—", state, retry]));
  return tr;
}

/** Makes `tbody` show `items` in order, keeping rows whose delivery did not change. */
function sync(tbody, items, make) {
  const old = new Map([...tbody.rows].map((r) => [r.dataset.delivery, r]));
  const rows = items.map((d) => {
    const sig = JSON.stringify(d);
    const kept = old.get(d.id);
    if (kept && kept.dataset.sig === sig) return kept;
    const tr = make(d);
    tr.dataset.sig = sig;
    return tr;
  });
  if (rows.length === tbody.rows.length && rows.every((r, i) => r === tbody.rows[i])) return;
  tbody.replaceChildren(...rows);
}

function section(url) {
  const table = (caption, columns, kind) => el("table", { class: "grid", "data-list": kind },
    el("caption", null, caption),
    el("thead", null, el("tr", null, columns.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody"));
  return el("section", { class: "card", "data-webhook": url },
    el("h3", null, el("code", null, url)),
    el("p", { class: "counts" }, "pending ", el("strong", { "data-count": "pending" }, "0"),
      " · dead ", el("strong", { "data-count": "dead" }, "0")),
    table("Pending", PENDING, "pending"), table("Dead", DEAD, "dead"));
}

function byWebhook(ctx, pending, dead) {
  const info = ctx.sessions.find((s) => s.name === ctx.session);
  const hooks = new Map();
  for (const h of (info && info.config && info.config.webhooks) || []) {
    hooks.set(redact(h.url), { pending: [], dead: [] });
  }
  const slot = (url) => hooks.get(url) || hooks.set(url, { pending: [], dead: [] }).get(url);
  pending.forEach((d) => slot(d.url).pending.push(d));
  dead.forEach((d) => slot(d.url).dead.push(d));
  return hooks;
}

async function refresh(ctx, box, stamp) {
  const base = `/api/${seg(ctx.session)}/webhooks/deliveries`;
  const [pending, dead] = await Promise.all([
    get(`${base}?state=pending&limit=1000`), get(`${base}?state=dead&limit=1000`)]);
  if (!ctx.live()) return;
  const hooks = byWebhook(ctx, pending, dead);
  if (hooks.size === 0) fill(box, muted("This session has no webhook."));
  else if (box.querySelector(".muted")) box.replaceChildren();
  for (const [url, lists] of hooks) {
    let sec = [...box.children].find((s) => s.dataset.webhook === url);
    if (!sec) box.append((sec = section(url)));
    for (const kind of ["pending", "dead"]) {
      sec.querySelector(`[data-count="${kind}"]`).textContent = String(lists[kind].length);
      sec.querySelector(`[data-list="${kind}"]`).hidden = lists[kind].length === 0;
      sync(sec.querySelector(`[data-list="${kind}"] tbody`), lists[kind],
        kind === "dead" ? (d) => deadRow(ctx, d) : pendingRow);
    }
  }
  stamp.textContent = "Updated " + new Date().toLocaleTimeString();
}

export async function renderDeliveries(ctx) {
  if (!ctx.session) {
    fill(ctx.main, el("h2", null, "Deliveries"), muted("No session yet."));
    return;
  }
  const box = el("div", { class: "cards", id: "deliveries" });
  const stamp = el("p", { class: "muted" }, "Loading…");
  fill(ctx.main, el("h2", null, "Deliveries of ", el("code", null, ctx.session)), stamp, box);
  const tick = () => refresh(ctx, box, stamp).catch((e) =>
    ctx.notify(e instanceof ApiFailure ? e.describe() : String(e)));
  await tick();
  ctx.every(tick, EVERY_MS);
}
