//! The rollup node inside the coordinator: the block producer over the store, publishing each
//! block before it is proven.
//!
//! ```text
//!  submit(tx) ─▶ mempool (over the current state) ─▶ store: pending transaction
//!  select_batches() ─▶ the queued transactions cut into batches (every batch interval)
//!  build_and_publish(t) ─▶ (no more than `concurrent_blocks` published blocks unproven)
//!        ─▶ producer.build_block (the selected batches) ─▶ store.publish_rollup_block: the
//!        block, its transactions and its proving tree (a sequence numbered like the block) in
//!        ONE write
//!        ─▶ provers lease the tree's jobs like any sequence's
//!  open() ─▶ replay genesis + published blocks ─▶ resubmit the pending transactions
//! ```
//!
//! The store holds the blocks and the transactions, never the rollup state: a restart replays
//! the published blocks (checking every header) and readmits the pending transactions, so
//! nothing published is lost or changed. A block whose publication fails is not in the store;
//! the node then rebuilds itself from the store (as after a restart), so its state never runs
//! ahead of what is published. Selected batches are only in memory: a restart queues their
//! transactions again.
//!
//! The proving backlog is bounded: block `n` is not built while `n − proven tip >
//! concurrent_blocks`, so at most `concurrent_blocks` published blocks prove at once;
//! transactions meanwhile wait in the mempool, whose capacity then refuses more (503).

use std::sync::Arc;

use sheaf_rollup::kernel::{TxJob, TX_PAIR_KIND};
use sheaf_rollup::producer::{BlockProducer, BuildError, BuiltBlock, ReplayError, Replayed};
use sheaf_rollup::{
    BlockHeader, Genesis, GenesisAccount, MempoolConfig, MempoolConfigError, MempoolError,
    RollupState,
};
use sheaf_rollup::{Transaction, TxId};
use sheaf_store::{
    NewJob, NewRollupTransaction, NewSequence, ProvedLeaf, PublishedBlock, RewardEntry,
    RollupBlock, Store, StoreError,
};
use sheaf_types::clock::now_ms;
use sheaf_types::{JobId, SequenceId};
use tokio::sync::Mutex;

/// Default time between two batch selections: miden-node's `DEFAULT_BATCH_INTERVAL`. Shorter
/// cuts more, smaller batches (a partial batch waits at most this long for company).
pub const DEFAULT_BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Default time between two blocks: miden-node's `DEFAULT_BLOCK_INTERVAL`. Shorter publishes
/// sooner but plans more, smaller proving trees.
pub const DEFAULT_BLOCK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);

/// Default number of published blocks that may wait for their proof at once: enough for a
/// network of provers to work on several blocks' trees together, few enough that the proving
/// backlog (and the proven tip's lag) stays bounded when the provers fall behind.
pub const DEFAULT_CONCURRENT_BLOCKS: usize = 8;

/// Largest encoded transaction the node reads (a transaction with 16 inputs and 16 outputs and
/// its signature is about 12 KiB of JSON).
pub const MAX_TRANSACTION_BYTES: usize = 64 * 1024;

/// Largest encoded local transaction the node reads: a transaction and a proof of at most
/// [`sheaf_circuits::limits::MAX_PROOF_BYTES`], base64 (within the API's 2 MiB body limit).
pub const MAX_LOCAL_TRANSACTION_BYTES: usize =
    MAX_TRANSACTION_BYTES + sheaf_circuits::limits::MAX_PROOF_BYTES / 3 * 4 + 1024;

/// A local transaction as `POST /v1/rollup/transactions/local` takes it: the transaction, the
/// proof of its signed half that its client made (the tx kernel in
/// [`TxMode::Local`](sheaf_rollup::kernel::TxMode::Local), kind
/// [`TX_PAIR_KIND`]) and the worker key that proof carries.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LocalTransaction {
    /// The signed transaction.
    pub transaction: Transaction,
    /// The worker key of the proof's header: who proved it.
    pub prover: sheaf_circuits::Digest,
    /// The proof, base64.
    #[serde(with = "sheaf_types::base64_bytes")]
    pub proof: Vec<u8>,
}

