//! The live console's reads, on each engine: tips, the newest sequences, counts per level, a
//! tree's light rows and a page of one level, the sender's steps without their bytes, settled
//! units per prover; and the change count the console's publisher watches.

use sheaf_store::{JobId, JobStatus, OutboxKind, SequenceId};

use crate::harness::{each_engine, outbox_tx, plan, prove_next, MAX_ATTEMPTS, T0};

#[tokio::test]
async fn console_reads_follow_a_sequence_from_planned_to_settled() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let tips = store.sequence_tips().await.unwrap();
        assert_eq!(
            (tips.published, tips.proven, tips.settled),
            (None, None, None)
        );
        plan(&store, 1, 2, 2).await;
        plan(&store, 2, 4, 2).await;
        let tips = store.sequence_tips().await.unwrap();
        assert_eq!(tips.published, Some(SequenceId(2)));
        assert_eq!((tips.proven, tips.settled), (None, None));

        // A lease is a change; a sweep that takes nothing back is not.
        let before = store.write_generation();
        let (_, first) = prove_next(&store, "alice").await;
        assert!(store.write_generation() > before);
        let quiet = store.write_generation();
        store.requeue_expired(T0, MAX_ATTEMPTS).await.unwrap();
        assert_eq!(store.write_generation(), quiet, "an empty sweep counted");

        // Sequence 1 proved (critical path first), then settled.
        let mut proved = first.sequence_proved;
        while !proved {
            proved = prove_next(&store, "alice").await.1.sequence_proved;
        }
        assert_eq!(
            store.sequence_tips().await.unwrap().proven,
            Some(SequenceId(1))
        );
        store
            .outbox_add(&outbox_tx(1, OutboxKind::ProofHash, 0, "a"), T0)
            .await
            .unwrap();
        store
            .mark_sequences_settled(SequenceId(1), SequenceId(2), T0)
            .await
            .unwrap();
        let tips = store.sequence_tips().await.unwrap();
        assert_eq!(tips.settled, Some(SequenceId(1)));

        let shown = store.console_sequences(10).await.unwrap();
        let ids: Vec<u64> = shown.iter().map(|s| s.id.get()).collect();
        assert_eq!(ids, [2, 1], "newest first");
        assert!(shown[1].settled_ms.is_some() && shown[0].settled_ms.is_none());
        assert_eq!(shown[1].block, None, "no rollup block");
        assert_eq!(store.console_sequences(1).await.unwrap().len(), 1);

        let counts = store.level_counts(SequenceId(2)).await.unwrap();
        assert!(counts.iter().all(|c| c.sequence == SequenceId(2)));
        let leaves: i64 = counts
            .iter()
            .filter(|c| c.level == 0)
            .map(|c| c.count)
            .sum();
        assert_eq!(leaves, 4);
        let one = store.level_counts(SequenceId(1)).await.unwrap();
        assert!(one
            .iter()
            .filter(|c| c.sequence == SequenceId(1))
            .all(|c| c.status == JobStatus::Proved));

        let jobs = store.console_jobs(SequenceId(2)).await.unwrap();
        assert_eq!(jobs[0].id, JobId::new(SequenceId(2), 0, 0));
        assert!(jobs
            .windows(2)
            .all(|w| (w[0].id.level, w[0].id.index) < (w[1].id.level, w[1].id.index)));
        let page = store.console_level(SequenceId(2), 0, 1, 2).await.unwrap();
        let indices: Vec<u64> = page.iter().map(|j| j.id.index).collect();
        assert_eq!(indices, [1, 2]);
        let proved_by: Vec<_> = store
            .console_jobs(SequenceId(1))
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.proved_by)
            .collect();
        assert!(proved_by.iter().all(|p| p.as_deref() == Some("alice")));

        let steps = store.outbox_steps(SequenceId(1)).await.unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].kind, OutboxKind::ProofHash);
        assert_eq!(steps[0].tx_hash, "hash-1-proof_hash-0-a");

        let units = store.settled_units_by_prover().await.unwrap();
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].0, "alice");
        assert!(units[0].1 > 0);
    })
    .await;
}
