//! `kill -9` at twenty-odd random moments of a mixed workload (bursts of renames by different
//! members, fanned out to the other sessions; flaky receivers; dead letters retried; pruning
//! every 50 ms), the last one once pruning has emptied a log: acknowledged changes stay in every
//! member's copy and reach every webhook, and nothing is ever delivered that the event log, read
//! continuously from its last cursor, did not hold.
//!
//! The seed is printed; `KILL_MATRIX_SEED=<n>` replays its choices (groups, acting members,
//! burst lengths, kill moments), though not the machine's timing.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::history::{subject_refused, History, Outcome};
use common::http::{call_ok, now_ms};
use common::logs::{event_ids, left_over, retry_dead};
use common::poller::Poller;
use common::process::{self, Wagate};
use common::recorder::{Mode, Recorder};
use common::workload::{rename_until, retry_dead_until_killed, Complaints, Renamer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const KILLS: usize = 22;
/// Event retention under test: longer than the "e.g. 1000", and why. The poller must
/// read every event before pruning may drop it, or check 3 would blame the gateway for the
/// poller's pause. An event stamped at `ts` stays in the log until at least `ts + RETENTION_MS`;
/// the poller reads each log every `POLL_EVERY` plus the time a pass takes, and its longest gap
/// is across a kill: the restart (25-200 ms here, and the first prune runs as soon as the new
/// process starts) plus one pass. 4 s is over ten times the longest gap measured (printed at the
/// end), so a slow moment of a shared machine does not make the check lie; a miss that such a
/// pause could explain is reported as such. 4 s still has pruning drop, every 50 ms, most of
/// a and b's logs (everything delivered) during the run, and it lets the check across a kill
/// compare the last 4 s of each log before and after it.
const RETENTION_MS: u64 = 4_000;
const POLL_EVERY: Duration = Duration::from_millis(50);
const SESSIONS: [&str; 3] = ["a", "b", "c"];
const ACCOUNTS: [&str; 3] = ["11111111111@c.us", "22222222222@c.us", "33333333333@c.us"];
/// Each group's creator and its other member sessions; c is not in the last one.
const GROUPS: [(usize, &[usize]); 4] = [(0, &[1, 2]), (1, &[0, 2]), (2, &[0, 1]), (0, &[1])];
const WRITERS_PER_GROUP: u64 = 2;

#[derive(Clone)]
struct Group {
    id: String,
    /// Member sessions, creator first.
    members: Vec<usize>,
}

/// What every task of the run shares.
#[derive(Clone)]
struct Shared {
    http: reqwest::Client,
    history: History,
    /// Answers no fault explains; the test fails on any.
    unexpected: Complaints,
    /// When each kill came (unix ms), to place a violation.
    kills: Arc<Mutex<Vec<u64>>>,
    /// The receiver of each session's webhook (a, b, c), which fails every fourth request.
    hooks: Vec<Recorder>,
    /// The receiver of c's second webhook (no retries), which fails everything until the end.
    dead: Recorder,
}

impl Shared {
    /// Every receiver, with a name for messages.
    fn receivers(&self) -> Vec<(&'static str, &Recorder)> {
        let labels = [
            "a's webhook",
            "b's webhook",
            "c's webhook",
            "c's dead-letter webhook",
        ];
        labels
            .into_iter()
            .zip(self.hooks.iter().chain([&self.dead]))
            .collect()
    }
}

/// The settings of run `run` (0 is the first process). Every other run has a slow disk
/// (`WAGATE_TEST_FSYNC_DELAY_MS`, the store's fault seam): it widens the moment between a
/// change's commit and its flush, where a kill finds whatever the gateway lets out early.
fn env(run: usize) -> Vec<(&'static str, String)> {
    let mut env = vec![
        // The start-up's replay of interrupted fan-outs is logged: it shows which kills cut one.
        ("RUST_LOG", "error,wagate::groups::fanout=info".into()),
        ("WAGATE_TEST_PRUNE_EVERY_MS", "50".into()),
        ("WAGATE_TEST_EVENT_RETENTION_MS", RETENTION_MS.to_string()),
    ];
    if slow_disk(run) {
        env.push(("WAGATE_TEST_FSYNC_DELAY_MS", "20".into()));
    }
    env
}

fn slow_disk(run: usize) -> bool {
    run % 2 == 1
}

/// Starts run `run` of the binary on `data`.
async fn start(data: &Path, run: usize) -> Wagate {
    let env = env(run);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    process::start(data, &env).await
}

/// Sessions a, b, c (c also with the always-failing webhook that dead-letters at once) and the groups.
async fn setup(sh: &Shared, base: &str) -> Vec<Group> {
    for (i, name) in SESSIONS.iter().enumerate() {
        let mut webhooks = vec![json!({"url": sh.hooks[i].url, "events": ["*"],
            "retries": {"policy": "constant", "delaySeconds": 0, "attempts": 100}})];
        if *name == "c" {
            webhooks.push(json!({"url": sh.dead.url, "events": ["group.v2.update"],
                "retries": {"policy": "constant", "delaySeconds": 0, "attempts": 0}}));
        }
        let config =
            json!({"local": {"me": {"id": ACCOUNTS[i], "pushName": name}}, "webhooks": webhooks});
        call_ok(
            &sh.http,
            "POST",
            &format!("{base}/api/sessions"),
            Some(json!({"name": name, "config": config})),
        )
        .await;
    }
    let mut groups = Vec::new();
    for (gi, (creator, others)) in GROUPS.iter().enumerate() {
        let mut parts: Vec<Value> = others.iter().map(|o| json!({"id": ACCOUNTS[*o]})).collect();
        parts.push(json!({"id": "4915112345678@c.us"}));
        let name = format!("created-g{gi}");
        let info = call_ok(
            &sh.http,
            "POST",
            &format!("{base}/api/{}/groups", SESSIONS[*creator]),
            Some(json!({"name": name, "participants": parts})),
        )
        .await;
        sh.history.created(gi, &name);
        let mut members = vec![*creator];
        members.extend_from_slice(others);
        let id = info["id"].as_str().expect("group id").to_owned();
        groups.push(Group { id, members });
    }
    groups
}

/// Check 1: every member's copy of each group is the same (but the admin-only `invite`), and
/// its subject is the last acknowledged one or one sent later.
async fn check_copies(sh: &Shared, base: &str, groups: &[Group], when: &str) {
    let attempts = sh.history.snapshot();
    for (gi, g) in groups.iter().enumerate() {
        let mut copies = Vec::new();
        for &m in &g.members {
            let mut info = call_ok(
                &sh.http,
                "GET",
                &format!("{base}/api/{}/groups/{}", SESSIONS[m], g.id),
                None,
            )
            .await;
            info.as_object_mut().expect("object").remove("invite");
            copies.push((SESSIONS[m], info));
        }
        for (s, copy) in &copies[1..] {
            assert_eq!(
                copy, &copies[0].1,
                "{when}: g{gi}: {s}'s copy differs from {}'s",
                copies[0].0
            );
        }
        let subject = copies[0].1["subject"].as_str().expect("subject");
        if let Some(why) = subject_refused(&attempts, gi, subject) {
            panic!("{when}: g{gi}: {why}");
        }
    }
}

/// Check 3, across a kill: an event the log listed before it is still there after the restart,
/// unless it is old enough that pruning may have dropped it. Answers how many were checked,
/// and the ids every log holds now.
async fn check_log_kept(
    sh: &Shared,
    base: &str,
    poller: &Poller,
    when: &str,
) -> (usize, HashSet<String>) {
    let seen = poller.seen();
    let (mut checked, mut all) = (0, HashSet::new());
    for s in SESSIONS {
        let (log, read_end) = event_ids(&sh.http, base, s).await;
        for (id, e) in seen.iter().filter(|(_, e)| e.session == s) {
            // Pruning cuts at (its now - RETENTION_MS); every prune so far ran before read_end.
            if e.ts + RETENTION_MS < read_end + 10 {
                continue;
            }
            checked += 1;
            assert!(
                log.contains(id),
                "{when}: {s}'s log listed {id}, {} (cursor {}, stamped {} ms before the read), and lost it in the kill: it was listed before it was durable{}",
                e.what,
                e.cursor,
                read_end.saturating_sub(e.ts),
                outcome(sh, e.what.split_once(' ').map_or("", |(_, s)| s))
            );
        }
        all.extend(log);
    }
    (checked, all)
}

/// Check 2: what each acknowledged rename should have reached, and has not: a `group.v2.update`
/// with its subject, accepted by the receiver of every member session, and by c's dead-letter one.
fn undelivered(sh: &Shared, groups: &[Group]) -> Vec<String> {
    let got = |r: &Recorder| -> HashSet<(String, String, String)> {
        r.hits()
            .iter()
            .filter(|h| h.accepted && h.body["event"] == "group.v2.update")
            .filter_map(|h| {
                let g = &h.body["payload"]["group"];
                let (id, subject) = (g["id"].as_str()?, g["subject"].as_str()?);
                Some((h.session().to_owned(), id.to_owned(), subject.to_owned()))
            })
            .collect()
    };
    let mut targets: Vec<(&str, &str, _)> = sh
        .hooks
        .iter()
        .zip(SESSIONS)
        .map(|(r, s)| (s, s, got(r)))
        .collect();
    targets.push(("c's dead-letter webhook", "c", got(&sh.dead)));
    let mut missing = Vec::new();
    let renames = sh.history.snapshot();
    for a in renames
        .iter()
        .filter(|a| a.outcome == Outcome::Acked && !a.subject.starts_with("created-"))
    {
        let g = &groups[a.group];
        for (label, session, got) in &targets {
            let member = g.members.iter().any(|&m| SESSIONS[m] == *session);
            let key = ((*session).to_owned(), g.id.clone(), a.subject.clone());
            if member && !got.contains(&key) {
                missing.push(format!("{:?} (g{}) to {label}", a.subject, a.group));
            }
        }
    }
    missing
}

/// Check 3: every event any receiver ever got was read from its session's log by the poller.
/// A miss is certain when the poller caught up with that log after the receipt and before the
/// event could be pruned; otherwise only a pause of the poller longer than the retention explains it.
/// Only what was received before `before_ms` is looked at.
fn delivered_unlisted(
    sh: &Shared,
    poller: &Poller,
    before_ms: u64,
    in_log: &HashSet<String>,
) -> (usize, Vec<String>) {
    let seen = poller.seen();
    let (mut ids, mut bad) = (HashSet::new(), Vec::new());
    for (label, r) in sh.receivers() {
        for h in r.hits().into_iter().filter(|h| h.at_ms < before_ms) {
            if !ids.insert(h.id().to_owned()) || seen.contains_key(h.id()) {
                continue;
            }
            let ts = h.body["timestamp"].as_u64().unwrap_or_default();
            let why = if poller.caught_up_between(h.session(), h.at_ms, ts + RETENTION_MS) {
                "certain"
            } else {
                "or the poller paused longer than the retention"
            };
            let log = if in_log.contains(h.id()) {
                "is in the log now, behind the poller's cursor (a cursor was reused)"
            } else {
                "is not in the log"
            };
            let (s, id, event) = (h.session(), h.id(), &h.body["event"]);
            bad.push(format!(
                "{s} {id} ({event}) delivered to {label}: {log} ({why}); {}",
                placed(sh, &h)
            ));
        }
    }
    (ids.len(), bad)
}

/// What came of the rename to `subject`, for a message ("" when there was none).
fn outcome(sh: &Shared, subject: &str) -> String {
    sh.history
        .snapshot()
        .into_iter()
        .find(|a| !subject.is_empty() && a.subject == subject)
        .map(|a| format!("; rename {subject:?} {:?}", a.outcome))
        .unwrap_or_default()
}

/// Where an event stands: its change (for a rename) and the kill nearest its receipt.
fn placed(sh: &Shared, h: &common::recorder::Hit) -> String {
    let subject = h.body["payload"]["group"]["subject"]
        .as_str()
        .unwrap_or_default();
    let change = outcome(sh, subject);
    let ts = h.body["timestamp"].as_u64().unwrap_or_default();
    let kills = sh.kills.lock().expect("lock").clone();
    let kill = kills.iter().position(|&k| k >= h.at_ms).map_or_else(
        || "after the last kill".to_owned(),
        |i| format!("received {} ms before kill {}", kills[i] - h.at_ms, i + 1),
    );
    format!(
        "stamped {} ms before receipt, {kill}{change}",
        h.at_ms.saturating_sub(ts)
    )
}

/// Round `k`'s workload on `gw` until its kill: answers when the kill came and what was going
/// on. Most rounds rename for a random time and die at a random moment; the last one is quiet
/// (dead letters are retried, nothing else) and dies once pruning has emptied a's log.
async fn workload_until_kill(
    sh: &Shared,
    gw: Wagate,
    k: usize,
    groups: &[Group],
    rng: &mut StdRng,
) -> (Instant, String) {
    let (http, base, complaints) = (sh.http.clone(), gw.base.clone(), sh.unexpected.clone());
    let mut tasks = vec![tokio::spawn(retry_dead_until_killed(
        http, base, "c", complaints,
    ))];
    let phase = if k == KILLS {
        common::wait_for(15, "pruning to empty a's log", || async {
            event_ids(&sh.http, &gw.base, "a").await.0.is_empty()
        })
        .await;
        "quiet: a's log pruned to nothing, dead letters retried".to_owned()
    } else {
        let burst = Duration::from_millis(rng.gen_range(50..1_200));
        let kill_at = Duration::from_millis(rng.gen_range(20..1_500));
        let stop = Arc::new(AtomicBool::new(false));
        for (gi, g) in groups.iter().enumerate() {
            for w in 0..WRITERS_PER_GROUP {
                let r = Renamer {
                    group: gi,
                    id: g.id.clone(),
                    actors: g.members.iter().map(|&m| SESSIONS[m]).collect(),
                    prefix: format!("r{k}-g{gi}-"),
                    first: w * 100_000,
                    rng: StdRng::seed_from_u64(rng.gen()),
                };
                let (http, base, history) = (sh.http.clone(), gw.base.clone(), sh.history.clone());
                let (stop, complaints) = (stop.clone(), sh.unexpected.clone());
                tasks.push(tokio::spawn(rename_until(
                    http, base, r, history, stop, complaints,
                )));
            }
        }
        // Not a wait for a condition: these are the moments this round's seed chose.
        tokio::time::sleep(burst.min(kill_at)).await;
        stop.store(burst < kill_at, Ordering::SeqCst);
        tokio::time::sleep(kill_at.saturating_sub(burst)).await;
        let what = if burst > kill_at {
            "mid-burst"
        } else {
            "after the burst: deliveries, dead-letter retries, pruning"
        };
        format!(
            "at {:4} ms, {what}, burst {:4} ms",
            kill_at.as_millis(),
            burst.as_millis()
        )
    };
    drop(gw); // SIGKILL
    let killed = Instant::now();
    sh.kills.lock().expect("lock").push(now_ms());
    for t in tasks {
        t.await.expect("a workload task");
    }
    sh.history.killed(killed);
    (killed, phase)
}

/// Checks 1 and 3 on the process started after kill `k`; answers how many recent events of the
/// logs were checked across the kill.
async fn check_restart(
    sh: &Shared,
    base: &str,
    k: usize,
    groups: &[Group],
    poller: &Poller,
) -> usize {
    let when = format!("after kill {k}");
    check_copies(sh, base, groups, &when).await;
    let (kept, in_log) = check_log_kept(sh, base, poller, &when).await;
    // What was delivered before the kill, once the poller has read the new process's logs.
    let restarted = now_ms();
    common::wait_for(
        10,
        "the poller to read the logs after the restart",
        || async {
            SESSIONS
                .iter()
                .all(|s| poller.caught_up_between(s, restarted, u64::MAX))
        },
    )
    .await;
    let kill_ms = sh.kills.lock().expect("lock").last().copied().unwrap_or(0);
    let (_, unlisted) = delivered_unlisted(sh, poller, kill_ms, &in_log);
    assert!(
        unlisted.is_empty(),
        "{when}: events delivered that the log never listed:\n{}",
        unlisted.join("\n")
    );
    assert!(
        sh.unexpected.lock().expect("lock").is_empty(),
        "{when}: unexpected answers"
    );
    kept
}

/// One round: the workload, the kill, a restart on the same data, the checks.
async fn round(
    sh: &Shared,
    gw: Wagate,
    k: usize,
    groups: &[Group],
    poller: &Poller,
    rng: &mut StdRng,
    data: &Path,
) -> Wagate {
    let acked_before = sh.history.count(Outcome::Acked);
    let (killed, phase) = workload_until_kill(sh, gw, k, groups, rng).await;
    let gw = start(data, k).await;
    let down = killed.elapsed();
    poller.point_at(&gw.base);
    let kept = check_restart(sh, &gw.base, k, groups, poller).await;
    let disk = if slow_disk(k - 1) { "slow" } else { "normal" };
    let fanouts = gw.log_text().matches("applying a fan-out").count();
    println!(
        "kill {k:2}: {disk} disk, {phase}; {:3} renames acknowledged, {fanouts} fan-outs cut and replayed, restarted in {} ms, {kept} recent events still listed",
        sh.history.count(Outcome::Acked) - acked_before,
        down.as_millis()
    );
    gw
}

/// The end: every receiver answers 200 and c's dead letters go back to pending, until each
/// acknowledged rename reached every webhook and nothing is left pending or dead (check 2).
/// Answers how many dead letters were sent again, or why it cannot end.
async fn drain(sh: &Shared, base: &str, groups: &[Group]) -> Result<usize, String> {
    for (_, r) in sh.receivers() {
        r.set(Mode::Accept);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut retried = 0;
    loop {
        retried += retry_dead(&sh.http, base, "c").await;
        let left = left_over(&sh.http, base, &SESSIONS).await;
        let missing = undelivered(sh, groups);
        if left.total == 0 && missing.is_empty() {
            return Ok(retried);
        }
        // Stuck: all that is left lost its event, or time is up.
        let stuck = left.total > 0 && left.orphaned == left.total;
        if stuck || Instant::now() > deadline {
            let why = if left.orphaned > 0 {
                "deliveries lost their event (pruned while they needed it), so they can never be sent"
            } else {
                "60 s after the receivers came back, deliveries are left"
            };
            return Err(format!(
                "{why}; {} pending or dead, {} of them without their event:\n{}\nacknowledged renames not delivered ({}, the first 20):\n{}",
                left.total,
                left.orphaned,
                left.shown.join("\n"),
                missing.len(),
                missing[..missing.len().min(20)].join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The end, after the last (quiet) kill: one rename of each group, whose events take the next
/// cursors of the logs; then check 2 (the drain), check 1, and check 3 over the whole run.
/// Answers the failures of checks 2 and 3.
async fn finish(sh: &Shared, base: &str, groups: &[Group], poller: &Poller) -> Vec<String> {
    for (gi, g) in groups.iter().enumerate() {
        let subject = format!("final-g{gi}");
        let at = sh.history.send(gi, &subject);
        let url = format!(
            "{base}/api/{}/groups/{}/subject",
            SESSIONS[g.members[0]], g.id
        );
        call_ok(&sh.http, "PUT", &url, Some(json!({"subject": subject}))).await;
        sh.history.answered(at, true);
    }
    let drained = drain(sh, base, groups).await;
    let end = now_ms();
    common::wait_for(10, "the poller to catch up with every log", || async {
        SESSIONS
            .iter()
            .all(|s| poller.caught_up_between(s, end, u64::MAX))
    })
    .await;
    check_copies(sh, base, groups, "at the end").await;
    let mut in_log = HashSet::new();
    for s in SESSIONS {
        in_log.extend(event_ids(&sh.http, base, s).await.0);
    }
    let (delivered, unlisted) = delivered_unlisted(sh, poller, u64::MAX, &in_log);
    println!(
        "{} renames acknowledged, {} lost with the process; {delivered} distinct events delivered, {} seen in the logs, {} dead letters retried at the end; longest poll gap {} ms (retention {RETENTION_MS} ms)",
        sh.history.count(Outcome::Acked),
        sh.history.count(Outcome::Lost),
        poller.seen().len(),
        drained.as_ref().map_or("no".to_owned(), |n| n.to_string()),
        poller.longest_gap_ms()
    );
    let mut failures = Vec::new();
    if let Err(e) = drained {
        failures.push(format!(
            "check 2, every acknowledged change reaches every webhook: {e}"
        ));
    }
    if !unlisted.is_empty() {
        let n = unlisted.len();
        failures.push(format!(
            "check 3, {n} events delivered that the log never listed:\n{}",
            unlisted.join("\n")
        ));
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_survives_kill_dash_nine_at_random_moments_and_nothing_unlogged_is_delivered(
) {
    let seed = std::env::var("KILL_MATRIX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("kill_matrix seed {seed} (replay its choices with KILL_MATRIX_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut hooks = Vec::new();
    for _ in SESSIONS {
        hooks.push(Recorder::start(Mode::Flaky).await);
    }
    let sh = Shared {
        http: reqwest::Client::new(),
        history: History::default(),
        unexpected: Arc::default(),
        kills: Arc::default(),
        hooks,
        dead: Recorder::start(Mode::Refuse).await,
    };
    let mut gw = start(dir.path(), 0).await;
    let groups = setup(&sh, &gw.base).await;
    let (poller, polling) = Poller::start(&gw.base, &SESSIONS, POLL_EVERY);
    let started = Instant::now();
    for k in 1..=KILLS {
        gw = round(&sh, gw, k, &groups, &poller, &mut rng, dir.path()).await;
    }

    let failures = finish(&sh, &gw.base, &groups, &poller).await;
    poller.stop();
    polling.await.expect("the poller");
    println!(
        "{KILLS} kills and the end in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        // The data and the last process's log, to look into.
        println!("data kept in {}", dir.keep().display());
    }
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}
