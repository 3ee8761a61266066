//! Leasing, heartbeats and expiry.

use sheaf_store::{JobCircuit, JobId, JobInputs, JobStatus, SequenceId, StoreError};

use crate::harness::{
    each_engine, lease_at, lease_expecting, plan, proof_for, reward, submit, submit_as,
    MAX_ATTEMPTS, T0, TTL,
};

#[tokio::test]
async fn lease_order_is_critical_path_first() {
    each_engine(|db| async move {
        let store = db.connect().await;
        // Planned out of order, so insertion order cannot pass for priority.
        plan(&store, 2, 2, 2).await;
        plan(&store, 1, 4, 2).await;
        let s1 = |level, index| JobId::new(SequenceId(1), level, index);

        let a = lease_expecting(&store, "p", s1(0, 0)).await;
        let b = lease_expecting(&store, "p", s1(0, 1)).await;
        submit(&store, &a).await;
        submit(&store, &b).await;
        // s1-l1-i0 is now ready: a higher level beats a lower index of the same sequence.
        lease_expecting(&store, "p", s1(1, 0)).await;
        lease_expecting(&store, "p", s1(0, 2)).await;
        lease_expecting(&store, "p", s1(0, 3)).await;
        // Sequence 1 has nothing ready left; only then does sequence 2 start.
        lease_expecting(&store, "p", JobId::new(SequenceId(2), 0, 0)).await;
    })
    .await;
}

#[tokio::test]
async fn lease_records_holder_expiry_attempt_and_token() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let lease = lease_expecting(&store, "alice", JobId::new(SequenceId(1), 0, 0)).await;
        assert_eq!(
            (lease.attempt, lease.token, lease.expires_ms),
            (1, 1, T0 + TTL)
        );
        assert_eq!(
            (lease.circuit, lease.inputs),
            (
                JobCircuit::Leaf {
                    kind: "work".into()
                },
                JobInputs::Work { seed: 1, index: 0 }
            )
        );
        let job = store.get_job(lease.job).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Leased);
        assert_eq!(job.lease_holder.as_deref(), Some("alice"));
        assert_eq!(job.lease_expires_ms, Some(T0 + TTL));
        assert_eq!((job.attempts, job.lease_token), (1, 1));
    })
    .await;
}

#[tokio::test]
async fn lease_returns_none_when_nothing_is_ready() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert_eq!(store.lease_next_job("p", T0, TTL).await.unwrap(), None);
        plan(&store, 1, 2, 2).await;
        lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 1)).await;
        // The root waits for its children.
        assert_eq!(store.lease_next_job("p", T0, TTL).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn lease_refuses_a_non_positive_ttl() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        for ttl in [0, -5] {
            let err = store.lease_next_job("p", T0, ttl).await.unwrap_err();
            assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
        }
        let err = store.lease_next_job("p", i64::MAX, 1).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
        // Nothing was leased by the refused calls.
        lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
    })
    .await;
}

#[tokio::test]
async fn count_active_leases_counts_only_current_leases_of_that_prover() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 4, 4).await;
        let first = lease_expecting(&store, "alice", JobId::new(SequenceId(1), 0, 0)).await;
        lease_at(&store, "alice", T0 + 10_000).await;
        lease_expecting(&store, "bob", JobId::new(SequenceId(1), 0, 2)).await;
        assert_eq!(store.count_active_leases("alice", T0).await.unwrap(), 2);
        assert_eq!(store.count_active_leases("bob", T0).await.unwrap(), 1);
        assert_eq!(store.count_active_leases("carol", T0).await.unwrap(), 0);
        // The first lease has expired at its expiry; the second runs 10 s longer.
        assert_eq!(
            store
                .count_active_leases("alice", first.expires_ms)
                .await
                .unwrap(),
            1
        );
        submit(&store, &first).await;
        assert_eq!(store.count_active_leases("alice", T0).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn heartbeat_extends_a_current_lease() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        let later = lease.expires_ms - 1;
        let expires = store
            .heartbeat(lease.job, lease.token, later, TTL)
            .await
            .unwrap();
        assert_eq!(expires, later + TTL);
        assert_eq!(
            store
                .get_job(lease.job)
                .await
                .unwrap()
                .unwrap()
                .lease_expires_ms,
            Some(later + TTL)
        );
        // Past the original expiry, the extended lease still takes the proof.
        submit_as(&store, &lease, "p", lease.expires_ms + 1)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn heartbeat_refuses_a_stale_token() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        for token in [lease.token - 1, lease.token + 1] {
            let err = store.heartbeat(lease.job, token, T0, TTL).await.unwrap_err();
            assert!(
                matches!(err, StoreError::StaleLease { job, token: t } if job == lease.job && t == token),
                "{err:?}"
            );
        }
        assert_eq!(
            store.get_job(lease.job).await.unwrap().unwrap().lease_expires_ms,
            Some(lease.expires_ms)
        );
    })
    .await;
}

