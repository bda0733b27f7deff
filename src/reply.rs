//! A write's answer, rendered by its caller (the API) from the change's outcome before the change
//! commits, so that an idempotent request's answer is kept in the change's own transaction.

use crate::store::Remember;

/// A rendered answer: its status, its body, and the record to keep with the change when the
/// request carried an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub remember: Option<Remember>,
}

/// Renders the answer to a write from what the write did. Called once, before the commit.
pub type Render<O> = Box<dyn FnOnce(&O) -> Reply + Send>;
