//! Databases made by the store before `sqlx::migrate!` (schema version 6, the former runner's
//! `schema_migrations`): the checked-in fixtures open, read back as stored and carry on.
//! `tests/fixtures/README.md` lists what they hold.

use sheaf_store::{
    proof_hash, JobCircuit, JobFilter, JobId, JobInputs, JobStatus, NewOutboxTx, OutboxKind,
    OutboxStatus, OutboxTx, Prover, Reward, Role, Sequence, SequenceId, StoreError, SCHEMA_VERSION,
};

use crate::harness::{each_v6_fixture, lease_at, reward, submit_as, TestDb, TTL};

/// The fixtures' clock starts here (milliseconds).
const T: i64 = 1_700_000_000_000;
/// Expiry of `bob`'s lease on `s2-l0-i2`.
const BOB_LEASE_EXPIRES_MS: i64 = 1_703_600_001_600;
const SENDER_ROLE: &str = "sender:0x00000000000000000000000000000000000000aa";

fn job(sequence: u64, level: u32, index: u64) -> JobId {
    JobId::new(SequenceId(sequence), level, index)
}

/// The versions in sqlx's history whose checksum is a SHA-384, i.e. recorded from this
/// build's files.
async fn sqlx_history(db: &TestDb) -> Vec<i64> {
    db.fetch_i64s(
        "SELECT version FROM _sqlx_migrations \
         WHERE success AND length(checksum) = 48 ORDER BY version",
    )
    .await
}