#[tokio::test]
async fn heartbeat_refuses_an_expired_lease() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        let err = store
            .heartbeat(lease.job, lease.token, lease.expires_ms, TTL)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn requeue_expired_requeues_then_kills_after_max_attempts() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let doomed = JobId::new(SequenceId(1), 0, 0);
        let mut now = T0;
        // Each lease abandoned by another prover: distinct abandoners are what kill a job.
        for attempt in 1..=MAX_ATTEMPTS {
            let lease = lease_at(&store, &format!("p{attempt}"), now).await;
            assert_eq!((lease.job, lease.attempt), (doomed, attempt));
            // Not yet expired one millisecond before: nothing moves.
            let early = store
                .requeue_expired(lease.expires_ms - 1, MAX_ATTEMPTS)
                .await
                .unwrap();
            assert_eq!((early.requeued.len(), early.dead.len()), (0, 0));
            now = lease.expires_ms;
            let expired = store.requeue_expired(now, MAX_ATTEMPTS).await.unwrap();
            if attempt < MAX_ATTEMPTS {
                assert_eq!(expired.requeued, vec![doomed]);
                assert!(expired.dead.is_empty());
                let job = store.get_job(doomed).await.unwrap().unwrap();
                assert_eq!((job.status, job.lease_holder), (JobStatus::Ready, None));
            } else {
                assert!(expired.requeued.is_empty());
                assert_eq!(expired.dead, vec![doomed]);
            }
        }
        let job = store.get_job(doomed).await.unwrap().unwrap();
        assert_eq!((job.status, job.attempts), (JobStatus::Dead, MAX_ATTEMPTS));
        // A dead job is never leased again: the next lease is its sibling.
        let next = lease_at(&store, "p", now).await;
        assert_eq!(next.job, JobId::new(SequenceId(1), 0, 1));
        assert_eq!(store.lease_next_job("p", now, TTL).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn old_lease_is_stale_once_the_job_is_leased_again() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let old = lease_expecting(&store, "slow", JobId::new(SequenceId(1), 0, 0)).await;
        store
            .requeue_expired(old.expires_ms, MAX_ATTEMPTS)
            .await
            .unwrap();
        let new = lease_at(&store, "fast", old.expires_ms).await;
        assert_eq!((new.job, new.token), (old.job, old.token + 1));

        let now = old.expires_ms + 1;
        let err = store
            .heartbeat(old.job, old.token, now, TTL)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
        let err = store
            .submit_proof(
                old.job,
                old.token,
                "slow",
                b"late",
                reward("slow"),
                now,
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
        submit_as(&store, &new, "fast", now).await.unwrap();
        assert_eq!(
            store.proof_of(new.job).await.unwrap(),
            Some(proof_for(new.job))
        );
    })
    .await;
}

#[tokio::test]
async fn has_ready_job_follows_the_ready_set() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert!(!store.has_ready_job().await.unwrap(), "empty store");
        plan(&store, 1, 2, 2).await;
        assert!(store.has_ready_job().await.unwrap(), "the leaves are ready");
        let first = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        let second = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 1)).await;
        assert!(
            !store.has_ready_job().await.unwrap(),
            "leaves leased, the parent waits"
        );
        submit(&store, &first).await;
        assert!(
            !store.has_ready_job().await.unwrap(),
            "one child is not proved"
        );
        submit(&store, &second).await;
        assert!(
            store.has_ready_job().await.unwrap(),
            "the parent became ready"
        );
    })
    .await;
}
