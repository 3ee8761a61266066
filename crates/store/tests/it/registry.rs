//! The prover registry and sequence listing.

use sheaf_store::{LeaseOutcome, Prover, SequenceId, StoreError};

use crate::admission::prover;
use crate::harness::{each_engine, plan, TestDb, T0, TTL};

#[tokio::test]
async fn upsert_prover_registers_then_replaces() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert_eq!(store.get_prover("alice").await.unwrap(), None);
        let mut alice = prover("alice", 10, 2);
        store.upsert_prover(&alice).await.unwrap();
        assert_eq!(
            store.get_prover("alice").await.unwrap(),
            Some(alice.clone())
        );
        alice.rate_limit = 20;
        alice.public_key = [3; 32];
        alice.worker_pk = [9; 32];
        store.upsert_prover(&alice).await.unwrap();
        assert_eq!(store.get_prover("alice").await.unwrap(), Some(alice));
    })
    .await;
}

#[tokio::test]
async fn sync_provers_adds_updates_and_removes() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let (alice, bob, carol) = (
            prover("alice", 1, 1),
            prover("bob", 2, 2),
            prover("carol", 3, 3),
        );
        store
            .sync_provers(&[alice.clone(), bob.clone()])
            .await
            .unwrap();
        assert_eq!(store.get_prover("alice").await.unwrap(), Some(alice));
        assert_eq!(store.get_prover("bob").await.unwrap(), Some(bob.clone()));

        let bob = Prover {
            rate_limit: 20,
            ..bob
        };
        store
            .sync_provers(&[bob.clone(), carol.clone()])
            .await
            .unwrap();
        assert_eq!(store.get_prover("alice").await.unwrap(), None);
        assert_eq!(store.get_prover("bob").await.unwrap(), Some(bob));
        assert_eq!(store.get_prover("carol").await.unwrap(), Some(carol));

        store.sync_provers(&[]).await.unwrap();
        assert_eq!(store.get_prover("bob").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_removed_prover_can_no_longer_lease() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 4, 4).await;
        store
            .sync_provers(&[prover("alice", 10, 10), prover("bob", 10, 10)])
            .await
            .unwrap();
        let outcome = store
            .lease_admitted("alice", T0, TTL, 60_000)
            .await
            .unwrap();
        assert!(matches!(outcome, LeaseOutcome::Leased(_)), "{outcome:?}");
        store.sync_provers(&[prover("bob", 10, 10)]).await.unwrap();
        let err = store
            .lease_admitted("alice", T0, TTL, 60_000)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownProver(_)), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn sync_provers_moves_keys_between_provers() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let alice = prover("alice", 1, 1);
        let bob = prover("bob", 1, 1);
        store
            .sync_provers(&[alice.clone(), bob.clone()])
            .await
            .unwrap();
        let swapped = [
            Prover {
                public_key: bob.public_key,
                ..alice.clone()
            },
            Prover {
                public_key: alice.public_key,
                ..bob.clone()
            },
        ];
        store.sync_provers(&swapped).await.unwrap();
        assert_eq!(
            store.prover_by_key(&alice.public_key).await.unwrap(),
            Some(swapped[1].clone())
        );
        assert_eq!(
            store.prover_by_key(&bob.public_key).await.unwrap(),
            Some(swapped[0].clone())
        );
        // A removed prover's key can go to a new one in the same sync.
        let dave = Prover {
            public_key: alice.public_key,
            ..prover("dave", 1, 1)
        };
        store
            .sync_provers(std::slice::from_ref(&dave))
            .await
            .unwrap();
        assert_eq!(
            store.prover_by_key(&alice.public_key).await.unwrap(),
            Some(dave)
        );
    })
    .await;
}

/// Each registry of `refused` is refused, and changes nothing: the one stored before stays as
/// it was.
async fn assert_syncs_refused(db: TestDb, refused: &[&[Prover]]) {
    let store = db.connect().await;
    let kept = prover("kept", 1, 1);
    store
        .sync_provers(std::slice::from_ref(&kept))
        .await
        .unwrap();
    for provers in refused {
        let err = store.sync_provers(provers).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
        assert_eq!(
            store.get_prover(&kept.id).await.unwrap(),
            Some(kept.clone())
        );
    }
}

#[tokio::test]
async fn sync_provers_refuses_a_repeated_id() {
    each_engine(|db| async move {
        let twice = [
            prover("alice", 1, 1),
            Prover {
                public_key: [7; 32],
                ..prover("alice", 1, 1)
            },
        ];
        assert_syncs_refused(db, &[&twice]).await;
    })
    .await;
}

#[tokio::test]
async fn sync_provers_refuses_a_shared_public_key() {
    each_engine(|db| async move {
        let shared = [
            prover("alice", 1, 1),
            Prover {
                public_key: prover("alice", 1, 1).public_key,
                ..prover("bob", 1, 1)
            },
        ];
        assert_syncs_refused(db, &[&shared]).await;
    })
    .await;
}

#[tokio::test]
async fn sync_provers_refuses_a_negative_limit() {
    each_engine(|db| async move {
        let negative_rate = [prover("alice", -1, 1)];
        let negative_slots = [prover("alice", 1, -1)];
        assert_syncs_refused(db, &[&negative_rate, &negative_slots]).await;
    })
    .await;
}

#[tokio::test]
async fn prover_by_key_finds_the_registered_prover() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let alice = prover("alice", 1, 1);
        store.upsert_prover(&alice).await.unwrap();
        assert_eq!(
            store.prover_by_key(&alice.public_key).await.unwrap(),
            Some(alice)
        );
        assert_eq!(store.prover_by_key(&[0x55; 32]).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn list_sequences_orders_by_id() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert_eq!(store.list_sequences().await.unwrap(), vec![]);
        for id in [3, 1, 2] {
            plan(&store, id, 2, 2).await;
        }
        let sequences = store.list_sequences().await.unwrap();
        let ids: Vec<SequenceId> = sequences.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![SequenceId(1), SequenceId(2), SequenceId(3)]);
        assert_eq!(
            sequences[0],
            store.get_sequence(SequenceId(1)).await.unwrap().unwrap()
        );
    })
    .await;
}
