//! What a test sent to its groups and what came of it, and what that allows a group's state to
//! be: a change answered 2xx must show (or one after it), a refused one never, one cut off by a
//! kill may or may not.

use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    /// Answered, but not 2xx: it must not show.
    Refused,
    /// No answer: it may or may not have happened.
    Lost,
}

/// One rename sent to a group (by index).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub group: usize,
    pub subject: String,
    pub sent: Instant,
    /// When it was answered 2xx or refused, or (lost) when the process was killed: if it
    /// happened at all, it happened by then. None while in flight.
    pub done_by: Option<Instant>,
    pub outcome: Outcome,
}

/// Every attempt of a run; cheap to clone, shared by the tasks that send.
#[derive(Clone, Default)]
pub struct History {
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Attempt>> {
        self.attempts.lock().expect("history")
    }

    /// A group created with `subject`: acknowledged at once.
    pub fn created(&self, group: usize, subject: &str) {
        let now = Instant::now();
        self.lock().push(Attempt {
            group,
            subject: subject.to_owned(),
            sent: now,
            done_by: Some(now),
            outcome: Outcome::Acked,
        });
    }

    /// Records a rename about to be sent; answers its index for `answered`.
    pub fn send(&self, group: usize, subject: &str) -> usize {
        let mut all = self.lock();
        all.push(Attempt {
            group,
            subject: subject.to_owned(),
            sent: Instant::now(),
            done_by: None,
            outcome: Outcome::Lost,
        });
        all.len() - 1
    }

    /// The rename at `at` was answered, 2xx or not.
    pub fn answered(&self, at: usize, ok: bool) {
        let mut all = self.lock();
        all[at].done_by = Some(Instant::now());
        all[at].outcome = if ok { Outcome::Acked } else { Outcome::Refused };
    }

    /// The process died at `at`: every rename still without an answer happened by then, if at all.
    pub fn killed(&self, at: Instant) {
        for a in self.lock().iter_mut().filter(|a| a.done_by.is_none()) {
            a.done_by = Some(at);
        }
    }

    pub fn snapshot(&self) -> Vec<Attempt> {
        self.lock().clone()
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.lock().iter().filter(|a| a.outcome == outcome).count()
    }
}

/// Why `subject` may not be `group`'s subject now, if it may not: it must come from a change
/// that was acknowledged or lost, and no acknowledged change may have been sent after it was
/// done (that one came later, and it is durable).
pub fn subject_refused(attempts: &[Attempt], group: usize, subject: &str) -> Option<String> {
    let Some(x) = attempts
        .iter()
        .find(|a| a.group == group && a.subject == subject)
    else {
        return Some(format!("{subject:?} was never sent"));
    };
    if x.outcome == Outcome::Refused {
        return Some(format!("{subject:?} was refused"));
    }
    let Some(done_by) = x.done_by else {
        return Some(format!("{subject:?} is still in flight"));
    };
    let later = attempts
        .iter()
        .filter(|c| c.group == group && c.outcome == Outcome::Acked && c.sent > done_by)
        .max_by_key(|c| c.sent)?;
    Some(format!(
        "{subject:?} is older than {:?}, acknowledged after it was done",
        later.subject
    ))
}
