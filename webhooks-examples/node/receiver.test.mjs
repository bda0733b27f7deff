// Known-answer and tamper tests of receiver.mjs's checks, and one live round trip (node --test).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  createReceiver,
  standardKey,
  standardSignature,
  verify,
  verifyStandard,
  verifyWaha,
  wahaSignature,
} from "./receiver.mjs";

const WAHA_KEY = "my-secret-key";
const WAHA_BODY = Buffer.from('{"event":"message","session":"default","engine":"WEBJS"}');
const WAHA_HMAC =
  "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8" +
  "097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89";

const STD_KEY = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const STD_ID = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const STD_TS = "1649367553";
const STD_BODY = Buffer.from('{"email":"test@example.com","username":"test_user"}');
const STD_SIG = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
const AT = Number(STD_TS);

const wahaHeaders = (signature = WAHA_HMAC) => ({
  "x-webhook-hmac": signature,
  "x-webhook-hmac-algorithm": "sha512",
});
const stdHeaders = (signature = STD_SIG, id = STD_ID, ts = STD_TS) => ({
  "webhook-id": id,
  "webhook-timestamp": ts,
  "webhook-signature": signature,
});
/** Headers as wagate sends them for `body`, signed with `key` at unix time `ts`. */
const signedHeaders = (key, body, id, ts) => ({
  ...wahaHeaders(wahaSignature(key, body)),
  ...stdHeaders(standardSignature(standardKey(key), id, String(ts), body), id, String(ts)),
});

test("the WAHA documented vector verifies", () => {
  assert.equal(wahaSignature(WAHA_KEY, WAHA_BODY), WAHA_HMAC);
  verifyWaha(WAHA_KEY, wahaHeaders(), WAHA_BODY);
});

test("WAHA: a tampered body or a wrong key is rejected", () => {
  const tampered = Buffer.from(WAHA_BODY.toString().replace("WEBJS", "NOWEB"));
  assert.throws(() => verifyWaha(WAHA_KEY, wahaHeaders(), tampered), /does not match/);
  assert.throws(() => verifyWaha("other-key", wahaHeaders(), WAHA_BODY), /does not match/);
});

test("WAHA: a missing signature or another algorithm is rejected", () => {
  assert.throws(() => verifyWaha(WAHA_KEY, {}, WAHA_BODY), /missing X-Webhook-Hmac/);
  const sha256 = { ...wahaHeaders(), "x-webhook-hmac-algorithm": "sha256" };
  assert.throws(() => verifyWaha(WAHA_KEY, sha256, WAHA_BODY), /sha512/);
});

test("the Standard Webhooks vector verifies at its own time", () => {
  const key = standardKey(STD_KEY);
  assert.equal(standardSignature(key, STD_ID, STD_TS, STD_BODY), STD_SIG);
  verifyStandard(key, stdHeaders(), STD_BODY, AT);
  verifyStandard(key, stdHeaders(`v1,AAAA v2,x ${STD_SIG}`), STD_BODY, AT);
});

test("Standard Webhooks: a tampered body or a wrong key is rejected", () => {
  const key = standardKey(STD_KEY);
  const tampered = Buffer.concat([STD_BODY, Buffer.from(" ")]);
  assert.throws(() => verifyStandard(key, stdHeaders(), tampered, AT), /no webhook-signature matches/);
  const wrong = standardKey(`whsec_${"A".repeat(32)}`);
  assert.throws(() => verifyStandard(wrong, stdHeaders(), STD_BODY, AT), /no webhook-signature matches/);
});

test("Standard Webhooks: a timestamp more than five minutes away is rejected", () => {
  const key = standardKey(STD_KEY);
  verifyStandard(key, stdHeaders(), STD_BODY, AT + 300);
  for (const now of [AT + 301, AT - 301]) {
    assert.throws(() => verifyStandard(key, stdHeaders(), STD_BODY, now), /5 minutes/);
  }
  assert.throws(() => verifyStandard(key, stdHeaders(), STD_BODY), /5 minutes/);
});

test("a key without the whsec_ prefix is used as its UTF-8 bytes", () => {
  assert.deepEqual(standardKey("my-secret-key"), Buffer.from("my-secret-key"));
  assert.equal(standardKey(STD_KEY).length, 24);
});

test("a request needs both signatures", () => {
  const now = Math.floor(Date.now() / 1000);
  const headers = signedHeaders(WAHA_KEY, WAHA_BODY, "evt_1", now);
  verify(WAHA_KEY, headers, WAHA_BODY);
  for (const missing of ["x-webhook-hmac", "webhook-signature"]) {
    const partial = { ...headers };
    delete partial[missing];
    assert.throws(() => verify(WAHA_KEY, partial, WAHA_BODY), /missing/);
  }
});

test("the receiver prints a verified event once and refuses a forgery with 401", async () => {
  const lines = [];
  const server = createReceiver(WAHA_KEY, (line) => lines.push(line));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/webhook`;
  try {
    const envelope = {
      id: "evt_01jd0000000000000000000000",
      event: "group.v2.join",
      session: "default",
      payload: { group: { id: "120363000000000001@g.us" } },
    };
    const body = JSON.stringify(envelope);
    const headers = signedHeaders(WAHA_KEY, Buffer.from(body), envelope.id, Math.floor(Date.now() / 1000));
    for (let i = 0; i < 2; i++) {
      const ok = await fetch(url, { method: "POST", body, headers }); // the second is a redelivery
      assert.equal(ok.status, 204);
    }
    const forged = await fetch(url, { method: "POST", body, headers: { ...headers, "x-webhook-hmac": "00".repeat(64) } });
    assert.equal(forged.status, 401);
    assert.match(await forged.text(), /X-Webhook-Hmac does not match/);
    assert.deepEqual(lines.map((l) => JSON.parse(l)), [
      { id: envelope.id, event: "group.v2.join", session: "default", group: "120363000000000001@g.us" },
    ]);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