impl LocalTransaction {
    /// The job circuit of a local transaction's signed half.
    pub fn circuit() -> sheaf_circuits::JobCircuit {
        sheaf_circuits::JobCircuit::Leaf {
            kind: TX_PAIR_KIND.into(),
        }
    }

    /// The inputs of its signed half's job: what its proof must state.
    pub fn inputs(transaction: &Transaction) -> Result<sheaf_circuits::JobInputs, RollupError> {
        let job = serde_json::to_value(TxJob::local(transaction.clone()))
            .map_err(|e| RollupError::Malformed(e.to_string()))?;
        sheaf_circuits::JobInputs::leaf(TX_PAIR_KIND, job)
            .map_err(|e| RollupError::Malformed(e.to_string()))
    }
}

/// Why the rollup node refuses or fails.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    /// The bytes are not a transaction.
    #[error("not a transaction: {0}")]
    Malformed(String),
    /// More bytes than a transaction can take.
    #[error("a transaction is at most {max} bytes, got {got}")]
    TooLarge {
        /// The bytes sent.
        got: usize,
        /// The most it takes.
        max: usize,
    },
    /// The mempool refused it.
    #[error(transparent)]
    Refused(#[from] MempoolError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A published block's header or transactions do not decode.
    #[error("published block {number} is unreadable: {reason}")]
    Corrupt {
        /// The block.
        number: i64,
        /// Why.
        reason: String,
    },
    /// The published blocks do not replay.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The mempool's configuration is out of range.
    #[error(transparent)]
    Config(#[from] MempoolConfigError),
    /// The producer could not build the block.
    #[error(transparent)]
    Build(Box<BuildError>),
}

impl From<BuildError> for RollupError {
    fn from(e: BuildError) -> Self {
        RollupError::Build(Box::new(e))
    }
}

/// What `GET /v1/rollup/status` answers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RollupStatus {
    /// The highest published block.
    pub published_tip: Option<i64>,
    /// The highest block such that it and every block before it are proved.
    pub proven_tip: Option<i64>,
    /// The highest block such that it and every block before it are finalized on the base
    /// chain, as the proof sender recorded in the store when it saw the chain finalize them
    /// ([`Store::rollup_settled_tip`]); `None` while the first block is not, and always
    /// without a sender (`--sender-key`). It trails the chain by at most a sender pass.
    pub settled_tip: Option<i64>,
    /// Transactions waiting for a block.
    pub pending: usize,
}

/// A published block as `GET /v1/rollup/blocks/{number}` answers it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockView {
    /// Its header.
    pub header: BlockHeader,
    /// The header's commitment.
    pub commitment: sheaf_circuits::Digest,
    /// Its transactions' ids, in block order.
    pub transactions: Vec<TxId>,
    /// The notes its transactions created, in block order (note `i` of the block's note tree).
    pub created_notes: Vec<sheaf_rollup::Note>,
    /// The nullifiers its transactions spent.
    pub spent_nullifiers: Vec<sheaf_rollup::Nullifier>,
    /// Whether its proving tree's root is proved.
    pub proved: bool,
    /// Whether it is finalized on the base chain, as the proof sender recorded.
    pub settled: bool,
}

/// What `proved_by` records for a local transaction's signed half: its client proved it.
pub const LOCAL_PROVER: &str = "client";

/// The rollup node's knobs.
#[derive(Clone, Debug)]
pub struct RollupConfig {
    /// The mempool's.
    pub mempool: MempoolConfig,
    /// Children per aggregation node of the proving trees.
    pub arity: usize,
    /// Most published blocks not yet proved: block `n` waits while `n − proven tip` exceeds it
    /// (at least 1).
    pub concurrent_blocks: usize,
}

/// The rollup node: the producer and the store it publishes to.
pub struct RollupNode {
    store: Store,
    genesis: RollupState,
    config: RollupConfig,
    producer: Mutex<BlockProducer>,
}

