//! Verifying wagate's webhook signatures (WAHA's `X-Webhook-Hmac` and Standard Webhooks), deduping
//! redelivered events, and the one line printed per verified event.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Sha256, Sha512};

/// Standard Webhooks' replay window: a `webhook-timestamp` further than this from now is refused.
pub const TOLERANCE_SECONDS: u64 = 5 * 60;
/// How many event ids are remembered for deduplication.
const REMEMBERED_IDS: usize = 10_000;

/// Why a request was refused: the short reason sent back with the 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub &'static str);

/// Request headers; names compare case-insensitively, as in HTTP.
#[derive(Debug, Default, Clone)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// The webhook's `hmac.key`, in the two forms the two schemes use.
#[derive(Clone)]
pub struct Key {
    /// WAHA signs with the key's UTF-8 bytes.
    waha: Vec<u8>,
    /// Standard Webhooks: base64-decoded after a `whsec_` prefix, else the UTF-8 bytes.
    standard: Vec<u8>,
}

impl Key {
    pub fn new(key: &str) -> Result<Key, String> {
        if key.is_empty() {
            return Err("the key is empty".into());
        }
        let standard = match key.strip_prefix("whsec_") {
            Some(secret) => BASE64
                .decode(secret)
                .map_err(|e| format!("the part after whsec_ is not base64: {e}"))?,
            None => key.as_bytes().to_vec(),
        };
        Ok(Key {
            waha: key.as_bytes().to_vec(),
            standard,
        })
    }
}

