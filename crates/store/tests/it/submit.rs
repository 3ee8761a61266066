//! Submitting proofs: fencing, exactly-once effect, releasing parents.

use sheaf_store::{
    JobCircuit, JobId, JobInputs, JobStatus, NewJob, NewSequence, SequenceId, Store, StoreError,
};

use crate::harness::{
    each_engine, lease_at, lease_expecting, plan, proof_for, prove_next, reward, status_of, submit,
    T0,
};

#[tokio::test]
async fn parent_becomes_ready_exactly_when_its_last_child_is_proved() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 3, 3).await;
        let root = JobId::new(SequenceId(1), 1, 0);
        for _ in 0..2 {
            let (_, outcome) = prove_next(&store, "p").await;
            assert_eq!(outcome.parent_ready, None);
            assert_eq!(status_of(&store, root).await, JobStatus::Waiting);
        }
        let (_, outcome) = prove_next(&store, "p").await;
        assert_eq!(outcome.parent_ready, Some(root));
        assert!(!outcome.sequence_proved);
        assert_eq!(status_of(&store, root).await, JobStatus::Ready);
    })
    .await;
}

#[tokio::test]
async fn root_proof_marks_the_sequence_proved() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        prove_next(&store, "p").await;
        prove_next(&store, "p").await;
        assert_eq!(
            store
                .get_sequence(SequenceId(1))
                .await
                .unwrap()
                .unwrap()
                .proved_ms,
            None
        );
        let (lease, outcome) = prove_next(&store, "p").await;
        assert_eq!(lease.job, JobId::new(SequenceId(1), 1, 0));
        assert!(outcome.sequence_proved);
        assert_eq!(outcome.parent_ready, None);
        let sequence = store.get_sequence(SequenceId(1)).await.unwrap().unwrap();
        assert_eq!((sequence.root, sequence.proved_ms), (lease.job, Some(T0)));
    })
    .await;
}

#[tokio::test]
async fn submit_refuses_a_stale_token() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        let err = refused(&store, lease.job, lease.token + 1, "p", T0, None).await;
        assert!(
            matches!(err, StoreError::StaleLease { job, token } if job == lease.job && token == lease.token + 1),
            "{err:?}"
        );
        assert_unchanged(&store, lease.job).await;
    })
    .await;
}

#[tokio::test]
async fn submit_refuses_an_expired_lease() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        // Expired at its expiry, even before requeue_expired has run.
        for now in [lease.expires_ms, lease.expires_ms + 1] {
            let err = refused(&store, lease.job, lease.token, "p", now, None).await;
            assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
        }
        assert_unchanged(&store, lease.job).await;
    })
    .await;
}

#[tokio::test]
async fn submit_refuses_a_prover_other_than_the_holder() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let lease = lease_expecting(&store, "alice", JobId::new(SequenceId(1), 0, 0)).await;
        let err = refused(&store, lease.job, lease.token, "mallory", T0, None).await;
        assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
        assert_unchanged(&store, lease.job).await;
    })
    .await;
}

#[tokio::test]
async fn submit_refuses_a_job_that_is_not_leased() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        // A ready leaf and a waiting parent, neither ever leased: token 0 is not a lease.
        for job in [
            JobId::new(SequenceId(1), 0, 0),
            JobId::new(SequenceId(1), 1, 0),
        ] {
            let err = refused(&store, job, 0, "p", T0, None).await;
            assert!(matches!(err, StoreError::StaleLease { .. }), "{err:?}");
        }
        assert_eq!(store.stored_proofs().await.unwrap().count, 0);
    })
    .await;
}

#[tokio::test]
async fn duplicate_submit_gives_one_blob_and_one_reward() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        let first = submit(&store, &lease).await;
        // The same submission again, and one with other bytes: neither takes effect.
        for bytes in [proof_for(lease.job), b"other bytes".to_vec()] {
            let err = store
                .submit_proof(
                    lease.job,
                    lease.token,
                    "p",
                    &bytes,
                    reward("p"),
                    T0 + 1,
                    None,
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, StoreError::AlreadyProved(job) if job == lease.job),
                "{err:?}"
            );
        }
        let stored = store.stored_proofs().await.unwrap();
        assert_eq!(stored.count, 1);
        assert_eq!(stored.bytes, proof_for(lease.job).len() as i64);
        assert_eq!(store.rewards(SequenceId(1)).await.unwrap().len(), 1);
        let job = store.get_job(lease.job).await.unwrap().unwrap();
        assert_eq!(job.proof_hash, Some(first.proof_hash));
        assert_eq!(
            (job.proved_by.as_deref(), job.proved_ms),
            (Some("p"), Some(T0))
        );
        assert_eq!(
            store.proof_of(lease.job).await.unwrap(),
            Some(proof_for(lease.job))
        );
    })
    .await;
}

