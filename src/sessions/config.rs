//! A session's configuration as WAHA clients send it, and its validation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::ids::ContactId;
use crate::networks::DenyList;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::objects"
    )]
    pub webhooks: Option<Vec<WebhookConfig>>,
    /// Copied into every event of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The account this session acts as in the LOCAL engine.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::object"
    )]
    pub local: Option<LocalConfig>,
    /// Other WAHA settings (proxy, debug, noweb, ...) are kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::object"
    )]
    pub me: Option<MeConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MeConfig {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookConfig {
    /// An http or https URL.
    pub url: String,
    /// Event names, or `*` for all.
    pub events: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::object"
    )]
    pub hmac: Option<HmacConfig>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::object"
    )]
    pub retries: Option<RetriesConfig>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::objects"
    )]
    pub custom_headers: Option<Vec<CustomHeader>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HmacConfig {
    /// null or absent: unsigned. Answers show `***`; sending `***` keeps the stored key of the
    /// webhook with the same url.
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RetryPolicy {
    Constant,
    Linear,
    Exponential,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetriesConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RetryPolicy>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::whole"
    )]
    pub delay_seconds: Option<u64>,
    /// Retries after the first try.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::whole"
    )]
    pub attempts: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomHeader {
    /// An HTTP header name.
    pub name: String,
    /// Printable characters and tabs. Answers show `***`; sending `***` keeps the stored value
    /// of the header with the same name of the webhook with the same url.
    pub value: String,
}

/// What answers show instead of an HMAC key or a custom header value. Sent back in a config,
/// it stands for the value stored for the same webhook, so that a client that writes back the
/// config it read keeps its secrets.
pub const SECRET: &str = "***";

pub const DEFAULT_ATTEMPTS: u32 = 15;
pub const DEFAULT_DELAY_SECONDS: u64 = 2;

impl RetriesConfig {
    pub fn effective(r: Option<&RetriesConfig>) -> (RetryPolicy, u64, u32) {
        (
            r.and_then(|r| r.policy).unwrap_or(RetryPolicy::Constant),
            r.and_then(|r| r.delay_seconds)
                .unwrap_or(DEFAULT_DELAY_SECONDS),
            r.and_then(|r| r.attempts).unwrap_or(DEFAULT_ATTEMPTS),
        )
    }
}

impl WebhookConfig {
    pub fn validate(&self, field: &str) -> Result<(), ApiError> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| ApiError::bad_request(format!("{field}.url: not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ApiError::bad_request(format!(
                "{field}.url: must be an http or https URL"
            )));
        }
        if self.events.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{field}.events: name at least one event, or \"*\""
            )));
        }
        for (i, e) in self.events.iter().enumerate() {
            if e.is_empty() || e.chars().count() > 100 {
                return Err(ApiError::bad_request(format!(
                    "{field}.events[{i}]: must be 1-100 characters"
                )));
            }
        }
        if let Some(r) = &self.retries {
            if r.delay_seconds.is_some_and(|d| d > 86_400) {
                return Err(ApiError::bad_request(format!(
                    "{field}.retries.delaySeconds: at most 86400"
                )));
            }
            if r.attempts.is_some_and(|a| a > 100) {
                return Err(ApiError::bad_request(format!(
                    "{field}.retries.attempts: at most 100"
                )));
            }
        }
        for (i, h) in self.custom_headers.iter().flatten().enumerate() {
            if !header_name(&h.name) || !header_value(&h.value) {
                return Err(ApiError::bad_request(format!(
                    "{field}.customHeaders[{i}]: not a valid HTTP header"
                )));
            }
        }
        Ok(())
    }
}

