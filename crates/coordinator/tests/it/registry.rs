//! The sweeper's copy of the registry into the store.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sheaf_coordinator::{Coordinator, CoordinatorConfig, Registry, RegistryError};
use sheaf_store::Prover;

use crate::harness::{circuits, sqlite_store, TestProver, LEAF_ROWS_LOG2};

/// A registry that returns its lists in turn (the last one forever) and reports a change only
/// when told to, like a registry that counts a read as seen.
struct Scripted {
    lists: Mutex<VecDeque<Vec<Prover>>>,
    changed: AtomicBool,
}

impl Registry for Scripted {
    fn admitted(&self) -> Result<Vec<Prover>, RegistryError> {
        self.changed.store(false, Ordering::SeqCst);
        let mut lists = self.lists.lock().unwrap();
        if lists.len() > 1 {
            Ok(lists.pop_front().unwrap())
        } else {
            Ok(lists[0].clone())
        }
    }

    fn changed(&self) -> bool {
        self.changed.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_registry_copy_that_failed_is_retried_at_the_next_sweep() {
    let alice = TestProver::new("alice").registered();
    let bob = TestProver::new("bob").registered();
    let registry = Arc::new(Scripted {
        lists: Mutex::new(VecDeque::from([
            vec![alice.clone()],
            // Bob listed twice: the store refuses the copy.
            vec![alice.clone(), bob.clone(), bob.clone()],
            vec![alice.clone(), bob.clone()],
        ])),
        changed: AtomicBool::new(false),
    });
    let (store, _dir) = sqlite_store().await;
    // No server, so no background sweeper: every sweep below is the test's own.
    let circuits = tokio::task::spawn_blocking(circuits).await.unwrap();
    let coordinator = Coordinator::new(
        store.clone(),
        circuits,
        LEAF_ROWS_LOG2,
        CoordinatorConfig::default(),
        Some(registry.clone()),
    )
    .await
    .unwrap();
    assert!(store
        .prover_by_key(&bob.public_key)
        .await
        .unwrap()
        .is_none());

    registry.changed.store(true, Ordering::SeqCst);
    assert!(
        coordinator.sweep().await.is_err(),
        "the bad list is refused"
    );
    assert!(!registry.changed(), "the registry counts the read as seen");
    assert!(store
        .prover_by_key(&bob.public_key)
        .await
        .unwrap()
        .is_none());

    coordinator.sweep().await.unwrap();
    let stored = store.prover_by_key(&bob.public_key).await.unwrap();
    assert_eq!(stored.map(|p| p.id), Some("bob".to_owned()));
}