impl RollupNode {
    /// Open the node over `store`: replay the published blocks from `genesis`, then readmit the
    /// pending transactions (those the new state refuses are reverted in the store, with why).
    pub async fn open(
        store: Store,
        genesis: RollupState,
        config: RollupConfig,
    ) -> Result<Arc<RollupNode>, RollupError> {
        let producer = rebuild(&store, &genesis, &config).await?;
        Ok(Arc::new(RollupNode {
            store,
            genesis,
            config,
            producer: Mutex::new(producer),
        }))
    }

    /// Admit a transaction (JSON bytes): the mempool's checks over the current state, then the
    /// store, so a restart readmits it.
    pub async fn submit(&self, bytes: &[u8]) -> Result<TxId, RollupError> {
        if bytes.len() > MAX_TRANSACTION_BYTES {
            return Err(RollupError::TooLarge {
                got: bytes.len(),
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let tx: Transaction =
            serde_json::from_slice(bytes).map_err(|e| RollupError::Malformed(e.to_string()))?;
        self.admit(tx, None).await
    }

    /// Read a local transaction (JSON bytes, [`LocalTransaction`]); its proof is for the caller
    /// to verify before [`RollupNode::submit_local`].
    pub fn read_local(bytes: &[u8]) -> Result<LocalTransaction, RollupError> {
        if bytes.len() > MAX_LOCAL_TRANSACTION_BYTES {
            return Err(RollupError::TooLarge {
                got: bytes.len(),
                max: MAX_LOCAL_TRANSACTION_BYTES,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| RollupError::Malformed(e.to_string()))
    }

    /// Admit a local transaction whose signed half's proof the caller verified (a proof of
    /// `work_units`): the mempool's checks, then the store with its proof, which the block's
    /// tree takes as that leaf's, and its reward entry for the client's worker key.
    pub async fn submit_local(
        &self,
        local: LocalTransaction,
        work_units: u64,
    ) -> Result<TxId, RollupError> {
        let reward = RewardEntry {
            worker_pk: local.prover.to_bytes(),
            work_units: work_units as i64,
        };
        self.admit(local.transaction, Some((local.proof, reward)))
            .await
    }

    async fn admit(
        &self,
        tx: Transaction,
        local: Option<(Vec<u8>, RewardEntry)>,
    ) -> Result<TxId, RollupError> {
        let mut producer = self.producer.lock().await;
        let (local_proof, local_reward) = local.unzip();
        let id = match local_proof {
            Some(_) => producer.submit_local(tx.clone())?,
            None => producer.submit(tx.clone())?,
        };
        let row = NewRollupTransaction {
            id: id.0.to_bytes(),
            body: encode(&tx),
            local_proof,
            local_reward,
            received_ms: now_ms(),
        };
        if let Err(e) = self.store.insert_rollup_transaction(&row).await {
            // Not stored: the mempool must not hold it either.
            *producer = rebuild(&self.store, &self.genesis, &self.config).await?;
            return Err(e.into());
        }
        Ok(id)
    }

    /// Cut the queued transactions into batches (the batch interval's work); how many.
    pub async fn select_batches(&self) -> usize {
        self.producer.lock().await.select_batches()
    }

    /// Build the next block at `timestamp` (or just after the previous block's, if that is
    /// later) from the selected batches and publish it with its proving tree; `Ok(None)` when no
    /// batch waits, or when `concurrent_blocks` published blocks already wait for their proof.
    pub async fn build_and_publish(
        &self,
        timestamp: u64,
    ) -> Result<Option<BlockHeader>, RollupError> {
        // The proven tip only grows, so reading it before taking the producer is safe.
        let proven = self.store.rollup_proven_tip().await?.unwrap_or(0);
        let mut producer = self.producer.lock().await;
        let next = i64::from(producer.state().tip().number) + 1;
        if next - proven > self.config.concurrent_blocks.max(1) as i64 {
            tracing::debug!(
                target: "sheaf::rollup",
                next,
                proven,
                "proving backlog full; the block waits"
            );
            return Ok(None);
        }
        // Block time never goes back, whatever the clock says after a restart.
        let timestamp = timestamp.max(producer.state().tip().timestamp + 1);
        let block = match producer.build_block(timestamp) {
            Ok(Some(block)) => block,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.revert(&e).await?;
                return Err(e.into());
            }
        };
        if let Err(e) = self.publish(&block).await {
            // The store does not have the block: go back to what it has.
            *producer = rebuild(&self.store, &self.genesis, &self.config).await?;
            return Err(e);
        }
        if !block.reverted.is_empty() {
            let ids: Vec<[u8; 32]> = block.reverted.iter().map(|id| id.0.to_bytes()).collect();
            self.store
                .revert_rollup_transactions(&ids, "expired or its parent was dropped")
                .await?;
        }
        tracing::info!(
            target: "sheaf::rollup",
            block = block.header.number,
            transactions = block.transactions.len(),
            jobs = block.tree.jobs.len(),
            "published block"
        );
        Ok(Some(block.header))
    }

    /// The current state (after the last published block).
    pub async fn state(&self) -> RollupState {
        self.producer.lock().await.state().clone()
    }

    /// Transactions waiting for a block.
    pub async fn pending(&self) -> usize {
        self.producer.lock().await.mempool().pending()
    }

    /// Where the rollup stands: the published tip, the proven tip (every block up to it proved),
    /// the settled tip (every block up to it finalized on chain) and the transactions waiting.
    ///
    /// One consistent view: the producer is held while the tips are read, so a block published
    /// meanwhile is either counted in the published tip or its transactions in `pending`, never
    /// neither (seen by a test that waited for nothing pending and the tips equal).
    pub async fn status(&self) -> Result<RollupStatus, RollupError> {
        let producer = self.producer.lock().await;
        Ok(RollupStatus {
            pending: producer.mempool().pending(),
            published_tip: self.store.rollup_tip().await?.map(|b| b.number),
            proven_tip: self.store.rollup_proven_tip().await?,
            settled_tip: self.store.rollup_settled_tip().await?,
        })
    }

    /// Published block `number`: its header, transactions, created notes and spent nullifiers;
    /// `None` when it is not published.
    pub async fn block(&self, number: i64) -> Result<Option<BlockView>, RollupError> {
        let Some(block) = self.store.rollup_block(number).await? else {
            return Ok(None);
        };
        let (header, transactions) = read_block(&self.store, &block).await?;
        Ok(Some(BlockView {
            commitment: header.commitment(),
            header,
            transactions: transactions.iter().map(Transaction::id).collect(),
            created_notes: transactions
                .iter()
                .flat_map(|tx| tx.body.output_notes.iter().copied())
                .collect(),
            spent_nullifiers: transactions
                .iter()
                .flat_map(|tx| tx.body.nullifiers())
                .collect(),
            proved: block.proved,
            settled: block.settled,
        }))
    }

    /// The genesis the node started from, as a genesis document (`GET /v1/rollup/genesis`):
    /// what a client replays the published blocks from, and where a wallet finds its account.
    pub fn genesis(&self) -> Genesis {
        Genesis {
            timestamp: self.genesis.tip().timestamp,
            accounts: self
                .genesis
                .accounts()
                .map(|a| GenesisAccount {
                    id: a.id,
                    balance: a.balance,
                    auth_commitment: a.auth_commitment,
                })
                .collect(),
        }
    }

    async fn publish(&self, block: &BuiltBlock) -> Result<(), RollupError> {
        let sequence = SequenceId(block.header.number as u64);
        let id = |job: usize| {
            let job = &block.tree.jobs[job];
            JobId::new(sequence, job.level as u32, job.index as u64)
        };
        let jobs = (0..block.tree.jobs.len())
            .map(|i| NewJob {
                id: id(i),
                circuit: block.tree.jobs[i].circuit.clone(),
                inputs: block.tree.jobs[i].inputs.clone(),
                children: block.tree.jobs[i].children.iter().map(|&c| id(c)).collect(),
            })
            .collect();
        let mut proved = Vec::new();
        for (i, job) in block.tree.jobs.iter().enumerate() {
            let Some(tx) = job.local else { continue };
            let row = self.store.rollup_transaction(tx.0.to_bytes()).await?;
            let (proof, reward) = row
                .and_then(|row| Some((row.local_proof?, row.local_reward)))
                .ok_or_else(|| RollupError::Corrupt {
                    number: block.header.number as i64,
                    reason: format!("local transaction {tx:?} has no stored proof"),
                })?;
            proved.push(ProvedLeaf {
                job: id(i),
                proof,
                proved_by: LOCAL_PROVER.into(),
                reward,
            });
        }
        let published = PublishedBlock {
            number: block.header.number as i64,
            commitment: block.header.commitment().to_bytes(),
            header: encode(&block.header),
            transactions: block
                .transactions
                .iter()
                .map(|tx| tx.id().0.to_bytes())
                .collect(),
            sequence: NewSequence {
                id: sequence,
                leaves: block.transactions.len() as i64,
                created_ms: now_ms(),
            },
            jobs,
            proved,
            published_ms: now_ms(),
        };
        self.store.publish_rollup_block(&published).await?;
        Ok(())
    }

    /// Record in the store the transactions a failed build dropped.
    async fn revert(&self, error: &BuildError) -> Result<(), RollupError> {
        let dropped = match error {
            BuildError::Refused { dropped, .. } | BuildError::Plan { dropped, .. } => dropped,
            BuildError::Commit(_) => return Ok(()),
        };
        let ids: Vec<[u8; 32]> = dropped.iter().map(|id| id.0.to_bytes()).collect();
        self.store
            .revert_rollup_transactions(&ids, &error.to_string())
            .await?;
        Ok(())
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Headers and transactions are plain data: they always serialize.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A published block's header and transactions, decoded.
async fn read_block(
    store: &Store,
    block: &RollupBlock,
) -> Result<(BlockHeader, Vec<Transaction>), RollupError> {
    let corrupt = |reason: String| RollupError::Corrupt {
        number: block.number,
        reason,
    };
    let header: BlockHeader =
        serde_json::from_slice(&block.header).map_err(|e| corrupt(e.to_string()))?;
    let transactions = store
        .rollup_block_transactions(block.number)
        .await?
        .into_iter()
        .map(|row| serde_json::from_slice::<Transaction>(&row.body))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok((header, transactions))
}

/// The producer as the store has it: the genesis, every published block replayed, the pending
/// transactions readmitted (those refused now are reverted in the store).
async fn rebuild(
    store: &Store,
    genesis: &RollupState,
    config: &RollupConfig,
) -> Result<BlockProducer, RollupError> {
    let mut published = Vec::new();
    let mut next = 1;
    loop {
        let blocks = store.rollup_blocks(next, 256).await?;
        if blocks.is_empty() {
            break;
        }
        for block in blocks {
            next = block.number + 1;
            published.push(read_block(store, &block).await?);
        }
    }
    let replayed = Replayed::blocks(genesis.clone(), published, config.mempool.max_txs_per_batch)?;
    let mut producer = BlockProducer::new(replayed.state.clone(), config.mempool, config.arity)?;
    let mut refused = Vec::new();
    let mut waiting = Vec::new();
    for row in store.pending_rollup_transactions().await? {
        match serde_json::from_slice::<Transaction>(&row.body) {
            Ok(mut tx) => {
                // Its note's creator may have been published since it was admitted.
                replayed.authenticate(&mut tx);
                // A local transaction's proof was verified when it arrived.
                waiting.push((row.id, tx, row.local_proof.is_some()));
            }
            Err(e) => refused.push((row.id, e.to_string())),
        }
    }
    // The store orders transactions received in the same millisecond by id, not arrival: a
    // child refused before its parent is admitted is tried again once the parent is.
    loop {
        let before = waiting.len();
        let mut again = Vec::new();
        let mut last_refusal = Vec::new();
        for (id, tx, local) in waiting {
            let admitted = if local {
                producer.submit_local(tx.clone())
            } else {
                producer.submit(tx.clone())
            };
            if let Err(e) = admitted {
                last_refusal.push((id, e.to_string()));
                again.push((id, tx, local));
            }
        }
        if again.len() == before {
            refused.extend(last_refusal);
            break;
        }
        waiting = again;
    }
    for (id, reason) in refused {
        store.revert_rollup_transactions(&[id], &reason).await?;
    }
    Ok(producer)
}
