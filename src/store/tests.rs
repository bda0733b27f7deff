//! The store's own rules: version skipping, rounds that fail and are taken back, durability
//! before visibility.

use std::sync::Arc;

use super::*;

fn write(version: u64, subject: &str) -> Commit {
    write_with(version, subject, None)
}

fn write_with(version: u64, subject: &str, picture: Option<PictureWrite>) -> Commit {
    let work = Work::Group {
        write: GroupWrite {
            group_id: "g1@g.us".into(),
            version,
            group: Some(format!(r#"{{"subject":"{subject}"}}"#)),
            invite_del: None,
            invite_put: None,
            events: vec![EventRecord {
                name: "group.v2.update".into(),
                group: Some("g1@g.us".into()),
                body: format!(r#"{{"id":"evt_{version}"}}"#),
            }],
            picture,
        },
        fanout: None,
    };
    let hook = EndpointFilter {
        id: [1; 8],
        url: "http://127.0.0.1:9/h".into(),
        events: None,
    };
    Commit::new(work, &[hook])
}

fn subject(store: &SessionStore) -> String {
    let json = store.group("g1@g.us").expect("read").expect("stored");
    String::from_utf8_lossy(&json).into_owned()
}

fn seqs(applied: Vec<Applied>) -> Vec<Vec<u64>> {
    applied.into_iter().map(|a| a.seqs).collect()
}

#[test]
fn a_change_built_on_a_version_the_store_does_not_hold_is_stale_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    store.commit_many(&[write(1, "one")]).expect("round");
    let applied = store
        .commit_many(&[
            write(2, "two").based_on(Some(1)),
            write(3, "three").based_on(Some(2)),
            write(5, "five").based_on(Some(4)),
        ])
        .expect("round");
    let stale: Vec<bool> = applied.iter().map(|a| a.stale).collect();
    assert_eq!(
        stale,
        [false, false, true],
        "built on 4, which the store never held"
    );
    assert!(applied[2].skipped && applied[2].seqs.is_empty(), "no event");
    assert!(subject(&store).contains("three"));
    assert_eq!(
        store.jobs(JobState::Pending, 10).expect("jobs").len(),
        3,
        "no job for the stale change"
    );
}

#[test]
fn a_write_at_or_below_the_stored_version_is_skipped_within_a_round_across_rounds_and_restarts() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    let applied = store
        .commit_many(&[write(2, "two"), write(1, "one"), write(3, "three")])
        .expect("round");
    assert!(applied[1].skipped, "the older change is skipped");
    assert_eq!(
        seqs(applied),
        [vec![1], Vec::<u64>::new(), vec![2]],
        "the older change has no events"
    );
    assert!(subject(&store).contains("three"));
    assert_eq!(
        seqs(store.commit_many(&[write(3, "again")]).expect("round")),
        [Vec::<u64>::new()]
    );
    assert_eq!(
        store.jobs(JobState::Pending, 10).expect("jobs").len(),
        2,
        "jobs only for the applied changes"
    );
    drop(store);
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert_eq!(
        seqs(store.commit_many(&[write(3, "stale")]).expect("round")),
        [Vec::<u64>::new()]
    );
    assert_eq!(
        seqs(store.commit_many(&[write(4, "four")]).expect("round")),
        [vec![3]]
    );
    assert!(subject(&store).contains("four"));
    assert_eq!(store.group_count(), 1);
}

/// The group write of `write_with` for group `gid`.
fn group_write(gid: &str, version: u64) -> GroupWrite {
    let Work::Group { mut write, .. } = write(version, gid).work else {
        unreachable!("write makes a group write")
    };
    write.group_id = gid.into();
    write
}

#[test]
fn several_groups_of_one_change_are_written_together_each_skipped_with_its_events_by_its_version() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    let hook = EndpointFilter {
        id: [1; 8],
        url: "http://127.0.0.1:9/h".into(),
        events: None,
    };
    store.commit_many(&[write(2, "g1")]).expect("g1 at 2");
    let work = Work::Groups {
        writes: vec![group_write("g1@g.us", 2), group_write("g2@g.us", 1)],
        fanout: None,
    };
    let applied = store
        .commit_many(&[Commit::new(work, &[hook])])
        .expect("round");
    assert_eq!(seqs(applied), [vec![2]], "only g2's event is logged");
    assert!(store.group("g2@g.us").expect("read").is_some());
    assert_eq!(store.group_count(), 2);
    let work = Work::Groups {
        writes: vec![group_write("g1@g.us", 1), group_write("g2@g.us", 1)],
        fanout: None,
    };
    let applied = store.commit_many(&[Commit::new(work, &[])]).expect("round");
    assert!(applied[0].skipped, "every write was stale");
}

