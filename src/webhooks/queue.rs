//! The jobs one worker knows, by sequence number and by group, and which of them may start
//! now. Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::store::DeliveryJob;

/// Events of one group go out in order; session events (no group) form their own key.
type GroupKey = Option<String>;

struct Entry {
    job: DeliveryJob,
    in_flight: bool,
}

impl Entry {
    /// A first try is due at once: its stored time is the committer's wall clock, which
    /// must not hold it back if that clock and ours disagree.
    fn due(&self) -> u64 {
        if self.job.attempts == 0 {
            0
        } else {
            self.job.next_attempt_at
        }
    }
}

/// What to do now: the jobs to start, and when the earliest waiting one falls due.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub start: Vec<u64>,
    pub next_due: Option<u64>,
}

/// One group's jobs, and where its head waits to start (if it is not in flight).
#[derive(Default)]
struct GroupJobs {
    seqs: BTreeSet<u64>,
    /// The head's entry in `waiting` or `ready`, while the head is not in flight.
    listed: Option<Listed>,
}

/// Where a group's head is listed: waiting for its due time (due, seq), or ready (seq).
enum Listed {
    Waiting(u64, u64),
    Ready(u64),
}

/// The jobs a worker knows, by sequence number and by group. The heads of the groups that
/// are not in flight are kept sorted (by due time until due, then by sequence number), so
/// that planning costs what it starts, not the number of groups.
#[derive(Default)]
pub struct Queue {
    jobs: BTreeMap<u64, Entry>,
    groups: HashMap<GroupKey, GroupJobs>,
    /// (due, seq) of heads not yet due when last planned.
    waiting: BTreeSet<(u64, u64)>,
    /// Heads that are due, oldest first.
    ready: BTreeSet<u64>,
    in_flight: usize,
}

impl Queue {
    pub fn insert(&mut self, seq: u64, job: DeliveryJob) {
        if self.jobs.contains_key(&seq) {
            return;
        }
        let group = job.group.clone();
        self.groups
            .entry(group.clone())
            .or_default()
            .seqs
            .insert(seq);
        self.jobs.insert(
            seq,
            Entry {
                job,
                in_flight: false,
            },
        );
        self.relist(&group);
    }

    pub fn remove(&mut self, seq: u64) -> Option<DeliveryJob> {
        let e = self.jobs.remove(&seq)?;
        if e.in_flight {
            self.in_flight -= 1;
        }
        if let Some(g) = self.groups.get_mut(&e.job.group) {
            g.seqs.remove(&seq);
        }
        self.relist(&e.job.group);
        Some(e.job)
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.jobs.contains_key(&seq)
    }
    pub fn len(&self) -> usize {
        self.jobs.len()
    }
    /// How many jobs are in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
    pub fn job(&self, seq: u64) -> Option<&DeliveryJob> {
        self.jobs.get(&seq).map(|e| &e.job)
    }
    /// For a job in flight (its due time is read again when it lands).
    pub fn job_mut(&mut self, seq: u64) -> Option<&mut DeliveryJob> {
        self.jobs.get_mut(&seq).map(|e| &mut e.job)
    }

    /// The attempt for `seq` ended without delivering: it waits for its next time again.
    pub fn landed(&mut self, seq: u64) {
        let Some(e) = self.jobs.get_mut(&seq) else {
            return;
        };
        if e.in_flight {
            e.in_flight = false;
            self.in_flight -= 1;
        }
        let group = e.job.group.clone();
        self.relist(&group);
    }

