"""Known-answer and tamper tests of receiver.py's checks, and one live round trip (python3 -m unittest)."""

import contextlib
import http.client
import http.server
import io
import json
import threading
import time
import unittest
from datetime import datetime, timezone

import receiver

WAHA_KEY = "my-secret-key"
WAHA_BODY = b'{"event":"message","session":"default","engine":"WEBJS"}'
WAHA_HMAC = (
    "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8"
    "097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
)

STD_KEY = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
STD_ID = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"
STD_TS = "1649367553"
STD_BODY = b'{"email":"test@example.com","username":"test_user"}'
STD_SIG = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="


def waha_headers(signature=WAHA_HMAC):
    return {"X-Webhook-Hmac": signature, "X-Webhook-Hmac-Algorithm": "sha512"}


def std_headers(signature=STD_SIG, msg_id=STD_ID, ts=STD_TS):
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": signature}


def signed_headers(key, body, msg_id, ts):
    """Headers as wagate sends them for `body`, signed with `key` at unix time `ts`."""
    headers = waha_headers(receiver.waha_signature(key, body))
    sig = receiver.standard_signature(receiver.standard_key(key), msg_id, str(ts), body)
    headers.update(std_headers(sig, msg_id, str(ts)))
    return headers


class WahaSignature(unittest.TestCase):
    def test_waha_documented_vector_verifies(self):
        self.assertEqual(receiver.waha_signature(WAHA_KEY, WAHA_BODY), WAHA_HMAC)
        receiver.verify_waha(WAHA_KEY, waha_headers(), WAHA_BODY)

    def test_tampered_body_is_rejected(self):
        with self.assertRaisesRegex(receiver.VerificationError, "does not match"):
            receiver.verify_waha(WAHA_KEY, waha_headers(), WAHA_BODY.replace(b"WEBJS", b"NOWEB"))

    def test_wrong_key_is_rejected(self):
        with self.assertRaisesRegex(receiver.VerificationError, "does not match"):
            receiver.verify_waha("other-key", waha_headers(), WAHA_BODY)

    def test_missing_signature_or_other_algorithm_is_rejected(self):
        with self.assertRaisesRegex(receiver.VerificationError, "missing X-Webhook-Hmac"):
            receiver.verify_waha(WAHA_KEY, {}, WAHA_BODY)
        headers = waha_headers()
        headers["X-Webhook-Hmac-Algorithm"] = "sha256"
        with self.assertRaisesRegex(receiver.VerificationError, "sha512"):
            receiver.verify_waha(WAHA_KEY, headers, WAHA_BODY)


class StandardWebhooksSignature(unittest.TestCase):
    key = receiver.standard_key(STD_KEY)
    at = int(STD_TS)

    def test_standard_webhooks_vector_verifies_at_its_own_time(self):
        self.assertEqual(receiver.standard_signature(self.key, STD_ID, STD_TS, STD_BODY), STD_SIG)
        receiver.verify_standard(self.key, std_headers(), STD_BODY, now=self.at)

    def test_any_one_valid_signature_of_several_is_enough(self):
        several = "v1,AAAA v2,whatever " + STD_SIG
        receiver.verify_standard(self.key, std_headers(several), STD_BODY, now=self.at)

    def test_tampered_body_is_rejected(self):
        with self.assertRaisesRegex(receiver.VerificationError, "no webhook-signature matches"):
            receiver.verify_standard(self.key, std_headers(), STD_BODY + b" ", now=self.at)

    def test_wrong_key_is_rejected(self):
        wrong = receiver.standard_key("whsec_" + "A" * 32)
        with self.assertRaisesRegex(receiver.VerificationError, "no webhook-signature matches"):
            receiver.verify_standard(wrong, std_headers(), STD_BODY, now=self.at)

    def test_timestamp_more_than_five_minutes_away_is_rejected(self):
        receiver.verify_standard(self.key, std_headers(), STD_BODY, now=self.at + 300)
        for now in (self.at + 301, self.at - 301):
            with self.assertRaisesRegex(receiver.VerificationError, "5 minutes"):
                receiver.verify_standard(self.key, std_headers(), STD_BODY, now=now)

    def test_missing_headers_are_rejected(self):
        with self.assertRaisesRegex(receiver.VerificationError, "missing webhook-id"):
            receiver.verify_standard(self.key, {"webhook-id": STD_ID}, STD_BODY, now=self.at)

    def test_a_key_without_whsec_prefix_is_used_as_utf8_bytes(self):
        self.assertEqual(receiver.standard_key("my-secret-key"), b"my-secret-key")
        self.assertEqual(len(receiver.standard_key(STD_KEY)), 24)