/// Runs one change through a real committer; answers its result.
fn commit_now(committer: &Committer, store: &Arc<SessionStore>, c: Commit) -> StoreResult<Applied> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(committer.submit(store, c, true))
}

#[test]
fn a_round_whose_flush_fails_is_taken_back_and_the_store_takes_writes_once_flushes_work() {
    let dir = tempfile::tempdir().expect("dir");
    let faults = Faults::default();
    let store = Arc::new(SessionStore::open(dir.path(), faults.clone()).expect("open"));
    let committer = Committer::start(100).expect("committer");
    commit_now(&committer, &store, write(1, "one")).expect("first change");

    faults.fail_flushes(Some(FaultKind::Io));
    let err = commit_now(&committer, &store, write(2, "two")).expect_err("the flush fails");
    assert_eq!(err.fault(), Some(FaultKind::Io), "{err}");
    assert!(store.is_failed());
    assert!(
        subject(&store).contains("one"),
        "reads see the state before the failed round"
    );
    assert_eq!(
        store.durable_seq(),
        1,
        "the failed round's event is not durable"
    );
    assert_eq!(store.events_after(0, 10).expect("events").len(), 1);
    assert!(
        commit_now(&committer, &store, write(3, "three")).is_err(),
        "no writes while the flush still fails"
    );

    faults.fail_flushes(None);
    let mut tries = 0;
    let applied = loop {
        tries += 1;
        match commit_now(&committer, &store, write(2, "two again")) {
            Ok(a) => break a,
            // The store retries its recovery at most every RETRY_EVERY.
            Err(e) if tries < 100 => {
                assert_eq!(e.fault(), Some(FaultKind::Io), "{e}");
                std::thread::sleep(recover::RETRY_EVERY / 4);
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    };
    assert_eq!(
        applied.seqs,
        vec![2],
        "the failed round's sequence number is reused"
    );
    assert!(subject(&store).contains("two again"));
    drop(store);
    drop(committer);
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert!(subject(&store).contains("two again"));
    let bodies: Vec<String> = store
        .events_after(0, 10)
        .expect("events")
        .into_iter()
        .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
        .collect();
    assert_eq!(bodies, [r#"{"id":"evt_1"}"#, r#"{"id":"evt_2"}"#]);
}

#[test]
fn reads_see_the_state_before_a_failed_round_through_the_overlay() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    store.commit_many(&[write(1, "one")]).expect("first");
    let w = store.write_round(&[write(2, "two")]).expect("second");
    assert!(subject(&store).contains("two"), "visible before the flush");
    // As when sled refuses the undo (its error is sticky): only the overlay hides the round.
    let overlay = w.undo.overlay();
    *store.overlay.write().expect("lock") = Some(Arc::new(overlay));
    store
        .failed
        .store(true, std::sync::atomic::Ordering::Release);
    assert!(subject(&store).contains("one"));
    assert_eq!(store.groups().expect("groups").len(), 1);
    assert_eq!(
        store.jobs(JobState::Pending, 10).expect("jobs").len(),
        1,
        "the failed round's job is not pending"
    );
}

fn picture(store: &SessionStore) -> Option<Vec<u8>> {
    store.picture("g1@g.us").expect("read").map(|v| v.to_vec())
}

fn set(bytes: &[u8]) -> Option<PictureWrite> {
    Some(PictureWrite::Set(bytes.into()))
}

#[test]
fn picture_bytes_are_written_with_their_group_skipped_with_it_and_taken_back_with_a_failed_round() {
    let dir = tempfile::tempdir().expect("dir");
    let faults = Faults::default();
    let store = Arc::new(SessionStore::open(dir.path(), faults.clone()).expect("open"));
    let committer = Committer::start(100).expect("committer");
    commit_now(&committer, &store, write_with(1, "one", set(b"pic one"))).expect("set");
    assert_eq!(picture(&store).as_deref(), Some(&b"pic one"[..]));
    commit_now(&committer, &store, write_with(2, "two", None)).expect("rename");
    assert_eq!(
        picture(&store).as_deref(),
        Some(&b"pic one"[..]),
        "a write without a picture leaves it"
    );
    let stale = commit_now(&committer, &store, write_with(2, "stale", set(b"old")));
    assert!(stale.expect("skipped").skipped);
    assert_eq!(picture(&store).as_deref(), Some(&b"pic one"[..]));

    faults.fail_flushes(Some(FaultKind::Io));
    let deleted = commit_now(
        &committer,
        &store,
        write_with(3, "three", Some(PictureWrite::Delete)),
    );
    assert!(deleted.is_err(), "the flush fails");
    assert_eq!(
        picture(&store).as_deref(),
        Some(&b"pic one"[..]),
        "the failed round's delete is not seen"
    );
    faults.fail_flushes(None);
    let mut tries = 0;
    loop {
        tries += 1;
        let c = write_with(3, "three", Some(PictureWrite::Delete));
        match commit_now(&committer, &store, c) {
            Ok(_) => break,
            Err(e) if tries < 100 => {
                assert_eq!(e.fault(), Some(FaultKind::Io), "{e}");
                std::thread::sleep(recover::RETRY_EVERY / 4);
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    }
    assert_eq!(picture(&store), None);
    drop(store);
    drop(committer);
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert_eq!(picture(&store), None, "the delete is durable");
}

#[test]
fn sequence_numbers_are_never_given_out_twice_even_after_pruning_emptied_the_log() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    store
        .commit_many(&[write(1, "one"), write(2, "two")])
        .expect("round");
    store.set_cursor([1; 8], 2).expect("delivered");
    assert_eq!(store.prune_events_before(u64::MAX).expect("prune"), 2);
    store.flush().expect("flush");
    drop(store);
    let store = SessionStore::open(dir.path(), Faults::default()).expect("reopen");
    assert_eq!(
        seqs(store.commit_many(&[write(3, "three")]).expect("round")),
        [vec![3]],
        "a receiver's cursor 2 must not be followed by a second event 1"
    );
}

#[test]
fn pruning_keeps_every_event_while_a_job_move_is_in_progress() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SessionStore::open(dir.path(), Faults::default()).expect("open");
    store.commit_many(&[write(1, "one")]).expect("round");
    store.set_cursor([1; 8], 1).expect("delivered");
    // As the committer does around a transaction that moves jobs between pending and dead.
    store
        .moves
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    assert_eq!(store.prune_events_before(u64::MAX).expect("prune"), 0);
    store
        .moves
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    assert_eq!(store.prune_events_before(u64::MAX).expect("prune"), 1);
}

#[test]
fn a_full_commit_queue_refuses_new_changes_at_once_but_not_what_completes_a_change() {
    let dir = tempfile::tempdir().expect("dir");
    let faults = Faults::default();
    faults.set_flush_delay(std::time::Duration::from_millis(300));
    let store = Arc::new(SessionStore::open(dir.path(), faults).expect("open"));
    let committer = Committer::start(2).expect("committer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Submitted before any is awaited: while a round flushes, at most two more may wait.
    let fresh: Vec<_> = (1..=5)
        .map(|v| committer.submit(&store, write(v, "fresh"), true))
        .collect();
    let follow_up = committer.submit(&store, write(9, "fan-out share"), false);
    let results: Vec<_> = fresh.into_iter().map(|f| rt.block_on(f)).collect();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Overloaded)))
        .count();
    assert!(refused >= 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::Overloaded))),
        "{results:?}"
    );
    assert!(
        rt.block_on(follow_up).is_ok(),
        "a follow-up is never refused"
    );
}