    /// The jobs of the same group as `seq` (itself included), oldest first.
    pub fn group_seqs(&self, seq: u64) -> Vec<u64> {
        let Some(e) = self.jobs.get(&seq) else {
            return Vec::new();
        };
        self.groups
            .get(&e.job.group)
            .map(|g| g.seqs.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether a job of this group waits for a retry.
    pub fn group_retrying(&self, group: &Option<String>) -> bool {
        self.groups.get(group).is_some_and(|g| {
            g.seqs
                .iter()
                .any(|s| self.jobs.get(s).is_some_and(|e| e.job.attempts > 0))
        })
    }

    /// The jobs not in flight, oldest first.
    pub fn idle_seqs(&self) -> Vec<u64> {
        self.jobs
            .iter()
            .filter(|(_, e)| !e.in_flight)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Starts the head of every group that is due and not in flight, oldest first, while
    /// fewer than `max_in_flight` are out. A head that waits for a retry holds back only
    /// its own group.
    pub fn plan(&mut self, now_ms: u64, max_in_flight: usize) -> Plan {
        while let Some(&(due, seq)) = self.waiting.first() {
            if due > now_ms {
                break;
            }
            self.waiting.remove(&(due, seq));
            self.ready.insert(seq);
            if let Some(g) = self.group_of(seq) {
                g.listed = Some(Listed::Ready(seq));
            }
        }
        let free = max_in_flight.saturating_sub(self.in_flight);
        let start: Vec<u64> = self.ready.iter().take(free).copied().collect();
        for seq in &start {
            self.ready.remove(seq);
            if let Some(g) = self.group_of(*seq) {
                g.listed = None;
            }
            if let Some(e) = self.jobs.get_mut(seq) {
                e.in_flight = true;
                self.in_flight += 1;
            }
        }
        Plan {
            start,
            next_due: self.waiting.first().map(|&(due, _)| due),
        }
    }

    fn group_of(&mut self, seq: u64) -> Option<&mut GroupJobs> {
        let group = &self.jobs.get(&seq)?.job.group;
        self.groups.get_mut(group)
    }

    /// Puts the group's head (which may have changed, or whose due time may have) where it
    /// waits to start; a head in flight is not listed; an empty group is forgotten.
    fn relist(&mut self, group: &GroupKey) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        match g.listed.take() {
            Some(Listed::Waiting(due, seq)) => {
                self.waiting.remove(&(due, seq));
            }
            Some(Listed::Ready(seq)) => {
                self.ready.remove(&seq);
            }
            None => {}
        }
        let Some(&head) = g.seqs.first() else {
            self.groups.remove(group);
            return;
        };
        let Some(e) = self.jobs.get(&head) else {
            return;
        };
        if e.in_flight {
            return;
        }
        let due = e.due();
        self.waiting.insert((due, head));
        g.listed = Some(Listed::Waiting(due, head));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(group: &str, attempts: u32, next_attempt_at: u64) -> DeliveryJob {
        DeliveryJob {
            event: "group.v2.update".into(),
            group: (!group.is_empty()).then(|| group.to_owned()),
            url: "http://x/".into(),
            attempts,
            next_attempt_at,
            last_error: None,
            body: None,
        }
    }

    #[test]
    fn the_heads_of_due_groups_start_oldest_first() {
        let mut q = Queue::default();
        q.insert(5, job("b", 0, 0));
        q.insert(1, job("a", 0, 0));
        q.insert(2, job("a", 0, 0));
        q.insert(3, job("", 0, 0));
        let plan = q.plan(1_000, 8);
        assert_eq!(plan.start, [1, 3, 5]);
        assert_eq!(plan.next_due, None);
        assert_eq!(q.plan(1_000, 8).start, Vec::<u64>::new(), "nothing twice");
        q.remove(1);
        assert_eq!(q.plan(1_000, 8).start, [2]);
    }

    #[test]
    fn a_head_waiting_for_its_retry_holds_back_its_group_and_sets_the_wake_up() {
        let mut q = Queue::default();
        q.insert(1, job("a", 2, 5_000));
        q.insert(2, job("a", 0, 0));
        q.insert(3, job("b", 1, 4_000));
        let plan = q.plan(1_000, 8);
        assert_eq!(plan.start, Vec::<u64>::new());
        assert_eq!(plan.next_due, Some(4_000));
        assert_eq!(q.plan(4_000, 8).start, [3]);
    }

    #[test]
    fn no_more_start_than_there_are_free_slots() {
        let mut q = Queue::default();
        for seq in 1..=5 {
            q.insert(seq, job(&format!("g{seq}"), 0, 0));
        }
        assert_eq!(q.plan(0, 2).start, [1, 2]);
        assert_eq!(q.plan(0, 2).start, Vec::<u64>::new());
        q.landed(1);
        assert_eq!(q.plan(0, 2).start, [1]);
        q.remove(2);
        assert_eq!(q.plan(0, 2).start, [3]);
    }

    #[test]
    fn a_failed_head_waits_for_its_new_time_and_holds_back_only_its_group() {
        let mut q = Queue::default();
        q.insert(1, job("a", 0, 0));
        q.insert(2, job("a", 0, 0));
        q.insert(3, job("b", 0, 0));
        assert_eq!(q.plan(1_000, 8).start, [1, 3]);
        if let Some(j) = q.job_mut(1) {
            j.attempts = 1;
            j.next_attempt_at = 5_000;
        }
        q.landed(1);
        let plan = q.plan(1_000, 8);
        assert_eq!(plan.start, Vec::<u64>::new(), "2 waits behind 1, 3 is out");
        assert_eq!(plan.next_due, Some(5_000));
        q.remove(3);
        q.insert(4, job("b", 0, 0));
        assert_eq!(q.plan(1_000, 8).start, [4], "b goes on");
        assert_eq!(q.plan(5_000, 8).start, [1]);
        q.remove(1);
        assert_eq!(q.plan(5_000, 8).start, [2]);
        q.remove(2);
        q.remove(4);
        assert!(q.is_empty());
        assert_eq!(q.plan(9_000, 8), Plan::default());
    }

    #[test]
    fn a_job_put_back_ahead_of_its_group_becomes_the_head() {
        let mut q = Queue::default();
        q.insert(5, job("a", 0, 0));
        q.insert(2, job("a", 0, 0));
        assert_eq!(q.plan(0, 8).start, [2]);
        q.remove(2);
        assert_eq!(q.plan(0, 8).start, [5]);
    }
}
