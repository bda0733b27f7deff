//! The OpenAPI schemas of the session types (`crate::sessions`): documentation mirrors that
//! carry the utoipa attributes, so that the domain's own types stay free of them. Each mirror
//! must say what its domain type serialises to; a test compares the served document with
//! `openapi/openapi.json`.
#![allow(dead_code)] // The mirrors are never built: they only describe.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::sessions::config::{
    CustomHeader, HmacConfig, LocalConfig, MeConfig, RetriesConfig, RetryPolicy, SessionConfig,
    WebhookConfig,
};
use crate::sessions::{Status, StatusEntry};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionConfigDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = webhooks_schema)]
    webhooks: Option<Vec<WebhookConfig>>,
    /// Copied into every event of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"user.id": "123"}))]
    metadata: Option<Map<String, Value>>,
    /// The account this session acts as in the LOCAL engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local: Option<LocalConfig>,
    /// Other WAHA settings (proxy, debug, noweb, ...) are kept as given.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    extra: Map<String, Value>,
}

/// At most 20, no two alike (utoipa has no attribute for `uniqueItems`).
fn webhooks_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(utoipa::openapi::Ref::from_schema_name("WebhookConfig"))
        .max_items(Some(20))
        .unique_items(true)
        .build()
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LocalConfigDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    me: Option<MeConfig>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MeConfigDoc {
    #[schema(
        example = "11111111111@c.us",
        pattern = "^[0-9]{5,20}@(c\\.us|s\\.whatsapp\\.net|lid)$"
    )]
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    push_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"url": "https://example.com/webhook", "events": ["group.v2.join", "group.v2.participants"], "hmac": {"key": "my-secret-key"}, "retries": {"policy": "exponential", "delaySeconds": 2, "attempts": 15}, "customHeaders": [{"name": "X-Tenant", "value": "acme"}]}))]
struct WebhookConfigDoc {
    /// An http or https URL.
    #[schema(
        pattern = "^https?://((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*(\\.[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*)*)(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$"
    )]
    url: String,
    /// Event names, or `*` for all.
    #[schema(value_type = Vec<EventName>, min_items = 1)]
    events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hmac: Option<HmacConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retries: Option<RetriesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    custom_headers: Option<Vec<CustomHeader>>,
}

/// An event name (or `*`), 1-100 characters. Only for the OpenAPI document.
pub struct EventName;

impl utoipa::PartialSchema for EventName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(100))
            .into()
    }
}

impl ToSchema for EventName {}

#[derive(Serialize, ToSchema)]
struct HmacConfigDoc {
    /// null or absent: unsigned. Answers show `***`; sending `***` keeps the stored key of the
    /// webhook with the same url.
    key: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum RetryPolicyDoc {
    Constant,
    Linear,
    Exponential,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RetriesConfigDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 86400)]
    delay_seconds: Option<u64>,
    /// Retries after the first try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 100)]
    attempts: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct CustomHeaderDoc {
    /// An HTTP header name.
    #[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
    name: String,
    /// Printable characters and tabs. Answers show `***`; sending `***` keeps the stored value
    /// of the header with the same name of the webhook with the same url.
    #[schema(pattern = "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$")]
    value: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
enum StatusDoc {
    Stopped,
    Starting,
    Working,
    Failed,
}

#[derive(Serialize, ToSchema)]
struct StatusEntryDoc {
    status: Status,
    /// Unix ms.
    timestamp: u64,
}

super::schema_of!(SessionConfig => SessionConfigDoc);
super::schema_of!(LocalConfig => LocalConfigDoc);
super::schema_of!(MeConfig => MeConfigDoc);
super::schema_of!(WebhookConfig => WebhookConfigDoc);
super::schema_of!(HmacConfig => HmacConfigDoc);
super::schema_of!(RetryPolicy => RetryPolicyDoc);
super::schema_of!(RetriesConfig => RetriesConfigDoc);
super::schema_of!(CustomHeader => CustomHeaderDoc);
super::schema_of!(Status => StatusDoc);
super::schema_of!(StatusEntry => StatusEntryDoc);
