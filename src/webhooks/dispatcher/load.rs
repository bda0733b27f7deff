//! What a worker reads from the store: job records (failed attempts, dead letters put back, jobs
//! of stores written before cursors) and the events beyond its endpoint's cursor, merged in
//! sequence order; and the cursor it moves as those events are delivered.

use super::slot::lock;
use super::{Live, Worker, LOAD_CHUNK, MAX_QUEUED, MIN_LOAD};
use crate::store::{fresh_job, EndpointRecord, SessionStore, StoreResult};

/// Events delivered beyond the saved cursor before it is saved again (it is also saved whenever
/// no event beyond it is left to send).
const SAVE_EVERY: u64 = 512;

impl Worker {
    /// Reads jobs committed since the last look, and (after a retry from the dead letters)
    /// those behind it.
    pub(super) fn load(&mut self, live: &Live) -> StoreResult<()> {
        let store = &live.session.store;
        let requeues = store.requeues();
        if requeues != self.requeues_seen {
            self.requeues_seen = requeues;
            let jobs = store.pending_jobs(self.endpoint, 0, u64::MAX, usize::MAX)?;
            self.take_records(store, jobs)?;
        }
        if self.known.is_none() {
            self.known = store.known_endpoint(self.endpoint)?;
            if let Some(k) = &self.known {
                self.cursor = k.cursor;
                self.saved = k.cursor;
                self.loaded_upto = self.loaded_upto.min(k.cursor);
            }
        }
        // A nearly full queue is topped up in chunks, not one job per answer.
        let room = MAX_QUEUED.saturating_sub(lock(&self.shared).queue.len());
        let durable = store.durable_seq();
        self.more_to_load = false;
        if room >= MIN_LOAD && durable != self.read_at_durable {
            let want = room.min(LOAD_CHUNK);
            let (read, upto) = self.load_new(store, want, durable)?;
            // Read to the end: nothing new until the next commit. (For a store this read
            // opened, `durable` was not yet known: it moves, and we read again.)
            if upto >= durable {
                self.read_at_durable = durable;
            }
            self.more_to_load = upto < durable && read < room;
        }
        Ok(())
    }

    /// Reads, past what was read so far, up to `want` job records and `want` events beyond the
    /// cursor, and takes both up to the first sequence number where either read was cut short,
    /// so that a group's jobs enter the queue in order. Answers how many were read and up to
    /// which sequence number everything is now known.
    fn load_new(
        &mut self,
        store: &SessionStore,
        want: usize,
        durable: u64,
    ) -> StoreResult<(usize, u64)> {
        let from = self.loaded_upto.saturating_add(1);
        let mut records = store.pending_jobs(self.endpoint, from, durable, want)?;
        let mut upto = durable;
        if records.len() == want {
            upto = records.last().map_or(upto, |(s, _)| *s);
        }
        let mut events = Vec::new();
        if let Some(k) = &self.known {
            let last = k.record.until.unwrap_or(u64::MAX).min(upto);
            events = store.logged_events(from.max(k.cursor.saturating_add(1)), last, want)?;
            if events.len() == want {
                upto = events.last().map_or(upto, |(s, _)| *s);
            }
        }
        records.retain(|(s, _)| *s <= upto);
        events.retain(|(s, _)| *s <= upto);
        let read = records.len() + events.len();
        self.take_records(store, records)?;
        if let Some(k) = &self.known {
            let record = self.wanted(&k.record);
            let mut held = Vec::new();
            let mut shared = lock(&self.shared);
            for (seq, e) in events {
                if record.wants(&e.name) && !shared.queue.contains(seq) {
                    let job = fresh_job(&record, e);
                    // Behind a retry: a record of its own, so that the cursor need not wait.
                    if shared.queue.group_retrying(&job.group) {
                        held.push((seq, job.clone()));
                    } else {
                        shared.virtuals.insert(seq);
                    }
                    shared.queue.insert(seq, job);
                }
            }
            drop(shared);
            for (seq, job) in held {
                store.save_job(self.endpoint, seq, &job)?;
            }
        }
        self.loaded_upto = self.loaded_upto.max(upto);
        Ok((read, upto))
    }

