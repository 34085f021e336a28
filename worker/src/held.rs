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

impl Held {
    /// Marks this run's outcome as handed to the finisher.
    pub fn mark_finishing(&self) {
        self.finishing.store(true, Ordering::SeqCst);
    }
}

impl HeldTasks {
    /// Records a newly claimed task; returns its cancel flag. If this
    /// process still held an earlier claim of the same task (its lease was
    /// reaped while the run stalled, and this process claimed it again), that
    /// run is cancelled: its lease is gone and its outcome would be refused.
    pub fn insert(&self, task_id: &str, lease: Lease) -> Cancel {
        let cancel = Cancel::new();
        let held =
            Held { lease, cancel: cancel.clone(), finishing: Arc::new(AtomicBool::new(false)) };
        if let Some(earlier) = self.inner.lock().unwrap().insert(task_id.to_string(), held) {
            earlier.cancel.cancel();
        }
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

    /// Forgets this claim of a task once its outcome is settled; a newer
    /// claim of the same task (see [`HeldTasks::insert`]) is kept.
    pub fn remove_claim(&self, task_id: &str, lease: &Lease) {
        let mut inner = self.inner.lock().unwrap();
        if inner.get(task_id).is_some_and(|held| held.lease == *lease) {
            inner.remove(task_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(owner: &str, token: i32) -> Lease {
        Lease { id: 7, owner: owner.to_string(), token }
    }

    #[test]
    fn a_second_claim_cancels_the_first_run_and_outlives_its_removal() {
        let held = HeldTasks::default();
        let first = held.insert("t7", lease("w#1", 1));
        let second = held.insert("t7", lease("w#2", 2));
        assert!(first.is_cancelled(), "the earlier run's lease is gone: it must stop");
        assert!(!second.is_cancelled());
        // The first run ends and forgets its claim: the second stays held.
        held.remove_claim("t7", &lease("w#1", 1));
        assert_eq!(held.get("t7").map(|h| h.lease), Some(lease("w#2", 2)));
        held.remove_claim("t7", &lease("w#2", 2));
        assert!(held.is_empty());
    }

    #[test]
    fn lost_leases_are_cancelled_unless_finishing() {
        let held = HeldTasks::default();
        let a = held.insert("a", Lease { id: 1, owner: "w#1".into(), token: 1 });
        let b = held.insert("b", Lease { id: 2, owner: "w#1".into(), token: 1 });
        held.get("b").unwrap().mark_finishing();
        assert_eq!(held.cancel_lost(&[1, 2], &[]), 1);
        assert!(a.is_cancelled());
        assert!(!b.is_cancelled(), "an outcome already with the finisher is not stopped");
    }
}
