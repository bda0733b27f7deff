// A wagate webhook receiver that verifies both signature schemes before trusting an event.
//
// Run:  WEBHOOK_HMAC_KEY=my-secret-key node receiver.mjs [PORT]     (PORT also from env, default 8000)
//
// Every POST must carry a valid WAHA signature (X-Webhook-Hmac, HMAC-SHA512 hex) AND a valid
// Standard Webhooks signature (webhook-id / webhook-timestamp / webhook-signature). Valid: 204 and
// one JSON line on stdout per new event id. Invalid or missing: 401 with the reason. Delivery is
// at-least-once, so an event id seen before is answered 204 again but not printed twice.
// Only node:http and node:crypto: no framework, no npm dependencies.

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

export const TOLERANCE_SECONDS = 5 * 60;
const MAX_BODY_BYTES = 1024 * 1024;
const REMEMBERED_IDS = 10_000;

/** A signature is missing or wrong; the message is the short reason sent back with the 401. */
export class VerificationError extends Error {}

/** The Standard Webhooks HMAC key: base64 after a `whsec_` prefix, else the key's UTF-8 bytes. */
export function standardKey(key) {
  if (key.startsWith("whsec_")) {
    const secret = key.slice("whsec_".length);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(secret)) {
      throw new Error("WEBHOOK_HMAC_KEY: the part after whsec_ is not base64");
    }
    return Buffer.from(secret, "base64");
  }
  return Buffer.from(key, "utf8");
}

/** WAHA's X-Webhook-Hmac: lowercase hex HMAC-SHA512 of the exact body bytes. */
export function wahaSignature(key, body) {
  return createHmac("sha512", Buffer.from(key, "utf8")).update(body).digest("hex");
}

// timingSafeEqual throws on different lengths; a length is no secret, so check it first.
function sameBytes(a, b) {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `headers` as node gives them: names in lower case. */
export function verifyWaha(key, headers, body) {
  const signature = headers["x-webhook-hmac"];
  if (!signature) throw new VerificationError("missing X-Webhook-Hmac");
  if ((headers["x-webhook-hmac-algorithm"] ?? "").toLowerCase() !== "sha512") {
    throw new VerificationError("X-Webhook-Hmac-Algorithm must be sha512");
  }
  const expected = Buffer.from(wahaSignature(key, body), "utf8");
  if (!sameBytes(expected, Buffer.from(signature.trim().toLowerCase(), "utf8"))) {
    throw new VerificationError("X-Webhook-Hmac does not match");
  }
}

/** One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`. */
export function standardSignature(key, id, timestamp, body) {
  const mac = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body);
  return `v1,${mac.digest("base64")}`;
}

/** The Standard Webhooks check. `now` (unix seconds) is for tests. */
export function verifyStandard(key, headers, body, now = Date.now() / 1000) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) {
    throw new VerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  }
  if (!/^\d+$/.test(timestamp)) throw new VerificationError("webhook-timestamp is not unix seconds");
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) {
    throw new VerificationError("webhook-timestamp is more than 5 minutes from now");
  }
  const expected = Buffer.from(standardSignature(key, id, timestamp, body).slice(3), "base64");
  // Several signatures may be sent (key rotation): any one valid v1 signature is enough.
  for (const candidate of signatures.split(" ")) {
    const comma = candidate.indexOf(",");
    if (comma < 0 || candidate.slice(0, comma) !== "v1") continue;
    if (sameBytes(expected, Buffer.from(candidate.slice(comma + 1), "base64"))) return;
  }
  throw new VerificationError("no webhook-signature matches");
}

/** Both checks; throws VerificationError with the first failure. */
export function verify(key, headers, body, now) {
  verifyWaha(key, headers, body);
  verifyStandard(standardKey(key), headers, body, now);
}

/** The line printed for a verified event. */
export function summary(envelope) {
  const group = envelope.payload?.group;
  return {
    id: envelope.id ?? null,
    event: envelope.event ?? null,
    session: envelope.session ?? null,
    group: typeof group === "object" && group !== null ? (group.id ?? null) : null,
  };
}

/** The last `capacity` event ids, so a redelivered event is acknowledged but shown once. */
export class SeenIds {
  constructor(capacity = REMEMBERED_IDS) {
    this.capacity = capacity;
    this.ids = new Set(); // a Set iterates in insertion order: the first is the oldest
  }
  firstTime(id) {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value);
    return true;
  }
}

/** The receiver as a node:http server; `print` gets each verified event's line. */
export function createReceiver(key, print = (line) => console.log(line)) {
  const seen = new SeenIds();
  return createServer((req, res) => {
    const answer = (status, reason = "") => {
      res.writeHead(status, reason ? { "content-type": "text/plain; charset=utf-8" } : {});
      res.end(reason ? `${reason}\n` : undefined);
    };
    if (req.method !== "POST") return answer(405, "POST only");
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        answer(413, "body too large");
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      try {
        verify(key, req.headers, body);
      } catch (e) {
        if (!(e instanceof VerificationError)) throw e;
        console.error(`rejected: ${e.message}`);
        return answer(401, e.message);
      }
      let envelope;
      try {
        envelope = JSON.parse(body.toString("utf8"));
      } catch {
        return answer(400, "body is not JSON");
      }
      if (typeof envelope !== "object" || envelope === null || Array.isArray(envelope)) {
        return answer(400, "body is not a JSON object");
      }
      const id = req.headers["webhook-id"] || req.headers["x-webhook-request-id"] || String(envelope.id);
      if (seen.firstTime(id)) print(JSON.stringify(summary(envelope)));
      answer(204);
    });
  });
}

function main() {
  const key = process.env.WEBHOOK_HMAC_KEY ?? "";
  if (!key) {
    console.error("set WEBHOOK_HMAC_KEY to the webhook's hmac.key");
    process.exit(2);
  }
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8000);
  const host = process.env.HOST ?? "127.0.0.1";
  try {
    standardKey(key);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port: ${port}`);
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const server = createReceiver(key);
  server.listen(port, host, () => {
    const { address, port: bound } = server.address();
    console.error(`listening on http://${address}:${bound}/webhook`);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