    /// The endpoint's settings as the worker sends with them: the webhook's current config
    /// while it has one (what a PUT changed applies at once), else the stored record.
    fn wanted(&self, stored: &EndpointRecord) -> EndpointRecord {
        match self.hook_cache.as_ref().and_then(|(_, h)| h.as_ref()) {
            Some(hook) => {
                let all = hook.config.events.iter().any(|e| e == "*");
                EndpointRecord {
                    url: hook.config.url.clone(),
                    events: (!all).then(|| hook.config.events.clone()),
                    until: stored.until,
                }
            }
            None => stored.clone(),
        }
    }

    /// Takes job records in: new ones join the queue; one for an event queued from beyond the
    /// cursor replaces it (it was tried before, and keeps its count of attempts).
    ///
    /// The records were read without the lock, while slots deliver: a slot removes a delivered
    /// job's record from the store first and takes the job out of the queue after. So a record
    /// read just before its delivery ended may reach here once its job has left the queue; taken
    /// in, it would be sent a second time, and after pruning (nothing keeps its event once its
    /// record is gone and the cursor is past it) dead-lettered as lost. Under the lock, a record
    /// not queued is taken only while the store still has it.
    pub(super) fn take_records(
        &mut self,
        store: &SessionStore,
        jobs: Vec<(u64, crate::store::DeliveryJob)>,
    ) -> StoreResult<()> {
        let mut shared = lock(&self.shared);
        for (seq, job) in jobs {
            if shared.virtuals.remove(&seq) {
                if let Some(queued) = shared.queue.job_mut(seq) {
                    *queued = job;
                }
                continue;
            }
            if !shared.queue.contains(seq) && store.has_pending_job(self.endpoint, seq)? {
                shared.queue.insert(seq, job);
            }
        }
        Ok(())
    }

    /// For an endpoint that left the config: its record as stored (to forget it by once all is
    /// dead-lettered), and what the worker reads up to: the last event that was for it, or for
    /// one never marked so (a global webhook set by the environment of an earlier run), the
    /// last before this process opened the store.
    pub(super) fn gone(&mut self, live: &Live) -> StoreResult<Option<EndpointRecord>> {
        let store = &live.session.store;
        let Some(stored) = store.known_endpoint(self.endpoint)? else {
            return Ok(None);
        };
        let mut known = stored.clone();
        known.record.until.get_or_insert(store.opened_seq());
        if self.known.is_none() {
            self.cursor = known.cursor;
            self.saved = known.cursor;
            self.loaded_upto = self.loaded_upto.min(known.cursor);
        }
        self.known = Some(known);
        Ok(Some(stored.record))
    }

    /// After `seq` failed (it has a record now): the jobs of its group that wait behind it and
    /// have none get one too, so that the cursor moves on while the group waits for the retry.
    pub(super) fn hold_group(&mut self, live: &Live, seq: u64) -> StoreResult<()> {
        let held: Vec<_> = {
            let mut shared = lock(&self.shared);
            shared.virtuals.remove(&seq);
            let group = shared.queue.group_seqs(seq);
            let held: Vec<u64> = group
                .into_iter()
                .filter(|s| shared.virtuals.remove(s))
                .collect();
            held.into_iter()
                .filter_map(|s| shared.queue.job(s).map(|j| (s, j.clone())))
                .collect()
        };
        for (s, job) in held {
            live.session.store.save_job(self.endpoint, s, &job)?;
        }
        Ok(())
    }

    /// Moves the cursor past every event beyond it that is delivered (or has a record of its
    /// own now), and saves it every `SAVE_EVERY` events and whenever nothing is left to send.
    pub(super) fn advance(&mut self, live: &Live) -> StoreResult<()> {
        if self.known.is_none() {
            return Ok(());
        }
        let first_open = lock(&self.shared).virtuals.first().copied();
        let reached = first_open.map_or(self.loaded_upto, |s| s.saturating_sub(1));
        self.cursor = self.cursor.max(reached);
        let caught_up = first_open.is_none();
        if self.cursor > self.saved && (caught_up || self.cursor >= self.saved + SAVE_EVERY) {
            live.session.store.set_cursor(self.endpoint, self.cursor)?;
            self.saved = self.cursor;
        }
        Ok(())
    }
}
