//! The OpenAPI schema of `/lids`' answer, `LidToPhoneNumber` (WAHA's name), as a mirror (see
//! `schemas/mod.rs`).
#![allow(dead_code)] // The mirror is never built: it only describes.

use serde::Serialize;
use utoipa::ToSchema;

use crate::groups::lids::LidToPhoneNumber;

/// An account's linked id and phone number.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"lid": "540718988944767@lid", "pn": "11111111111@c.us"}))]
struct LidToPhoneNumberDoc {
    /// The account's linked id.
    #[schema(example = "540718988944767@lid")]
    lid: String,
    /// The account's phone number (chat id).
    #[schema(example = "11111111111@c.us")]
    pn: String,
}

super::schema_of!(LidToPhoneNumber => LidToPhoneNumberDoc);
