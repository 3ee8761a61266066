//! Replay protection: remembered request nonces.

use crate::harness::{each_engine, T0};

#[tokio::test]
async fn remember_nonce_is_true_once_per_key_and_nonce() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert!(store.remember_nonce("k1", "n1", T0).await.unwrap());
        assert!(!store.remember_nonce("k1", "n1", T0).await.unwrap());
        // A replay with another expiry is still a replay, and changes nothing.
        assert!(!store.remember_nonce("k1", "n1", T0 + 1_000).await.unwrap());
        assert_eq!(store.prune_nonces(T0).await.unwrap(), 1);
        // Another nonce of the same key, or the same nonce of another key, is new.
        assert!(store.remember_nonce("k1", "n2", T0).await.unwrap());
        assert!(store.remember_nonce("k2", "n2", T0).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn prune_nonces_forgets_exactly_the_expired_ones() {
    each_engine(|db| async move {
        let store = db.connect().await;
        for (nonce, expires) in [("a", T0 - 1), ("b", T0), ("c", T0 + 1)] {
            assert!(store.remember_nonce("k", nonce, expires).await.unwrap());
        }
        assert_eq!(store.prune_nonces(T0).await.unwrap(), 2);
        assert_eq!(store.prune_nonces(T0).await.unwrap(), 0);
        // The one not expired is still remembered; the pruned ones are forgotten.
        assert!(!store.remember_nonce("k", "c", T0 + 1).await.unwrap());
        assert!(store.remember_nonce("k", "a", T0 + 1).await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_nonces_are_remembered_exactly_once() {
    each_engine(|db| async move {
        const TASKS: usize = 32;
        let replicas = db.replicas().await;
        for round in 0..5 {
            let nonce = format!("nonce-{round}");
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| {
                    let store = replicas[task % 2].clone();
                    let nonce = nonce.clone();
                    tokio::spawn(async move { store.remember_nonce("k", &nonce, T0).await })
                })
                .collect();
            let mut first = 0;
            for task in tasks {
                if task.await.unwrap().unwrap() {
                    first += 1;
                }
            }
            assert_eq!(first, 1, "{nonce}");
        }
    })
    .await;
}
