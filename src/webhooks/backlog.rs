//! What a scrape of `/metrics` shows of the delivery logs: per session and webhook, the pending
//! and dead deliveries and the age of the oldest pending one's event; and sessions by status.
//! Read from the stores at each scrape (one pass over each session's job keys), so the figures
//! are exact and nothing is kept in step with the dispatcher.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::client::redact;
use crate::sessions::{Registry, Session, Status};
use crate::store::{JobState, JobTally, SessionStore, StoreResult};

/// One webhook's row: its label, pending, dead, age of the oldest pending event (s).
#[derive(Debug, Default, PartialEq)]
struct Row {
    webhook: String,
    pending: usize,
    dead: usize,
    oldest_s: f64,
}

/// Sets the gauges of every session's delivery log and the sessions-by-status gauge.
pub fn record(registry: &Registry, now_ms: u64) {
    let mut by_status: BTreeMap<&'static str, usize> = [
        Status::Stopped,
        Status::Starting,
        Status::Working,
        Status::Failed,
    ]
    .into_iter()
    .map(|s| (s.as_str(), 0))
    .collect();
    for session in registry.list() {
        *by_status.entry(session.status().as_str()).or_default() += 1;
        match rows(registry, &session, now_ms) {
            Ok(rows) => {
                for r in rows.values() {
                    let name = session.name.as_str();
                    crate::metrics::webhook_backlog(
                        name, &r.webhook, r.pending, r.dead, r.oldest_s,
                    );
                }
            }
            Err(e) => {
                tracing::warn!(session = %session.name, "metrics: delivery log unreadable: {e}")
            }
        }
    }
    for (status, n) in by_status {
        crate::metrics::sessions(status, n);
    }
    crate::metrics::open_stores(registry.open_stores().open());
}

/// A row per configured webhook (zeros when it has no jobs), and per endpoint that still has
/// jobs though its webhook was removed from the config.
fn rows(
    registry: &Registry,
    session: &Session,
    now_ms: u64,
) -> StoreResult<BTreeMap<[u8; 8], Row>> {
    let store = &session.store;
    let mut rows: BTreeMap<[u8; 8], Row> = registry
        .webhooks(&session.record())
        .into_iter()
        .map(|(ep, hook)| {
            let row = Row {
                webhook: redact(&hook.url),
                ..Row::default()
            };
            (ep, row)
        })
        .collect();
    for state in [JobState::Pending, JobState::Dead] {
        for tally in store.job_tally(state)? {
            let row = match rows.get_mut(&tally.endpoint) {
                Some(row) => row,
                None => {
                    let webhook = removed_label(store, state, &tally)?;
                    let row = Row {
                        webhook,
                        ..Row::default()
                    };
                    rows.entry(tally.endpoint).or_insert(row)
                }
            };
            if state == JobState::Dead {
                row.dead = tally.count;
                continue;
            }
            row.pending = tally.count;
            if let Some(at_ms) = event_time(store, tally.oldest_seq)? {
                row.oldest_s = now_ms.saturating_sub(at_ms) as f64 / 1000.0;
            }
        }
    }
    Ok(rows)
}

/// The label of an endpoint no longer configured: the URL its oldest job was made for, or the
/// one its cursor's record keeps.
fn removed_label(store: &SessionStore, state: JobState, tally: &JobTally) -> StoreResult<String> {
    let key = crate::store::delivery_key(tally.endpoint, tally.oldest_seq);
    if let Some(job) = store.job(state, &key)? {
        return Ok(redact(&job.url));
    }
    Ok(store
        .known_endpoint(tally.endpoint)?
        .map_or_else(|| "unknown".to_owned(), |k| redact(&k.record.url)))
}

/// When the event `seq` was made (unix ms), from its envelope.
fn event_time(store: &SessionStore, seq: u64) -> StoreResult<Option<u64>> {
    #[derive(Deserialize)]
    struct At {
        timestamp: u64,
    }
    Ok(store
        .event(seq)?
        .and_then(|body| serde_json::from_slice::<At>(&body).ok())
        .map(|at| at.timestamp))
}
