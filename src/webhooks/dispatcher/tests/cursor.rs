//! The cursor: what a delivery writes, and what a failure does to its group.

use super::*;

/// The worker's endpoint's cursor, as saved in the store.
fn saved_cursor(t: &Setup) -> u64 {
    let known = t.session.store.known_endpoint(endpoint_id(URL));
    known.expect("read").map_or(0, |k| k.cursor)
}

/// The job records of the worker's endpoint: (seq, attempts).
fn records(t: &Setup) -> Vec<(u64, u32)> {
    let jobs = t
        .session
        .store
        .pending_jobs(endpoint_id(URL), 0, u64::MAX, usize::MAX);
    jobs.expect("records")
        .into_iter()
        .map(|(seq, job)| (seq, job.attempts))
        .collect()
}

async fn until_saved(t: &Setup, seq: u64) {
    for _ in 0..10_000 {
        if saved_cursor(t) >= seq {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn deliveries_that_succeed_at_once_write_no_record_and_a_restart_sends_none_again() {
    let mut t = setup(
        json!({"policy": "constant", "delaySeconds": 1, "attempts": 3}),
        8,
        false,
        Box::new(|_, _| Answer::Delivered),
    )
    .await;
    let ids: Vec<String> = (0..20).map(|i| format!("evt_{i}")).collect();
    let events: Vec<(&str, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (if i % 2 == 0 { "g1" } else { "g2" }, id.as_str()))
        .collect();
    t.commit(&events);
    for _ in 0..20 {
        t.next().await;
    }
    let last = t.session.store.last_seq();
    until_saved(&t, last).await;
    assert_eq!(saved_cursor(&t), last, "saved once the worker is idle");
    assert_eq!(records(&t), [], "no job record was written");
    assert_eq!(
        t.session.store.job_count(JobState::Pending).expect("count"),
        0
    );
    t.start_worker();
    assert!(
        tokio::time::timeout(Duration::from_secs(600), t.rx.recv())
            .await
            .is_err(),
        "a restarted worker sends none of them again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_first_attempt_gets_a_record_and_only_its_group_waits() {
    let mut t = setup(
        json!({"policy": "constant", "delaySeconds": 5, "attempts": 3}),
        8,
        false,
        Box::new(|id, n| {
            if id == "evt_a" && n == 0 {
                fail("HTTP 503")
            } else {
                Answer::Delivered
            }
        }),
    )
    .await;
    t.commit(&[("g1", "evt_a"), ("g1", "evt_b"), ("g2", "evt_c")]);
    let first_seq = t.session.store.last_seq() - 2;
    let mut sent = Vec::new();
    for _ in 0..2 {
        let (_, req) = t.next().await;
        sent.push(header(&req, "x-webhook-request-id"));
    }
    sent.sort();
    assert_eq!(sent, ["evt_a", "evt_c"], "the other group goes on");
    for _ in 0..10_000 {
        if records(&t).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        records(&t),
        [(first_seq, 1), (first_seq + 1, 0)],
        "the failed one and the one that waits behind it have records"
    );
    until_saved(&t, first_seq + 2).await;
    let pending = t.session.store.job_count(JobState::Pending).expect("count");
    assert_eq!(pending, 2, "the cursor passed them and the delivered evt_c");
    let (_, again) = t.next().await;
    let (_, then) = t.next().await;
    assert_eq!(header(&again, "x-webhook-request-id"), "evt_a");
    assert_eq!(header(&then, "x-webhook-request-id"), "evt_b", "in order");
    until_saved(&t, first_seq + 2).await;
    assert_eq!(records(&t), [], "the record went with its delivery");
    assert_eq!(saved_cursor(&t), first_seq + 2);
}

/// Pending records are read without the worker's lock while slots deliver; a slot removes a
/// delivered job's record first and takes the job out of the queue after. A record read before
/// its delivery ended must not enter the queue again (it was sent twice, and dead-lettered as
/// lost once pruning took its event: the kill matrix's orphaned dead letters).
#[tokio::test(start_paused = true)]
async fn a_record_read_before_its_delivery_removed_it_is_not_queued_again() {
    let mut t = setup(
        json!({"policy": "constant", "delaySeconds": 1, "attempts": 3}),
        8,
        false,
        Box::new(|_, _| Answer::Delivered),
    )
    .await;
    if let Some(w) = t.worker.take() {
        w.abort();
    }
    let ids: Vec<String> = (0..10).map(|i| format!("evt_{i}")).collect();
    let events: Vec<(&str, &str)> = ids.iter().map(|id| ("g1", id.as_str())).collect();
    t.commit(&events);
    let ep = endpoint_id(URL);
    let store = &t.session.store;
    let job = |group: &str| DeliveryJob {
        event: "group.v2.update".into(),
        group: Some(group.into()),
        url: URL.into(),
        attempts: 0,
        next_attempt_at: 0,
        last_error: None,
        body: None,
    };
    store.save_job(ep, 7, &job("g1")).expect("record 7");
    store.save_job(ep, 9, &job("g2")).expect("record 9");
    let read = store
        .pending_jobs(ep, 0, u64::MAX, usize::MAX)
        .expect("records");
    assert_eq!(read.len(), 2);
    // Meanwhile a slot delivered 7: its record is gone, its job already out of the queue.
    store.remove_job(ep, 7).expect("delivered");
    let mut worker = Worker::new(
        t.registry.clone(),
        t.session.clone(),
        ep,
        t.fake.clone(),
        t.clock,
        t.concurrency,
        Arc::new(Notify::new()),
    );
    worker.take_records(store, read).expect("taken");
    let shared = lock(&worker.shared);
    assert!(
        !shared.queue.contains(7),
        "a delivered job is not queued again"
    );
    assert!(shared.queue.contains(9), "a record still pending is queued");
}
