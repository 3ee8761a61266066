//! Roles one replica plays at a time: taken, renewed, refused to others while the lease runs,
//! taken over once it expired or was released, and fencing writes made in the role.

use sheaf_store::{NewOutboxTx, OutboxKind, Role, RoleFence, Store, StoreError};

use crate::harness::{each_engine, outbox_tx, T0};

const ROLE: &str = "sender:ab";
const TTL: i64 = 10_000;

/// `holder` takes or renews [`ROLE`] at `now` for [`TTL`].
async fn take(store: &Store, holder: &str, now: i64) -> Option<RoleFence> {
    store.role_acquire(ROLE, holder, now, TTL).await.unwrap()
}

/// A proof-hash transaction of sequence 1.
fn hash_tx(attempt: i64, tag: &str) -> NewOutboxTx {
    outbox_tx(1, OutboxKind::ProofHash, attempt, tag)
}

#[tokio::test]
async fn a_role_is_taken_renewed_and_refused_to_others_while_its_lease_runs() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert_eq!(store.role(ROLE).await.unwrap(), None);
        let a = take(&store, "a", T0).await;
        let a = a.expect("a free role is taken");
        assert_eq!((a.holder.as_str(), a.token), ("a", 1));
        // Renewing keeps the token and moves the expiry.
        let renewed = take(&store, "a", T0 + 5_000).await;
        assert_eq!(renewed, Some(a.clone()));
        // Another replica is refused up to the last millisecond of the lease.
        for now in [T0 + 5_001, T0 + 5_000 + TTL - 1] {
            assert_eq!(take(&store, "b", now).await, None);
        }
        assert_eq!(
            store.role(ROLE).await.unwrap(),
            Some(Role {
                name: ROLE.into(),
                holder: "a".into(),
                token: 1,
                expires_ms: T0 + 5_000 + TTL,
            })
        );
        // Other roles are independent.
        let other = store.role_acquire("sender:cd", "b", T0, TTL).await.unwrap();
        assert_eq!(other.map(|f| f.token), Some(1));
    })
    .await;
}

#[tokio::test]
async fn an_expired_role_is_taken_over_under_a_new_token() {
    each_engine(|db| async move {
        let store = db.connect().await;
        take(&store, "a", T0).await.unwrap();
        // At the expiry the lease is over (half-open).
        let b = take(&store, "b", T0 + TTL).await;
        assert_eq!(b.map(|f| (f.holder, f.token)), Some(("b".into(), 2)));
        // The old holder cannot renew its way back in while b's lease runs.
        assert_eq!(take(&store, "a", T0 + TTL + 1).await, None);
    })
    .await;
}

#[tokio::test]
async fn a_released_role_is_taken_at_once() {
    each_engine(|db| async move {
        let store = db.connect().await;
        take(&store, "a", T0).await.unwrap();
        // Only the holder releases.
        assert!(!store.role_release(ROLE, "b").await.unwrap());
        assert_eq!(take(&store, "b", T0 + 1).await, None);
        assert!(store.role_release(ROLE, "a").await.unwrap());
        let b = take(&store, "b", T0 + 1).await;
        assert_eq!(b.map(|f| f.token), Some(2));
    })
    .await;
}

#[tokio::test]
async fn a_write_under_a_taken_over_role_is_refused_and_changes_nothing() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let a = take(&store, "a", T0).await.unwrap();
        let first = store
            .outbox_add_fenced(&hash_tx(0, "a"), T0, &a)
            .await
            .unwrap();
        // An expired lease nobody took over still fences nothing out.
        let second = store
            .outbox_add_fenced(&hash_tx(1, "a"), T0 + TTL + 1, &a)
            .await
            .unwrap();
        let b = take(&store, "b", T0 + TTL + 2).await.unwrap();
        let err = store
            .outbox_add_fenced(&hash_tx(2, "a"), T0 + TTL + 3, &a)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::RoleLost { role, token: 1 } if role == ROLE),
            "{err}"
        );
        assert_eq!(store.outbox_all().await.unwrap(), vec![first, second]);
        // The new holder writes under its token.
        let third = store
            .outbox_add_fenced(&hash_tx(2, "b"), T0 + TTL + 3, &b)
            .await
            .unwrap();
        assert_eq!(third.tx, hash_tx(2, "b").tx);
    })
    .await;
}

#[tokio::test]
async fn of_concurrent_claims_on_a_free_role_exactly_one_wins() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let claims = (0..8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .role_acquire(ROLE, &format!("replica-{i}"), T0, TTL)
                    .await
                    .unwrap()
            })
        });
        let mut won = Vec::new();
        for claim in claims {
            won.extend(claim.await.unwrap());
        }
        assert_eq!(won.len(), 1, "{won:?}");
        assert_eq!(won[0].token, 1);
        let role = store.role(ROLE).await.unwrap().unwrap();
        assert_eq!(role.holder, won[0].holder);
    })
    .await;
}