@unittest.skipIf(receiver.standardwebhooks is None, "standardwebhooks is not installed")
class StandardWebhooksPackage(unittest.TestCase):
    def test_package_signs_the_vector_like_the_standard_library_check(self):
        signed_at = datetime.fromtimestamp(int(STD_TS), tz=timezone.utc)
        webhook = receiver.standardwebhooks.Webhook(receiver.standard_key(STD_KEY))
        self.assertEqual(webhook.sign(STD_ID, signed_at, STD_BODY.decode()), STD_SIG)

    def test_package_accepts_a_fresh_signature_and_rejects_a_stale_or_tampered_one(self):
        now = int(time.time())
        headers = signed_headers(WAHA_KEY, WAHA_BODY, "evt_1", now)
        receiver.verify(WAHA_KEY, headers, WAHA_BODY)
        with self.assertRaises(receiver.VerificationError):
            receiver.verify_standard_with_library(b"my-secret-key", headers, WAHA_BODY + b" ")
        stale = signed_headers(WAHA_KEY, WAHA_BODY, "evt_1", now - 600)
        with self.assertRaisesRegex(receiver.VerificationError, "too old"):
            receiver.verify_standard_with_library(b"my-secret-key", stale, WAHA_BODY)


class BothChecks(unittest.TestCase):
    def test_a_request_needs_both_signatures(self):
        now = int(time.time())
        headers = signed_headers(WAHA_KEY, WAHA_BODY, "evt_1", now)
        receiver.verify(WAHA_KEY, headers, WAHA_BODY, now=now)
        for missing in ("X-Webhook-Hmac", "webhook-signature"):
            partial = {k: v for k, v in headers.items() if k != missing}
            with self.assertRaisesRegex(receiver.VerificationError, "missing"):
                receiver.verify(WAHA_KEY, partial, WAHA_BODY, now=now)


class LiveReceiver(unittest.TestCase):
    """The HTTP handler: 204 and one printed line per new event, 401 with a reason for a forgery."""

    def setUp(self):
        handler = receiver.make_handler(WAHA_KEY, receiver.SeenIds())
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def post(self, body, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.server_address[1], timeout=10)
        try:
            conn.request("POST", "/webhook", body=body, headers=headers)
            answer = conn.getresponse()
            return answer.status, answer.read().decode()
        finally:
            conn.close()

    def test_verified_event_is_printed_once_and_forgery_is_refused(self):
        envelope = {
            "id": "evt_01jd0000000000000000000000",
            "event": "group.v2.join",
            "session": "default",
            "payload": {"group": {"id": "120363000000000001@g.us"}},
        }
        body = json.dumps(envelope).encode()
        headers = signed_headers(WAHA_KEY, body, envelope["id"], int(time.time()))
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            self.assertEqual(self.post(body, headers), (204, ""))
            self.assertEqual(self.post(body, headers), (204, ""))  # a redelivery
            forged = dict(headers, **{"X-Webhook-Hmac": "00" * 64})
            status, reason = self.post(body, forged)
        self.assertEqual(status, 401)
        self.assertIn("X-Webhook-Hmac does not match", reason)
        lines = out.getvalue().splitlines()
        self.assertEqual(
            [json.loads(line) for line in lines],
            [{"id": envelope["id"], "event": "group.v2.join", "session": "default",
              "group": "120363000000000001@g.us"}],
        )


if __name__ == "__main__":
    unittest.main()