fn hmac512(key: &[u8]) -> Hmac<Sha512> {
    Hmac::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn hmac256(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac: Hmac<Sha256> = Hmac::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// WAHA's `X-Webhook-Hmac`: lowercase hex HMAC-SHA512 of the exact body bytes.
pub fn waha_signature(key: &Key, body: &[u8]) -> String {
    let mut mac = hmac512(&key.waha);
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

pub fn verify_waha(key: &Key, headers: &Headers, body: &[u8]) -> Result<(), Rejection> {
    let signature = headers
        .get("X-Webhook-Hmac")
        .ok_or(Rejection("missing X-Webhook-Hmac"))?;
    let algorithm = headers.get("X-Webhook-Hmac-Algorithm").unwrap_or("");
    if !algorithm.eq_ignore_ascii_case("sha512") {
        return Err(Rejection("X-Webhook-Hmac-Algorithm must be sha512"));
    }
    let given = hex_decode(signature.trim()).ok_or(Rejection("X-Webhook-Hmac is not hex"))?;
    let mut mac = hmac512(&key.waha);
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| Rejection("X-Webhook-Hmac does not match"))
}

/// One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn standard_signature(key: &Key, id: &str, timestamp: &str, body: &[u8]) -> String {
    let mac = hmac256(&key.standard, id, timestamp, body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The Standard Webhooks check at unix time `now` (a parameter so the known-answer vector,
/// signed in 2022, can be checked at its own time).
pub fn verify_standard(
    key: &Key,
    headers: &Headers,
    body: &[u8],
    now: u64,
) -> Result<(), Rejection> {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return Err(Rejection(
            "missing webhook-id, webhook-timestamp or webhook-signature",
        ));
    };
    let sent: u64 = timestamp
        .parse()
        .map_err(|_| Rejection("webhook-timestamp is not unix seconds"))?;
    if now.abs_diff(sent) > TOLERANCE_SECONDS {
        return Err(Rejection(
            "webhook-timestamp is more than 5 minutes from now",
        ));
    }
    let mac = hmac256(&key.standard, id, timestamp, body);
    // Several signatures may be sent (key rotation): any one valid v1 signature is enough.
    let matches = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| BASE64.decode(s).ok())
        .any(|given| mac.clone().verify_slice(&given).is_ok());
    if matches {
        Ok(())
    } else {
        Err(Rejection("no webhook-signature matches"))
    }
}

/// Both checks; the first failure is the answer.
pub fn verify(key: &Key, headers: &Headers, body: &[u8], now: u64) -> Result<(), Rejection> {
    verify_waha(key, headers, body)?;
    verify_standard(key, headers, body, now)
}

/// The last [`REMEMBERED_IDS`] event ids: delivery is at-least-once, so a redelivered event is
/// acknowledged again but shown once.
#[derive(Default)]
pub struct SeenIds {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl SeenIds {
    pub fn first_time(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > REMEMBERED_IDS {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        true
    }
}

/// The line printed for a verified event: `{"id","event","session","group"}`.
pub fn summary(envelope: &Value) -> String {
    // Written out so the keys keep this order (serde_json's map sorts them).
    format!(
        r#"{{"id":{},"event":{},"session":{},"group":{}}}"#,
        envelope["id"], envelope["event"], envelope["session"], envelope["payload"]["group"]["id"]
    )
}

/// What to answer a request, and the line to print when it is a new verified event.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub reason: &'static str,
    pub line: Option<String>,
}

impl Answer {
    fn refuse(status: u16, reason: &'static str) -> Answer {
        Answer {
            status,
            reason,
            line: None,
        }
    }
}

/// The receiver's whole decision for one request, apart from HTTP parsing.
pub struct Receiver {
    key: Key,
    /// A std Mutex: held only for a set lookup, never across I/O.
    seen: Mutex<SeenIds>,
}

impl Receiver {
    pub fn new(key: Key) -> Receiver {
        Receiver {
            key,
            seen: Mutex::new(SeenIds::default()),
        }
    }

    pub fn handle(&self, method: &str, headers: &Headers, body: &[u8], now: u64) -> Answer {
        if method != "POST" {
            return Answer::refuse(405, "POST only");
        }
        if let Err(Rejection(reason)) = verify(&self.key, headers, body, now) {
            return Answer::refuse(401, reason);
        }
        let envelope: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Answer::refuse(400, "body is not a JSON object"),
        };
        let id = headers
            .get("webhook-id")
            .or_else(|| headers.get("X-Webhook-Request-Id"))
            .map(str::to_owned)
            .unwrap_or_else(|| envelope["id"].to_string());
        // A poisoned lock only means another thread panicked mid-insert; the set is still usable.
        let first = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first_time(&id);
        Answer {
            status: 204,
            reason: "",
            line: first.then(|| summary(&envelope)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAHA_KEY: &str = "my-secret-key";
    const WAHA_BODY: &[u8] = br#"{"event":"message","session":"default","engine":"WEBJS"}"#;
    const WAHA_HMAC: &str = "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89";

    const STD_KEY: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const STD_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const STD_TS: &str = "1649367553";
    const STD_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const STD_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    const AT: u64 = 1_649_367_553;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn waha_headers(signature: &str) -> Headers {
        headers(&[
            ("X-Webhook-Hmac", signature),
            ("X-Webhook-Hmac-Algorithm", "sha512"),
        ])
    }

    fn std_headers(signature: &str) -> Headers {
        headers(&[
            ("webhook-id", STD_ID),
            ("webhook-timestamp", STD_TS),
            ("webhook-signature", signature),
        ])
    }

    /// Headers as wagate sends them for `body`, signed at unix time `ts`.
    fn signed(key: &Key, id: &str, ts: u64, body: &[u8]) -> Headers {
        let ts = ts.to_string();
        let mut h = waha_headers(&waha_signature(key, body));
        h.0.push(("webhook-id".into(), id.into()));
        h.0.push(("webhook-timestamp".into(), ts.clone()));
        h.0.push((
            "webhook-signature".into(),
            standard_signature(key, id, &ts, body),
        ));
        h
    }

    fn key(k: &str) -> Key {
        Key::new(k).expect("valid key")
    }

    #[test]
    fn waha_documented_vector_verifies() {
        assert_eq!(waha_signature(&key(WAHA_KEY), WAHA_BODY), WAHA_HMAC);
        assert_eq!(
            verify_waha(&key(WAHA_KEY), &waha_headers(WAHA_HMAC), WAHA_BODY),
            Ok(())
        );
    }

    #[test]
    fn waha_signature_over_a_tampered_body_or_with_a_wrong_key_is_rejected() {
        let mismatch = Err(Rejection("X-Webhook-Hmac does not match"));
        let tampered = br#"{"event":"message","session":"default","engine":"NOWEB"}"#;
        let h = waha_headers(WAHA_HMAC);
        assert_eq!(verify_waha(&key(WAHA_KEY), &h, tampered), mismatch);
        assert_eq!(verify_waha(&key("other-key"), &h, WAHA_BODY), mismatch);
    }

    #[test]
    fn waha_signature_missing_or_with_another_algorithm_is_rejected() {
        assert_eq!(
            verify_waha(&key(WAHA_KEY), &Headers::default(), WAHA_BODY),
            Err(Rejection("missing X-Webhook-Hmac"))
        );
        let h = headers(&[
            ("X-Webhook-Hmac", WAHA_HMAC),
            ("X-Webhook-Hmac-Algorithm", "sha256"),
        ]);
        assert_eq!(
            verify_waha(&key(WAHA_KEY), &h, WAHA_BODY),
            Err(Rejection("X-Webhook-Hmac-Algorithm must be sha512"))
        );
    }

    #[test]
    fn standard_webhooks_vector_verifies_at_its_own_time() {
        let k = key(STD_KEY);
        assert_eq!(standard_signature(&k, STD_ID, STD_TS, STD_BODY), STD_SIG);
        assert_eq!(
            verify_standard(&k, &std_headers(STD_SIG), STD_BODY, AT),
            Ok(())
        );
        let several = format!("v1,AAAA v2,whatever {STD_SIG}");
        assert_eq!(
            verify_standard(&k, &std_headers(&several), STD_BODY, AT),
            Ok(())
        );
    }

    #[test]
    fn standard_webhooks_signature_over_a_tampered_body_or_with_a_wrong_key_is_rejected() {
        let mismatch = Err(Rejection("no webhook-signature matches"));
        let h = std_headers(STD_SIG);
        let tampered = [STD_BODY, b" "].concat();
        assert_eq!(verify_standard(&key(STD_KEY), &h, &tampered, AT), mismatch);
        let wrong = key(&format!("whsec_{}", "A".repeat(32)));
        assert_eq!(verify_standard(&wrong, &h, STD_BODY, AT), mismatch);
    }

    #[test]
    fn standard_webhooks_timestamp_more_than_five_minutes_away_is_rejected() {
        let (k, h) = (key(STD_KEY), std_headers(STD_SIG));
        assert_eq!(verify_standard(&k, &h, STD_BODY, AT + 300), Ok(()));
        for now in [AT + 301, AT - 301] {
            assert_eq!(
                verify_standard(&k, &h, STD_BODY, now),
                Err(Rejection(
                    "webhook-timestamp is more than 5 minutes from now"
                ))
            );
        }
    }

    #[test]
    fn a_key_without_whsec_prefix_is_used_as_its_utf8_bytes() {
        assert_eq!(key(WAHA_KEY).standard, b"my-secret-key");
        assert_eq!(key(STD_KEY).standard.len(), 24);
        assert!(Key::new("whsec_not base64!").is_err());
    }

    #[test]
    fn a_request_needs_both_signatures() {
        let k = key(WAHA_KEY);
        let full = signed(&k, "evt_1", AT, WAHA_BODY);
        assert_eq!(verify(&k, &full, WAHA_BODY, AT), Ok(()));
        for missing in ["X-Webhook-Hmac", "webhook-signature"] {
            let partial = Headers(
                full.0
                    .iter()
                    .filter(|(n, _)| n != missing)
                    .cloned()
                    .collect(),
            );
            assert!(verify(&k, &partial, WAHA_BODY, AT).is_err(), "{missing}");
        }
    }

    #[test]
    fn verified_event_is_printed_once_and_forgery_is_refused() {
        let k = key(WAHA_KEY);
        let receiver = Receiver::new(k.clone());
        let body = br#"{"id":"evt_1","event":"group.v2.join","session":"default","payload":{"group":{"id":"120363000000000001@g.us"}}}"#;
        let h = signed(&k, "evt_1", AT, body);
        let first = receiver.handle("POST", &h, body, AT);
        assert_eq!(first.status, 204);
        assert_eq!(
            first.line.as_deref(),
            Some(
                r#"{"id":"evt_1","event":"group.v2.join","session":"default","group":"120363000000000001@g.us"}"#
            )
        );
        let again = receiver.handle("POST", &h, body, AT);
        assert_eq!((again.status, again.line), (204, None));
        let forged = signed(&key("other-key"), "evt_2", AT, body);
        assert_eq!(
            receiver.handle("POST", &forged, body, AT),
            Answer::refuse(401, "X-Webhook-Hmac does not match")
        );
    }
}
