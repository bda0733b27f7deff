//! Groups: the model, the pure rules, and the service that is the one write path.

mod commit;
pub mod communities;
pub mod fanout;
mod holders;
pub mod lids;
mod logged;
pub mod model;
pub mod picture;
mod pipeline;
pub mod refusal;
pub mod rules;
pub mod running;
pub mod service;

pub use refusal::Refusal;