#[tokio::test]
async fn a_v6_database_of_the_former_runner_is_adopted_once() {
    each_v6_fixture(|db| async move {
        assert_eq!(SCHEMA_VERSION, 15);
        let store = db.connect().await;
        // Versions 1 to 6 adopted from the former runner, 7 to 15 applied by sqlx.
        assert_eq!(store.schema_version().await.unwrap(), 15, "[{}]", db.engine);
        assert_eq!(
            sqlx_history(&db).await,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        store.close().await;
        // A second open finds the history complete, with this build's checksums (sqlx would
        // refuse a mismatch), and applies nothing.
        let store = db.connect().await;
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(
            sqlx_history(&db).await,
            (1..=SCHEMA_VERSION).collect::<Vec<_>>()
        );
        // The former runner's table is left as it was, so a build of before still opens.
        assert_eq!(
            db.fetch_i64s("SELECT version FROM schema_migrations ORDER BY version")
                .await,
            [1, 2, 3, 4, 5, 6]
        );
        assert_eq!(store.list_sequences().await.unwrap().len(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_v6_database_with_a_newer_former_version_is_refused() {
    each_v6_fixture(|db| async move {
        // The former runner never went past 6; a version beyond this build's is refused.
        let future = SCHEMA_VERSION + 1;
        db.execute_raw(&format!(
            "INSERT INTO schema_migrations (version, name) VALUES ({future}, 'future')"
        ))
        .await;
        match sheaf_store::Store::connect(&db.url).await {
            Err(StoreError::SchemaTooNew { found, supported }) => {
                assert_eq!(
                    (found, supported),
                    (future, SCHEMA_VERSION),
                    "[{}]",
                    db.engine
                )
            }
            other => panic!("[{}] expected SchemaTooNew, got {other:?}", db.engine),
        }
    })
    .await;
}

#[tokio::test]
async fn a_v6_database_reads_back_as_stored() {
    each_v6_fixture(|db| async move {
        let store = db.connect().await;
        let sequence = |id, leaves, root, created_ms, proved_ms| Sequence {
            id: SequenceId(id),
            leaves,
            root,
            created_ms,
            proved_ms,
        };
        assert_eq!(
            store.list_sequences().await.unwrap(),
            [
                sequence(1, 2, job(1, 1, 0), T, Some(T + 205)),
                sequence(2, 4, job(2, 2, 0), T + 1000, None),
                sequence(3, 1, job(3, 0, 0), T + 2000, None),
            ]
        );

        let statuses: Vec<(JobId, JobStatus)> = store
            .list_jobs(JobFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|j| (j.id, j.status))
            .collect();
        use JobStatus::*;
        for expected in [
            (job(1, 0, 0), Proved),
            (job(1, 0, 1), Proved),
            (job(1, 1, 0), Proved),
            (job(2, 0, 0), Proved),
            (job(2, 0, 1), Proved),
            (job(2, 0, 2), Leased),
            (job(2, 0, 3), Ready),
            (job(2, 1, 0), Dead),
            (job(2, 1, 1), Waiting),
            (job(2, 2, 0), Waiting),
            (job(3, 0, 0), Cancelled),
        ] {
            assert!(statuses.contains(&expected), "[{}] {expected:?}", db.engine);
        }
        assert_eq!(statuses.len(), 11);

        let leaf = store.get_job(job(1, 0, 0)).await.unwrap().unwrap();
        let blob = store.proof_of(leaf.id).await.unwrap().unwrap();
        let mut expected_blob = b"proof of s1-l0-i0:".to_vec();
        expected_blob.extend(0u8..200);
        assert_eq!(blob, expected_blob);
        assert_eq!(
            (
                &leaf.circuit,
                &leaf.inputs,
                leaf.parent,
                leaf.proof_hash.as_deref(),
                leaf.proved_by.as_deref(),
                (leaf.proved_ms, leaf.leased_ms, leaf.prove_ms),
            ),
            (
                &JobCircuit::Leaf {
                    kind: "work".into()
                },
                &JobInputs::Work { seed: 1, index: 0 },
                Some(job(1, 1, 0)),
                Some(proof_hash(&blob).as_str()),
                Some("alice"),
                (Some(T + 5), Some(T), Some(4)),
            )
        );
        let root = store.get_job(job(2, 2, 0)).await.unwrap().unwrap();
        assert_eq!(
            (root.circuit, root.inputs, root.children),
            (
                JobCircuit::Universal,
                JobInputs::Aggregate,
                vec![job(2, 1, 0), job(2, 1, 1)]
            )
        );
        let node = store.get_job(job(2, 1, 0)).await.unwrap().unwrap();
        assert_eq!(
            node.circuit,
            JobCircuit::LeafNode {
                kind: "work".into()
            }
        );
        let leased = store.get_job(job(2, 0, 2)).await.unwrap().unwrap();
        assert_eq!(
            (
                leased.lease_holder.as_deref(),
                leased.lease_expires_ms,
                leased.attempts,
                leased.lease_token
            ),
            (Some("bob"), Some(BOB_LEASE_EXPIRES_MS), 1, 1)
        );

        let reward = |job, prover: &str, created_ms| Reward {
            job,
            prover: prover.into(),
            worker_pk: crate::harness::reward(prover).worker_pk,
            work_units: 10,
            created_ms,
        };
        assert_eq!(
            store.rewards(SequenceId(1)).await.unwrap(),
            [
                reward(job(1, 0, 0), "alice", T + 5),
                reward(job(1, 0, 1), "alice", T + 105),
                reward(job(1, 1, 0), "alice", T + 205),
            ]
        );
        assert_eq!(
            store.rewards(SequenceId(2)).await.unwrap(),
            [
                reward(job(2, 0, 0), "alice", T + 1105),
                reward(job(2, 0, 1), "bob", T + 1205),
            ]
        );
        assert_eq!(store.stored_proofs().await.unwrap().count, 5);

        let bob = Prover {
            id: "bob".into(),
            public_key: [2; 32],
            worker_pk: [b'f'; 32],
            rate_limit: 100,
            max_concurrent: 4,
        };
        assert_eq!(store.prover_by_key(&[2; 32]).await.unwrap(), Some(bob));
        assert_eq!(
            store.get_prover("alice").await.unwrap().unwrap().worker_pk,
            [b'e'; 32]
        );
        assert_eq!(store.count_active_leases("bob", T + 1700).await.unwrap(), 1);

        let outbox =
            |id, kind, attempt, status, created_ms, sent_ms, height, error: Option<&str>| {
                OutboxTx {
                    id,
                    sequence: SequenceId(1),
                    kind,
                    attempt,
                    tx_hash: format!("0x0{id}"),
                    tx: format!("signed 0{id}").into_bytes(),
                    status,
                    created_ms,
                    sent_ms,
                    included_height: height,
                    error: error.map(str::to_owned),
                }
            };
        assert_eq!(
            store.outbox_all().await.unwrap(),
            [
                outbox(
                    1,
                    OutboxKind::Register,
                    0,
                    OutboxStatus::Included,
                    T + 3100,
                    Some(T + 3200),
                    Some(42),
                    None
                ),
                outbox(
                    2,
                    OutboxKind::ProofHash,
                    0,
                    OutboxStatus::Failed,
                    T + 3300,
                    None,
                    None,
                    Some("window closed")
                ),
                outbox(
                    3,
                    OutboxKind::ProofHash,
                    1,
                    OutboxStatus::Sent,
                    T + 3400,
                    Some(T + 3500),
                    None,
                    None
                ),
                outbox(
                    4,
                    OutboxKind::Proof,
                    1,
                    OutboxStatus::Pending,
                    T + 3600,
                    None,
                    None,
                    None
                ),
            ]
        );
        assert_eq!(
            store.role(SENDER_ROLE).await.unwrap(),
            Some(Role {
                name: SENDER_ROLE.into(),
                holder: "replica-1".into(),
                token: 1,
                expires_ms: 1_703_600_003_000,
            })
        );
    })
    .await;
}

#[tokio::test]
async fn a_v6_database_carries_on() {
    each_v6_fixture(|db| async move {
        let store = db.connect().await;
        let now = T + 5000;

        // The one ready leaf is leased next; bob's lease from before is still current.
        let carol = lease_at(&store, "carol", now).await;
        assert_eq!(
            (carol.job, carol.token, carol.attempt),
            (job(2, 0, 3), 1, 1)
        );
        let outcome = submit_as(&store, &carol, "carol", now).await.unwrap();
        assert_eq!(outcome.parent_ready, None, "s2-l0-i2 is still leased");

        // bob's lease, granted before the switch, expires and is taken back.
        let expired = store
            .requeue_expired(BOB_LEASE_EXPIRES_MS, 3)
            .await
            .unwrap();
        assert_eq!(
            (expired.requeued, expired.dead),
            (vec![job(2, 0, 2)], vec![])
        );
        let late = store
            .submit_proof(
                job(2, 0, 2),
                1,
                "bob",
                b"late",
                reward("bob"),
                BOB_LEASE_EXPIRES_MS,
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(late, StoreError::StaleLease { token: 1, .. }),
            "{late:?}"
        );

        // Proving the rest of sequence 2, after an operator requeues its dead node.
        let later = BOB_LEASE_EXPIRES_MS + 1;
        assert_eq!(
            store.requeue_job(job(2, 1, 0)).await.unwrap(),
            JobStatus::Ready
        );
        let mut proved = Vec::new();
        let mut sequence_proved = false;
        while let Some(lease) = store.lease_next_job("alice", later, TTL).await.unwrap() {
            let outcome = submit_as(&store, &lease, "alice", later).await.unwrap();
            proved.push((lease.job, lease.token));
            sequence_proved |= outcome.sequence_proved;
        }
        assert_eq!(
            proved,
            [
                (job(2, 1, 0), 2),
                (job(2, 0, 2), 2),
                (job(2, 1, 1), 1),
                (job(2, 2, 0), 1)
            ]
        );
        assert!(sequence_proved);
        let sequence = store.get_sequence(SequenceId(2)).await.unwrap().unwrap();
        assert_eq!(sequence.proved_ms, Some(later));
        assert_eq!(store.rewards(SequenceId(2)).await.unwrap().len(), 2 + 5);

        // The outbox's ids carry on after the stored ones.
        let new = NewOutboxTx {
            sequence: SequenceId(2),
            kind: OutboxKind::Register,
            attempt: 0,
            tx_hash: "0x05".into(),
            tx: b"signed 05".to_vec(),
        };
        assert_eq!(store.outbox_add(&new, later).await.unwrap().id, 5);
        store.outbox_mark_sent(4, later).await.unwrap();

        // The role is held until it expires, then taken over under the next token.
        assert_eq!(
            store
                .role_acquire(SENDER_ROLE, "replica-2", now, TTL)
                .await
                .unwrap(),
            None
        );
        let taken = store
            .role_acquire(SENDER_ROLE, "replica-2", 1_703_600_003_000, TTL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.token, 2);

        // A stored nonce is a replay; pruning forgets the expired ones.
        assert!(!store
            .remember_nonce("alice", "nonce-1", now + 60_000)
            .await
            .unwrap());
        assert_eq!(store.prune_nonces(T + 31_000).await.unwrap(), 2);
    })
    .await;
}