/// An HTTP header name: one or more token characters (RFC 9110 `tchar`).
fn header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value sent as given: no control character but tab (what `http` accepts from a
/// string, bytes past ASCII included).
fn header_value(s: &str) -> bool {
    s.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

impl WebhookConfig {
    /// Replaces each `SECRET` by the value `stored` (the webhook with the same URL) holds: its
    /// HMAC key, and for a header the value of the stored header of the same name (the n-th of
    /// a name for the n-th). 400 naming the field when there is nothing to keep.
    fn keep_secrets(&mut self, stored: Option<&WebhookConfig>, field: &str) -> ApiResult<()> {
        let missing = |what: &str| {
            ApiError::bad_request(format!(
                "{field}.{what}: \"{SECRET}\" stands for the stored value, but no webhook with this url has one; send the value itself"
            ))
        };
        if let Some(key) = self.hmac.as_mut().and_then(|h| h.key.as_mut()) {
            if key == SECRET {
                *key = stored
                    .and_then(|o| o.hmac.as_ref())
                    .and_then(|h| h.key.clone())
                    .ok_or_else(|| missing("hmac.key"))?;
            }
        }
        let old: &[CustomHeader] = stored
            .and_then(|o| o.custom_headers.as_deref())
            .unwrap_or_default();
        let headers = self.custom_headers.as_deref_mut().unwrap_or_default();
        for j in 0..headers.len() {
            if headers[j].value != SECRET {
                continue;
            }
            let name = &headers[j].name;
            let nth = headers[..j]
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .count();
            headers[j].value = old
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .nth(nth)
                .map(|h| h.value.clone())
                .ok_or_else(|| missing(&format!("customHeaders[{j}].value")))?;
        }
        Ok(())
    }
}

impl SessionConfig {
    /// The config as answers show it: every webhook's HMAC key and custom header values are
    /// `SECRET`. The URL stays whole: it is the webhook's identity, which a client writing the
    /// config back must be able to name.
    pub fn masked(&self) -> SessionConfig {
        let mut out = self.clone();
        for w in out.webhooks.iter_mut().flatten() {
            if let Some(key) = w.hmac.as_mut().and_then(|h| h.key.as_mut()) {
                *key = SECRET.to_owned();
            }
            for h in w.custom_headers.iter_mut().flatten() {
                h.value = SECRET.to_owned();
            }
        }
        out
    }

    /// Puts back the secrets a client sent as `SECRET` from `stored`, the config it replaces
    /// (none for a new session: then any `SECRET` is a 400 naming the field).
    pub fn keep_secrets(&mut self, stored: Option<&SessionConfig>) -> ApiResult<()> {
        let old = stored
            .and_then(|s| s.webhooks.as_deref())
            .unwrap_or_default();
        for (i, w) in self.webhooks.iter_mut().flatten().enumerate() {
            let same = old.iter().find(|o| o.url == w.url);
            w.keep_secrets(same, &format!("config.webhooks[{i}]"))?;
        }
        Ok(())
    }

    /// 400 naming the field for a webhook whose host is in a denied network, or whose name
    /// resolves only to addresses there. Resolving takes a while: call it outside any lock.
    pub async fn check_networks(&self, deny: &DenyList) -> ApiResult<()> {
        let deadline = DenyList::deadline();
        for (i, w) in self.webhooks.iter().flatten().enumerate() {
            if let Some(why) = deny.refuses(&w.url, deadline).await {
                return Err(ApiError::bad_request(format!(
                    "config.webhooks[{i}].url: {why}"
                )));
            }
        }
        Ok(())
    }

    /// Checks every field; returns the configured account id, if any.
    pub fn validate(&self) -> Result<Option<ContactId>, ApiError> {
        let hooks = self.webhooks.as_deref().unwrap_or_default();
        if hooks.len() > 20 {
            return Err(ApiError::bad_request(
                "config.webhooks: at most 20 webhooks",
            ));
        }
        for (i, w) in hooks.iter().enumerate() {
            w.validate(&format!("config.webhooks[{i}]"))?;
            if hooks[..i].iter().any(|o| o.url == w.url) {
                return Err(ApiError::bad_request(format!(
                    "config.webhooks[{i}].url: the same URL is configured twice"
                )));
            }
        }
        match self.local.as_ref().and_then(|l| l.me.as_ref()) {
            None => Ok(None),
            Some(me) => {
                if me
                    .push_name
                    .as_ref()
                    .is_some_and(|p| p.chars().count() > 100)
                {
                    return Err(ApiError::bad_request(
                        "config.local.me.pushName: at most 100 characters",
                    ));
                }
                let id = ContactId::parse(&me.id)
                    .map_err(|e| ApiError::bad_request(format!("config.local.me.id: {}", e.0)))?;
                if id.is_lid() {
                    // The lid is derived from the number, never the other way round.
                    return Err(ApiError::bad_request(format!(
                        "config.local.me.id: {id} is a lid; give the account's phone number (<digits>@c.us), its lid is derived from it"
                    )));
                }
                Ok(Some(id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{header_name, header_value};

    #[test]
    fn header_checks_accept_exactly_what_the_http_client_accepts() {
        let chars = (0u8..128).map(char::from).chain(['é', '€', '\u{1F600}']);
        for c in chars {
            let value = format!("a{c}b");
            assert_eq!(
                header_value(&value),
                reqwest::header::HeaderValue::from_str(&value).is_ok(),
                "value {value:?}"
            );
            let name = format!("x{c}y");
            assert_eq!(
                header_name(&name),
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok(),
                "name {name:?}"
            );
        }
        assert!(!header_name(""));
    }
}
