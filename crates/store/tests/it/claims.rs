//! Claimable rewards: a worker key's jobs in settled sequences, paged in tree order.

use sheaf_store::{JobId, SequenceId, Store};

use crate::harness::{each_engine, plan, prove_next, reward, T0};

/// Proves every job of the planned sequences, alternating provers `a` and `b`.
async fn prove_all(store: &Store, jobs: usize) {
    for i in 0..jobs {
        prove_next(store, if i % 2 == 0 { "a" } else { "b" }).await;
    }
}

/// The jobs of `sequences` proved by `prover`, in tree order, from the rewards table.
async fn proved_by(store: &Store, prover: &str, sequences: &[u64]) -> Vec<JobId> {
    let mut jobs = Vec::new();
    for &sequence in sequences {
        for entry in store.rewards(SequenceId(sequence)).await.unwrap() {
            if entry.prover == prover {
                jobs.push(entry.job);
            }
        }
    }
    jobs
}

#[tokio::test]
async fn claimable_rewards_are_a_worker_keys_jobs_in_settled_sequences_paged_in_tree_order() {
    each_engine(|db| async move {
        let store = db.connect().await;
        // Two sequences of 5 leaves at arity 2 (11 jobs each); only the first is settled.
        plan(&store, 1, 5, 2).await;
        plan(&store, 2, 5, 2).await;
        prove_all(&store, 22).await;
        let a = reward("a").worker_pk;
        assert!(store
            .claimable_rewards(&a, None, 100)
            .await
            .unwrap()
            .is_empty());

        store
            .mark_sequences_settled(SequenceId(1), SequenceId(2), T0)
            .await
            .unwrap();
        let all = store.claimable_rewards(&a, None, 100).await.unwrap();
        let jobs: Vec<JobId> = all.iter().map(|r| r.job).collect();
        assert_eq!(jobs, proved_by(&store, "a", &[1]).await);
        assert!(!jobs.is_empty());
        assert!(all.iter().all(|r| r.worker_pk == a && r.work_units == 10));

        // Pages of two, each after the last job of the one before, read the same list.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store.claimable_rewards(&a, after, 2).await.unwrap();
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            after = Some(last.job);
            paged.extend(page.iter().map(|r| r.job));
        }
        assert_eq!(paged, jobs);

        // Another key sees its own; a key that proved nothing sees nothing.
        let b = store
            .claimable_rewards(&reward("b").worker_pk, None, 100)
            .await
            .unwrap();
        assert_eq!(
            b.iter().map(|r| r.job).collect::<Vec<_>>(),
            proved_by(&store, "b", &[1]).await
        );
        assert!(store
            .claimable_rewards(&[7; 32], None, 100)
            .await
            .unwrap()
            .is_empty());

        // Once the second sequence settles, its jobs follow the first's.
        store
            .mark_sequences_settled(SequenceId(2), SequenceId(3), T0)
            .await
            .unwrap();
        let both = store.claimable_rewards(&a, None, 100).await.unwrap();
        assert_eq!(
            both.iter().map(|r| r.job).collect::<Vec<_>>(),
            proved_by(&store, "a", &[1, 2]).await
        );
    })
    .await;
}
