// DOM helpers: every value from the API goes in as text (createElement/textContent), never as
// markup, so a group subject like "<img onerror=…>" stays a string on the screen.

/** An element with attributes (on* handlers are functions) and children (strings become text). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A small label; `kind` picks its colour (ok, warn, bad, info). */
export function badge(label, kind) {
  return el("span", { class: "badge" + (kind ? " " + kind : "") }, label);
}

/** A button that runs `action` on click. */
export function button(label, action, attrs) {
  return el("button", { type: "button", ...(attrs || {}), onclick: action }, label);
}

/** A table with a caption, column names and rows of cells; `data-label` lets phones show cards. */
export function table(caption, columns, rows, attrs) {
  const head = el("tr", null, columns.map((c) => el("th", { scope: "col" }, c)));
  const body = el("tbody", null, rows.map((r) => row(columns, r)));
  return el("table", { class: "grid", ...(attrs || {}) },
    caption ? el("caption", null, caption) : null, el("thead", null, head), body);
}

/** One table row: `cells` in column order, or a prepared <tr>. */
export function row(columns, cells, attrs) {
  if (cells instanceof HTMLTableRowElement) return cells;
  return el("tr", attrs, cells.map((c, i) => el("td", { "data-label": columns[i] }, c)));
}

/** Unix ms (or seconds when `seconds`) as local date and time; 0 or missing as "—". */
export function when(t, seconds) {
  if (!t) return "—";
  const d = new Date(seconds ? t * 1000 : t);
  return d.toLocaleString();
}

/** A paragraph for empty lists and hints. */
export function muted(text) {
  return el("p", { class: "muted" }, text);
}
