//! The tasks this worker process holds leases on, by public task id.
//!
//! A task enters when its claim succeeds and leaves when its outcome is
//! committed (or refused). The heartbeat renews exactly these leases and
//! flags the ones it finds lost; at shutdown, whatever is still here is
//! handed back to the queue.

use crate::cancel::Cancel;
use shared::tasks::Lease;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One held task: its lease and the flag that stops its run.
#[derive(Clone)]
pub struct Held {
    pub lease: Lease,
    pub cancel: Cancel,
    /// Set once the outcome is with the finisher: the lease is still renewed
    /// (the commit may wait for the database) but no longer watched, since
    /// the commit itself ends it.
    pub finishing: Arc<AtomicBool>,
}

/// Thread-safe map of held tasks.
#[derive(Default)]
pub struct HeldTasks {
    inner: Mutex<HashMap<String, Held>>,
}

impl HeldTasks {
    /// Records a newly claimed task; returns its cancel flag.
    pub fn insert(&self, task_id: &str, lease: Lease) -> Cancel {
        let cancel = Cancel::new();
        let held =
            Held { lease, cancel: cancel.clone(), finishing: Arc::new(AtomicBool::new(false)) };
        self.inner.lock().unwrap().insert(task_id.to_string(), held);
        cancel
    }

    /// Forgets a task (its outcome is settled); returns what was held.
    pub fn remove(&self, task_id: &str) -> Option<Held> {
        self.inner.lock().unwrap().remove(task_id)
    }

    /// The held task with this id, if any.
    pub fn get(&self, task_id: &str) -> Option<Held> {
        self.inner.lock().unwrap().get(task_id).cloned()
    }

    /// Marks a task's outcome as handed to the finisher.
    pub fn mark_finishing(&self, task_id: &str) {
        if let Some(held) = self.inner.lock().unwrap().get(task_id) {
            held.finishing.store(true, Ordering::SeqCst);
        }
    }

    /// Database ids of every held task, for the heartbeat.
    pub fn lease_ids(&self) -> Vec<i64> {
        self.inner.lock().unwrap().values().map(|h| h.lease.id).collect()
    }

    /// Stops the runs of tasks that were `checked` but are not in
    /// `still_held`: their lease was lost (reaped, cancelled, taken over).
    /// Tasks claimed after the check are left alone. Returns how many.
    pub fn cancel_lost(&self, checked: &[i64], still_held: &[i64]) -> usize {
        let still_held: std::collections::HashSet<i64> = still_held.iter().copied().collect();
        let checked: std::collections::HashSet<i64> = checked.iter().copied().collect();
        let map = self.inner.lock().unwrap();
        let mut lost = 0;
        for held in map.values() {
            let id = held.lease.id;
            let finishing = held.finishing.load(Ordering::SeqCst);
            if checked.contains(&id)
                && !still_held.contains(&id)
                && !finishing
                && !held.cancel.is_cancelled()
            {
                held.cancel.cancel();
                lost += 1;
            }
        }
        lost
    }

    /// Empties the map and returns every held task (for the hand-back).
    pub fn drain(&self) -> Vec<(String, Held)> {
        self.inner.lock().unwrap().drain().collect()
    }

    /// Number of held tasks.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().len()
    }

    /// True when no task is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
