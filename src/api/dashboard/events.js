// A live tail of the session's event log: polls `/events?after=<cursor>`, newest first, filtered
// by event name and group; each envelope opens as formatted JSON.

import { ApiFailure, get, seg } from "./api.js";
import { el, fill, muted } from "./dom.js";

const NAMES = ["group.join", "group.leave", "group.v2.join", "group.v2.leave",
  "group.v2.participants", "group.v2.update", "group.v2.participants.join-request",
  "session.status"];
const PAGE = 500;
const KEEP = 300;
const EVERY_MS = 2000;

/** The group an envelope is about, if any. */
function groupOf(env) {
  const p = env.payload || {};
  return (p.group && p.group.id) || p.chatId || "";
}

function entry(env, subjects) {
  const gid = groupOf(env);
  const label = gid ? subjects.get(gid) || (env.payload.group && env.payload.group.subject) || gid : "";
  const time = new Date(env.timestamp).toLocaleTimeString();
  return el("li", { "data-event": env.event, "data-group": gid, "data-id": env.id },
    el("details", null,
      el("summary", null, el("time", null, time), " ", el("strong", null, env.event),
        label ? el("span", { class: "muted" }, " · " + label) : null),
      el("pre", null, JSON.stringify(env, null, 2))));
}

function option(value, label) {
  return el("option", { value }, label);
}

async function subjectsOf(session) {
  try {
    const groups = await get(`/api/${seg(session)}/groups?exclude=participants&sortBy=subject`);
    return new Map(groups.map((g) => [g.id, g.subject]));
  } catch {
    return new Map(); // a session that is not WORKING still has its log
  }
}

export async function renderEvents(ctx) {
  if (!ctx.session) {
    fill(ctx.main, el("h2", null, "Events"), muted("No session yet."));
    return;
  }
  const subjects = await subjectsOf(ctx.session);
  const byName = el("select", { id: "filter-event" }, option("", "all events"),
    NAMES.map((n) => option(n, n)));
  const byGroup = el("select", { id: "filter-group" }, option("", "all groups"),
    [...subjects].map(([id, subject]) => option(id, `${subject} (${id})`)));
  const list = el("ol", { id: "events-list", class: "events", reversed: true });
  const status = el("p", { class: "muted" }, "Loading…");
  const apply = (li) => {
    li.hidden = (byName.value && li.dataset.event !== byName.value)
      || (byGroup.value && li.dataset.group !== byGroup.value);
  };
  const refilter = () => [...list.children].forEach(apply);
  byName.addEventListener("change", refilter);
  byGroup.addEventListener("change", refilter);
  fill(ctx.main, el("h2", null, "Events of ", el("code", null, ctx.session)),
    el("div", { class: "filters" },
      el("label", null, "Event ", byName), el("label", null, "Group ", byGroup)),
    status, list);

  let cursor = "";
  let seen = 0;
  const tick = async () => {
    for (let page = 0; page < 20; page++) {
      const after = cursor ? `&after=${encodeURIComponent(cursor)}` : "";
      const batch = await get(`/api/${seg(ctx.session)}/events?limit=${PAGE}${after}`);
      if (!ctx.live()) return;
      for (const { cursor: c, envelope } of batch) {
        cursor = c;
        seen += 1;
        const li = entry(envelope, subjects);
        const gid = li.dataset.group;
        if (gid && ![...byGroup.options].some((o) => o.value === gid)) byGroup.append(option(gid, gid));
        apply(li);
        list.prepend(li);
      }
      while (list.children.length > KEEP) list.lastElementChild.remove();
      if (batch.length < PAGE) break;
    }
    status.textContent = `${seen} events so far (newest first, the last ${KEEP} kept) · `
      + `updated ${new Date().toLocaleTimeString()}`;
  };
  const safe = () => tick().catch((e) => ctx.notify(e instanceof ApiFailure ? e.describe() : String(e)));
  await safe();
  ctx.every(safe, EVERY_MS);
}
