"""A wagate webhook receiver that verifies both signature schemes before trusting an event.

Run:  WEBHOOK_HMAC_KEY=my-secret-key python3 receiver.py [PORT]     (PORT also from env, default 8000)

Every POST must carry a valid WAHA signature (X-Webhook-Hmac, HMAC-SHA512 hex) AND a valid
Standard Webhooks signature (webhook-id / webhook-timestamp / webhook-signature). Valid: 204 and
one JSON line on stdout per new event id. Invalid or missing: 401 with the reason. Delivery is
at-least-once, so an event id seen before is answered 204 again but not printed twice.

The checks use only the standard library. When the `standardwebhooks` package is installed
(requirements.txt), the Standard Webhooks check is done by it instead, to show its use.
"""

import base64
import binascii
import collections
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time

try:
    import standardwebhooks
except ImportError:  # optional: the standard library check below does the same
    standardwebhooks = None

TOLERANCE_SECONDS = 5 * 60
MAX_BODY_BYTES = 1024 * 1024
REMEMBERED_IDS = 10_000


class VerificationError(Exception):
    """A signature is missing or wrong; the message is the short reason sent back with the 401."""


def standard_key(key: str) -> bytes:
    """The Standard Webhooks HMAC key: base64 after a `whsec_` prefix, else the key's UTF-8 bytes."""
    if key.startswith("whsec_"):
        try:
            secret = key[len("whsec_"):]
            return base64.b64decode(secret + "=" * (-len(secret) % 4), validate=True)
        except binascii.Error as e:
            raise ValueError("WEBHOOK_HMAC_KEY: the part after whsec_ is not base64") from e
    return key.encode("utf-8")


def waha_signature(key: str, body: bytes) -> str:
    """WAHA's X-Webhook-Hmac: lowercase hex HMAC-SHA512 of the exact body bytes."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha512).hexdigest()


def verify_waha(key: str, headers, body: bytes) -> None:
    signature = headers.get("X-Webhook-Hmac")
    if not signature:
        raise VerificationError("missing X-Webhook-Hmac")
    algorithm = (headers.get("X-Webhook-Hmac-Algorithm") or "").lower()
    if algorithm != "sha512":
        raise VerificationError("X-Webhook-Hmac-Algorithm must be sha512")
    # Compare as bytes so a non-ASCII header cannot raise inside compare_digest.
    expected = waha_signature(key, body).encode("ascii")
    if not hmac.compare_digest(expected, signature.strip().lower().encode("utf-8")):
        raise VerificationError("X-Webhook-Hmac does not match")


def standard_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`."""
    signed = msg_id.encode("utf-8") + b"." + timestamp.encode("utf-8") + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def verify_standard(key: bytes, headers, body: bytes, now=None, tolerance=TOLERANCE_SECONDS) -> None:
    """The Standard Webhooks check with the standard library. `now` (unix seconds) is for tests."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise VerificationError("webhook-timestamp is not unix seconds") from None
    now = time.time() if now is None else now
    if abs(now - sent) > tolerance:
        raise VerificationError("webhook-timestamp is more than 5 minutes from now")
    expected = base64.b64decode(standard_signature(key, msg_id, timestamp, body)[3:])
    # Several signatures may be sent (key rotation): any one valid v1 signature is enough.
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(expected, given):
            return
    raise VerificationError("no webhook-signature matches")


def verify_standard_with_library(key: bytes, headers, body: bytes) -> None:
    """The same check done by the `standardwebhooks` package (its tolerance is also 5 minutes)."""
    wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
    sent = {name: headers.get(name) for name in wanted if headers.get(name)}
    try:
        # Pass the key as bytes: the package would base64-decode a str key even without whsec_.
        standardwebhooks.Webhook(key).verify(body, sent, json_parse=False)
    except standardwebhooks.WebhookVerificationError as e:
        raise VerificationError(f"webhook-signature: {e}") from None
    except (ValueError, UnicodeDecodeError) as e:  # malformed headers or body the package does not catch
        raise VerificationError(f"webhook-signature: {e}") from None


def verify(key: str, headers, body: bytes, now=None) -> None:
    """Both checks; raises VerificationError with the first failure."""
    verify_waha(key, headers, body)
    if standardwebhooks is not None and now is None:
        verify_standard_with_library(standard_key(key), headers, body)
    else:
        verify_standard(standard_key(key), headers, body, now=now)


class SeenIds:
    """The last REMEMBERED_IDS event ids, so a redelivered event is acknowledged but shown once."""

    def __init__(self, capacity=REMEMBERED_IDS):
        self._ids = collections.OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids[event_id] = None
            if len(self._ids) > self._capacity:
                self._ids.popitem(last=False)
            return True


def summary(envelope: dict) -> dict:
    """The line printed for a verified event."""
    payload = envelope.get("payload")
    group = payload.get("group") if isinstance(payload, dict) else None
    return {
        "id": envelope.get("id"),
        "event": envelope.get("event"),
        "session": envelope.get("session"),
        "group": group.get("id") if isinstance(group, dict) else None,
    }


# The server answers each request on its own thread: one printed line at a time, or two
# concurrent deliveries can interleave on one line.
PRINT_LOCK = threading.Lock()


def make_handler(key: str, seen: SeenIds):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self.answer(411, "Content-Length required")
            if length < 0 or length > MAX_BODY_BYTES:
                return self.answer(413, "body too large")
            body = self.rfile.read(length)
            try:
                verify(key, self.headers, body)
            except VerificationError as e:
                print(f"rejected: {e}", file=sys.stderr, flush=True)
                return self.answer(401, str(e))
            try:
                envelope = json.loads(body)
            except ValueError:
                return self.answer(400, "body is not JSON")
            if not isinstance(envelope, dict):
                return self.answer(400, "body is not a JSON object")
            event_id = (
                self.headers.get("webhook-id")
                or self.headers.get("X-Webhook-Request-Id")
                or str(envelope.get("id"))
            )
            if seen.first_time(event_id):
                with PRINT_LOCK:
                    print(json.dumps(summary(envelope)), flush=True)
            self.answer(204)

        def answer(self, status: int, reason: str = ""):
            data = (reason + "\n").encode("utf-8") if reason else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass  # stdout carries only verified events; rejections are logged above

    return Handler


def main() -> int:
    key = os.environ.get("WEBHOOK_HMAC_KEY", "")
    if not key:
        print("set WEBHOOK_HMAC_KEY to the webhook's hmac.key", file=sys.stderr)
        return 2
    try:
        standard_key(key)
        port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8000"))
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    host = os.environ.get("HOST", "127.0.0.1")
    server = http.server.ThreadingHTTPServer((host, port), make_handler(key, SeenIds()))
    checker = "standardwebhooks package" if standardwebhooks else "standard library"
    bound_host, bound_port = server.server_address[:2]
    print(
        f"listening on http://{bound_host}:{bound_port}/webhook (Standard Webhooks check: {checker})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
