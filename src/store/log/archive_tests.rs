//! The log's archive: events every webhook has taken leave sled and read the same, across a
//! reopen, a move cut short by a crash, a torn file end, pruning and a backup.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::super::jobs::DeliveryJob;
use super::super::trees::{TreeId, Trees};
use super::super::{restore, Faults, SessionStore};
use super::tests::{change, event, expected, keys, HOOK};

/// Commits events `from..=to` in rounds of eight.
fn fill(store: &SessionStore, from: u64, to: u64) {
    let mut seq = from;
    while seq <= to {
        let last = (seq + 7).min(to);
        let applied = store
            .commit_many(&[change(seq, (seq..=last).map(event).collect())])
            .expect("round");
        assert_eq!(applied[0].seqs, (seq..=last).collect::<Vec<_>>());
        seq = last + 1;
    }
}

/// Every listed event: its sequence number and id.
fn all_ids(store: &SessionStore) -> Vec<(u64, String)> {
    let all = store.events_after(0, 100_000).expect("events");
    all.into_iter()
        .map(|(seq, body)| {
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            (seq, v["id"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// The archive's files, oldest first.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("archive"))
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// A store holding events 1..=1200, every one delivered, 1..=688 archived (all but the
/// newest 512, in whole rounds).
fn archived(dir: &Path) -> SessionStore {
    let store = SessionStore::open(dir, Faults::default()).expect("open");
    fill(&store, 1, 1200);
    store.set_cursor(HOOK, 1200).expect("delivered");
    assert_eq!(store.archive_old_events().expect("archive"), 688);
    store
}

#[test]
fn events_the_webhooks_have_taken_leave_sled_and_read_the_same() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    fill(&store, 1, 1200);
    assert_eq!(
        store.archive_old_events().expect("archive"),
        0,
        "nothing moves before the webhook has it"
    );
    store.set_cursor(HOOK, 300).expect("delivered");
    assert_eq!(
        store.archive_old_events().expect("archive"),
        296,
        "whole rounds up to the cursor"
    );
    assert_eq!(all_ids(&store), expected(1..=1200));
    for seq in [1, 296, 297, 1200] {
        let body = store.event(seq).expect("read");
        assert_eq!(body.as_deref(), Some(event(seq).body.as_bytes()), "{seq}");
    }
    let around: Vec<u64> = (store.logged_events(290, 300, 100).expect("read").iter())
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(around, (290..=300).collect::<Vec<_>>());
    store.set_cursor(HOOK, 1200).expect("delivered");
    assert_eq!(store.archive_old_events().expect("archive"), 392);
    assert_eq!(store.event(1201).expect("read"), None);
    drop(store);
    assert!(
        keys(dir.path()).iter().all(|k| *k > 688),
        "moved out of sled"
    );
    assert!(files(dir.path()).len() > 2, "files follow one another");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert_eq!(all_ids(&store), expected(1..=1200));
    let applied = store
        .commit_many(&[change(1201, vec![event(1201)])])
        .expect("round");
    assert_eq!(applied[0].seqs, [1201], "numbering goes on");
}

#[test]
fn a_move_a_crash_cut_short_lists_each_event_once() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    fill(&store, 1, 1200);
    store.set_cursor(HOOK, 1200).expect("delivered");
    let before = log_of(store.snapshot().expect("snapshot"));
    assert_eq!(store.archive_old_events().expect("archive"), 688);
    drop(store);
    // The crash came after the archive's fsync, before sled's removals were flushed.
    let t = Trees::open(dir.path()).expect("open");
    let mut back = 0;
    for (k, v) in before
        .iter()
        .filter(|(k, _)| k.as_slice() <= &688u64.to_be_bytes()[..])
    {
        t.tree(TreeId::Events).insert(k, v.clone()).expect("insert");
        back += 1;
    }
    t.db.flush().expect("flush");
    drop(t);
    assert!(back > 0 && keys(dir.path()).first() == Some(&1));
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert_eq!(all_ids(&store), expected(1..=1200));
    let logged = log_of(store.snapshot().expect("snapshot"));
    assert_eq!(
        logged.len(),
        688 + keys_after(&before, 688),
        "a backup holds each once"
    );
    fill(&store, 1201, 1500);
    store.set_cursor(HOOK, 1500).expect("delivered");
    assert_eq!(store.archive_old_events().expect("archive"), 296);
    drop(store);
    assert!(
        keys(dir.path()).iter().all(|k| *k > 984),
        "the copies left sled"
    );
}

/// The `events` tree of a snapshot.
fn log_of(snap: super::super::Snapshot) -> Vec<(Vec<u8>, Vec<u8>)> {
    snap.trees
        .into_iter()
        .find(|(name, _)| *name == "events")
        .map(|(_, e)| e)
        .unwrap_or_default()
}

fn keys_after(entries: &[(Vec<u8>, Vec<u8>)], seq: u64) -> usize {
    let bound = seq.to_be_bytes();
    entries.iter().filter(|(k, _)| k[..] > bound[..]).count()
}

#[test]
fn a_torn_end_of_the_archive_is_cut_off() {
    let dir = tempfile::tempdir().expect("dir");
    drop(archived(dir.path()));
    let newest = files(dir.path()).pop().expect("a file");
    let len = std::fs::metadata(&newest).expect("len").len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .expect("open");
    let mut torn = 689u64.to_be_bytes().to_vec();
    torn.extend_from_slice(&[0, 0, 0, 90, 1, 2, 3, 4, b'{', b'"']);
    f.write_all(&torn).expect("write");
    drop(f);
    // And a file an append made but never finished.
    std::fs::write(dir.path().join("archive/00000000000000000689.log"), b"\0\0").expect("write");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert_eq!(all_ids(&store), expected(1..=1200));
    assert_eq!(std::fs::metadata(&newest).expect("len").len(), len);
    assert_eq!(files(dir.path()).last(), Some(&newest));
    fill(&store, 1201, 1500);
    store.set_cursor(HOOK, 1500).expect("delivered");
    assert_eq!(store.archive_old_events().expect("archive"), 296);
    drop(store);
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert_eq!(all_ids(&store), expected(1..=1500));
}

/// The listed sequence numbers.
fn seqs(store: &SessionStore) -> Vec<u64> {
    all_ids(store).into_iter().map(|(s, _)| s).collect()
}

#[test]
fn pruning_takes_old_events_but_not_one_a_delivery_needs() {
    let dir = tempfile::tempdir().expect("dir");
    let store = archived(dir.path());
    let job = DeliveryJob {
        event: "group.v2.update".into(),
        group: Some("g1@g.us".into()),
        url: "http://127.0.0.1:9/h".into(),
        attempts: 1,
        next_attempt_at: 0,
        last_error: Some("refused".into()),
        body: None,
    };
    store.save_job(HOOK, 100, &job).expect("job");
    let files_before = files(dir.path()).len();
    // Event n was made at n ms: those before 400 go, but for the one the delivery needs.
    assert_eq!(store.prune_archive(400).expect("prune"), 399);
    let want: Vec<u64> = std::iter::once(100).chain(400..=1200).collect();
    assert_eq!(seqs(&store), want);
    assert_eq!(store.event(399).expect("read"), None);
    assert_eq!(
        store.event(100).expect("read").as_deref(),
        Some(event(100).body.as_bytes())
    );
    assert!(
        files(dir.path()).len() < files_before,
        "files wholly older went"
    );
    drop(store);
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert_eq!(seqs(&store), want, "the floor outlives a restart");
    // Everything archived is older than 2000: every file goes, the newest too.
    store.remove_job(HOOK, 100).expect("delivered");
    assert_eq!(store.prune_archive(2000).expect("prune"), 289);
    assert!(files(dir.path()).is_empty());
    let want: Vec<u64> = std::iter::once(100).chain(689..=1200).collect();
    assert_eq!(seqs(&store), want, "sled's part is pruned on its own");
    fill(&store, 1201, 1500);
    store.set_cursor(HOOK, 1500).expect("delivered");
    assert_eq!(store.archive_old_events().expect("archive"), 296);
    drop(store);
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    let want: Vec<u64> = std::iter::once(100).chain(689..=1500).collect();
    assert_eq!(seqs(&store), want);
}

#[test]
fn a_backup_of_an_archived_log_restores_it_whole() {
    let dir = tempfile::tempdir().expect("dir");
    let store = archived(dir.path());
    let snap = store.snapshot().expect("snapshot");
    let copy = tempfile::tempdir().expect("dir");
    let entries = snap.trees.iter().flat_map(|(tree, entries)| {
        entries
            .iter()
            .map(move |(k, v)| (*tree, k.clone(), v.clone()))
    });
    restore(&copy.path().join("s"), entries).expect("restore");
    let restored = SessionStore::open(&copy.path().join("s"), Faults::default()).expect("open");
    assert_eq!(all_ids(&restored), expected(1..=1200));
    assert_eq!(restored.archive_old_events().expect("archive"), 688);
    assert_eq!(all_ids(&restored), expected(1..=1200));
}

#[test]
fn an_archive_left_by_a_deleted_store_is_put_aside() {
    let dir = tempfile::tempdir().expect("dir");
    drop(archived(dir.path()));
    // The session was deleted and made again; only its archive came back.
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != "archive") {
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    assert_eq!(
        all_ids(&store),
        [],
        "a new store lists none of the old events"
    );
    assert!(files(dir.path()).is_empty());
    let aside = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("archive-orphaned-")
        })
        .count();
    assert_eq!(aside, 1, "kept aside, not deleted");
    fill(&store, 1, 8);
    assert_eq!(all_ids(&store), expected(1..=8));
}
