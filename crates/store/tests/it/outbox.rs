//! The proof sender's outbox: signed transactions stored before they are sent.

use sheaf_store::{OutboxKind, OutboxStatus, SequenceId, StoreError};

use crate::harness::{each_engine, outbox_tx, T0};

#[tokio::test]
async fn outbox_add_stores_pending_and_is_idempotent_for_the_same_transaction() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let new = outbox_tx(1, OutboxKind::ProofHash, 0, "a");
        let stored = store.outbox_add(&new, T0).await.unwrap();
        assert_eq!(stored.status, OutboxStatus::Pending);
        assert_eq!(
            (stored.sequence, stored.kind, stored.attempt),
            (SequenceId(1), OutboxKind::ProofHash, 0)
        );
        assert_eq!(stored.tx, new.tx);
        assert_eq!(stored.created_ms, T0);
        // A restarted sender storing the same signed transaction gets the stored one back.
        let again = store.outbox_add(&new, T0 + 5).await.unwrap();
        assert_eq!(again, stored);
        assert_eq!(store.outbox_open().await.unwrap(), vec![stored]);
    })
    .await;
}

#[tokio::test]
async fn outbox_add_refuses_a_second_transaction_for_the_same_step() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let first = store
            .outbox_add(&outbox_tx(1, OutboxKind::Proof, 0, "a"), T0)
            .await
            .unwrap();
        let err = store
            .outbox_add(&outbox_tx(1, OutboxKind::Proof, 0, "b"), T0)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::OutboxStepTaken {
                sequence: SequenceId(1),
                kind: "proof",
                attempt: 0
            }
        ));
        // Nothing changed; the next window's attempt is a new step.
        assert_eq!(store.outbox_open().await.unwrap(), vec![first]);
        store
            .outbox_add(&outbox_tx(1, OutboxKind::Proof, 1, "b"), T0)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn outbox_open_lists_in_flight_transactions_in_sending_order() {
    each_engine(|db| async move {
        let store = db.connect().await;
        for new in [
            outbox_tx(2, OutboxKind::ProofHash, 0, "x"),
            outbox_tx(1, OutboxKind::Proof, 0, "x"),
            outbox_tx(1, OutboxKind::ProofHash, 0, "x"),
            outbox_tx(3, OutboxKind::ProofHash, 0, "x"),
        ] {
            store.outbox_add(&new, T0).await.unwrap();
        }
        let done = store
            .outbox_get(SequenceId(3), OutboxKind::ProofHash, 0)
            .await
            .unwrap()
            .unwrap();
        store.outbox_mark_included(done.id, 7).await.unwrap();
        let open: Vec<_> = store
            .outbox_open()
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.sequence, t.kind))
            .collect();
        assert_eq!(
            open,
            [
                (SequenceId(1), OutboxKind::ProofHash),
                (SequenceId(1), OutboxKind::Proof),
                (SequenceId(2), OutboxKind::ProofHash)
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn outbox_transactions_move_pending_sent_included() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let id = store
            .outbox_add(&outbox_tx(1, OutboxKind::ProofHash, 0, "a"), T0)
            .await
            .unwrap()
            .id;
        store.outbox_mark_sent(id, T0 + 1).await.unwrap();
        // Sending again (a resend after a restart) keeps the first time.
        store.outbox_mark_sent(id, T0 + 9).await.unwrap();
        store.outbox_mark_included(id, 42).await.unwrap();
        let stored = store
            .outbox_get(SequenceId(1), OutboxKind::ProofHash, 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, OutboxStatus::Included);
        assert_eq!(
            (stored.sent_ms, stored.included_height),
            (Some(T0 + 1), Some(42))
        );
        assert!(store.outbox_open().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn outbox_refuses_moves_its_state_does_not_allow() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let included = store
            .outbox_add(&outbox_tx(1, OutboxKind::ProofHash, 0, "a"), T0)
            .await
            .unwrap()
            .id;
        store.outbox_mark_included(included, 3).await.unwrap();
        let err = store
            .outbox_mark_failed(included, "late")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::OutboxTransition {
                from: "included",
                to: "failed",
                ..
            }
        ));
        let failed = store
            .outbox_add(&outbox_tx(1, OutboxKind::Proof, 0, "a"), T0)
            .await
            .unwrap()
            .id;
        store
            .outbox_mark_failed(failed, "window closed")
            .await
            .unwrap();
        let err = store.outbox_mark_sent(failed, T0).await.unwrap_err();
        assert!(matches!(
            err,
            StoreError::OutboxTransition {
                from: "failed",
                to: "sent",
                ..
            }
        ));
        let stored = store
            .outbox_get(SequenceId(1), OutboxKind::Proof, 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.error.as_deref(), Some("window closed"));
    })
    .await;
}

#[tokio::test]
async fn outbox_moves_of_unknown_ids_are_refused() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let err = store.outbox_mark_sent(99, T0).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownOutboxTx(99)));
    })
    .await;
}

#[tokio::test]
async fn outbox_latest_is_the_highest_attempt_of_a_kind() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert_eq!(
            store
                .outbox_latest(SequenceId(2), OutboxKind::ProofHash)
                .await
                .unwrap(),
            None
        );
        let register = store
            .outbox_add(&outbox_tx(2, OutboxKind::Register, 0, "r"), T0)
            .await
            .unwrap();
        let first = store
            .outbox_add(&outbox_tx(2, OutboxKind::ProofHash, 0, "a"), T0)
            .await
            .unwrap();
        store
            .outbox_mark_failed(first.id, "window closed")
            .await
            .unwrap();
        let second = store
            .outbox_add(&outbox_tx(2, OutboxKind::ProofHash, 1, "b"), T0 + 1)
            .await
            .unwrap();
        store
            .outbox_add(&outbox_tx(3, OutboxKind::ProofHash, 4, "c"), T0 + 2)
            .await
            .unwrap();
        let latest = store
            .outbox_latest(SequenceId(2), OutboxKind::ProofHash)
            .await
            .unwrap();
        assert_eq!(latest, Some(second.clone()));
        assert_eq!(
            store
                .outbox_latest(SequenceId(2), OutboxKind::Register)
                .await
                .unwrap(),
            Some(register.clone())
        );
        assert_eq!(
            store
                .outbox_latest(SequenceId(2), OutboxKind::Proof)
                .await
                .unwrap(),
            None
        );
        // Registrations go out before the hashes of their sequence.
        let open: Vec<i64> = store
            .outbox_open()
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(open[..2], [register.id, second.id]);
        assert_eq!(store.outbox_all().await.unwrap().len(), 4);
    })
    .await;
}
