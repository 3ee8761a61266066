//! The rollup block producer's tables: transactions as they arrive, blocks published with the
//! sequence that proves them in one transaction, reverts, the published and the proven tip.

use sheaf_store::{
    Job, JobFilter, JobId, JobStatus, NewRollupTransaction, NewSequence, ProvedLeaf,
    PublishedBlock, RewardEntry, RollupBlock, RollupTransaction, RollupTxStatus, Sequence,
    SequenceId, Store, StoreError,
};

use crate::harness::{each_engine, each_v6_fixture, prove_next, status_of, tree, TestDb, T0};

/// The id of test transaction `n`.
fn txid(n: u8) -> [u8; 32] {
    [n; 32]
}

/// Test transaction `n`, arrived at `received_ms`; the even ones carry a local proof.
fn transaction(n: u8, received_ms: i64) -> NewRollupTransaction {
    NewRollupTransaction {
        id: txid(n),
        body: format!(r#"{{"tx":{n}}}"#).into_bytes(),
        local_proof: n
            .is_multiple_of(2)
            .then(|| format!("kernel proof of {n}").into_bytes()),
        local_reward: n.is_multiple_of(2).then_some(RewardEntry {
            worker_pk: [n; 32],
            work_units: 32,
        }),
        received_ms,
    }
}

/// Block `number` including `transactions`, proved by sequence `sequence`: two `leaf:work`
/// leaves and a `universal` root.
fn block(number: i64, sequence: u64, transactions: &[u8]) -> PublishedBlock {
    PublishedBlock {
        number,
        commitment: [0xc0 ^ number as u8; 32],
        header: format!(r#"{{"number":{number}}}"#).into_bytes(),
        transactions: transactions.iter().copied().map(txid).collect(),
        sequence: NewSequence {
            id: SequenceId(sequence),
            leaves: 2,
            created_ms: T0 + number,
        },
        jobs: tree(sequence, 2, 2),
        proved: Vec::new(),
        published_ms: T0 + number,
    }
}

/// The stored form of `block`, proved or not.
fn stored(block: &PublishedBlock, proved: bool) -> RollupBlock {
    RollupBlock {
        number: block.number,
        commitment: block.commitment,
        header: block.header.clone(),
        sequence: block.sequence.id,
        tx_count: block.transactions.len() as i64,
        published_ms: block.published_ms,
        proved,
        settled: false,
    }
}

/// The stored form of test transaction `n`, arrived at `received_ms`, in `status`.
fn row(n: u8, received_ms: i64, status: RollupTxStatus) -> RollupTransaction {
    let new = transaction(n, received_ms);
    RollupTransaction {
        id: new.id,
        body: new.body,
        local_proof: new.local_proof,
        local_reward: new.local_reward,
        received_ms,
        status,
        block: None,
        position: None,
        reason: None,
    }
}

/// `row` included in `block` at `position`.
fn included(n: u8, received_ms: i64, block: i64, position: i64) -> RollupTransaction {
    RollupTransaction {
        block: Some(block),
        position: Some(position),
        ..row(n, received_ms, RollupTxStatus::Included)
    }
}

async fn insert(store: &Store, n: u8, received_ms: i64) {
    store
        .insert_rollup_transaction(&transaction(n, received_ms))
        .await
        .unwrap_or_else(|e| panic!("insert transaction {n}: {e}"));
}

async fn publish(store: &Store, block: &PublishedBlock) {
    store
        .publish_rollup_block(block)
        .await
        .unwrap_or_else(|e| panic!("publish block {}: {e}", block.number));
}

/// Ids of the pending transactions, in the order the store gives them.
async fn pending(store: &Store) -> Vec<[u8; 32]> {
    store
        .pending_rollup_transactions()
        .await
        .unwrap()
        .into_iter()
        .map(|tx| tx.id)
        .collect()
}

/// Everything a publication could change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    blocks: Vec<RollupBlock>,
    transactions: Vec<Option<RollupTransaction>>,
    sequences: Vec<Sequence>,
    jobs: Vec<Job>,
    proven_tip: Option<i64>,
}

async fn snapshot(store: &Store, transactions: &[u8]) -> Snapshot {
    let mut rows = Vec::new();
    for n in transactions {
        rows.push(store.rollup_transaction(txid(*n)).await.unwrap());
    }
    Snapshot {
        blocks: store.rollup_blocks(i64::MIN, 1000).await.unwrap(),
        transactions: rows,
        sequences: store.list_sequences().await.unwrap(),
        jobs: store.list_jobs(JobFilter::default()).await.unwrap(),
        proven_tip: store.rollup_proven_tip().await.unwrap(),
    }
}

/// Proves the three jobs of the sequence next in line, asserting it is `sequence`.
async fn prove_sequence(store: &Store, sequence: u64) {
    for step in 0..3 {
        let (lease, outcome) = prove_next(store, "alice").await;
        assert_eq!(
            lease.job.sequence,
            SequenceId(sequence),
            "proving {}",
            lease.job
        );
        assert_eq!(outcome.sequence_proved, step == 2, "{}", lease.job);
    }
}

/// A new handle on the database: on SQLite, the data directory's file opened again.
async fn reopen(db: &TestDb) -> Store {
    match &db.data_dir {
        Some(dir) => Store::open_data_dir(dir).await.unwrap(),
        None => db.connect().await,
    }
}

#[tokio::test]
async fn a_transaction_inserted_twice_is_refused_and_changes_nothing() {
    each_engine(|db| async move {
        let store = db.connect().await;
        insert(&store, 2, T0).await;
        let again = NewRollupTransaction {
            body: b"another body".to_vec(),
            local_proof: None,
            local_reward: None,
            received_ms: T0 - 5,
            ..transaction(2, T0)
        };
        let err = store.insert_rollup_transaction(&again).await.unwrap_err();
        assert!(
            matches!(err, StoreError::RollupTransactionExists(id) if id == txid(2)),
            "[{}] {err:?}",
            db.engine
        );
        assert_eq!(
            store.rollup_transaction(txid(2)).await.unwrap(),
            Some(row(2, T0, RollupTxStatus::Pending))
        );
        assert_eq!(
            store.pending_rollup_transactions().await.unwrap(),
            [row(2, T0, RollupTxStatus::Pending)]
        );
        assert_eq!(store.rollup_transaction(txid(3)).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn pending_transactions_come_in_arrival_order_then_by_id() {
    each_engine(|db| async move {
        let store = db.connect().await;
        insert(&store, 5, T0 + 2).await;
        insert(&store, 9, T0 + 1).await;
        insert(&store, 7, T0 + 1).await;
        insert(&store, 1, T0 + 3).await;
        assert_eq!(
            pending(&store).await,
            [txid(7), txid(9), txid(5), txid(1)],
            "[{}]",
            db.engine
        );
    })
    .await;
}

#[tokio::test]
async fn publishing_a_block_stores_it_includes_its_transactions_and_plans_its_sequence() {
    each_engine(|db| async move {
        let store = db.connect().await;
        assert_eq!(store.rollup_tip().await.unwrap(), None);
        assert_eq!(store.rollup_proven_tip().await.unwrap(), None);
        for n in 1..=3 {
            insert(&store, n, T0 + i64::from(n)).await;
        }

        // The first block may have any number from 1.
        let first = block(7, 1, &[3, 1]);
        publish(&store, &first).await;
        assert_eq!(
            store.rollup_tip().await.unwrap(),
            Some(stored(&first, false))
        );
        assert_eq!(
            store.rollup_block(7).await.unwrap(),
            Some(stored(&first, false))
        );
        assert_eq!(
            store.rollup_block_transactions(7).await.unwrap(),
            [included(3, T0 + 3, 7, 0), included(1, T0 + 1, 7, 1)],
            "[{}]",
            db.engine
        );
        assert_eq!(
            store.rollup_transaction(txid(1)).await.unwrap(),
            Some(included(1, T0 + 1, 7, 1))
        );
        assert_eq!(pending(&store).await, [txid(2)]);

        // Its sequence is planned as insert_sequence plans one: leaves ready, root waiting.
        assert_eq!(
            store.get_sequence(SequenceId(1)).await.unwrap(),
            Some(Sequence {
                id: SequenceId(1),
                leaves: 2,
                root: JobId::new(SequenceId(1), 1, 0),
                created_ms: T0 + 7,
                proved_ms: None,
            })
        );
        let jobs = store
            .list_jobs(JobFilter {
                sequence: Some(SequenceId(1)),
                status: None,
            })
            .await
            .unwrap();
        let shape: Vec<_> = jobs
            .iter()
            .map(|job| {
                (
                    job.id,
                    job.circuit.clone(),
                    job.status,
                    job.children.clone(),
                )
            })
            .collect();
        let expected: Vec<_> = tree(1, 2, 2)
            .into_iter()
            .map(|job| {
                let status = if job.children.is_empty() {
                    JobStatus::Ready
                } else {
                    JobStatus::Waiting
                };
                (job.id, job.circuit, status, job.children)
            })
            .collect();
        assert_eq!(shape, expected);
        assert_eq!(store.rollup_proven_tip().await.unwrap(), None);

        // The next block follows it; an empty block is a block.
        let second = block(8, 2, &[2]);
        publish(&store, &second).await;
        let third = block(9, 3, &[]);
        publish(&store, &third).await;
        assert!(pending(&store).await.is_empty());
        assert_eq!(
            store.rollup_tip().await.unwrap(),
            Some(stored(&third, false))
        );
        assert!(store.rollup_block_transactions(9).await.unwrap().is_empty());
        assert_eq!(
            store.rollup_blocks(0, 10).await.unwrap(),
            [
                stored(&first, false),
                stored(&second, false),
                stored(&third, false)
            ]
        );
        assert_eq!(
            store.rollup_blocks(8, 1).await.unwrap(),
            [stored(&second, false)]
        );
        assert!(store.rollup_blocks(10, 10).await.unwrap().is_empty());
        assert_eq!(store.rollup_block(6).await.unwrap(), None);
        let unknown = store.rollup_block_transactions(6).await.unwrap_err();
        assert!(
            matches!(unknown, StoreError::UnknownRollupBlock(6)),
            "{unknown:?}"
        );
    })
    .await;
}

/// How a publication is expected to be refused.
enum Refusal {
    /// `RollupBlockOutOfOrder { expected, got }`.
    OutOfOrder(i64, i64),
    /// `RollupTransactionNotPending` of test transaction `n`.
    NotPending(u8),
    /// `SequenceExists` of this sequence.
    SequenceExists(u64),
    /// `InvalidPlan`.
    InvalidPlan,
}

impl Refusal {
    fn is(&self, err: &StoreError) -> bool {
        match (self, err) {
            (Refusal::OutOfOrder(e, g), StoreError::RollupBlockOutOfOrder { expected, got }) => {
                (e, g) == (expected, got)
            }
            (Refusal::NotPending(n), StoreError::RollupTransactionNotPending(id)) => {
                *id == txid(*n)
            }
            (Refusal::SequenceExists(n), StoreError::SequenceExists(id)) => *id == SequenceId(*n),
            (Refusal::InvalidPlan, StoreError::InvalidPlan(_)) => true,
            _ => false,
        }
    }
}

#[tokio::test]
async fn a_refused_publication_changes_nothing() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let engine = db.engine;
        // Block 1 includes transaction 1; 2 is pending, 3 reverted; sequence 9 planned apart.
        for n in 1..=3 {
            insert(&store, n, T0 + i64::from(n)).await;
        }
        publish(&store, &block(1, 1, &[1])).await;
        assert_eq!(
            store
                .revert_rollup_transactions(&[txid(3)], "stale")
                .await
                .unwrap(),
            1
        );
        crate::harness::plan(&store, 9, 2, 2).await;
        let before = snapshot(&store, &[1, 2, 3, 4]).await;

        use Refusal::*;
        let refusals = [
            ("a gap", block(3, 2, &[2]), OutOfOrder(2, 3)),
            ("the tip again", block(1, 2, &[2]), OutOfOrder(2, 1)),
            (
                "a number before the tip",
                block(0, 2, &[2]),
                OutOfOrder(2, 0),
            ),
            (
                "an unknown transaction",
                block(2, 2, &[2, 4]),
                NotPending(4),
            ),
            (
                "an included transaction",
                block(2, 2, &[2, 1]),
                NotPending(1),
            ),
            ("a reverted transaction", block(2, 2, &[3]), NotPending(3)),
            (
                "a transaction listed twice",
                block(2, 2, &[2, 2]),
                NotPending(2),
            ),
            (
                "a sequence planned apart",
                block(2, 9, &[2]),
                SequenceExists(9),
            ),
            (
                "the sequence of a block",
                block(2, 1, &[2]),
                SequenceExists(1),
            ),
            (
                "a proof for a job that is not a leaf",
                PublishedBlock {
                    proved: vec![ProvedLeaf {
                        job: JobId::new(SequenceId(2), 1, 0),
                        proof: b"proof".to_vec(),
                        proved_by: "client".into(),
                        reward: None,
                    }],
                    ..block(2, 2, &[2])
                },
                InvalidPlan,
            ),
            (
                "jobs of another sequence",
                PublishedBlock {
                    jobs: tree(3, 2, 2),
                    ..block(2, 2, &[2])
                },
                InvalidPlan,
            ),
        ];
        for (what, refused, expected) in &refusals {
            let err = store.publish_rollup_block(refused).await.unwrap_err();
            assert!(expected.is(&err), "[{engine}] {what}: {err:?}");
            assert_eq!(
                snapshot(&store, &[1, 2, 3, 4]).await,
                before,
                "[{engine}] {what}"
            );
        }
        // Nor after a restart: the refusals left nothing behind, not even uncommitted.
        store.close().await;
        let store = reopen(&db).await;
        assert_eq!(snapshot(&store, &[1, 2, 3, 4]).await, before, "[{engine}]");
        assert_eq!(pending(&store).await, [txid(2)]);
        assert_eq!(store.get_sequence(SequenceId(2)).await.unwrap(), None);

        // Nothing collides either: the block that was refused in every way goes through.
        let next = block(2, 2, &[2]);
        publish(&store, &next).await;
        assert_eq!(
            store.rollup_tip().await.unwrap(),
            Some(stored(&next, false))
        );
        assert_eq!(
            store.rollup_block_transactions(2).await.unwrap(),
            [included(2, T0 + 2, 2, 0)]
        );
    })
    .await;
}

#[tokio::test]
async fn a_leaf_published_with_its_proof_is_proved_and_its_parent_ready_once_all_are() {
    each_engine(|db| async move {
        let store = db.connect().await;
        insert(&store, 1, T0).await;
        let leaf = |idx| JobId::new(SequenceId(1), 0, idx);
        let root = JobId::new(SequenceId(1), 1, 0);
        let proved = |idx: u64| ProvedLeaf {
            job: leaf(idx),
            proof: format!("client proof {idx}").into_bytes(),
            proved_by: "client:aa".into(),
            reward: Some(RewardEntry {
                worker_pk: [0xaa; 32],
                work_units: 32,
            }),
        };
        // One of two leaves proved: it is, the root still waits for the other.
        let one = PublishedBlock {
            proved: vec![proved(0)],
            ..block(1, 1, &[1])
        };
        publish(&store, &one).await;
        let job = store.get_job(leaf(0)).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Proved, "[{}]", db.engine);
        assert_eq!(job.proved_by.as_deref(), Some("client:aa"));
        assert_eq!(job.proved_ms, Some(one.published_ms));
        assert_eq!(
            store.proof_of(leaf(0)).await.unwrap(),
            Some(b"client proof 0".to_vec())
        );
        assert_eq!(status_of(&store, leaf(1)).await, JobStatus::Ready);
        assert_eq!(status_of(&store, root).await, JobStatus::Waiting);
        // Its reward entry is the client's, so the client can claim it.
        let rewards = store.rewards(SequenceId(1)).await.unwrap();
        assert_eq!(rewards.len(), 1, "[{}]", db.engine);
        assert_eq!(
            (
                rewards[0].job,
                rewards[0].prover.as_str(),
                rewards[0].worker_pk,
                rewards[0].work_units
            ),
            (leaf(0), "client:aa", [0xaa; 32], 32)
        );

        // Both proved: the root is ready at once.
        insert(&store, 2, T0).await;
        let both = PublishedBlock {
            proved: vec![
                ProvedLeaf {
                    job: JobId::new(SequenceId(2), 0, 0),
                    ..proved(0)
                },
                ProvedLeaf {
                    job: JobId::new(SequenceId(2), 0, 1),
                    ..proved(1)
                },
            ],
            ..block(2, 2, &[2])
        };
        publish(&store, &both).await;
        assert_eq!(
            status_of(&store, JobId::new(SequenceId(2), 1, 0)).await,
            JobStatus::Ready,
            "[{}]",
            db.engine
        );
    })
    .await;
}

#[tokio::test]
async fn the_first_block_is_numbered_from_one() {
    each_engine(|db| async move {
        let store = db.connect().await;
        insert(&store, 1, T0).await;
        let err = store
            .publish_rollup_block(&block(0, 1, &[1]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::RollupBlockOutOfOrder {
                    expected: 1,
                    got: 0
                }
            ),
            "[{}] {err:?}",
            db.engine
        );
        assert_eq!(store.rollup_tip().await.unwrap(), None);
        assert_eq!(store.get_sequence(SequenceId(1)).await.unwrap(), None);
        publish(&store, &block(1, 1, &[1])).await;
        assert_eq!(store.rollup_tip().await.unwrap().unwrap().number, 1);
    })
    .await;
}

#[tokio::test]
async fn reverting_moves_only_pending_transactions() {
    each_engine(|db| async move {
        let store = db.connect().await;
        for n in 1..=3 {
            insert(&store, n, T0 + i64::from(n)).await;
        }
        publish(&store, &block(1, 1, &[1])).await;
        // 1 is included, 2 pending, 4 unknown: only 2 moves.
        let reverted = store
            .revert_rollup_transactions(&[txid(1), txid(2), txid(4), txid(2)], "nullifier spent")
            .await
            .unwrap();
        assert_eq!(reverted, 1, "[{}]", db.engine);
        assert_eq!(
            store.rollup_transaction(txid(2)).await.unwrap(),
            Some(RollupTransaction {
                reason: Some("nullifier spent".into()),
                ..row(2, T0 + 2, RollupTxStatus::Reverted)
            })
        );
        assert_eq!(
            store.rollup_transaction(txid(1)).await.unwrap(),
            Some(included(1, T0 + 1, 1, 0))
        );
        assert_eq!(store.rollup_transaction(txid(4)).await.unwrap(), None);
        assert_eq!(pending(&store).await, [txid(3)]);

        // Reverting again changes nothing, not even the reason.
        assert_eq!(
            store
                .revert_rollup_transactions(&[txid(2)], "another reason")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .rollup_transaction(txid(2))
                .await
                .unwrap()
                .unwrap()
                .reason
                .as_deref(),
            Some("nullifier spent")
        );
        assert_eq!(
            store.revert_rollup_transactions(&[], "none").await.unwrap(),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn the_proven_tip_follows_the_proved_prefix_without_gaps() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let engine = db.engine;
        let blocks = [block(1, 1, &[]), block(2, 2, &[]), block(3, 3, &[])];
        for block in &blocks {
            publish(&store, block).await;
        }
        // Block 2 is proved first: block 1's leaves are withdrawn meanwhile.
        for index in 0..2 {
            store
                .cancel_job(JobId::new(SequenceId(1), 0, index))
                .await
                .unwrap();
        }
        prove_sequence(&store, 2).await;
        assert!(!store.rollup_block(1).await.unwrap().unwrap().proved);
        assert_eq!(
            store.rollup_block(2).await.unwrap(),
            Some(stored(&blocks[1], true))
        );
        assert_eq!(
            store.rollup_proven_tip().await.unwrap(),
            None,
            "[{engine}] block 2 is proved, block 1 is not"
        );
        assert_eq!(
            store.rollup_tip().await.unwrap(),
            Some(stored(&blocks[2], false))
        );

        // Block 1 proved: the prefix reaches block 2, and stops before the unproved block 3.
        store
            .requeue_sequence(SequenceId(1), JobStatus::Cancelled)
            .await
            .unwrap();
        prove_sequence(&store, 1).await;
        assert_eq!(
            store.rollup_proven_tip().await.unwrap(),
            Some(2),
            "[{engine}]"
        );

        prove_sequence(&store, 3).await;
        assert_eq!(store.rollup_proven_tip().await.unwrap(), Some(3));
        assert_eq!(
            store.rollup_tip().await.unwrap(),
            Some(stored(&blocks[2], true))
        );
        assert_eq!(
            store.rollup_blocks(1, 10).await.unwrap(),
            blocks.iter().map(|b| stored(b, true)).collect::<Vec<_>>()
        );
        // A block published after the proved prefix is not proved with it.
        publish(&store, &block(4, 4, &[])).await;
        assert_eq!(store.rollup_proven_tip().await.unwrap(), Some(3));
        assert_eq!(
            status_of(&store, JobId::new(SequenceId(4), 0, 0)).await,
            JobStatus::Ready
        );
    })
    .await;
}

#[tokio::test]
async fn the_settled_tip_follows_the_prefix_the_sender_recorded_finalized() {
    each_engine(|db| async move {
        let store = db.connect().await;
        let engine = db.engine;
        for number in 1..=3 {
            publish(&store, &block(number, number as u64, &[])).await;
        }
        assert_eq!(store.rollup_settled_tip().await.unwrap(), None);
        // The chain's first registered sequence is 2: sequence 1 is never settled, so no block
        // is part of a settled prefix.
        let marked = store
            .mark_sequences_settled(SequenceId(2), SequenceId(3), T0)
            .await
            .unwrap();
        assert_eq!(marked, 1);
        assert!(store.rollup_block(2).await.unwrap().unwrap().settled);
        assert!(!store.rollup_block(1).await.unwrap().unwrap().settled);
        assert_eq!(
            store.rollup_settled_tip().await.unwrap(),
            None,
            "[{engine}] block 2 is settled, block 1 is not"
        );

        // Sequences 1 and 2 below the chain's next to finalize: the prefix reaches block 2,
        // and marking again keeps the times recorded (only sequence 1 is new).
        let marked = store
            .mark_sequences_settled(SequenceId(1), SequenceId(3), T0 + 1)
            .await
            .unwrap();
        assert_eq!(marked, 1, "[{engine}]");
        assert_eq!(store.rollup_settled_tip().await.unwrap(), Some(2));
        assert!(!store.rollup_block(3).await.unwrap().unwrap().settled);
        // Settled is not proved: the two are recorded apart.
        assert!(!store.rollup_block(1).await.unwrap().unwrap().proved);
        assert_eq!(store.rollup_proven_tip().await.unwrap(), None);

        store
            .mark_sequences_settled(SequenceId(1), SequenceId(4), T0 + 2)
            .await
            .unwrap();
        assert_eq!(store.rollup_settled_tip().await.unwrap(), Some(3));
    })
    .await;
}

#[tokio::test]
async fn a_reopened_store_keeps_the_rollup() {
    each_engine(|db| async move {
        let store = db.connect().await;
        for n in 1..=4 {
            insert(&store, n, T0 + i64::from(n)).await;
        }
        publish(&store, &block(1, 1, &[2, 1])).await;
        store
            .revert_rollup_transactions(&[txid(3)], "too late")
            .await
            .unwrap();
        prove_sequence(&store, 1).await;
        publish(&store, &block(2, 2, &[])).await;
        let before = snapshot(&store, &[1, 2, 3, 4]).await;
        let replay = store.rollup_block_transactions(1).await.unwrap();
        store.close().await;

        let store = reopen(&db).await;
        assert_eq!(
            snapshot(&store, &[1, 2, 3, 4]).await,
            before,
            "[{}]",
            db.engine
        );
        assert_eq!(store.rollup_block_transactions(1).await.unwrap(), replay);
        assert_eq!(
            replay,
            [included(2, T0 + 2, 1, 0), included(1, T0 + 1, 1, 1)]
        );
        assert_eq!(store.rollup_tip().await.unwrap().unwrap().number, 2);
        assert_eq!(store.rollup_proven_tip().await.unwrap(), Some(1));
        assert_eq!(pending(&store).await, [txid(4)]);

        // It carries on after the stored tip.
        let err = store
            .publish_rollup_block(&block(2, 3, &[4]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::RollupBlockOutOfOrder {
                    expected: 3,
                    got: 2
                }
            ),
            "{err:?}"
        );
        publish(&store, &block(3, 3, &[4])).await;
        assert!(pending(&store).await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_publishing_the_same_number_publish_it_once() {
    each_engine(|db| async move {
        let [a, b] = db.replicas().await;
        for round in 0..4u8 {
            let number = i64::from(round) + 1;
            let (ours, theirs) = (2 * round + 1, 2 * round + 2);
            insert(&a, ours, T0).await;
            insert(&b, theirs, T0).await;
            let publish_on = |store: &Store, sequence: u8, transaction: u8| {
                let store = store.clone();
                let block = block(number, u64::from(sequence), &[transaction]);
                tokio::spawn(async move { store.publish_rollup_block(&block).await })
            };
            let first = publish_on(&a, ours, ours);
            let second = publish_on(&b, theirs, theirs);
            let outcomes = [first.await.unwrap(), second.await.unwrap()];
            let (winner, loser) = match &outcomes {
                [Ok(()), Err(_)] => (ours, theirs),
                [Err(_), Ok(())] => (theirs, ours),
                other => panic!("[{}] round {round}: {other:?}", db.engine),
            };
            let err = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
            assert!(
                matches!(err, StoreError::RollupBlockOutOfOrder { expected, got }
                    if *expected == number + 1 && *got == number),
                "[{}] {err:?}",
                db.engine
            );
            let tip = a.rollup_tip().await.unwrap().unwrap();
            assert_eq!(
                (tip.number, tip.sequence),
                (number, SequenceId(u64::from(winner)))
            );
            assert_eq!(
                a.get_sequence(SequenceId(u64::from(loser))).await.unwrap(),
                None
            );
            // The loser's transaction waits for the next block.
            assert_eq!(pending(&a).await, [txid(loser)]);
            a.revert_rollup_transactions(&[txid(loser)], "lost the race")
                .await
                .unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_v6_database_gains_empty_rollup_tables_and_publishes() {
    each_v6_fixture(|db| async move {
        let store = db.connect().await;
        assert_eq!(store.rollup_tip().await.unwrap(), None, "[{}]", db.engine);
        assert_eq!(store.rollup_proven_tip().await.unwrap(), None);
        assert!(store
            .pending_rollup_transactions()
            .await
            .unwrap()
            .is_empty());
        // Sequences 1 to 3 are the fixture's: the block's sequence is the next one.
        insert(&store, 1, T0).await;
        let err = store
            .publish_rollup_block(&block(1, 1, &[1]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SequenceExists(SequenceId(1))),
            "{err:?}"
        );
        let first = block(1, 4, &[1]);
        publish(&store, &first).await;
        assert_eq!(
            store.rollup_tip().await.unwrap(),
            Some(stored(&first, false))
        );
        assert_eq!(store.list_sequences().await.unwrap().len(), 4);
    })
    .await;
}
