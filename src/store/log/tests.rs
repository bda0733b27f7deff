//! The log's layout: a round's events to a key within chunks of sixteen, logs written one event
//! to a key read as before, pruning that rewrites an entry around what is still needed.

use super::super::cursor::encode_event;
use super::super::trees::{TreeId, Trees};
use super::super::work::{Commit, EndpointFilter, EventRecord, Work};
use super::super::{Faults, SessionStore, NEXT_SEQ_KEY};
use super::*;

pub(super) const HOOK: [u8; 8] = [1; 8];

pub(super) fn event(n: u64) -> EventRecord {
    EventRecord {
        name: "group.v2.update".into(),
        group: Some("g1@g.us".into()),
        body: format!(r#"{{"id":"evt_{n}","timestamp":{n}}}"#),
    }
}

/// One change of group g1 to `version`, logging `events`.
pub(super) fn change(version: u64, events: Vec<EventRecord>) -> Commit {
    let hook = EndpointFilter {
        id: HOOK,
        url: "http://127.0.0.1:9/h".into(),
        events: None,
    };
    let work = Work::Groups {
        writes: vec![super::super::work::GroupWrite {
            group_id: "g1@g.us".into(),
            version,
            group: Some("{}".into()),
            invite_del: None,
            invite_put: None,
            events,
            picture: None,
        }],
        fanout: None,
    };
    Commit::new(work, &[hook])
}

/// The ids of every durable event, in order.
pub(super) fn ids(store: &SessionStore) -> Vec<(u64, String)> {
    let all = store.events_after(0, 1000).expect("events");
    all.into_iter()
        .map(|(seq, body)| {
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            (seq, v["id"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

pub(super) fn expected(seqs: std::ops::RangeInclusive<u64>) -> Vec<(u64, String)> {
    seqs.map(|s| (s, format!("evt_{s}"))).collect()
}

pub(super) fn keys(dir: &std::path::Path) -> Vec<u64> {
    let t = Trees::open(dir).expect("open");
    t.tree(TreeId::Events)
        .iter()
        .keys()
        .map(|k| u64_of(&k.expect("key")))
        .collect()
}

/// The store's database opened by sled alone (no conversion), with the stores' segment size.
fn raw(dir: &std::path::Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .segment_size(64 * 1024)
        .open()
        .expect("sled")
}

/// Writes a log as stores did before chunks: one event to a key, seqs `1..=n`; event 3 in the
/// oldest form (its envelope alone).
fn write_old_log(dir: &std::path::Path, n: u64) {
    let db = raw(dir);
    let log = db.open_tree("events").expect("tree");
    for seq in 1..=n {
        let bytes = if seq == 3 {
            event(seq).body.into_bytes()
        } else {
            encode_event(&event(seq))
        };
        log.insert(seq.to_be_bytes(), bytes).expect("insert");
    }
    let meta = db.open_tree("meta").expect("tree");
    meta.insert(NEXT_SEQ_KEY, &(n + 1).to_be_bytes())
        .expect("insert");
    db.flush().expect("flush");
}

#[test]
fn a_rounds_events_share_a_key_split_where_a_chunk_of_sixteen_ends() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    // Rounds of 3 and 4 events: 15..=17 spans two chunks.
    let mut seq = 1;
    for size in [3u64, 4, 3, 4, 3, 4, 3, 4, 3, 4] {
        let events = (seq..seq + size).map(event).collect();
        let applied = store.commit_many(&[change(seq, events)]).expect("round");
        assert_eq!(applied[0].seqs, (seq..seq + size).collect::<Vec<_>>());
        seq += size;
    }
    assert_eq!(ids(&store), expected(1..=35));
    assert_eq!(
        store.event(16).expect("read").as_deref(),
        Some(event(16).body.as_bytes())
    );
    assert_eq!(store.event(36).expect("read"), None);
    assert_eq!(store.logged_events(14, 18, 3).expect("read").len(), 3);
    drop(store);
    assert_eq!(
        keys(dir.path()),
        [1, 4, 8, 11, 15, 16, 18, 22, 25, 29, 32],
        "a key per round, and one more where a round crosses a chunk's end"
    );
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    let applied = store
        .commit_many(&[change(36, vec![event(36)])])
        .expect("round");
    assert_eq!(
        applied[0].seqs,
        [36],
        "numbering goes on from the last chunk"
    );
    assert_eq!(ids(&store), expected(1..=36));
}

#[test]
fn a_log_written_one_event_to_a_key_reads_the_same_and_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    write_old_log(dir.path(), 40);
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    assert_eq!(ids(&store), expected(1..=40));
    assert_eq!(
        store.event(3).expect("read").as_deref(),
        Some(event(3).body.as_bytes()),
        "an event logged as its envelope alone"
    );
    assert_eq!(
        store.event(17).expect("read").as_deref(),
        Some(event(17).body.as_bytes())
    );
    let applied = store
        .commit_many(&[change(41, vec![event(41), event(42)])])
        .expect("round");
    assert_eq!(applied[0].seqs, [41, 42]);
    assert_eq!(ids(&store), expected(1..=42));
    store.set_cursor(HOOK, 42).expect("delivered");
    assert_eq!(store.prune_events_before(41).expect("prune"), 40);
    assert_eq!(ids(&store), expected(41..=42));
    drop(store);
    assert_eq!(keys(dir.path()), [41]);
}

#[test]
fn pruning_rewrites_an_entry_around_the_events_still_needed() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    store
        .commit_many(&[change(1, (1..=40).map(event).collect())])
        .expect("round");
    // The webhook has everything up to 20: events 21.. are still needed.
    store.set_cursor(HOOK, 20).expect("delivered");
    assert_eq!(store.prune_events_before(u64::MAX).expect("prune"), 20);
    assert_eq!(ids(&store), expected(21..=40));
    assert_eq!(store.event(20).expect("read"), None);
    assert!(store.event(21).expect("read").is_some());
    // Before the cutoff only: an entry straddling it keeps its later events.
    store.set_cursor(HOOK, 40).expect("delivered");
    assert_eq!(store.prune_events_before(35).expect("prune"), 14);
    assert_eq!(ids(&store), expected(35..=40));
    assert_eq!(store.first_event_since(37).expect("scan"), 37);
    drop(store);
    assert_eq!(keys(dir.path()), [32], "emptied entries leave the tree");
}
