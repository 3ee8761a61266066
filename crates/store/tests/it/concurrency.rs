//! Many tasks, and two store handles (two coordinator replicas), on one database at once.

use std::collections::HashSet;

use sheaf_store::{JobId, JobStatus, SequenceId, StoreError};

use crate::harness::{each_engine, lease_at, plan, prove_next, status_of, submit_as, T0, TTL};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_leases_never_hand_out_a_job_twice() {
    each_engine(|db| async move {
        const LEAVES: u64 = 40;
        const TASKS: usize = 20;
        let replicas = db.replicas().await;
        plan(&replicas[0], 1, LEAVES, LEAVES as usize).await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let store = replicas[task % 2].clone();
                tokio::spawn(async move {
                    let prover = format!("prover-{task}");
                    let mut leased = Vec::new();
                    while let Some(lease) = store.lease_next_job(&prover, T0, TTL).await.unwrap() {
                        leased.push(lease.job);
                    }
                    leased
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let distinct: HashSet<JobId> = all.iter().copied().collect();
        assert_eq!(all.len(), distinct.len(), "a job was leased twice");
        let leaves: HashSet<JobId> = (0..LEAVES)
            .map(|i| JobId::new(SequenceId(1), 0, i))
            .collect();
        assert_eq!(distinct, leaves);
        for job in leaves {
            let job = replicas[0].get_job(job).await.unwrap().unwrap();
            assert_eq!((job.status, job.lease_token), (JobStatus::Leased, 1));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_submissions_store_one_proof_and_one_reward() {
    each_engine(|db| async move {
        const TASKS: usize = 50;
        let replicas = db.replicas().await;
        plan(&replicas[0], 1, 2, 2).await;
        let lease = lease_at(&replicas[0], "p", T0).await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let store = replicas[task % 2].clone();
                let lease = lease.clone();
                tokio::spawn(async move { submit_as(&store, &lease, "p", T0).await })
            })
            .collect();
        let mut stored = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => stored += 1,
                Err(StoreError::AlreadyProved(job)) => assert_eq!(job, lease.job),
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
        assert_eq!(stored, 1);
        assert_eq!(replicas[0].stored_proofs().await.unwrap().count, 1);
        assert_eq!(replicas[1].rewards(SequenceId(1)).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sibling_submissions_release_the_parent_exactly_once() {
    each_engine(|db| async move {
        const SIBLINGS: u64 = 16;
        let replicas = db.replicas().await;
        // Several rounds: a write-skew race would not lose every time.
        for sequence in 1..=5 {
            plan(&replicas[0], sequence, SIBLINGS, SIBLINGS as usize).await;
            let mut leases = Vec::new();
            for _ in 0..SIBLINGS {
                leases.push(lease_at(&replicas[0], "p", T0).await);
            }
            let tasks: Vec<_> = leases
                .into_iter()
                .enumerate()
                .map(|(i, lease)| {
                    let store = replicas[i % 2].clone();
                    tokio::spawn(async move { submit_as(&store, &lease, "p", T0).await.unwrap() })
                })
                .collect();
            let mut released = Vec::new();
            for task in tasks {
                released.extend(task.await.unwrap().parent_ready);
            }
            let root = JobId::new(SequenceId(sequence), 1, 0);
            assert_eq!(released, vec![root], "sequence {sequence}");
            assert_eq!(status_of(&replicas[1], root).await, JobStatus::Ready);
            // Prove the root, so the next round leases only the next sequence's leaves.
            let (lease, outcome) = prove_next(&replicas[1], "p").await;
            assert_eq!((lease.job, outcome.sequence_proved), (root, true));
        }
    })
    .await;
}