#[tokio::test]
async fn identical_proofs_of_two_jobs_share_one_blob() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let mut hashes = Vec::new();
        for index in 0..2 {
            let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, index)).await;
            let outcome = store
                .submit_proof(lease.job, lease.token, "p", b"same", reward("p"), T0, None)
                .await
                .unwrap();
            hashes.push(outcome.proof_hash);
        }
        assert_eq!(hashes[0], hashes[1]);
        assert_eq!(hashes[0], sheaf_store::proof_hash(b"same"));
        assert_eq!(store.stored_proofs().await.unwrap().count, 1);
        // Each job still has its own reward entry.
        assert_eq!(store.rewards(SequenceId(1)).await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn reward_entry_records_the_leasing_prover_and_its_work() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let (a, _) = prove_next(&store, "alice").await;
        let (b, _) = prove_next(&store, "bob").await;
        let rewards = store.rewards(SequenceId(1)).await.unwrap();
        let got: Vec<_> = rewards
            .iter()
            .map(|r| {
                (
                    r.job,
                    r.prover.as_str(),
                    r.worker_pk,
                    r.work_units,
                    r.created_ms,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (a.job, "alice", reward("alice").worker_pk, 10, T0),
                (b.job, "bob", reward("bob").worker_pk, 10, T0),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn child_proofs_come_in_child_order() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let leaf = |index| NewJob {
            id: JobId::new(SequenceId(1), 0, index),
            circuit: JobCircuit::Leaf {
                kind: "work".into(),
            },
            inputs: JobInputs::Work { seed: 1, index },
            children: vec![],
        };
        let root = JobId::new(SequenceId(1), 1, 0);
        // Child order is the plan's, not the index order.
        let order = vec![
            JobId::new(SequenceId(1), 0, 2),
            JobId::new(SequenceId(1), 0, 0),
            JobId::new(SequenceId(1), 0, 1),
        ];
        let jobs = vec![
            leaf(0),
            leaf(1),
            leaf(2),
            NewJob {
                id: root,
                circuit: JobCircuit::Universal,
                inputs: JobInputs::Aggregate,
                children: order.clone(),
            },
        ];
        let sequence = NewSequence {
            id: SequenceId(1),
            leaves: 3,
            created_ms: T0,
        };
        store.insert_sequence(sequence, &jobs).await.unwrap();
        assert_eq!(store.get_job(root).await.unwrap().unwrap().children, order);

        prove_next(&store, "p").await;
        let err = store.child_proofs(root).await.unwrap_err();
        assert!(matches!(err, StoreError::NotProved(_)), "{err:?}");
        prove_next(&store, "p").await;
        prove_next(&store, "p").await;
        let expected: Vec<_> = order.iter().map(|&id| (id, proof_for(id))).collect();
        assert_eq!(store.child_proofs(root).await.unwrap(), expected);
        assert_eq!(store.child_proofs(order[0]).await.unwrap(), vec![]);
    })
    .await;
}

/// The job is still leased, with no proof and no reward.
/// Submits `b"x"` for `job` under `token` as `prover` at `now`, with `prover`'s reward, expecting
/// the store to refuse it.
async fn refused(
    store: &Store,
    job: JobId,
    token: i64,
    prover: &str,
    now: i64,
    prove_ms: Option<i64>,
) -> StoreError {
    store
        .submit_proof(job, token, prover, b"x", reward(prover), now, prove_ms)
        .await
        .unwrap_err()
}

async fn assert_unchanged(store: &Store, job: JobId) {
    let stored = store.get_job(job).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Leased);
    assert_eq!(stored.proof_hash, None);
    assert_eq!(store.proof_of(job).await.unwrap(), None);
    assert_eq!(store.stored_proofs().await.unwrap().count, 0);
    assert!(store.rewards(job.sequence).await.unwrap().is_empty());
}

#[tokio::test]
async fn submit_records_the_reported_proving_time_and_the_lease_time() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 2, 2).await;
        let lease = lease_at(&store, "p", T0 + 7).await;
        store
            .submit_proof(
                lease.job,
                lease.token,
                "p",
                &proof_for(lease.job),
                reward("p"),
                T0 + 900,
                Some(850),
            )
            .await
            .unwrap();
        let job = store.get_job(lease.job).await.unwrap().unwrap();
        assert_eq!((job.leased_ms, job.prove_ms), (Some(T0 + 7), Some(850)));
        // Without a report, the proving time stays unknown.
        let (other, _) = prove_next(&store, "p").await;
        let job = store.get_job(other.job).await.unwrap().unwrap();
        assert_eq!((job.leased_ms, job.prove_ms), (Some(T0), None));
    })
    .await;
}

#[tokio::test]
async fn submit_refuses_a_negative_proving_time() {
    each_engine(|db| async move {
        let store = db.connect().await;
        plan(&store, 1, 1, 2).await;
        let lease = lease_expecting(&store, "p", JobId::new(SequenceId(1), 0, 0)).await;
        let err = refused(&store, lease.job, lease.token, "p", T0, Some(-1)).await;
        assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
        assert_unchanged(&store, lease.job).await;
    })
    .await;
}
