// Groups of a session: subject, size, the session's role, settings as badges; per group its
// participants (roles and phone numbers) and, for admins, its invite link.

import { ApiFailure, get, seg } from "./api.js";
import { badge, button, el, fill, muted, table, when } from "./dom.js";

const ROLE_KIND = { superadmin: "ok", admin: "info", participant: "" };

/** The session's own role in `g`: its account is a participant by number (`id` or `pn`). */
function roleOf(g, me) {
  const mine = (g.participants || []).find((p) => me && (p.id === me.id || p.pn === me.id));
  return mine ? mine.role : "not a member";
}

/** What GroupInfo says about who may do what, as badges. */
function settings(g) {
  const out = [];
  out.push(g.membersCanSendMessages === false
    ? badge("announce: admins only send", "warn") : badge("everyone sends"));
  out.push(g.infoAdminOnly ? badge("locked: info admins only", "warn") : badge("info: everyone edits"));
  out.push(g.membersCanAddNewMember ? badge("members can add") : badge("admins add"));
  if (g.newMembersApprovalRequired) out.push(badge("approval required", "warn"));
  if (g.isCommunity) out.push(badge("community", "info"));
  if (g.isCommunityAnnounce) out.push(badge("community announcements", "info"));
  if (g.parentGroupId) out.push(badge("in community " + g.parentGroupId, "info"));
  return el("div", { class: "badges", "data-part": "settings" }, out);
}

function failure(e) {
  return el("p", { class: "error" }, e instanceof ApiFailure ? e.describe() : String(e));
}

/** Toggles a panel under a button: loads it the first time it opens. */
function toggle(label, panel, load) {
  let loaded = false;
  const btn = button(label, async () => {
    const open = btn.getAttribute("aria-expanded") === "true";
    btn.setAttribute("aria-expanded", String(!open));
    panel.hidden = open;
    if (open || loaded) return;
    fill(panel, muted("Loading…"));
    try {
      fill(panel, await load());
      loaded = true;
    } catch (e) {
      fill(panel, failure(e));
    }
  }, { "aria-expanded": "false", class: "secondary" });
  return btn;
}

async function participants(session, g) {
  const list = await get(`/api/${seg(session)}/groups/${seg(g.id)}/participants`);
  const columns = ["Id", "Phone number (pn)", "Role"];
  const rows = list.map((p) => el("tr", { "data-participant": p.id },
    [el("code", null, p.id), el("code", null, p.pn || "—"), badge(p.role, ROLE_KIND[p.role])]
      .map((c, i) => el("td", { "data-label": columns[i] }, c))));
  return table(`${list.length} participants`, columns, rows, { class: "grid participants" });
}

async function invite(session, g) {
  const code = await get(`/api/${seg(session)}/groups/${seg(g.id)}/invite-code`);
  const url = "https://chat.whatsapp.com/" + encodeURIComponent(String(code));
  return el("p", { class: "invite" }, "Invite link: ",
    el("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, url));
}

function card(session, me, g) {
  const role = roleOf(g, me);
  const people = el("div", { class: "panel", hidden: true });
  const link = el("div", { class: "panel", hidden: true });
  const admin = role === "admin" || role === "superadmin";
  return el("section", { class: "card", "data-group": g.id },
    el("h3", null, g.subject),
    el("p", { class: "meta" },
      el("code", null, g.id), " · ", `${g.size} members`, " · role ",
      badge(role, ROLE_KIND[role]), " · created ", when(g.creation, true)),
    g.description ? el("p", { class: "description" }, g.description) : null,
    settings(g),
    el("div", { class: "actions" },
      toggle("Participants", people, () => participants(session, g)),
      admin ? toggle("Invite link", link, () => invite(session, g)) : null),
    people, link);
}

export async function renderGroups(ctx) {
  const { session } = ctx;
  if (!session) {
    fill(ctx.main, el("h2", null, "Groups"), muted("No session yet."));
    return;
  }
  const me = (ctx.sessions.find((s) => s.name === session) || {}).me;
  const heading = el("h2", null, "Groups of ", el("code", null, session));
  fill(ctx.main, heading, muted("Loading…"));
  let groups;
  try {
    groups = await get(`/api/${seg(session)}/groups?sortBy=subject`);
  } catch (e) {
    if (ctx.live()) fill(ctx.main, heading, failure(e));
    return;
  }
  if (!ctx.live()) return;
  fill(ctx.main, heading,
    el("div", { class: "actions" }, button("Refresh", () => ctx.reload(), { class: "secondary" })),
    groups.length === 0 ? muted("This session is in no group.") : null,
    el("div", { class: "cards", id: "groups-list" }, groups.map((g) => card(session, me, g))));
}
