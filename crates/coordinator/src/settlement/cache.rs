//! The three caches between the stages: final proofs, hashes to watch, proofs to reveal.

use std::collections::BTreeMap;

use sheaf_chain::settlement::SequenceId;
use tokio::sync::Notify;

/// A cache of one stage: sorted by sequence, deduplicated, with a wake-up for its task.
pub(super) struct Cache<T> {
    items: std::sync::Mutex<BTreeMap<SequenceId, T>>,
    pub(super) wake: Notify,
}

impl<T: Clone> Cache<T> {
    pub(super) fn new() -> Self {
        Cache {
            items: std::sync::Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SequenceId, T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `sequence` unless it is there already.
    pub(super) fn push(&self, sequence: SequenceId, item: T) {
        self.lock().entry(sequence).or_insert(item);
        self.wake.notify_one();
    }

    pub(super) fn remove(&self, sequence: SequenceId) {
        self.lock().remove(&sequence);
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    /// The entries, lowest sequence first.
    pub(super) fn snapshot(&self) -> Vec<(SequenceId, T)> {
        self.lock().iter().map(|(s, t)| (*s, t.clone())).collect()
    }

    pub(super) fn contains(&self, sequence: SequenceId) -> bool {
        self.lock().contains_key(&sequence)
    }
}

/// A committed hash to watch: the attempt whose transaction it is.
#[derive(Clone, Copy, Debug)]
pub(super) struct Watch {
    pub(super) attempt: i64,
}

/// A proof to reveal: the attempt of its hash and the block that opened its window.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reveal {
    pub(super) attempt: i64,
    pub(super) opened_at: u64,
}
