//! OpenAPI schemas of domain types, kept here so that the domain carries no utoipa: each domain
//! type gets the schema of a documentation mirror under its own name.

mod answers;
mod lids;
mod sessions;
mod webhook_examples;
pub mod webhooks;

pub use sessions::EventName;

/// Gives domain type `$domain` the schema of its documentation mirror `$doc`, under the domain
/// type's own name (utoipa's default: the type's name).
macro_rules! schema_of {
    ($domain:ty => $doc:ty) => {
        impl utoipa::PartialSchema for $domain {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <$doc as utoipa::PartialSchema>::schema()
            }
        }
        impl utoipa::ToSchema for $domain {
            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                <$doc as utoipa::ToSchema>::schemas(schemas)
            }
        }
    };
}
pub(crate) use schema_of;
