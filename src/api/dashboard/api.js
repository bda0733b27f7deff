// The gateway's public API, called from the page's own origin with the key the user entered.
// The key lives in sessionStorage: gone when the tab closes, never in a URL or a cookie.

const KEY = "wagate.apiKey";

export function getKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** An answer that is not 2xx, with the API's own message (`{statusCode, error, message, code}`). */
export class ApiFailure extends Error {
  constructor(status, body) {
    const msg = body && typeof body.message === "string" ? body.message : "HTTP " + status;
    super(msg);
    this.status = status;
    this.body = body;
    this.code = body && body.code;
  }

  /** What the user sees: status, error and the API's message. */
  describe() {
    const err = this.body && this.body.error ? " " + this.body.error : "";
    return this.status ? `${this.status}${err}: ${this.message}` : this.message;
  }
}

const listeners = [];

/** `fn(failure)` is called for every 401, wherever it came from. */
export function onUnauthorized(fn) {
  listeners.push(fn);
}

/** A path segment, percent-encoded (`@` of group ids is fine either way). */
export const seg = encodeURIComponent;

/** Calls the API; answers the parsed JSON body, or throws an ApiFailure. */
export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers["X-Api-Key"] = key;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiFailure(0, { message: "the gateway cannot be reached (" + e.message + ")" });
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!resp.ok) {
    const failure = new ApiFailure(resp.status, data);
    if (resp.status === 401) listeners.forEach((fn) => fn(failure));
    throw failure;
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
