//! Signing and the headers of one delivery attempt: pure functions, tested with known answers.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

use crate::sessions::config::WebhookConfig;

/// WAHA's `X-Webhook-Hmac`: lowercase hex HMAC-SHA512 of the exact body, keyed by the key's bytes.
pub fn waha_hmac(key: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Lowercase hex, without a `format!` per byte (this runs for every delivery).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// The Standard Webhooks secret: the base64-decoded rest of a `whsec_` key, else the key's bytes.
pub fn standard_key(key: &str) -> Vec<u8> {
    key.strip_prefix("whsec_")
        .and_then(|rest| base64::engine::general_purpose::STANDARD.decode(rest).ok())
        .unwrap_or_else(|| key.as_bytes().to_vec())
}

/// Standard Webhooks `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn standard_signature(key: &str, id: &str, timestamp_s: u64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&standard_key(key)).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Every header of one attempt, in the order they are set: custom headers first, so that
/// ours (content type, ids, signatures) win over a custom header of the same name.
pub fn headers(
    hook: &WebhookConfig,
    event_id: &str,
    event_timestamp_ms: u64,
    body: &[u8],
    now_s: u64,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = hook
        .custom_headers
        .iter()
        .flatten()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    let mut put = |name: &str, value: String| out.push((name.to_owned(), value));
    put("content-type", "application/json".into());
    put(
        "user-agent",
        format!("wagate/{}", env!("CARGO_PKG_VERSION")),
    );
    put("x-webhook-request-id", event_id.to_owned());
    put("x-webhook-timestamp", event_timestamp_ms.to_string());
    if let Some(key) = hook.hmac.as_ref().and_then(|h| h.key.as_deref()) {
        put("x-webhook-hmac", waha_hmac(key, body));
        put("x-webhook-hmac-algorithm", "sha512".into());
        put("webhook-id", event_id.to_owned());
        put("webhook-timestamp", now_s.to_string());
        put(
            "webhook-signature",
            standard_signature(key, event_id, now_s, body),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::config::{CustomHeader, HmacConfig};

    #[test]
    fn waha_documented_vector_verifies() {
        let body = br#"{"event":"message","session":"default","engine":"WEBJS"}"#;
        assert_eq!(
            waha_hmac("my-secret-key", body),
            "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
        );
    }

    #[test]
    fn standard_webhooks_vector_verifies() {
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            standard_signature(
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                body
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn a_key_without_the_whsec_prefix_is_used_as_its_bytes() {
        assert_eq!(standard_key("plain"), b"plain".to_vec());
        assert_eq!(
            standard_key("whsec_!!notbase64"),
            b"whsec_!!notbase64".to_vec()
        );
    }

    fn hook(key: Option<&str>) -> WebhookConfig {
        WebhookConfig {
            url: "http://127.0.0.1/h".into(),
            events: vec!["*".into()],
            hmac: key.map(|k| HmacConfig {
                key: Some(k.into()),
            }),
            retries: None,
            custom_headers: Some(vec![
                CustomHeader {
                    name: "X-Tenant".into(),
                    value: "acme".into(),
                },
                CustomHeader {
                    name: "Content-Type".into(),
                    value: "text/plain".into(),
                },
            ]),
        }
    }

    #[test]
    fn unsigned_webhooks_carry_no_signature_headers() {
        let h = headers(
            &hook(None),
            "evt_1",
            1_700_000_000_123,
            b"{}",
            1_700_000_001,
        );
        let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!names
            .iter()
            .any(|n| n.contains("hmac") || n.starts_with("webhook-")));
        assert!(h.contains(&("x-webhook-timestamp".into(), "1700000000123".into())));
        assert!(h.contains(&("x-webhook-request-id".into(), "evt_1".into())));
    }

    #[test]
    fn our_content_type_comes_after_a_custom_one_so_it_wins() {
        let h = headers(&hook(Some("k")), "evt_1", 1, b"{}", 2);
        let last_ct = h
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        assert_eq!(last_ct, Some("application/json"));
        assert!(h.contains(&("webhook-timestamp".into(), "2".into())));
        assert!(h.contains(&("x-webhook-hmac-algorithm".into(), "sha512".into())));
        assert!(h.contains(&("X-Tenant".into(), "acme".into())));
    }
}
