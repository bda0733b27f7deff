//! Signing and the headers of one delivery attempt: pure functions, tested with known answers.

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use sha2::{Sha256, Sha512};

use crate::sessions::config::WebhookConfig;

/// WAHA's `X-Webhook-Hmac`: lowercase hex HMAC-SHA512 of the exact body, keyed by the key's bytes.
pub fn waha_hmac(key: &str, body: &[u8]) -> String {
    waha_sign(&waha_mac(key), body)
}

/// The WAHA HMAC keyed by `key`.
fn waha_mac(key: &str) -> Hmac<Sha512> {
    // HMAC takes keys of any length, so this cannot fail.
    Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// `X-Webhook-Hmac` of `body` with an already keyed HMAC.
fn waha_sign(mac: &Hmac<Sha512>, body: &[u8]) -> String {
    let mut mac = mac.clone();
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
    standard_sign(&standard_mac(key), id, timestamp_s, body)
}

/// The Standard Webhooks HMAC keyed by `key`'s secret.
fn standard_mac(key: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    Hmac::<Sha256>::new_from_slice(&standard_key(key)).unwrap_or_else(|_| unreachable!())
}

/// `webhook-signature` of `id.timestamp.body` with an already keyed HMAC.
fn standard_sign(mac: &Hmac<Sha256>, id: &str, timestamp_s: u64, body: &[u8]) -> String {
    let mut mac = mac.clone();
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

/// A webhook's parts that do not change from one attempt to the next, prepared once per
/// config (every delivery used to parse the URL, convert the custom headers and derive the keys).
pub struct Prepared {
    pub config: WebhookConfig,
    /// `None` when the URL does not parse (the config's validation should have refused it).
    pub url: Option<reqwest::Url>,
    custom: HeaderMap,
    /// HMAC-SHA512 (WAHA) and HMAC-SHA256 (Standard Webhooks) already keyed: cloned per attempt.
    keys: Option<(Hmac<Sha512>, Hmac<Sha256>)>,
}

impl Prepared {
    pub fn new(config: WebhookConfig) -> Self {
        let mut custom = HeaderMap::new();
        for h in config.custom_headers.iter().flatten() {
            // Validated with the config; skipped rather than failed if not.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_str(&h.value),
            ) {
                // Insert, not append: a later header of the same name replaces an earlier one.
                custom.insert(n, v);
            }
        }
        let keys = config
            .hmac
            .as_ref()
            .and_then(|h| h.key.as_deref())
            .map(|key| (waha_mac(key), standard_mac(key)));
        Self {
            url: reqwest::Url::parse(&config.url).ok(),
            config,
            custom,
            keys,
        }
    }
}

/// Every header of one attempt: the custom headers, then ours (content type, ids, signatures),
/// which replace a custom header of the same name.
pub fn headers(
    hook: &Prepared,
    event_id: &str,
    event_timestamp_ms: u64,
    body: &[u8],
    now_s: u64,
) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(hook.custom.len() + 9);
    out.extend(hook.custom.iter().map(|(n, v)| (n.clone(), v.clone())));
    out.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    out.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("wagate/", env!("CARGO_PKG_VERSION"))),
    );
    // Our ids are ASCII; an id that is not a header value would be sent without it.
    let id = HeaderValue::from_str(event_id).ok();
    if let Some(id) = &id {
        out.insert(REQUEST_ID, id.clone());
    }
    out.insert(TIMESTAMP, HeaderValue::from(event_timestamp_ms));
    if let Some((waha, standard)) = &hook.keys {
        if let Ok(v) = HeaderValue::try_from(waha_sign(waha, body)) {
            out.insert(HMAC, v);
        }
        out.insert(HMAC_ALGORITHM, HeaderValue::from_static("sha512"));
        if let Some(id) = id {
            out.insert(WEBHOOK_ID, id);
        }
        out.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(now_s));
        if let Ok(v) = HeaderValue::try_from(standard_sign(standard, event_id, now_s, body)) {
            out.insert(WEBHOOK_SIGNATURE, v);
        }
    }
    out
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-webhook-request-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-webhook-timestamp");
const HMAC: HeaderName = HeaderName::from_static("x-webhook-hmac");
const HMAC_ALGORITHM: HeaderName = HeaderName::from_static("x-webhook-hmac-algorithm");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

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
            &Prepared::new(hook(None)),
            "evt_1",
            1_700_000_000_123,
            b"{}",
            1_700_000_001,
        );
        assert!(!h
            .keys()
            .any(|n| n.as_str().contains("hmac") || n.as_str().starts_with("webhook-")));
        assert_eq!(h["x-webhook-timestamp"], "1700000000123");
        assert_eq!(h["x-webhook-request-id"], "evt_1");
    }

    #[test]
    fn our_content_type_replaces_a_custom_one_and_the_prepared_keys_sign_as_the_plain_functions() {
        let h = headers(&Prepared::new(hook(Some("k"))), "evt_1", 1, b"{}", 2);
        let content_types: Vec<_> = h.get_all("content-type").iter().collect();
        assert_eq!(content_types, ["application/json"]);
        assert_eq!(h["webhook-timestamp"], "2");
        assert_eq!(h["x-webhook-hmac-algorithm"], "sha512");
        assert_eq!(h["x-tenant"], "acme");
        assert_eq!(h["x-webhook-hmac"], waha_hmac("k", b"{}"));
        assert_eq!(
            h["webhook-signature"],
            standard_signature("k", "evt_1", 2, b"{}")
        );
    }
}
